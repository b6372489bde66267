"""Atomic file writes and content checksums.

Every file the project produces goes through `atomic_write_*`: it is written to a temporary
file beside the target and renamed over it, so a killed process never leaves half a file.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

CHUNK = 1 << 20


def atomic_write_with(path: Path | str, write: Callable[[BinaryIO], object]) -> Path:
    """Let `write` fill a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write `data` to `path` atomically (temp file in the same folder, fsync, rename)."""
    return atomic_write_with(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path | str, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=False) + "\n")


def atomic_write_lines(path: Path | str, lines: Iterable[str]) -> Path:
    return atomic_write_text(path, "".join(line if line.endswith("\n") else line + "\n" for line in lines))


def atomic_write_csv(path: Path | str, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rows of dicts as CSV (columns: every key, in order of first appearance); empty rows, empty file."""
    names = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(root: Path | str, files: Iterable[Path] | None = None) -> str:
    """One checksum over files (default: every file under `root`), by relative path and content."""
    root = Path(root)
    chosen = sorted(files) if files is not None else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in chosen:
        digest.update(str(Path(file).relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()
