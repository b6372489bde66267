"""Modality-augmented training examples: what each epoch shows, and how micro-batches are built.

Our reading of the paper's "modality-augmented training strategy" (the paper gives no more than
the name): every epoch shows each training instance once, in one (mention modality, entity
modality) pairing drawn uniformly from the pairings it qualifies for (`Instance.tasks()`, limited
to the configured `pairings`). Over the epochs one model sees all 9 tasks, so it serves them all;
the T-T-only ablation shows what the augmentation adds.

The order and the pairings of an epoch depend only on (seed, epoch): a resumed or multi-process
run sees the very same micro-batches. Texts and pictures are turned into model inputs once, into
stores (`TextStore`, `ImageStore`): pre-decoded tensors in memory for small data, or decoded by
DataLoader workers (`image_cache="stream"`) for the full release, so a step never waits on files.
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset as TorchDataset

from ..timing import timed
from ..data.schema import Entity, Instance, Modality, Task, task_by_name

MODALITY_CODE = {Modality.T: 0, Modality.I: 1, Modality.TI: 2}
TEXT_MODALITIES = (Modality.T, Modality.TI)
IMAGE_MODALITIES = (Modality.I, Modality.TI)

Inputs = Any  # a tensor, or a dict of tensors (e.g. hidden states and an attention mask)
Lookup = Callable[[Sequence[Any], int], "tuple[torch.Tensor, torch.Tensor]"]  # (keys, batch size) -> rows, missing


def mention_key(inst: Instance) -> str:
    from ..models.encoders import mention_text

    return mention_text(inst)


def entity_key(entity: Entity) -> str:
    from ..models.encoders import entity_text

    return entity_text(entity)


@dataclass(frozen=True)
class TrainExample:
    """A training instance with the pairings it may be shown in and its picture files."""

    instance: Instance
    pairings: tuple[Task, ...]
    mention_image: str | None  # resolved file path, or None
    entity_images: dict[str, str] = field(default_factory=dict)  # candidate qid -> resolved file path


def picture_file(dataset: Any, ref: Any) -> str | None:
    """The resolved file of a record's picture, or None (no picture, escapes the root, not on disk)."""
    from ..models.encoders import picture_path

    path = picture_path(dataset, ref) if ref is not None else None
    return str(path) if path is not None and Path(path).is_file() else None


def instance_pictures(dataset: Any, instances: Iterable[Instance]) -> set[str]:
    """Every picture file the instances' mentions and candidates use."""
    found = set()
    for inst in instances:
        for ref in [inst.image] + [c.image for c in inst.candidates]:
            if (path := picture_file(dataset, ref)) is not None:
                found.add(path)
    return found


def build_examples(dataset: Any, instances: Sequence[Instance], pairings: Iterable[str],
                   unusable: set[str] = frozenset()) -> list[TrainExample]:
    """The instances that qualify for at least one allowed pairing, with those pairings.

    A picture must exist on disk and decode (not in `unusable`) to count: an instance whose mention
    picture, or one of whose candidates' pictures, cannot be used drops the pairings that need it,
    as if the record had no picture (the evaluation instead scores such a picture as a zero
    embedding; training simply does not learn from it).
    """
    allowed = {task_by_name(name) for name in pairings}
    examples = []
    for inst in instances:
        mention_image = picture_file(dataset, inst.image) if inst.has_mention_image else None
        mention_image = None if mention_image in unusable else mention_image
        entity_images = {
            c.qid: p for c in inst.candidates
            if c.has_image and (p := picture_file(dataset, c.image)) is not None and p not in unusable
        }
        tasks = []
        for task in inst.tasks():
            if task not in allowed:
                continue
            if task.mention in IMAGE_MODALITIES and mention_image is None:
                continue
            if task.entity in IMAGE_MODALITIES and len(entity_images) < len(inst.candidates):
                continue
            tasks.append(task)
        if tasks:
            examples.append(TrainExample(inst, tuple(tasks), mention_image, entity_images))
    return examples


