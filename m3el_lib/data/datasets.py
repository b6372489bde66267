"""Which dataset: the one answer for every command, notebook, benchmark and the book runner.

`resolve_dataset(data, profile)` turns an explicit path or dataset name, else the profile's
dataset, into a `DatasetRef`: where its records are and which profile asked. The sample
(M³EL-mini) is built from the committed snapshot when it is asked for and missing or stale; the
release is wherever `m3el register` / `m3el fetch` recorded it. `data_identity(profile)` names the
data a profile's notebooks will read before anything is built (the book's cache key).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import config
from ..fsutil import sha256_bytes, sha256_file
from .io import Dataset, DatasetError, dataset_checksum, load_dataset
from .registrations import registered_dataset_path
from .registry import unavailable_message


@dataclass(frozen=True)
class DatasetRef:
    """A dataset that exists on disk, and the profile it was resolved for."""

    path: Path
    name: str
    profile: str

    def load(self, strict: bool = True, quarantine_path: Path | str | None = None) -> Dataset:
        return load_dataset(self.path, strict=strict, quarantine_path=quarantine_path)

    def checksum(self) -> str:
        """Checksum of the record files: the data id in provenance and caches."""
        return dataset_checksum(self.path)


def _named_dataset(name: str, build: bool) -> Path | None:
    if name == config.SAMPLE_DATASET_NAME:
        if not build:
            folder = config.dataset_dir(name)
            return folder if folder.exists() else None
        from ..construction.sample import ensure_sample

        return ensure_sample()
    if name == config.RELEASE_DATASET_NAME:  # where its registration found the records
        found = registered_dataset_path(name)
        if found is not None:
            return found
    folder = config.dataset_dir(name)
    return folder if folder.exists() else None


def resolve_dataset(data: str | Path | None = None, profile: str | None = None, build: bool = True) -> DatasetRef:
    """The dataset at `data` (a path or a dataset name), else the profile's dataset.

    With `build`, M³EL-mini is (re)built from the snapshot when missing or out of date.
    DatasetError when nothing is there, with what to do about it.
    """
    chosen = config.get_profile(profile)
    name = str(data) if data else chosen.dataset
    if data and Path(data).exists():
        return DatasetRef(Path(data), Path(data).name, chosen.name)
    found = _named_dataset(name, build)
    if found is not None:
        return DatasetRef(Path(found), name, chosen.name)
    if name == config.RELEASE_DATASET_NAME:
        raise DatasetError(unavailable_message(name, "not registered"))
    raise DatasetError(f"dataset {name!r}: no such file or folder, and not under {config.data_dir()} "
                       "(for the release: m3el fetch m3el-release)")


def open_dataset(data: str | Path | None = None, profile: str | None = None, strict: bool = True) -> Dataset:
    """Resolve and load in one call (what notebooks and commands mostly want)."""
    return resolve_dataset(data, profile).load(strict=strict)


def data_identity(profile: str | None = None) -> tuple[str, str]:
    """(checksum, what it is a checksum of) for the data a profile reads, without building it.

    The sample is rebuilt deterministically from the committed snapshot by library code, so the
    snapshot's checksum (the one recorded in the sample's manifest) stands for it. The full
    profile reads the registered release: the checksum of its record files.
    """
    chosen = config.get_profile(profile)
    if chosen.dataset == config.SAMPLE_DATASET_NAME:
        from ..construction.snapshot import snapshot_checksum

        if not config.SNAPSHOT_DIR.is_dir():
            return "no-snapshot", f"{config.SNAPSHOT_DIR} (missing)"
        snapshot = snapshot_checksum(config.SNAPSHOT_DIR)
        corpus_index = config.PRETRAIN_CORPUS_DIR / "pairs.jsonl.gz"
        if not corpus_index.is_file():
            return snapshot, "the committed snapshot data/snapshot/ that M³EL-mini is built from"
        # The sample CLIP's corpus is data too (chapter 03 trains on it): its index lists every picture by sha256.
        return (sha256_bytes(f"{snapshot}\0{sha256_file(corpus_index)}".encode()),
                "the committed snapshot data/snapshot/ that M³EL-mini is built from and the sample CLIP's "
                "pretraining corpus data/pretrain_corpus/ (its index)")
    ref = resolve_dataset(profile=chosen.name, build=False)
    return ref.checksum(), f"the record files of the M³EL release at {ref.path}"
