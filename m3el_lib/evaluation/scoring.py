"""Scorers: anything that scores mentions against entities for a task, and the embedding scorer.

A scorer is prepared once on a list of instances (the ones to evaluate) and an `EntityTable`
(every entity variant those instances, or the whole dataset, mention). Then, for a task, it gives
- `pair_scores(task, rows, entity_idx)`: scores [n, K] of mention rows against entity rows;
- `all_scores(task, rows)`: scores [n, M] against every knowledge-base entity (full-KB mode).

`EmbeddingScorer` does it with batched matrix products over cached embeddings (cosine similarity
of L2-normalised embeddings; TI rows are `fusion.fuse` of the T and I rows). Baselines that are
not embedding models (TF-IDF, chance) implement the same three methods in `m3el_lib.evaluation.baselines`.

Entities are keyed by their whole record (id, name, description, picture): the same id with two
different records stays two rows for candidate ranking; the full-KB list holds one row per id
(its first record in dataset order).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
import torch

from ..models.embedding_cache import EmbeddingCache, image_key
from ..models.encoders import entity_text, mention_text, picture_path
from ..models.fusion import fuse
from ..data.schema import TASKS, Entity, Instance, Modality, Task


@dataclass
class EntityTable:
    """Every distinct entity record, and the knowledge base: one record per entity id."""

    variants: list[Entity]
    index: dict[Entity, int]
    kb_rows: np.ndarray  # rows of `variants` forming the knowledge base, one per id
    kb_position: dict[str, int] = field(default_factory=dict)  # id -> position in kb_rows

    @classmethod
    def from_instances(cls, instances: Sequence[Instance]) -> "EntityTable":
        index: dict[Entity, int] = {}
        first_by_id: dict[str, int] = {}
        for inst in instances:
            for entity in inst.candidates:
                if entity not in index:
                    index[entity] = len(index)
                    first_by_id.setdefault(entity.qid, index[entity])
        kb_rows = np.fromiter(first_by_id.values(), dtype=np.int64, count=len(first_by_id))
        return cls(list(index), index, kb_rows, {qid: i for i, qid in enumerate(first_by_id)})

    def has_modality(self, modality: Modality) -> np.ndarray:
        """Which variants can be represented in `modality` (bool [num variants])."""
        text = np.array([bool(e.name.strip() or e.description.strip()) for e in self.variants], dtype=bool)
        image = np.array([e.has_image for e in self.variants], dtype=bool)
        return {Modality.T: text, Modality.I: image, Modality.TI: text & image}[modality]

    def candidate_matrix(self, instances: Sequence[Instance]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Variant rows [n, Kmax] of each instance's candidates, validity mask, gold position [n]."""
        width = max(len(inst.candidates) for inst in instances)
        rows = np.zeros((len(instances), width), dtype=np.int64)
        valid = np.zeros((len(instances), width), dtype=bool)
        gold = np.zeros(len(instances), dtype=np.int64)
        for i, inst in enumerate(instances):
            rows[i, : len(inst.candidates)] = [self.index[c] for c in inst.candidates]
            valid[i, : len(inst.candidates)] = True
            gold[i] = inst.gold_index
        return rows, valid, gold


class Scorer(Protocol):
    """What the evaluation needs from a model or a baseline."""

    name: str

    def supported_tasks(self) -> tuple[Task, ...]: ...

    def prepare(self, dataset, instances: Sequence[Instance], entities: EntityTable) -> None:
        """Embed (or read from the cache) every mention and entity variant."""
        ...

    def pair_scores(self, task: Task, rows: np.ndarray, entity_idx: np.ndarray) -> np.ndarray: ...

    def all_scores(self, task: Task, rows: np.ndarray) -> np.ndarray: ...


def tasks_for_modalities(modalities: Sequence[str]) -> tuple[Task, ...]:
    """The tasks a scorer that embeds only `modalities` ("T", "I") can do (TI needs both)."""
    have = set(modalities)
    usable = {Modality.T: "T" in have, Modality.I: "I" in have, Modality.TI: {"T", "I"} <= have}
    return tuple(t for t in TASKS if usable[t.mention] and usable[t.entity])