@dataclass(frozen=True)
class PlannedExample:
    """One example as an epoch shows it: which pairing, which of its candidates as hard negatives."""

    example: int  # index into the example list
    task: Task
    negatives: tuple[int, ...]  # candidate positions (gold excluded)


def epoch_plan(examples: Sequence[TrainExample], seed: int, epoch: int, hard_negatives: int) -> list[PlannedExample]:
    """The shuffled examples of `epoch`, each with its sampled pairing and hard negatives."""
    rng = random.Random(f"m3el-train:{seed}:{epoch}")  # string seeds are stable across runs
    order = list(range(len(examples)))
    rng.shuffle(order)
    planned = []
    for index in order:
        example = examples[index]
        task = example.pairings[rng.randrange(len(example.pairings))]
        gold = example.instance.gold_index
        others = [i for i in range(len(example.instance.candidates)) if i != gold]
        if 0 <= hard_negatives < len(others):
            others = sorted(rng.sample(others, hard_negatives))
        planned.append(PlannedExample(index, task, tuple(others)))
    return planned


def micro_batches(plan: Sequence[PlannedExample], batch_size: int) -> list[list[PlannedExample]]:
    """Consecutive micro-batches of the plan; a last partial one is dropped (the next epoch
    reshuffles, so no example is left out for good)."""
    full = len(plan) // batch_size
    return [list(plan[i * batch_size : (i + 1) * batch_size]) for i in range(full)]


def rank_micro_batches(step: int, accum: int, world_size: int, rank: int) -> list[int]:
    """Indices of the micro-batches that process `rank` runs in optimiser step `step`.

    Step s takes micro-batches s*A*W ... (s+1)*A*W - 1 of the epoch; process r runs a*W + r for
    a = 0..A-1. One process with grad_accum=W*A runs them all, in the same global batch.
    """
    base = step * accum * world_size
    return [base + a * world_size + rank for a in range(accum)]


# ---------------------------------------------------------------- stores of model inputs


def _rows(inputs: Inputs) -> int:
    return next(iter(inputs.values())).shape[0] if isinstance(inputs, dict) else inputs.shape[0]


def _select(inputs: Inputs, rows: torch.Tensor) -> Inputs:
    if isinstance(inputs, dict):
        return {k: v.index_select(0, rows) for k, v in inputs.items()}
    return inputs.index_select(0, rows)


def to_device(inputs: Inputs, device: str | torch.device) -> Inputs:
    return map_inputs(inputs, lambda tensor: tensor.to(device, non_blocking=True))


def map_inputs(inputs: Inputs, move: Callable[[torch.Tensor], torch.Tensor]) -> Inputs:
    """`move` applied to every tensor of `inputs` (one tensor, a dict of them, or None)."""
    if inputs is None:
        return None
    if isinstance(inputs, dict):
        return {k: move(v) for k, v in inputs.items()}
    return move(inputs)


class TextStore:
    """Every distinct text, tokenised once (and, with a frozen prefix, run through it once).

    `cache`: a file to keep the computed inputs in (see `cached`); reused when its keys match.
    `stored`: instead, read the prefix outputs from the shared store (`SuffixEncoder.text_rows`),
    which computes and keeps only the texts it has not met.
    """

    def __init__(self, texts: Iterable[str], tokenizer: Callable[[list[str]], torch.Tensor],
                 prefix: Callable[[torch.Tensor], Inputs] | None = None, chunk: int = 256,
                 cache: Path | None = None, stored: Lookup | None = None) -> None:
        self.keys = sorted(set(texts))
        self.row = {text: i for i, text in enumerate(self.keys)}
        self.from_cache = False
        if stored is not None and self.keys:
            self.inputs, _ = stored(self.keys, chunk)
            return

        def compute() -> tuple[Inputs, set[str]]:
            parts = []
            for start in range(0, len(self.keys), chunk):
                tokens = tokenizer(self.keys[start : start + chunk])
                parts.append(prefix(tokens) if prefix is not None else tokens)
            return (_concat(parts) if parts else None), set()

        self.inputs, _ = cached(cache, self.keys, compute)
        self.from_cache = cache is not None and _was_cached(cache)

    def gather(self, keys: Sequence[str]) -> Inputs:
        return _select(self.inputs, torch.tensor([self.row[k] for k in keys], dtype=torch.long))


