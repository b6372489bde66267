"""Registering the M³EL release (an archive or a folder) so the full profile finds it.

An archive (zip or tar, compressed or not) is unpacked into a staging folder beside the data
folder, within limits on total size, compression ratio and member count, never writing links,
devices or anything outside the folder. Its top folder becomes `<release root name>/` (`M3EL/`),
so that the records' `/M3EL/...` picture paths resolve under it. The records are validated there
(bad ones quarantined, a report printed by the CLI); only then is the folder renamed into
`data/m3el-release/` and the registration record rewritten atomically. The record is the switch:
until it is rewritten the previous release stays current and whole, and a killed registration
leaves only a staging folder that the next one removes. A folder is registered in place.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .. import config
from ..fsutil import CHUNK, current_umask, exclusive_lock
from .io import DatasetError, RECORD_SUFFIXES, NON_RECORD_FILES, load_dataset, write_quarantine

STAGING_PREFIX = ".staging-"
VERSION_PREFIX = "r-"


class ArchiveError(ValueError):
    """An archive that cannot be unpacked safely; the message names the archive (and member)."""


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ArchiveError(f"{name}={raw!r}: expected a number") from None


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an archive may unpack to: bytes in all, expansion ratio, members.

    The defaults fit the release (several GB of pictures and JSON); the environment variables
    `M3EL_MAX_UNPACKED_BYTES`, `M3EL_MAX_COMPRESSION_RATIO` and `M3EL_MAX_ARCHIVE_MEMBERS` change them.
    """

    max_total_bytes: int
    max_ratio: float
    max_members: int
    ratio_applies_from: int = 1 << 20  # small members compress wildly (a blank line, a tiny JSON)

    @classmethod
    def from_environment(cls) -> "ArchiveLimits":
        return cls(max_total_bytes=int(_env_number("M3EL_MAX_UNPACKED_BYTES", 256 << 30)),
                   max_ratio=_env_number("M3EL_MAX_COMPRESSION_RATIO", 200),
                   max_members=int(_env_number("M3EL_MAX_ARCHIVE_MEMBERS", 5_000_000)))


@dataclass(frozen=True)
class Member:
    """One regular file or folder of an archive, checked before anything is written."""

    name: str  # a safe relative POSIX path
    is_dir: bool
    size: int


def _safe_member_name(archive: Path, raw: str) -> str:
    name = raw.replace("\\", "/")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if "\0" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts or not parts:
        raise ArchiveError(f"{archive}: member {raw!r} would be written outside the release folder; refused")
    return "/".join(parts)


