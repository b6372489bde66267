"""Modality encoders: what text a mention or entity is, how pictures are read, batched embedding.

T inputs: a mention is its sentence; an entity is its name and description ("name: description").
I inputs: the picture file (resolved by `Dataset.image_path`, never outside the data root).
TI: `m3el_lib.models.fusion.fuse` of the T and I embeddings (the L2-normalised sum; see that module).

The missing-picture policy (one policy for every model and baseline): a picture whose file is
missing, unreadable, outside the data root or not decodable gets a ZERO embedding and is flagged
in the returned `missing` mask (the evaluation counts these per task). Consequences, by design:
- I mention with a zero embedding: every candidate scores exactly 0, a full tie, so under the
  evaluation's tie rule (expected rank over random tie-breaking) the mention scores chance.
- I candidate with a zero embedding: it scores 0 against any mention, i.e. neither similar nor
  dissimilar: it ranks by chance among other unreadable ones.
- TI: `fuse(text, 0)` is the text embedding alone, so a TI side without its picture falls back
  to its text (still counted as missing).
Instances whose record has no picture at all do not qualify for I/TI tasks (`Instance.tasks`);
this policy is only for pictures a record names but that cannot be used.

Any object with `encode_text_batch(list[str])`, `encode_image_batch(Tensor)`, `preprocess`, and
`device` can be encoded (a `LoadedModel`, or a baseline's single-tower encoder). An encoder that
embeds whole lists itself (`encode_texts(texts, batch_size)`, `encode_images(paths, batch_size)`,
raw embeddings) is handed the whole list: `m3el_lib.training.suffix_encoder` reads stored
frozen-prefix outputs that way.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import torch
import torch.nn.functional as F

from ..data.schema import Entity, Instance
from ..timing import stage, timed

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64


class Encoder(Protocol):
    """What the encoding functions need from a model: batched raw embeddings and an image transform."""

    def encode_text_batch(self, texts: list[str]) -> torch.Tensor: ...

    def encode_image_batch(self, pixels: torch.Tensor) -> torch.Tensor: ...

    preprocess: Callable


def mention_text(inst: Instance) -> str:
    """The T input of a mention: its sentence."""
    return inst.sentence.strip()


def entity_text(entity: Entity) -> str:
    """The T input of an entity: its name and description."""
    name, description = entity.name.strip(), entity.description.strip()
    if name and description:
        return f"{name}: {description}"
    return name or description


@torch.no_grad()
@timed('encode')
def encode_texts(lm: Encoder, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """L2-normalised text embeddings [N, D] (float32, CPU), in the order given.

    Texts are batched shortest first: a batch is padded to its longest text, so batches of
    similar lengths spend far less time on padding (which never changes a text's embedding)."""
    if not texts:
        raise ValueError("encode_texts needs at least one text")
    with _eval_mode(lm):
        if hasattr(type(lm), "encode_texts"):
            embedded = in_length_order(texts, lambda ordered: lm.encode_texts(ordered, batch_size))
        else:
            embedded = in_length_order(texts, lambda ordered: torch.cat(
                [lm.encode_text_batch(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size)]))
    return F.normalize(embedded.float(), dim=-1)


def in_length_order(texts: Sequence[str], embed: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
    """`embed` of `texts` sorted by length (one row per text), rows put back in the given order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    embedded = embed([texts[i] for i in order])
    restored = torch.empty_like(embedded)
    restored[torch.tensor(order, dtype=torch.long)] = embedded
    return restored


def load_image(path: Path | None):
    """The picture at `path` as RGB PIL image, or None when missing or unusable (`data.images`)."""
    from ..data.images import open_picture

    return open_picture(path)


@torch.no_grad()
def encode_images(
    lm: Encoder, paths: Sequence[Path | None], batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised image embeddings [N, D] and a bool mask [N] of unusable pictures (zero rows)."""
    if not paths:
        raise ValueError("encode_images needs at least one path")
    with _eval_mode(lm):
        if hasattr(type(lm), "encode_images"):
            embedded, missing = lm.encode_images(list(paths), batch_size)
            return F.normalize(embedded.float(), dim=-1), missing
        return _encode_images(lm, paths, batch_size)


def _encode_images(lm: Encoder, paths: Sequence[Path | None], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows: list[torch.Tensor | None] = [None] * len(paths)
    missing = torch.zeros(len(paths), dtype=torch.bool)
    for positions, pixels, unusable in decoded_batches(paths, lm.preprocess, batch_size):
        missing[unusable] = True
        if pixels is not None:
            with stage("encode"):
                embedded = F.normalize(lm.encode_image_batch(pixels).float(), dim=-1)
            for row, position in zip(embedded, positions):
                rows[position] = row
    dim = _image_dim(lm, rows)
    zero = torch.zeros(dim)
    return torch.stack([row if row is not None else zero for row in rows]), missing


def decode_workers() -> int:
    """Processes that decode pictures while the model encodes: one per core, at most 4. They stop
    two batches ahead of the model, so a model that is the slower side keeps its cores."""
    return max(1, min(4, os.cpu_count() or 1))


class _Pictures(torch.utils.data.Dataset):
    def __init__(self, items: Sequence[Any], open_item: Callable[[Any], Any], preprocess: Callable) -> None:
        self.items, self.open_item, self.preprocess = items, open_item, preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None]:
        image = self.open_item(self.items[index])
        return index, (self.preprocess(image) if image is not None else None)


def _collate(found: list[tuple[int, torch.Tensor | None]]) -> tuple[list[int], torch.Tensor | None, list[int]]:
    usable = [(i, pixels) for i, pixels in found if pixels is not None]
    pixels = torch.stack([p for _, p in usable]) if usable else None
    return [i for i, _ in usable], pixels, [i for i, p in found if p is None]


def decoded_batches(
    items: Sequence[Any], preprocess: Callable, batch_size: int = DEFAULT_BATCH_SIZE,
    open_item: Callable[[Any], Any] | None = None, workers: int | None = None,
) -> Iterator[tuple[list[int], torch.Tensor | None, list[int]]]:
    """Pictures decoded and preprocessed ahead, in DataLoader workers, batch by batch in order:
    (positions of the usable ones, their pixels [n, 3, H, W] or None, positions of unusable ones).

    `open_item` turns an item into a PIL picture or None (default: `load_image` of a path). Small
    tensor operations in the main process pay for the model's thread pool (several ms a picture
    on 2 busy cores); a worker runs them on one thread while the model encodes the last batch.
    Time waiting for a batch counts as "decode".
    """
    open_item = open_item or (lambda path: load_image(path))
    workers = decode_workers() if workers is None else workers
    if len(items) <= batch_size:
        workers = 0
    loader = torch.utils.data.DataLoader(
        _Pictures(items, open_item, preprocess), batch_size=batch_size, num_workers=workers, collate_fn=_collate,
        prefetch_factor=2 if workers else None,
    )
    batches = iter(loader)
    while True:
        with stage("decode"):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _image_dim(lm: Encoder, rows: list[torch.Tensor | None]) -> int:
    for row in rows:
        if row is not None:
            return int(row.shape[0])
    # Every picture unusable: still return zero rows of the right width, found with a blank picture.
    from PIL import Image

    blank = lm.preprocess(Image.new("RGB", (32, 32)))
    return int(lm.encode_image_batch(blank.unsqueeze(0)).shape[1])


@contextlib.contextmanager
def _eval_mode(lm: Encoder) -> Iterator[None]:
    """Embed in eval mode (no dropout, frozen batch-norm) and give the caller's mode back after."""
    model = getattr(lm, "model", None)
    if not isinstance(model, torch.nn.Module):
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def picture_path(dataset, ref) -> Path | None:
    """The file of a record's picture via `Dataset.image_path`; a path escaping the root counts as missing."""
    from ..data.io import DatasetError

    try:
        return dataset.image_path(ref)
    except DatasetError as err:
        log.warning("%s", err)
        return None
