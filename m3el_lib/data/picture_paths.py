"""Where a record's picture path points, and the rule that nothing is followed outside its root.

Relative paths start at the record files' folder (the data root); absolute paths under the
release's root folder (`/M3EL/...`, `config.release_root_name()`) start at the release root.
Any other absolute path, a `..` that climbs out, a drive letter, a NUL byte, or a symbolic link
leading out is refused. A file whose extension differs only in case from the listed one
(`.JPG` for `.jpg`) is found.
"""
from __future__ import annotations

import os
import posixpath
from pathlib import Path

from .. import config
from .schema import ImageRef
from .errors import DatasetError


def release_prefix() -> str:
    """`/M3EL/`: how absolute picture paths under the release's root folder start."""
    return f"/{config.release_root_name()}/"


def split_local_path(local: str, prefix: str | None = None) -> tuple[str, str] | None:
    """Where a record's local picture path points, or None when it may not be followed.

    ("release", relative) for a path under the release's root folder (`/M3EL/...`), ("data",
    relative) for a relative path (resolved from the record files' folder); the relative part is
    normalised and never climbs out of its root. Absolute paths elsewhere, drive letters and NUL
    bytes give None. String operations only: this runs once per picture of the release, so a
    caller looping over the release passes `prefix` (`release_prefix()`) once read.
    """
    if "\0" in local or (len(local) > 1 and local[1] == ":"):
        return None
    text, base = local.replace("\\", "/"), "data"
    if text.startswith("/"):
        prefix = prefix or release_prefix()
        if not text.startswith(prefix):
            return None
        text, base = text[len(prefix):], "release"
    relative = posixpath.normpath(text)
    if relative.startswith("/") or relative == ".." or relative.startswith("../"):
        return None
    return base, relative


def is_safe_relative_path(local: str) -> bool:
    """True when `local` may be followed: it stays inside the data root or the release root."""
    return split_local_path(local) is not None


def local_path_problem(local: str, prefix: str | None = None) -> str | None:
    """Why a record's local picture path is refused, or None when it may be followed."""
    if split_local_path(local, prefix) is not None:
        return None
    if "\0" in local:
        return f"local path {local!r} contains a NUL byte"
    root = f"/{config.release_root_name()}/"
    if local.replace("\\", "/").startswith(root):
        return f"local path {local!r} escapes the release root {root}"
    if local.replace("\\", "/").startswith("/") or (len(local) > 1 and local[1] == ":"):
        return (f"absolute local path {local!r} is not under the release root /{config.release_root_name()}/ "
                "(set M3EL_RELEASE_ROOT if your release's folder has another name)")
    return f"local path {local!r} escapes the data root"


def release_root_for(data_root: Path | str) -> Path:
    """The folder `/M3EL/...` picture paths start from, for records in `data_root`.

    The registered release's recorded root when `data_root` is its record folder; else the
    nearest of `data_root` and its three parents named like the release root (`M3EL`); else
    `data_root` itself (a copy whose top folder was unpacked without its name).
    """
    data_root = Path(data_root).resolve()
    from .registrations import registered_release_root

    registered = registered_release_root(data_root)
    if registered is not None:
        return registered
    name = config.release_root_name()
    for folder in [data_root, *data_root.parents][:4]:
        if folder.name == name:
            return folder
    return data_root


def resolve_image_path(root: Path, ref: ImageRef | None, release_root: Path | None = None) -> Path | None:
    """The file a record's image points to, refusing any path outside its root (links included).

    Relative paths start at `root` (the record files' folder), `/M3EL/...` paths at the release
    root (`release_root`, found by `release_root_for` when not given). A file whose extension
    differs only in case from the listed one (`.JPG` for `.jpg`) is found.
    """
    if ref is None or not ref.local_path:
        return None
    where = split_local_path(ref.local_path)
    if where is None:
        raise DatasetError(f"image {local_path_problem(ref.local_path)}")
    data_root = Path(root).resolve()
    base = data_root if where[0] == "data" else Path(release_root or release_root_for(data_root)).resolve()
    candidate = (base / where[1]).resolve()
    if not candidate.exists():
        candidate = _extension_case_variant(candidate) or candidate
    if not candidate.is_relative_to(base):
        raise DatasetError(f"image path {ref.local_path!r} escapes the data root {base} (through a link)")
    return candidate


class LinkChecker:
    """Which records' picture paths pass through a symbolic link that leads out of their root.

    Each root is walked once (links are listed, never followed); only paths through a listed
    link are resolved, so a release without links costs one walk.
    """

    def __init__(self, data_root: Path, release_root: Path):
        self.roots = {"data": data_root, "release": release_root}
        self.links: dict[str, set[str]] = {}
        self.prefix = release_prefix()

    def _links(self, base: str) -> set[str]:
        if base not in self.links:
            found: set[str] = set()
            stack = [(self.roots[base], "")]
            while stack:
                folder, prefix = stack.pop()
                try:
                    entries = list(os.scandir(folder))
                except OSError:
                    continue
                for entry in entries:
                    relative = f"{prefix}{entry.name}"
                    if entry.is_symlink():
                        found.add(relative)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append((Path(entry.path), relative + "/"))
            self.links[base] = found
        return self.links[base]

    def problem(self, local: str) -> str | None:
        where = split_local_path(local, self.prefix)
        if where is None:
            return None  # reported by record_problems
        base, relative = where
        parts = relative.split("/")
        links = self._links(base)
        if not any("/".join(parts[: i + 1]) in links for i in range(len(parts))):
            return None
        root = self.roots[base]
        if (root / relative).resolve().is_relative_to(root):
            return None
        return f"local path {local!r} leads out of {'the release root' if base == 'release' else 'the data root'} through a link"

    def record_problems(self, record: dict) -> list[tuple[str, str]]:
        refs = [("image", record.get("image"))] + [
            (f"candidates[{i}].image", c.get("image")) for i, c in enumerate(record.get("candidates") or [])
        ]
        problems = []
        for name, value in refs:
            if isinstance(value, list) and len(value) == 3 and value[2]:
                problem = self.problem(value[2])
                if problem:
                    problems.append((name, problem))
        return problems


def _extension_case_variant(path: Path) -> Path | None:
    """`x.JPG` for a missing `x.jpg` (or the reverse), resolved; None when neither exists."""
    suffix = path.suffix
    for variant in {suffix.lower(), suffix.upper()} - {suffix}:
        other = path.with_suffix(variant)
        if other.exists():
            return other.resolve()
    return None