def _zip_members(archive: Path, zf: zipfile.ZipFile, limits: ArchiveLimits) -> list[tuple[Member, zipfile.ZipInfo]]:
    found = []
    for info in zf.infolist():
        name = _safe_member_name(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # no type bits: a plain file
            raise ArchiveError(f"{archive}: member {info.filename!r} is a link or special file; refused")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= limits.ratio_applies_from and ratio > limits.max_ratio:
            raise ArchiveError(f"{archive}: member {info.filename!r} would expand {ratio:,.0f}-fold "
                               f"({info.file_size:,} bytes; limit {limits.max_ratio:g}-fold, M3EL_MAX_COMPRESSION_RATIO); refused")
        found.append((Member(name, info.is_dir(), info.file_size), info))
    return found


def _tar_members(archive: Path, tf: tarfile.TarFile) -> list[tuple[Member, tarfile.TarInfo]]:
    found = []
    for info in tf:
        name = _safe_member_name(archive, info.name)
        if not (info.isreg() or info.isdir()):
            raise ArchiveError(f"{archive}: member {info.name!r} is a link or special file; refused")
        found.append((Member(name, info.isdir(), info.size), info))
    return found


def _check_totals(archive: Path, members: list[Member], limits: ArchiveLimits, destination: Path) -> None:
    total = sum(m.size for m in members)
    if len(members) > limits.max_members:
        raise ArchiveError(f"{archive}: {len(members):,} members, more than the limit {limits.max_members:,}; refused")
    if total > limits.max_total_bytes:
        raise ArchiveError(f"{archive}: unpacks to {total:,} bytes, more than the limit {limits.max_total_bytes:,} "
                           "(M3EL_MAX_UNPACKED_BYTES); refused")
    packed = archive.stat().st_size
    if total >= limits.ratio_applies_from and total / max(packed, 1) > limits.max_ratio:
        raise ArchiveError(f"{archive}: would expand {total / max(packed, 1):,.0f}-fold ({total:,} bytes; limit "
                           f"{limits.max_ratio:g}-fold, M3EL_MAX_COMPRESSION_RATIO); refused")
    free = shutil.disk_usage(destination).free
    if total > free:
        raise ArchiveError(f"{archive}: unpacks to {total:,} bytes but {destination} has {free:,} free")


def _copy_limited(archive: Path, member: Member, reader: BinaryIO, target: Path) -> None:
    """Copy one member, never writing more than it declared (a lying header is caught here)."""
    written = 0
    with open(target, "xb", buffering=CHUNK) as writer:  # a buffer size given: no isatty probe per file
        for block in iter(lambda: reader.read(CHUNK), b""):
            written += len(block)
            if written > member.size:
                raise ArchiveError(f"{archive}: member {member.name!r} holds more than its declared {member.size:,} bytes")
            writer.write(block)


def unpack_archive(archive: Path, destination: Path, limits: ArchiveLimits | None = None) -> None:
    """Unpack a zip or tar archive into the empty folder `destination`, checking everything first."""
    limits = limits or ArchiveLimits.from_environment()
    destination.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = _zip_members(archive, zf, limits)
                _check_totals(archive, [m for m, _ in members], limits, destination)
                made: set[Path] = set()
                for member, info in members:
                    _write_member(archive, member, destination, lambda info=info: zf.open(info), made)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = _tar_members(archive, tf)
                _check_totals(archive, [m for m, _ in members], limits, destination)
                made = set()
                for member, info in members:
                    _write_member(archive, member, destination, lambda info=info: tf.extractfile(info), made)
        else:
            raise ArchiveError(f"{archive}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, NotImplementedError) as err:
        raise ArchiveError(f"{archive}: corrupt archive ({err})") from None
    except OSError as err:
        raise ArchiveError(f"{archive}: cannot be unpacked ({err})") from None


def _write_member(archive: Path, member: Member, destination: Path, open_member, made: set[Path]) -> None:
    """Write one member; `made` holds the folders this unpacking created (one mkdir each, at
    the release's 90k files the repeated calls cost more than the writes)."""
    target = destination / member.name
    folder = target if member.is_dir else target.parent
    if folder not in made:
        folder.mkdir(parents=True, exist_ok=True)
        made.add(folder)
    if member.is_dir:
        return
    try:
        with open_member() as reader:
            _copy_limited(archive, member, reader, target)
    except FileExistsError:
        raise ArchiveError(f"{archive}: member {member.name!r} appears twice") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, tarfile.TarError) as err:
        raise ArchiveError(f"{archive}: member {member.name!r} is corrupt ({err})") from None


def is_archive(path: Path) -> bool:
    return path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))


# ---------------------------------------------------------------- finding the records


