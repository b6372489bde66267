"""Which dataset a command means: a path, a name under the data folder, or the profile's own
(for the release, the record folder its registration found)."""
from __future__ import annotations

from pathlib import Path

from .. import config
from ..io import DatasetError


def resolve_dataset_path(data: str | Path | None, profile: str | None = None) -> Path:
    """A dataset path from a path or a dataset name (default: the profile's dataset).

    The sample dataset (M³EL-mini) is built on first use when its builder is available.
    """
    chosen = config.get_profile(profile)
    name = str(data) if data else chosen.dataset
    if Path(name).exists():
        return Path(name)
    if name == config.RELEASE_DATASET_NAME:  # where its registration found the records
        from ..registry import registered_dataset_path

        registered = registered_dataset_path(name)
        if registered is not None:
            return registered
    folder = config.dataset_dir(name)
    if folder.exists():
        return folder
    if name == config.SAMPLE_DATASET_NAME:
        try:
            from ..construction.sample import ensure_sample
        except ImportError as err:
            raise DatasetError(f"dataset {name!r} is not built yet and its builder is unavailable ({err})") from err
        return Path(ensure_sample())
    raise DatasetError(f"dataset {name!r}: no such file or folder, and not under {config.data_dir()} (for the release: m3el fetch m3el-release)")
