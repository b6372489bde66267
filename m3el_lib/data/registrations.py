"""Registration records: which verified local copy of a registry entry is current, and where.

`registered.json` beside each entry's download folder says where the copy is (for the release:
its record folder and its release root), how it was verified and when. Rewriting it atomically
is what makes a new registration current. Kept apart from `registry` (downloads, registering)
so that path resolution can read it without importing the registration machinery.
"""
from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

from .. import config
from ..fsutil import atomic_write_json, sha256_file


def download_dir(name: str) -> Path:
    return config.cache_dir() / "downloads" / name


def record_path(name: str) -> Path:
    return download_dir(name) / "registered.json"


def local_copy(name: str) -> Path | None:
    """Where a verified copy of the entry is, or None."""
    found = read_record(name)
    if found is None:
        return None
    path = Path(found["path"])
    return path if path.exists() else None


def read_record(name: str) -> dict | None:
    """The registration record of an entry, or None (an unreadable one is reported and ignored)."""
    path = record_path(name)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        warnings.warn(f"{path}: unreadable registration record ({err}); register {name} again", stacklevel=2)
        return None
    return record if isinstance(record, dict) and isinstance(record.get("path"), str) else None


def registered_dataset_path(name: str) -> Path | None:
    """The record folder of a registered dataset entry (the release), or None."""
    found = local_copy(name)
    if found is None or not (found.is_dir() or found.suffix in (".json", ".jsonl")):
        return None  # e.g. an archive recorded by an older version: register it again
    return found


def registered_release_root(data_root: Path) -> Path | None:
    """The release root recorded when `data_root` is the registered release's record folder."""
    record = read_record(config.RELEASE_DATASET_NAME)
    if not record or not record.get("release_root"):
        return None
    if Path(record["path"]).resolve() != Path(data_root).resolve():
        return None
    return Path(record["release_root"]).resolve()


def write_record(name: str, path: Path, method: str, extra: dict | None = None) -> Path:
    """Write the registration record (atomically: it is what makes a registration current)."""
    atomic_write_json(
        record_path(name),
        {
            "name": name,
            "path": str(path),
            "verified_by": method,
            "sha256": sha256_file(path) if path.is_file() else None,
            "registered": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **(extra or {}),
        },
    )
    return path
