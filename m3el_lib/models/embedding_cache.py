"""On-disk cache of mention and entity embeddings, so each text and picture is encoded once.

One file per (model weights hash, data checksum, side, modality):

    config.cache_dir()/embeddings/<weights_id>/<data_checksum>/<side>-<modality>.pt

holding `keys` (the input: the text itself, or `local_path|size|mtime_ns` of a picture, so a
picture replaced on disk is encoded again), `embeddings` (float32 [N, D], L2-normalised) and
`missing` (bool [N]: pictures that could not be used and got the zero embedding, see
`m3el_lib.models.encoders`). Asking for keys that are not there yet encodes only those and rewrites the
file atomically; a file that cannot be read is ignored and rebuilt (it is only a cache).
"""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .. import config
from .encoders import DEFAULT_BATCH_SIZE, Encoder, encode_images, encode_texts
from ..fsutil import atomic_write_bytes

log = logging.getLogger(__name__)

SIDES = ("mention", "entity")
CACHED_MODALITIES = ("T", "I")  # TI is fused from these on the fly (m3el_lib.models.fusion)
ID_LENGTH = 24  # hex characters of each hash kept in folder names


def cache_root() -> Path:
    return config.cache_dir() / "embeddings"


def image_key(local_path: str, path: Path | None) -> str:
    """The cache key of a picture: its path in the record plus the file's size and mtime."""
    if path is None:
        return f"{local_path}|unresolved"
    try:
        stat = path.stat()
    except OSError:
        return f"{local_path}|absent"
    return f"{local_path}|{stat.st_size}|{stat.st_mtime_ns}"


@dataclass
class KeyedRows:
    """Tensor rows by key, each with a missing flag: appended once, read back in any order."""

    keys: list[str] = field(default_factory=list)
    embeddings: torch.Tensor | None = None
    missing: torch.Tensor | None = None
    index: dict[str, int] = field(default_factory=dict)

    def add(self, keys: list[str], embeddings: torch.Tensor, missing: torch.Tensor) -> None:
        start = len(self.keys)
        self.keys.extend(keys)
        self.index.update({key: start + i for i, key in enumerate(keys)})
        self.embeddings = embeddings if self.embeddings is None else torch.cat([self.embeddings, embeddings])
        self.missing = missing if self.missing is None else torch.cat([self.missing, missing])

    def unseen(self, keys: Sequence[str]) -> list[str]:
        """Keys not held yet, each once, in first-seen order."""
        return list(dict.fromkeys(key for key in keys if key not in self.index))

    def rows(self, keys: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows and missing flags of `keys` (all held), in their order."""
        assert self.embeddings is not None and self.missing is not None
        index = torch.tensor([self.index[key] for key in keys], dtype=torch.long)
        return self.embeddings[index], self.missing[index]


class EmbeddingCache:
    """Embeddings of one encoder over one dataset, computed on demand and kept on disk."""

    def __init__(
        self,
        encoder: Encoder,
        weights_id: str,
        data_checksum: str,
        root: Path | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        persist: bool = True,
    ) -> None:
        if not weights_id or not data_checksum:
            raise ValueError("EmbeddingCache needs a weights id and a data checksum")
        self.encoder = encoder
        self.folder = (root or cache_root()) / weights_id[:ID_LENGTH] / data_checksum[:ID_LENGTH]
        self.batch_size = batch_size
        self.persist = persist
        self.tables: dict[tuple[str, str], KeyedRows] = {}
        self.encoded = {modality: 0 for modality in CACHED_MODALITIES}  # items encoded afresh
        self.seconds = {modality: 0.0 for modality in CACHED_MODALITIES}  # time spent encoding them

    def path(self, side: str, modality: str) -> Path:
        if side not in SIDES or modality not in CACHED_MODALITIES:
            raise ValueError(f"no cache for side={side!r}, modality={modality!r}")
        return self.folder / f"{side}-{modality}.pt"

    def texts(self, side: str, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings [N, D] of `texts` (each encoded at most once, ever)."""
        table = self._table(side, "T")
        new = table.unseen(texts)
        if new:
            start = time.perf_counter()
            table.add(new, encode_texts(self.encoder, new, self.batch_size), torch.zeros(len(new), dtype=torch.bool))
            self.seconds["T"] += time.perf_counter() - start
            self.encoded["T"] += len(new)
            self._save(side, "T", table)
        return table.rows(texts)[0]

    def images(self, side: str, keys: Sequence[str], paths: Sequence[Path | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings [N, D] and missing mask [N] of pictures named by `keys` (see `image_key`)."""
        if len(keys) != len(paths):
            raise ValueError("images(): keys and paths differ in length")
        table = self._table(side, "I")
        path_of = dict(zip(keys, paths))
        new = table.unseen(keys)
        if new:
            start = time.perf_counter()
            embeddings, missing = encode_images(self.encoder, [path_of[key] for key in new], self.batch_size)
            self.seconds["I"] += time.perf_counter() - start
            table.add(new, embeddings, missing)
            self.encoded["I"] += len(new)
            self._save(side, "I", table)
        return table.rows(keys)

    # ------------------------------------------------------------ disk

    def _table(self, side: str, modality: str) -> KeyedRows:
        key = (side, modality)
        if key not in self.tables:
            self.tables[key] = self._load(side, modality)
        return self.tables[key]

    def _load(self, side: str, modality: str) -> KeyedRows:
        path = self.path(side, modality)
        table = KeyedRows()
        if not self.persist or not path.exists():
            return table
        from ..training.checkpoint import load_tensors_file

        try:
            stored = load_tensors_file(path)
            table.add(list(stored["keys"]), stored["embeddings"].float(), stored["missing"].bool())
        except Exception as err:  # noqa: BLE001 - any unreadable cache file is simply rebuilt
            log.warning("embedding cache %s unreadable (%s); it will be rebuilt", path, err)
            return KeyedRows()
        return table

    def _save(self, side: str, modality: str, table: KeyedRows) -> None:
        if not self.persist:
            return
        buffer = io.BytesIO()
        torch.save({"keys": table.keys, "embeddings": table.embeddings, "missing": table.missing}, buffer)
        atomic_write_bytes(self.path(side, modality), buffer.getvalue())