class EmbeddingScorer:
    """Cosine scores of cached mention and entity embeddings, for any `encoders.Encoder`."""

    def __init__(self, encoder, name: str, weights_id: str, modalities: Sequence[str] = ("T", "I"), batch_size: int = 64, persist_cache: bool = True) -> None:
        self.encoder = encoder
        self.name = name
        self.weights_id = weights_id
        self.modalities = tuple(modalities)
        self.batch_size = batch_size
        self.persist_cache = persist_cache
        self.mention: dict[Modality, torch.Tensor] = {}
        self.entity: dict[Modality, torch.Tensor] = {}
        self.mention_missing = torch.zeros(0, dtype=torch.bool)
        self.entity_missing = torch.zeros(0, dtype=torch.bool)
        self.cache: EmbeddingCache | None = None
        self.kb_keys: dict[Modality, torch.Tensor] = {}

    def supported_tasks(self) -> tuple[Task, ...]:
        return tasks_for_modalities(self.modalities)

    def prepare(self, dataset, instances: Sequence[Instance], entities: EntityTable) -> None:
        """Embed (or read from the cache) every mention and entity variant; fuse the TI rows."""
        self.cache = EmbeddingCache(self.encoder, self.weights_id, dataset.checksum, batch_size=self.batch_size, persist=self.persist_cache)
        self.entities = entities
        self.mention, self.entity, self.kb_keys = {}, {}, {}
        if "T" in self.modalities:
            self._put(Modality.T, self._texts("mention", [mention_text(i) for i in instances]), self._texts("entity", [entity_text(e) for e in entities.variants]))
        if "I" in self.modalities:
            mention = self._images("mention", dataset, [i.image if i.has_mention_image else None for i in instances])
            entity = self._images("entity", dataset, [e.image if e.has_image else None for e in entities.variants])
            self.mention_missing = mention[1] if mention else torch.zeros(len(instances), dtype=torch.bool)
            self.entity_missing = entity[1] if entity else torch.zeros(len(entities.variants), dtype=torch.bool)
            self._put(Modality.I, mention[0] if mention else None, entity[0] if entity else None)
        if Modality.T in self.mention and Modality.I in self.mention:
            self.mention[Modality.TI] = fuse(self.mention[Modality.T], self.mention[Modality.I])
        if Modality.T in self.entity and Modality.I in self.entity:
            self.entity[Modality.TI] = fuse(self.entity[Modality.T], self.entity[Modality.I])

    def _put(self, modality: Modality, mention: torch.Tensor | None, entity: torch.Tensor | None) -> None:
        # A side with nothing to embed (e.g. no pictures at all) has no table: no instance qualifies.
        if mention is not None:
            self.mention[modality] = mention
        if entity is not None:
            self.entity[modality] = entity

    def _texts(self, side: str, texts: list[str]) -> torch.Tensor | None:
        """Rows for every text; empty texts (which no task uses) get zero rows, not an encoding."""
        present = [i for i, text in enumerate(texts) if text]
        if not present:
            return None
        embedded = self.cache.texts(side, [texts[i] for i in present])
        out = torch.zeros(len(texts), embedded.shape[1])
        out[present] = embedded
        return out

    def _images(self, side: str, dataset, refs: list) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Rows and unusable-flags for every picture reference; absent references get zero rows."""
        present = [i for i, ref in enumerate(refs) if ref is not None]
        if not present:
            return None
        paths = [picture_path(dataset, refs[i]) for i in present]
        keys = [image_key(refs[i].local_path or refs[i].url, path) for i, path in zip(present, paths)]
        embedded, missing = self.cache.images(side, keys, paths)
        out = torch.zeros(len(refs), embedded.shape[1])
        out[present] = embedded
        flags = torch.zeros(len(refs), dtype=torch.bool)
        flags[present] = missing
        return out, flags

    def pair_scores(self, task: Task, rows: np.ndarray, entity_idx: np.ndarray) -> np.ndarray:
        queries = self.mention[task.mention][torch.as_tensor(rows)]
        keys = self.entity[task.entity][torch.as_tensor(entity_idx)]
        return torch.einsum("nd,nkd->nk", queries, keys).numpy()

    def all_scores(self, task: Task, rows: np.ndarray) -> np.ndarray:
        queries = self.mention[task.mention][torch.as_tensor(rows)]
        return (queries @ self._kb_keys(task.entity).T).numpy()

    def _kb_keys(self, modality: Modality) -> torch.Tensor:
        """The knowledge base's rows in `modality`, gathered once: the full-KB mode asks for them
        once per chunk of mentions, and at the release's size gathering them every time moved
        more memory than the scoring itself."""
        if modality not in self.kb_keys:
            self.kb_keys[modality] = self.entity[modality][torch.as_tensor(self.entities.kb_rows)].contiguous()
        return self.kb_keys[modality]

    def missing_pictures(self, task: Task, rows: np.ndarray, entity_idx: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Per row [n, 2]: whether its mention picture was unusable, how many of its candidates' were.

        Only pictures the task uses count (the mention's for I/TI mentions, the entities' for I/TI entities).
        """
        out = np.zeros((len(rows), 2), dtype=np.int64)
        if task.mention != Modality.T and len(self.mention_missing):
            out[:, 0] = self.mention_missing.numpy()[rows]
        if task.entity != Modality.T and len(self.entity_missing) and entity_idx.size:
            out[:, 1] = (self.entity_missing.numpy()[entity_idx] & valid).sum(axis=1)
        return out


def model_scorer(lm, name: str | None = None, batch_size: int = 64, persist_cache: bool = True) -> EmbeddingScorer:
    """An embedding scorer over a `models.LoadedModel` (both towers: all 9 tasks)."""
    return EmbeddingScorer(lm, name or lm.label, lm.weights_id, ("T", "I"), batch_size, persist_cache)
