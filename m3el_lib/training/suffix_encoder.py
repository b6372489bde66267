"""Evaluate a fine-tuned checkpoint by running only what training changed.

A run that trained the last blocks of each tower (`trainable="last"`, `precompute_frozen`) left
every earlier layer as it found it. Its checkpoint therefore maps a picture (or text) to the same
frozen-prefix output as the model it started from, and as every other run cut at the same place
from the same start. `SuffixEncoder` keeps those prefix outputs on disk, keyed by a hash of the
frozen weights themselves (not of the checkpoint), so evaluating CLIP_ND and its ablations decodes
each test picture and runs each tower's prefix once; every checkpoint then runs only its suffix.
Scores equal the whole towers' (tests/test_suffix_encoder.py).

The embedding functions of `m3el_lib.models.encoders` call `encode_texts` / `encode_images` on an
encoder that has them, with whole lists, so the store is read and written once per call.
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
from ..models.embedding_cache import KeyedRows, image_key
from ..timing import stage
from .config import TrainConfig
from .towers import Split, set_trainable

log = logging.getLogger(__name__)


class PrefixTable:
    """Prefix outputs by key (one tensor row each; `missing` rows are unusable pictures), in one file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.table = KeyedRows()
        if path is not None and path.is_file():
            from .checkpoint import CheckpointError, load_tensors_file

            try:
                saved = load_tensors_file(path)
                self.table.add(list(saved["keys"]), saved["rows"], saved["missing"].bool())
            except (CheckpointError, KeyError, TypeError) as err:
                log.warning("prefix store %s unreadable (%s); it will be rebuilt", path, err)
                self.table = KeyedRows()

    @property
    def keys(self) -> list[str]:
        return self.table.keys

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


