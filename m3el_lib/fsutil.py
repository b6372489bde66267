"""Atomic file writes and content checksums.

Every file the project produces goes through `atomic_write_*`: it is written to a temporary
file beside the target and renamed over it, so a killed process never leaves half a file.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, Sequence

CHUNK = 1 << 20


def atomic_write_with(path: Path | str, write: Callable[[BinaryIO], object]) -> Path:
    """Let `write` fill a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it the mode an ordinary open would (0666 less the umask),
        # so results stay readable by a group that shares them.
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process's umask: from /proc (no side effect), else by setting it and setting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Busy(RuntimeError):
    """Another process holds the lock; the message names the lock file."""


@contextlib.contextmanager
def exclusive_lock(path: Path | str, what: str) -> Iterator[Path]:
    """Hold an exclusive lock file for `what` (never waits: a second holder gets `Busy`).

    The lock file is removed on release; a lock taken on a file another process had just
    removed is retried, so two processes never both believe they hold it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(f"{what} is already in progress in another process (lock file {path}); "
                       "wait for it to finish, or remove the lock file if no such process runs") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # locked a file that was removed meanwhile: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
def swap_folder_into_place(staging: Path | str, out_dir: Path | str) -> Path:
    """Replace `out_dir` by the finished `staging` folder with renames only (a whole folder, atomically)."""
    staging, out_dir = Path(staging), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    old = out_dir.parent / f".{out_dir.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        os.rename(out_dir, old)
    os.rename(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


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
