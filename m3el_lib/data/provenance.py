"""Provenance for every result file: git commit, parameters, data checksum, versions, time.

`write_result(path, obj, ...)` writes a JSON result and `path.provenance.json` beside it;
`write_provenance(path, ...)` does the latter for a result written another way (CSV, PNG, ...).
"""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import config
from ..fsutil import atomic_write_json


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The checkout's commit (with `+dirty` when files differ from it), or "unknown"."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
        commit = result.stdout.strip() if result.returncode == 0 else ""
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("m3el-lib", "torch", "open_clip_torch", "timm", "numpy", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance(
    parameters: dict[str, Any] | None = None,
    data_checksum: str | None = None,
    profile: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Who/what/when made a result."""
    return {
        "profile": config.get_profile(profile).name,
        "git_commit": git_commit(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "data_checksum": data_checksum or "",
        "model": model or "",
        "parameters": parameters or {},
        "versions": package_versions(),
        "platform": platform.platform(),
    }


def provenance_path(result_path: Path | str) -> Path:
    result_path = Path(result_path)
    return result_path.with_name(result_path.name + ".provenance.json")


def write_provenance(result_path: Path | str, **kwargs: Any) -> Path:
    return atomic_write_json(provenance_path(result_path), provenance(**kwargs))


def write_result(result_path: Path | str, obj: Any, **kwargs: Any) -> Path:
    """Write a JSON result and its provenance beside it."""
    path = atomic_write_json(result_path, obj)
    write_provenance(path, **kwargs)
    return path