_LOADED: set[str] = set()


def _was_cached(path: Path) -> bool:
    return str(path) in _LOADED


def cached(path: Path | None, keys: list[str], compute: Callable[[], tuple[Inputs, set[str]]]) -> tuple[Inputs, set[str]]:
    """`compute()` once per `path`: a file holding the same keys is loaded instead of recomputing.

    The path names a key of everything the inputs depend on (model weights, split, data); the
    stored key list guards against a collision or a changed set of texts/pictures.
    """
    if path is not None and path.exists():
        from .checkpoint import CheckpointError, load_tensors_file

        try:
            saved = load_tensors_file(path)
            if saved.get("keys") == keys:
                _LOADED.add(str(path))
                return saved["inputs"], set(saved["failed"])
        except (CheckpointError, KeyError, AttributeError, TypeError) as err:
            # Unreadable: rebuilt below (a stale one, with other keys, is replaced silently).
            warnings.warn(f"training cache {path} unreadable ({err}); rebuilding it", stacklevel=2)
            if not path.is_file():
                raise CheckpointError(f"{path}: the training cache path is not a regular file; remove it") from None
    inputs, failed = compute()
    if path is not None:
        from .checkpoint import atomic_torch_save

        atomic_torch_save({"keys": keys, "inputs": inputs, "failed": sorted(failed)}, path)
    return inputs, failed


def _concat(parts: list[Inputs]) -> Inputs:
    """Concatenate chunks along rows; sequences of different lengths are zero-padded on dim 1
    (zero is "padding" in an attention mask, and padded positions are masked out)."""
    if isinstance(parts[0], dict):
        return {k: _cat_padded([p[k] for p in parts]) for k in parts[0]}
    return _cat_padded(parts)


def _cat_padded(tensors: list[torch.Tensor]) -> torch.Tensor:
    if tensors[0].ndim >= 2 and len({t.shape[1] for t in tensors}) > 1:
        length = max(t.shape[1] for t in tensors)
        padded = []
        for t in tensors:
            pad = torch.zeros((t.shape[0], length - t.shape[1], *t.shape[2:]), dtype=t.dtype, device=t.device)
            padded.append(torch.cat([t, pad], dim=1))
        tensors = padded
    return torch.cat(tensors)


@timed("decode")
def load_picture(path: str, preprocess: Callable[[Any], torch.Tensor]) -> torch.Tensor | None:
    """The preprocessed picture, or None when it cannot be used (the evaluation's own reader)."""
    from ..models.encoders import load_image

    image = load_image(Path(path))
    return preprocess(image) if image is not None else None