def records_folder(top: Path) -> Path:
    """The shallowest folder under `top` holding record files (`top` itself first)."""
    queue = [top]
    while queue:
        folder = queue.pop(0)
        entries = sorted(folder.iterdir())
        if any(_is_record_file(p) for p in entries):
            return folder
        queue += [p for p in entries if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    raise DatasetError(f"{top}: no .json or .jsonl record files anywhere in it")


def _is_record_file(path: Path) -> bool:
    return (path.suffix in RECORD_SUFFIXES and path.name not in NON_RECORD_FILES
            and not path.name.startswith((".", "_")) and path.is_file() and not path.is_symlink())


def _release_root_of_folder(source: Path, data_path: Path) -> Path:
    """The folder `/M3EL/...` paths start from: the nearest folder named so, else the one registered."""
    name = config.release_root_name()
    for folder in [data_path, *data_path.parents]:
        if folder.name == name:
            return folder
        if folder == source:
            break
    return source


# ---------------------------------------------------------------- registering


def register_release(name: str, source: Path) -> Path:
    """Validate and register a release archive or folder; returns the record folder.

    One registration at a time (a lock beside the data folder); a second gets `fsutil.Busy`.
    """
    lock = config.data_dir() / f".{config.RELEASE_DATASET_NAME}.lock"
    with exclusive_lock(lock, f"registering {name}"):
        return _register_locked(name, source)


def _register_locked(name: str, source: Path) -> Path:
    from .registrations import write_record

    if source.is_dir():
        data_path = records_folder(source)
        release_root = _release_root_of_folder(source, data_path)
        dataset = load_dataset(data_path, strict=False, release_root=release_root, check_links=True)
        return write_record(name, data_path, method="format", extra=_summary(dataset, release_root, source))
    if not is_archive(source):
        from .io import record_files

        record_files(source)  # a single record file, or a message saying what this file is not
        dataset = load_dataset(source, strict=False, check_links=True)
        return write_record(name, source, method="format", extra=_summary(dataset, dataset.release_root, source))
    return _register_archive(name, source)


def _register_archive(name: str, archive: Path) -> Path:
    from .registrations import write_record

    home = config.dataset_dir(config.RELEASE_DATASET_NAME)
    home.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(home, keep=None)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=home))
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide the release from a sharing group
    try:
        unpacked = staging / "unpacked"
        unpack_archive(archive, unpacked)
        release_root = staging / config.release_root_name()
        _top_folder(unpacked).rename(release_root)
        data_path = records_folder(release_root)
        # Outside the staging folder, so that the report of a refused archive survives its removal.
        staged_report = config.home() / "quarantine" / f"{name}.staging.quarantine.jsonl"
        staged_report.unlink(missing_ok=True)
        dataset = load_dataset(data_path, strict=False, release_root=release_root, quarantine_path=staged_report,
                               check_links=True)
        version = home / f"{VERSION_PREFIX}{os.urandom(4).hex()}"
        os.rename(staging, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    moved = lambda p: version / Path(p).relative_to(staging)  # noqa: E731 - a path inside the renamed folder
    dataset = replace(dataset, root=moved(dataset.root), release_root=moved(release_root), files=[moved(f) for f in dataset.files])
    if dataset.rejected:
        rejected = [replace(r, file=str(moved(r.file)), problems=[replace(p, file=str(moved(p.file))) for p in r.problems])
                    for r in dataset.rejected]
        dataset.rejected = rejected
        dataset.quarantine_path = write_quarantine(rejected, config.home() / "quarantine" / f"{name}.quarantine.jsonl")
        staged_report.unlink(missing_ok=True)
    path = write_record(name, dataset.root, method="format", extra=_summary(dataset, dataset.release_root, archive))
    _remove_leftovers(home, keep=version)
    return path


def _top_folder(unpacked: Path) -> Path:
    """The archive's single top folder (whatever its name), or the unpacked folder itself."""
    entries = [p for p in unpacked.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked


def _remove_leftovers(home: Path, keep: Path | None) -> None:
    """Staging folders of killed runs, and releases no registration points to any more."""
    for entry in home.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        if entry.name.startswith(STAGING_PREFIX) or (keep is not None and entry.name.startswith(VERSION_PREFIX)):
            shutil.rmtree(entry, ignore_errors=True)


def _summary(dataset, release_root: Path, source: Path) -> dict:
    return {
        "instances": len(dataset),
        "rejected": len(dataset.rejected),
        "unreadable_files": len(dataset.unreadable_files),
        "data_checksum": dataset.checksum,
        "quarantine": str(dataset.quarantine_path) if dataset.quarantine_path else None,
        "rejection_summary": dataset.rejection_summary(),
        "release_root": str(release_root),
        "source": str(source),
    }