def frozen_digest(tower: nn.Module, split: Split, salt: str) -> str:
    """sha256 of a tower's frozen weights and buffers (everything outside the split's trainable
    modules) and `salt` (the cut, the transform): what the prefix outputs depend on."""
    trainable: set[int] = set()
    for part in split.trainable_modules():
        tensors = list(part.parameters()) + list(part.buffers()) if isinstance(part, nn.Module) else [part]
        trainable.update(id(t) for t in tensors)
    digest = hashlib.sha256(salt.encode() + b"\0")
    for name, tensor in list(tower.named_parameters()) + list(tower.named_buffers()):
        if id(tensor) in trainable:
            continue
        digest.update(name.encode() + b"\0")
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class SuffixEncoder:
    """A fine-tuned checkpoint (a `LoadedModel`) that embeds through stored frozen-prefix outputs.

    Behaves as the `LoadedModel` it wraps (name, weights id, transform), so results and the
    embedding cache are keyed exactly as for the whole towers. A tower whose prefix output is not
    one tensor per item (a text tower cut inside its layers) runs whole.
    """

    def __init__(self, loaded: Any, run_config: TrainConfig, store_root: Path | None = None, persist: bool = True) -> None:
        if run_config.trainable == "all" or not run_config.precompute_frozen:
            raise ValueError("SuffixEncoder needs a run that froze a prefix (trainable 'last' or 'heads', precompute_frozen)")
        self.loaded = loaded
        text_blocks = None if run_config.unlocked_text_blocks < 0 else run_config.unlocked_text_blocks
        self.image_split, self.text_split = set_trainable(loaded.model, run_config.trainable, run_config.unlocked_blocks, text_blocks)
        root = store_root or default_store_root()
        text_salt = f"text|{type(self.text_split).__name__}|{self.text_split.blocks}"
        text_tower = nn.ModuleList([m for n, m in loaded.model.named_children() if n != "visual"])
        self.image_table = image_prefix_table(loaded, self.image_split, root) if persist else PrefixTable(None)
        self.text_table = PrefixTable(root / f"text-{frozen_digest(text_tower, self.text_split, text_salt)[:32]}.pt" if persist else None)

    def __getattr__(self, name: str) -> Any:  # name, weights_id, preprocess, tokenizer, device, model, ...
        return getattr(self.loaded, name)

    # ------------------------------------------------------------ the whole-list interface

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int) -> torch.Tensor:
        """Raw text embeddings [N, D] of `texts`."""
        if self.text_split.blocks > 0:  # prefix outputs of different lengths: run the tower whole
            return torch.cat([self.loaded.encode_text_batch(list(texts[i : i + batch_size]))
                              for i in range(0, len(texts), batch_size)])

        def compute(new: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            with stage("encode"):
                rows = torch.cat([self.text_split.prefix(self.loaded.tokenizer(new[i : i + batch_size]).to(self.loaded.device)).float().cpu()
                                  for i in range(0, len(new), batch_size)])
            return rows, torch.zeros(len(new), dtype=torch.bool)

        rows, _ = self.text_table.lookup(list(texts), compute)
        with stage("encode"):
            return torch.cat([self.text_split.suffix(rows[i : i + batch_size].to(self.loaded.device)).float().cpu()
                              for i in range(0, len(rows), batch_size)])

    @torch.no_grad()
    def encode_images(self, paths_: Sequence[Path | None], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw image embeddings [N, D] (zero rows for unusable pictures) and the missing mask [N]."""
        keys = [image_key(str(path), path) for path in paths_]
        path_of = dict(zip(keys, paths_))

        def compute(new: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            return self._image_prefixes([path_of[key] for key in new], batch_size)

        rows, missing = self.image_table.lookup(keys, compute)
        with stage("encode"):
            embedded = torch.cat([self._image_tower(self.image_split.suffix, rows[i : i + batch_size])
                                  for i in range(0, len(rows), batch_size)])
        embedded[missing] = 0.0
        return embedded, missing

    def _image_prefixes(self, files: list[Path | None], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix outputs of `files` (zero rows for unusable pictures) and the missing mask."""
        from ..models.encoders import decoded_batches

        missing = torch.zeros(len(files), dtype=torch.bool)
        found: dict[int, torch.Tensor] = {}
        for positions, pixels, unusable in decoded_batches(files, self.loaded.preprocess, batch_size):
            missing[unusable] = True
            if pixels is not None:
                with stage("encode"):
                    found.update(zip(positions, self._image_tower(self.image_split.prefix, pixels)))
        if not found:  # nothing usable: one blank picture gives the rows' shape
            from PIL import Image

            blank = self.loaded.preprocess(Image.new("RGB", (8, 8))).unsqueeze(0)
            found[-1] = self._image_tower(self.image_split.prefix, blank)[0]
        zero = torch.zeros_like(next(iter(found.values())))
        return torch.stack([found.get(i, zero) for i in range(len(files))]), missing

    def _image_tower(self, part: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """A part of the image tower, laid out as the whole tower runs (`loading.run_image_tower`)."""
        from ..models.loading import run_image_tower

        return run_image_tower(self.loaded.model.visual, part, inputs, self.loaded.device)


def default_store_root() -> Path:
    return paths.cache_dir() / "prefix"


def image_prefix_table(loaded: Any, image_split: Split, root: Path | None = None) -> PrefixTable:
    """The store of `loaded`'s picture prefixes at this cut: named by the frozen weights, so a
    training run (before its first step) and every checkpoint it writes share it."""
    salt = f"image|{type(image_split).__name__}|{image_split.blocks}|{loaded.preprocess!r}"
    digest = frozen_digest(loaded.model.visual, image_split, salt)
    return PrefixTable((root or default_store_root()) / f"image-{digest[:32]}.pt")


def share_training_prefixes(loaded: Any, image_split: Split, keys: Sequence[str], rows: torch.Tensor, failed: set[str]) -> int:
    """Add a training run's stored picture prefixes (computed as evaluation computes them) to the
    evaluation's store, so evaluating its checkpoints runs no picture the run already did; the
    number of pictures added."""
    table = image_prefix_table(loaded, image_split)
    by_key = {image_key(path, Path(path)): i for i, path in enumerate(keys)}
    new = table.table.unseen(list(by_key))
    if new:
        index = torch.tensor([by_key[key] for key in new], dtype=torch.long)
        missing = torch.tensor([keys[by_key[key]] in failed for key in new], dtype=torch.bool)
        rows = rows[index].clone()
        rows[missing] = 0.0  # as the evaluation stores unusable pictures
        table.table.add(new, rows, missing)
        table.save()
    return len(new)


def evaluation_encoder(loaded: Any, run_config: TrainConfig | None) -> Any:
    """The encoder to evaluate `loaded` with: a `SuffixEncoder` when its run froze a prefix, else `loaded`."""
    if run_config is None or run_config.trainable == "all" or not run_config.precompute_frozen:
        return loaded
    return SuffixEncoder(loaded, run_config)
