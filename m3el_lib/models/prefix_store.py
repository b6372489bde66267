"""Stored outputs of a tower's frozen prefix, shared by every model that has the same prefix.

A picture's output at a cut of the image tower depends only on the weights before the cut, the
cut and the transform. The store is therefore named by a hash of exactly those (`frozen_digest`),
not by any model's name: the EfficientNet-Lite0 baseline (the bare ImageNet trunk), the sample
model before and after pretraining, CLIP_ND and its ablations all freeze the same trunk before
its last stage, so each picture is decoded and run through that trunk once, by whichever of them
meets it first (chapter 4 for the test pictures, chapter 5's training store for the rest), and
every later model runs only its own part after the cut.

`PicturePrefixes` is the whole-list interface the encoders use; `training.suffix_encoder` builds
fine-tuned checkpoints' encoders on it, `evaluation.baselines` the EfficientNet baseline's.
"""
from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .. import config as paths
from ..fsutil import atomic_write_bytes
from ..timing import stage
from .embedding_cache import KeyedRows, image_key

log = logging.getLogger(__name__)


class PrefixTable:
    """Prefix outputs by key (one tensor row each; `missing` rows are unusable pictures), in one file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.table = KeyedRows()
        if path is not None and path.is_file():
            from ..training.checkpoint import CheckpointError, load_tensors_file

            try:
                saved = load_tensors_file(path)
                self.table.add(list(saved["keys"]), saved["rows"], saved["missing"].bool())
            except (CheckpointError, KeyError, TypeError) as err:
                log.warning("prefix store %s unreadable (%s); it will be rebuilt", path, err)
                self.table = KeyedRows()

    @property
    def keys(self) -> list[str]:
        return self.table.keys

    def held(self, keys: Sequence[str]) -> int:
        """How many of `keys` are stored already."""
        return len(set(keys)) - len(set(self.table.unseen(list(keys))))

    def lookup(self, keys: Sequence[str], compute: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows and missing mask of `keys`; unseen keys are computed (`compute(new) -> rows, missing`) and saved."""
        new = self.table.unseen(keys)
        if new:
            self.table.add(new, *compute(new))
            self.save()
        return self.table.rows(keys)

    def save(self) -> None:
        if self.path is None:
            return
        buffer = io.BytesIO()
        torch.save({"keys": self.table.keys, "rows": self.table.embeddings, "missing": self.table.missing}, buffer)
        atomic_write_bytes(self.path, buffer.getvalue())


def frozen_digest(tower: nn.Module, trainable_modules: Sequence[Any], salt: str) -> str:
    """sha256 of a tower's frozen weights and buffers (everything outside `trainable_modules`)
    and `salt` (the cut, the transform): what the prefix outputs depend on."""
    trainable: set[int] = set()
    for part in trainable_modules:
        tensors = list(part.parameters()) + list(part.buffers()) if isinstance(part, nn.Module) else [part]
        trainable.update(id(t) for t in tensors)
    digest = hashlib.sha256(salt.encode() + b"\0")
    for name, tensor in list(tower.named_parameters()) + list(tower.named_buffers()):
        if id(tensor) in trainable:
            continue
        digest.update(name.encode() + b"\0")
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def default_store_root() -> Path:
    return paths.cache_dir() / "prefix"


def picture_table(cut: Any, preprocess: Any, root: Path | None = None) -> PrefixTable:
    """The store of picture prefixes at `cut` (an image `Split` or `TrunkCut`: `frozen_tower`,
    `kind`, `blocks`, `trainable_modules`) under `preprocess`, named by the frozen weights."""
    return PrefixTable((root or default_store_root()) / f"image-{image_digest(cut, preprocess)[:32]}.pt")


def image_digest(cut: Any, preprocess: Any) -> str:
    """What a picture's prefix output at `cut` depends on: the frozen weights and the transform."""
    return frozen_digest(cut.frozen_tower, cut.trainable_modules(), f"image|{cut.kind}|{cut.blocks}|{preprocess!r}")


def text_digest(model: nn.Module, text_split: Any) -> str:
    """What a text's prefix output at `text_split` depends on: the text tower's frozen weights
    (every part of `model` but its `visual` tower) and the cut."""
    tower = nn.ModuleList([m for n, m in model.named_children() if n != "visual"])
    return frozen_digest(tower, text_split.trainable_modules(), f"text|{type(text_split).__name__}|{text_split.blocks}")


class PicturePrefixes:
    """Pictures' prefix outputs at one cut: read from the store, or decoded, run and stored."""

    def __init__(self, table: PrefixTable, prefix: Callable[[torch.Tensor], torch.Tensor], tower: nn.Module,
                 preprocess: Any, device: str = "cpu") -> None:
        self.table, self.prefix, self.tower, self.preprocess, self.device = table, prefix, tower, preprocess, device

    def held(self, files: Sequence[Path | None]) -> int:
        """How many of `files` are stored already (as they are now on disk)."""
        return self.table.held([image_key(str(path), path) for path in files])

    def rows(self, files: Sequence[Path | None], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix outputs of `files` (zero rows for unusable pictures) and the missing mask, in order."""
        keys = [image_key(str(path), path) for path in files]
        path_of = dict(zip(keys, files))
        return self.table.lookup(keys, lambda new: self._compute([path_of[key] for key in new], batch_size))

    @torch.no_grad()
    def embed(self, files: Sequence[Path | None], batch_size: int, suffix: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """`suffix` of the stored prefix outputs of `files` (zero rows for unusable pictures), and the missing mask."""
        rows, missing = self.rows(files, batch_size)
        with stage("encode"):
            embedded = torch.cat([self.run(suffix, rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)])
        embedded[missing] = 0.0
        return embedded, missing

    def run(self, part: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """A part of the image tower, laid out as the whole tower runs (`loading.run_image_tower`)."""
        from .loading import run_image_tower

        return run_image_tower(self.tower, part, inputs, self.device)

    def _compute(self, files: list[Path | None], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        from .encoders import decoded_batches

        missing = torch.zeros(len(files), dtype=torch.bool)
        found: dict[int, torch.Tensor] = {}
        for positions, pixels, unusable in decoded_batches(files, self.preprocess, batch_size):
            missing[unusable] = True
            if pixels is not None:
                with stage("encode"):
                    found.update(zip(positions, self.run(self.prefix, pixels)))
        if not found:  # nothing usable: one blank picture gives the rows' shape
            from PIL import Image

            found[-1] = self.run(self.prefix, self.preprocess(Image.new("RGB", (8, 8))).unsqueeze(0))[0]
        zero = torch.zeros_like(next(iter(found.values())))
        return torch.stack([found.get(i, zero) for i in range(len(files))]), missing