class ImageStore:
    """Pictures as model inputs, by file path.

    mode "memory": every picture decoded once (and run through the frozen prefix, if given) into
    one tensor; mode "stream": decoded on demand (in DataLoader workers). A file that fails to
    decode becomes a zero (mean-grey after normalisation) picture and is counted in `failed`.
    `stored` (mode "memory"): read the prefix outputs from the shared store instead
    (`SuffixEncoder.picture_rows`), which computes only the pictures it has not met; a failed
    picture's row is then zero (never used: examples leave unusable pictures out).
    """

    def __init__(self, paths: Iterable[str], preprocess: Callable[[Any], torch.Tensor], mode: str = "memory",
                 prefix: Callable[[torch.Tensor], Inputs] | None = None, chunk: int = 64,
                 progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None, cache: Path | None = None,
                 stored: Lookup | None = None) -> None:
        self.keys = sorted(set(paths))
        self.row = {path: i for i, path in enumerate(self.keys)}
        self.preprocess = preprocess
        self.mode = mode
        self.failed: set[str] = set()
        self.inputs: Inputs = None
        self.from_cache = False
        if mode == "memory" and self.keys and stored is not None:
            self.inputs, missing = stored([Path(key) for key in self.keys], chunk)
            self.failed = {key for key, gone in zip(self.keys, missing.tolist()) if gone}
        elif mode == "memory" and self.keys:

            def compute() -> tuple[Inputs, set[str]]:
                from ..models.encoders import decoded_batches

                parts = []
                batches = decoded_batches(self.keys, preprocess, chunk)
                for positions, pixels, unusable in progress(batches) if progress else batches:
                    self.failed.update(self.keys[i] for i in unusable)
                    pixels = self._with_blanks(positions, pixels, unusable)
                    parts.append(prefix(pixels) if prefix is not None else pixels)
                return _concat(parts), self.failed

            self.inputs, self.failed = cached(cache, self.keys, compute)
            self.from_cache = cache is not None and _was_cached(cache)

    def _decode(self, path: str) -> torch.Tensor:
        picture = load_picture(path, self.preprocess)
        if picture is None:
            self.failed.add(path)
            picture = self._blank()
        return picture

    def _with_blanks(self, positions: list[int], pixels: torch.Tensor | None, unusable: list[int]) -> torch.Tensor:
        """One decoded batch with a blank picture at each unusable position, in key order."""
        if not unusable:
            return pixels
        start = min(positions + unusable)
        batch = self._blank().unsqueeze(0).repeat(len(positions) + len(unusable), 1, 1, 1)
        if pixels is not None:
            batch[[i - start for i in positions]] = pixels
        return batch

    def _blank(self) -> torch.Tensor:
        from PIL import Image

        return torch.zeros_like(self.preprocess(Image.new("RGB", (8, 8))))

    def gather(self, paths: Sequence[str]) -> Inputs:
        if self.mode == "memory":
            return _select(self.inputs, torch.tensor([self.row[p] for p in paths], dtype=torch.long))
        return torch.stack([self._decode(p) for p in paths])


# ---------------------------------------------------------------- micro-batches


@dataclass
class MicroBatch:
    """What one process encodes for one loss term.

    Mentions are rows 0..B-1; the entity pool holds every gold and every hard negative of the
    micro-batch once (by id), so an entity that is one example's gold is a negative of the others.
    `*_row` maps a mention (or pool entity) to its row in the matching inputs, -1 when it needs none
    (or, for entity pictures, has none).
    """

    mention_modality: torch.Tensor  # [B] codes of MODALITY_CODE
    entity_modality: torch.Tensor  # [B]
    targets: torch.Tensor  # [B] pool index of each gold
    mention_text: Inputs
    mention_text_row: torch.Tensor  # [B]
    mention_image: Inputs
    mention_image_row: torch.Tensor  # [B]
    entity_text: Inputs
    entity_text_row: torch.Tensor  # [P]
    entity_image: Inputs
    entity_image_row: torch.Tensor  # [P]
    instance_ids: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.targets.shape[0])

    @property
    def pool_size(self) -> int:
        return int(self.entity_text_row.shape[0])

    @property
    def pictures(self) -> int:
        """Pictures this micro-batch makes the model encode (mentions' and pool entities')."""
        return sum(0 if inputs is None else int(_rows(inputs)) for inputs in (self.mention_image, self.entity_image))

    def to(self, device: str | torch.device) -> "MicroBatch":
        return self._map(lambda tensor: tensor.to(device, non_blocking=True))

    def pin_memory(self) -> "MicroBatch":
        """Page-locked copies (DataLoader's pin_memory calls this): the copy to a GPU then runs
        asynchronously instead of stalling the step."""
        return self._map(torch.Tensor.pin_memory)

    def _map(self, move: Callable[[torch.Tensor], torch.Tensor]) -> "MicroBatch":
        moved = {}
        for name, value in self.__dict__.items():
            moved[name] = value if name == "instance_ids" else map_inputs(value, move)
        return MicroBatch(**moved)


