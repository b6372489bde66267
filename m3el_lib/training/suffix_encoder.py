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

from pathlib import Path
from typing import Any, Sequence

import torch

from ..models.encoders import in_length_order
from ..models.prefix_store import PicturePrefixes, PrefixTable, default_store_root, picture_table, text_digest
from ..timing import stage
from .config import TrainConfig
from .towers import set_trainable


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
        # named by the frozen weights: a training run (before its first step) and every checkpoint it writes share it
        image_table = picture_table(self.image_split, loaded.preprocess, root) if persist else PrefixTable(None)
        self.pictures = PicturePrefixes(image_table, self.image_split.prefix, loaded.model.visual, loaded.preprocess, loaded.device)
        self.text_table = PrefixTable(root / f"text-{text_digest(loaded.model, self.text_split)[:32]}.pt" if persist else None)

    def __getattr__(self, name: str) -> Any:  # name, weights_id, preprocess, tokenizer, device, model, ...
        return getattr(self.loaded, name)

    @property
    def image_table(self) -> PrefixTable:
        return self.pictures.table

    @property
    def texts_stored(self) -> bool:
        """Whether text prefix outputs are one row per text (a tower cut after its last layer)."""
        return self.text_split.blocks == 0

    def text_rows(self, texts: Sequence[str], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Stored text prefix outputs of `texts` (computed and stored when new), and a missing mask (all False)."""
        if not self.texts_stored:
            raise ValueError("text prefixes cut inside the tower are not stored")

        def prefixes(ordered: list[str]) -> torch.Tensor:
            return torch.cat([self.text_split.prefix(self.loaded.tokenizer(ordered[i : i + batch_size]).to(self.loaded.device)).float().cpu()
                              for i in range(0, len(ordered), batch_size)])

        def compute(new: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            with stage("encode"):
                rows = in_length_order(new, prefixes)
            return rows, torch.zeros(len(new), dtype=torch.bool)

        return self.text_table.lookup(list(texts), compute)

    def picture_rows(self, files: Sequence[Path | None], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Stored picture prefix outputs of `files` (computed and stored when new) and the missing mask."""
        return self.pictures.rows(files, batch_size)

    # ------------------------------------------------------------ the whole-list interface

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int) -> torch.Tensor:
        """Raw text embeddings [N, D] of `texts`."""
        if not self.texts_stored:  # prefix outputs of different lengths: run the tower whole
            return torch.cat([self.loaded.encode_text_batch(list(texts[i : i + batch_size]))
                              for i in range(0, len(texts), batch_size)])
        rows, _ = self.text_rows(texts, batch_size)
        with stage("encode"):
            return torch.cat([self.text_split.suffix(rows[i : i + batch_size].to(self.loaded.device)).float().cpu()
                              for i in range(0, len(rows), batch_size)])

    @torch.no_grad()
    def encode_images(self, paths_: Sequence[Path | None], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw image embeddings [N, D] (zero rows for unusable pictures) and the missing mask [N]."""
        return self.pictures.embed(paths_, batch_size, self.image_split.suffix)


def evaluation_encoder(loaded: Any, run_config: TrainConfig | None) -> Any:
    """The encoder to evaluate `loaded` with: a `SuffixEncoder` when its run froze a prefix, else `loaded`."""
    if run_config is None or run_config.trainable == "all" or not run_config.precompute_frozen:
        return loaded
    return SuffixEncoder(loaded, run_config)
