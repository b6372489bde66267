"""The offline knowledge source: the committed snapshot under `data/snapshot/`.

`SnapshotSource` implements `KnowledgeSource` over `entities.jsonl.gz` (the 10,033 Wikipedia Vital
Articles and the WordNet named entities that are not one of them, with our topics and matched
pictures) and `images/`; see `data/snapshot/SOURCES.md` for
where the data comes from. Ids are local (`X<digits>`, `kb="m3el-snapshot"`).

Same-name search is an inverted index (name token -> entities), so a query costs the length of a
few posting lists, never a scan of the whole snapshot; tokens found in more than `max_df`
entity names carry no signal and are not followed.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import unicodedata
from pathlib import Path

from .. import config
from ..fsutil import sha256_file
from .source import SourceEntity, SourceImage

# Our snapshot topics, in the order we present them; M³EL-mini uses the first five (people, which the
# snapshot's picture sources almost never show, is left out of it: see book/data_card.md).
SNAPSHOT_TOPICS: tuple[str, ...] = ("nature", "countries", "places", "science_technology", "culture_society", "people")
STOPWORDS = frozenset("a an and at by for from in into of on or the to with".split())


def normalise(text: str) -> str:
    """Lowercase ASCII words separated by single spaces (accents dropped)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def tokens(text: str) -> list[str]:
    """Content words of a name or description, in order, without repeats."""
    seen: list[str] = []
    for word in normalise(text).split():
        if word not in STOPWORDS and word not in seen:
            seen.append(word)
    return seen


def snapshot_checksum(path: Path | str = config.SNAPSHOT_DIR) -> str:
    """A cheap id of the snapshot's content: its manifest and entity file (pictures are listed there by sha256)."""
    path = Path(path)
    digest = hashlib.sha256()
    for name in ("snapshot.json", "entities.jsonl.gz"):
        digest.update(name.encode() + b"\0" + sha256_file(path / name).encode())
    return digest.hexdigest()


def snapshot_picture_sources(path: Path | str = config.SNAPSHOT_DIR) -> list[dict[str, str]]:
    """Where every picture of the snapshot came from: its file here and sha256, its package (name and
    version), its path in the package and the sha256 of that source file ("" where there is no one
    file: flagpy's pickled arrays, matplotlib's photo). A corpus built from the same packages uses
    this to leave the snapshot's pictures out."""
    keys = ("file", "sha256", "origin", "package", "package_path", "source_path", "source_sha256")
    found = []
    with gzip.open(Path(path) / "entities.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            found += [{"entity": record["id"], **{k: str(image.get(k, "")) for k in keys}} for image in record.get("images", [])]
    return found


class SnapshotSource:
    """The committed snapshot as a KnowledgeSource."""

    name = "snapshot"
    kb = "m3el-snapshot"

    def __init__(self, path: Path | str = config.SNAPSHOT_DIR, max_df: int = 200):
        self.path = Path(path)
        self.max_df = max_df
        entities_file = self.path / "entities.jsonl.gz"
        if not entities_file.exists():
            raise FileNotFoundError(f"{entities_file}: no snapshot here (see data/snapshot/SOURCES.md)")
        self.entities: dict[str, SourceEntity] = {}
        with gzip.open(entities_file, "rt", encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                entity = _entity_from_json(line, f"{entities_file}:{line_number}")
                self.entities[entity.qid] = entity
        self._by_name: dict[str, list[str]] = {}
        self._by_token: dict[str, list[str]] = {}
        for qid in sorted(self.entities, key=_id_number):
            entity = self.entities[qid]
            self._by_name.setdefault(normalise(entity.name), []).append(qid)
            for token in tokens(entity.name):
                self._by_token.setdefault(token, []).append(qid)

    def versions(self) -> dict[str, str]:
        manifest = json.loads((self.path / "snapshot.json").read_text(encoding="utf-8"))
        found = {name: str(info.get("version", "")) for name, info in manifest.get("inputs", {}).items()}
        found["snapshot_checksum"] = snapshot_checksum(self.path)
        return found

    def topics(self) -> list[str]:
        present = {e.topic for e in self.entities.values()}
        return [t for t in SNAPSHOT_TOPICS if t in present] + sorted(present - set(SNAPSHOT_TOPICS))

    def topic_entities(self, topic: str, limit: int | None = None) -> list[SourceEntity]:
        """A topic's entities: pictured ones first, then those sharing their name with another entity (the
        homonyms that make linking hard), then the rest; each group in a fixed pseudo-random order.

        The order is a hash of the id, so a prefix of it is not biased towards early letters.
        """
        if topic not in self.topics():
            raise ValueError(f"unknown snapshot topic {topic!r}; expected one of {', '.join(self.topics())}")
        chosen = [e for e in self.entities.values() if e.topic == topic]
        chosen.sort(key=lambda e: (not e.images, not self.has_homonym(e), hashlib.sha256(e.qid.encode()).hexdigest()))
        return chosen if limit is None else chosen[:limit]

    def has_homonym(self, entity: SourceEntity) -> bool:
        """Does another entity of the snapshot have exactly this entity's name?"""
        return len(self._by_name.get(normalise(entity.name), ())) > 1

    def search_name(self, name: str, limit: int) -> list[SourceEntity]:
        """Entities with exactly this name first, then those sharing its rarer name tokens (most shared weight first)."""
        exact = list(self._by_name.get(normalise(name), []))
        scores: dict[str, float] = {}
        total = len(self.entities)
        for token in tokens(name):
            postings = self._by_token.get(token, [])
            if not postings or len(postings) > self.max_df:
                continue
            weight = math.log(total / len(postings))
            for qid in postings:
                scores[qid] = scores.get(qid, 0.0) + weight
        shared = sorted((q for q in scores if q not in exact), key=lambda q: (-scores[q], _id_number(q)))
        return [self.entities[q] for q in (exact + shared)[:limit]]

    def image_bytes(self, image: SourceImage) -> bytes:
        path = self.path / "images" / image.file_name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: picture listed in the snapshot is missing")
        return path.read_bytes()


def _id_number(qid: str) -> int:
    return int(qid[1:])


def _entity_from_json(line: str, where: str) -> SourceEntity:
    try:
        record = json.loads(line)
        images = tuple(
            SourceImage(
                file_name=Path(image["file"]).name,
                url="",
                origin=image["origin"],
                licence=image.get("licence", ""),
                caption=image.get("caption", ""),
            )
            for image in record.get("images", [])
        )
        return SourceEntity(
            qid=record["id"],
            name=record["name"],
            description=record.get("description", ""),
            extract=record.get("extract", ""),
            topic=record.get("topic", ""),
            title=record.get("title", ""),
            images=images,
        )
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{where}: bad snapshot entity: {err!r}") from err
