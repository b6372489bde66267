"""The knowledge-source interface that every construction stage reads through.

Two sources implement it: the offline snapshot (`snapshot.py`, the committed
`data/snapshot/`) and the live Wikimedia services (`wikimedia.py`: Wikidata SPARQL and
wbsearchentities, Wikipedia REST summaries, Wikimedia Commons files). The stages in
`stages.py` never know which one they talk to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SourceImage:
    """One picture of an entity as the source knows it (not yet copied into a dataset)."""

    file_name: str  # e.g. a Commons file name or the snapshot's file name
    url: str  # where the picture lives publicly ("" when the source has no URL)
    origin: str  # which collection it came from, e.g. "commons", "tuxpaint", "flagpy"
    licence: str = ""
    caption: str = ""


@dataclass(frozen=True)
class SourceEntity:
    """An entity of the knowledge source with the text and pictures the pipeline needs.

    `qid` is a Wikidata id (`Q<digits>`) for the live source and a local snapshot id
    (`X<digits>`) for the offline snapshot, which ships no Wikidata ids.
    """

    qid: str
    name: str  # Wikidata label (snapshot: Wikipedia title without its parenthetical)
    description: str  # Wikidata description (snapshot: Wikipedia short description)
    extract: str = ""  # Wikipedia lead paragraph: the mention text
    topic: str = ""
    title: str = ""  # Wikipedia page title
    images: tuple[SourceImage, ...] = field(default_factory=tuple)


@runtime_checkable
class KnowledgeSource(Protocol):
    """What a construction run needs from a knowledge source."""

    name: str  # "snapshot" or "wikimedia"
    kb: str  # id namespace written into records: "wikidata" or "m3el-snapshot"

    def versions(self) -> dict[str, str]:
        """Versions/dates/checksums of the underlying data, for the manifest."""
        ...

    def topics(self) -> list[str]:
        """Topics this source can select entities for."""
        ...

    def topic_entities(self, topic: str, limit: int | None = None) -> list[SourceEntity]:
        """Stage 1: entities of one topic, in a stable order, text and images filled in."""
        ...

    def search_name(self, name: str, limit: int) -> list[SourceEntity]:
        """Stage 3: entities whose names match or share tokens with `name`, best first."""
        ...

    def image_bytes(self, image: SourceImage) -> bytes:
        """Stage 4: the picture's encoded bytes (PNG/JPEG)."""
        ...