def collate(planned: Sequence[PlannedExample], examples: Sequence[TrainExample],
            texts: TextStore, images: ImageStore, both_entity_views: bool = False) -> MicroBatch:
    """Build the micro-batch of `planned` examples (see MicroBatch).

    both_entity_views: encode every pool entity by text and (when it has one) by picture, whatever
    the rows need (for the entity-view alignment term of the loss).
    """
    pool: dict[str, int] = {}
    pool_entities: list[tuple[Entity, TrainExample]] = []

    def add(entity: Entity, example: TrainExample) -> int:
        if entity.qid not in pool:
            pool[entity.qid] = len(pool_entities)
            pool_entities.append((entity, example))
        return pool[entity.qid]

    targets = [add(examples[p.example].instance.gold, examples[p.example]) for p in planned]
    for p in planned:
        example = examples[p.example]
        for position in p.negatives:
            add(example.instance.candidates[position], example)

    mention_texts, mention_text_row, mention_images, mention_image_row = [], [], [], []
    for p in planned:
        example = examples[p.example]
        if p.task.mention in TEXT_MODALITIES:
            mention_text_row.append(len(mention_texts))
            mention_texts.append(mention_key(example.instance))
        else:
            mention_text_row.append(-1)
        if p.task.mention in IMAGE_MODALITIES:
            mention_image_row.append(len(mention_images))
            mention_images.append(example.mention_image)
        else:
            mention_image_row.append(-1)

    need_entity_text = both_entity_views or any(p.task.entity in TEXT_MODALITIES for p in planned)
    need_entity_image = both_entity_views or any(p.task.entity in IMAGE_MODALITIES for p in planned)
    entity_texts = [entity_key(e) for e, _ in pool_entities] if need_entity_text else []
    entity_text_row = list(range(len(entity_texts))) if need_entity_text else [-1] * len(pool_entities)
    entity_images, entity_image_row = [], []
    for entity, example in pool_entities:
        path = example.entity_images.get(entity.qid) if need_entity_image else None
        entity_image_row.append(len(entity_images) if path else -1)
        if path:
            entity_images.append(path)

    def long(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long)

    return MicroBatch(
        mention_modality=long([MODALITY_CODE[p.task.mention] for p in planned]),
        entity_modality=long([MODALITY_CODE[p.task.entity] for p in planned]),
        targets=long(targets),
        mention_text=texts.gather(mention_texts) if mention_texts else None,
        mention_text_row=long(mention_text_row),
        mention_image=images.gather(mention_images) if mention_images else None,
        mention_image_row=long(mention_image_row),
        entity_text=texts.gather(entity_texts) if entity_texts else None,
        entity_text_row=long(entity_text_row),
        entity_image=images.gather(entity_images) if entity_images else None,
        entity_image_row=long(entity_image_row),
        instance_ids=[examples[p.example].instance.instance_id for p in planned],
    )


class MicroBatchDataset(TorchDataset):
    """A list of planned micro-batches as a map-style dataset (one item = one micro-batch)."""

    def __init__(self, batches: Sequence[Sequence[PlannedExample]], examples: Sequence[TrainExample],
                 texts: TextStore, images: ImageStore, both_entity_views: bool = False) -> None:
        self.batches, self.examples, self.texts, self.images = list(batches), examples, texts, images
        self.both_entity_views = both_entity_views

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> MicroBatch:
        return collate(self.batches[index], self.examples, self.texts, self.images, self.both_entity_views)


def batch_loader(dataset: MicroBatchDataset, num_workers: int, pin_memory: bool = False) -> Iterable[MicroBatch]:
    """Micro-batches in order; with workers they are built (pictures decoded) ahead of the step,
    and with `pin_memory` (for a CUDA device) handed over page-locked."""
    if num_workers <= 0:
        return (dataset[i] for i in range(len(dataset)))
    # Its own generator: otherwise creating the loader draws worker seeds from the global RNG,
    # and a resumed run (which creates one mid-epoch) would drift from an uninterrupted one.
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_identity,
                      prefetch_factor=4, persistent_workers=False, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(0))


def _identity(item: MicroBatch) -> MicroBatch:
    return item
