"""The M³EL data model: modalities, the 9 tasks, image references, entities and instances.

The released record format is
`{Qid, name, description, sentence, image: [file name, URL, local path], candidates: [{Qid, name,
description, image}, ...]}`: the top-level Qid/name/description are the gold entity's, `sentence`
and `image` are the mention's. We add optional fields (topic, split, gold index, ...) that a
loader of the plain release format simply finds absent.

Our reading of the paper's 9 tasks: every pairing of a mention modality {T, I, TI} with an entity
modality {T, I, TI}. Which tasks an instance qualifies for follows from the modalities it has.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Modality(str, Enum):
    """What a mention or an entity is represented by: text, image, or both."""

    T = "T"
    I = "I"  # noqa: E741 - the paper's own letter
    TI = "TI"


@dataclass(frozen=True, order=True)
class Task:
    """One of the 9 linking tasks: a mention modality paired with an entity modality."""

    mention: Modality
    entity: Modality

    @property
    def name(self) -> str:
        return f"{self.mention.value}-{self.entity.value}"

    def __str__(self) -> str:
        return self.name


MODALITIES: tuple[Modality, ...] = (Modality.T, Modality.I, Modality.TI)
TASKS: tuple[Task, ...] = tuple(Task(m, e) for m in MODALITIES for e in MODALITIES)
TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
SPLITS: tuple[str, ...] = ("train", "val", "test")
# How a mention image relates to the gold entity's image (see the construction chapter).
MENTION_IMAGE_KINDS: tuple[str, ...] = ("distinct", "augmented", "same_file", "unknown", "none")
KB_ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "wikidata": re.compile(r"\AQ[1-9][0-9]*\Z"),
    "m3el-snapshot": re.compile(r"\AX[1-9][0-9]*\Z"),
    # the release-sized synthetic release (m3el_lib.data.synth_release): scale and fault tests only
    "m3el-synthetic": re.compile(r"\AX[1-9][0-9]*\Z"),
}


def task_by_name(name: str) -> Task:
    """The task called `name` (e.g. "TI-I"); ValueError names the valid ones."""
    for task in TASKS:
        if task.name == name:
            return task
    raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASK_NAMES)}")


@dataclass(frozen=True)
class ImageRef:
    """A picture as the release lists it: `[file name, URL, local path]`."""

    file_name: str
    url: str
    local_path: str

    def to_json(self) -> list[str]:
        return [self.file_name, self.url, self.local_path]


@dataclass(frozen=True)
class Entity:
    """A knowledge-graph entity as a candidate: id, name, description, optional picture."""

    qid: str
    name: str
    description: str
    image: ImageRef | None = None

    @property
    def has_image(self) -> bool:
        return self.image is not None and bool(self.image.local_path or self.image.url)


@dataclass(frozen=True)
class Instance:
    """One mention to link, with its candidate entities; the gold is the candidate with `qid`."""

    qid: str
    name: str
    description: str
    sentence: str
    image: ImageRef | None
    candidates: tuple[Entity, ...]
    topic: str = ""
    split: str = ""
    instance_id: str = ""
    mention_image_kind: str = "unknown"
    kb: str = "wikidata"
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def gold_index(self) -> int:
        """Position of the gold entity among the candidates."""
        for index, candidate in enumerate(self.candidates):
            if candidate.qid == self.qid:
                return index
        raise ValueError(f"instance {self.instance_id or self.qid}: gold {self.qid} not among candidates")

    @property
    def gold(self) -> Entity:
        return self.candidates[self.gold_index]

    @property
    def has_mention_image(self) -> bool:
        return self.image is not None and bool(self.image.local_path or self.image.url)

    def mention_modalities(self) -> tuple[Modality, ...]:
        has_text = bool(self.sentence.strip())
        return _modalities(has_text, self.has_mention_image)

    def entity_modalities(self) -> tuple[Modality, ...]:
        if not self.candidates:
            return ()
        has_text = all(c.name.strip() or c.description.strip() for c in self.candidates)
        has_image = all(c.has_image for c in self.candidates)
        return _modalities(has_text, has_image)

    def tasks(self) -> tuple[Task, ...]:
        """The tasks this instance qualifies for, in the canonical order of TASKS."""
        mention = set(self.mention_modalities())
        entity = set(self.entity_modalities())
        return tuple(t for t in TASKS if t.mention in mention and t.entity in entity)


def _modalities(has_text: bool, has_image: bool) -> tuple[Modality, ...]:
    found = []
    if has_text:
        found.append(Modality.T)
    if has_image:
        found.append(Modality.I)
    if has_text and has_image:
        found.append(Modality.TI)
    return tuple(found)
