"""The download registry: every external file the project can use, and how to get it.

Each entry names a URL, a sha256 where known, a size, a licence and instructions for getting the
file by hand. `fetch` downloads into the cache resumably (an interrupted download continues from
its `.part` file) and verifies the checksum before the file appears under its final name.
Offline, it raises `DownloadUnavailable` saying which file, where to get it and where to put it;
`register` records a file the user downloaded by hand (checksum checked, or, for the M³EL release
whose checksum is unknown, format validation, and which one was used is recorded).
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import config
from ..fsutil import atomic_write_json, sha256_file

USER_AGENT = "m3el-companion/0.1 (offline-first companion to arXiv 2410.18096)"


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    url: str
    file_name: str
    sha256: str | None
    size: str
    licence: str
    instructions: str
    verify: str  # "sha256" or "format" (validated with m3el_lib.data.io when no checksum is known)


def _openai_vit_b_32_url() -> str:
    return "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"


REGISTRY: dict[str, RegistryEntry] = {
    "m3el-release": RegistryEntry(
        name="m3el-release",
        url="https://drive.google.com/uc?export=download&id=129olsROPDyK8Ziz3x99B-LHCXyZpUaG9",
        file_name="m3el-release.zip",
        sha256=None,
        size="unknown (several GB with images)",
        licence="as stated by the M³EL authors with their release (arXiv 2410.18096)",
        instructions=(
            "Open https://drive.google.com/file/d/129olsROPDyK8Ziz3x99B-LHCXyZpUaG9 in a browser, download "
            "the archive, then run `m3el register m3el-release PATH/TO/ARCHIVE_OR_FOLDER`."
        ),
        verify="format",
    ),
    "clip-vit-b-32-openai": RegistryEntry(
        name="clip-vit-b-32-openai",
        url=_openai_vit_b_32_url(),
        file_name="ViT-B-32.pt",
        # OpenAI publishes the sha256 as the folder name of the URL.
        sha256=_openai_vit_b_32_url().split("/")[-2],
        size="about 338 MB",
        licence="MIT (OpenAI CLIP)",
        instructions=(
            "Download ViT-B-32.pt from the URL above (or let open_clip fetch `pretrained='openai'` on a "
            "connected machine), then run `m3el register clip-vit-b-32-openai PATH/TO/ViT-B-32.pt`."
        ),
        verify="sha256",
    ),
}


class DownloadUnavailable(RuntimeError):
    """A registered file is not here and cannot be downloaded now."""


class ChecksumMismatch(RuntimeError):
    pass


def entry(name: str) -> RegistryEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown registry entry {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def download_dir(name: str) -> Path:
    return config.cache_dir() / "downloads" / name


def target_path(name: str) -> Path:
    return download_dir(name) / entry(name).file_name


def record_path(name: str) -> Path:
    return download_dir(name) / "registered.json"


def unavailable_message(name: str, reason: str) -> str:
    item = entry(name)
    return (
        f"{item.name}: the file {item.file_name} is not available ({reason}).\n"
        f"  get it from: {item.url}\n"
        f"  how: {item.instructions}\n"
        f"  it belongs at: {target_path(name)}\n"
        f"  licence: {item.licence}; size: {item.size}"
    )


def local_copy(name: str) -> Path | None:
    """Where a verified copy of the entry is, or None."""
    record = record_path(name)
    if not record.exists():
        return None
    path = Path(json.loads(record.read_text())["path"])
    return path if path.exists() else None


def require(name: str) -> Path:
    """The verified local copy, or DownloadUnavailable with the instructions."""
    found = local_copy(name)
    if found is None:
        raise DownloadUnavailable(unavailable_message(name, "not downloaded or registered yet"))
    return found


Opener = Callable[[urllib.request.Request], object]


def fetch(name: str, opener: Opener | None = None, chunk_size: int = 1 << 20) -> Path:
    """Download an entry into the cache (resuming a `.part` file), verify it, record it."""
    item = entry(name)
    found = local_copy(name)
    if found is not None:
        return found
    target = target_path(name)
    partial = target.with_name(target.name + ".part")
    partial.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(item.url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    open_url = opener or (lambda req: urllib.request.urlopen(req, timeout=60))
    try:
        response = open_url(request)
    except (urllib.error.URLError, OSError) as err:
        raise DownloadUnavailable(unavailable_message(name, f"download failed: {err}")) from err
    with response:  # type: ignore[attr-defined]
        status = getattr(response, "status", 200)
        if have and status != 206:  # the server ignored Range: start again
            have = 0
        if "text/html" in (response.headers.get("Content-Type") or ""):  # type: ignore[attr-defined]
            raise DownloadUnavailable(unavailable_message(name, "the server answered with a web page, not the file"))
        with open(partial, "ab" if have else "wb") as handle:
            for block in iter(lambda: response.read(chunk_size), b""):  # type: ignore[attr-defined]
                handle.write(block)
    return _verify_and_record(name, partial, target)


def _verify_and_record(name: str, partial: Path, target: Path) -> Path:
    item = entry(name)
    if item.sha256:
        digest = sha256_file(partial)
        if digest != item.sha256:
            partial.unlink()
            raise ChecksumMismatch(f"{name}: {partial} has sha256 {digest}, expected {item.sha256}; removed it")
    partial.replace(target)
    return _record(name, target, method="sha256" if item.sha256 else "none")


def register(name: str, source: Path | str) -> Path:
    """Adopt a file (or for the release, a folder or archive) the user downloaded by hand."""
    item = entry(name)
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if item.verify == "sha256":
        digest = sha256_file(source)
        if digest != item.sha256:
            raise ChecksumMismatch(f"{name}: {source} has sha256 {digest}, expected {item.sha256}")
        target = target_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source != target:
            shutil.copyfile(source, target.with_name(target.name + ".part"))
            target.with_name(target.name + ".part").replace(target)
        return _record(name, target, method="sha256")
    return _register_dataset(name, source)


def _register_dataset(name: str, source: Path) -> Path:
    """Unpack (if an archive) into the data folder and accept it only if it loads."""
    from .io import load_dataset

    destination = config.dataset_dir(config.RELEASE_DATASET_NAME)
    if source.is_file() and zipfile.is_zipfile(source):
        staging = destination.with_name(destination.name + ".unpacking")
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(source) as archive:
            _safe_extract(archive, staging)
        shutil.rmtree(destination, ignore_errors=True)
        staging.replace(destination)
        data_path = _dataset_root(destination)
    else:
        data_path = source
    dataset = load_dataset(data_path, strict=False)
    if not dataset.instances:
        raise ValueError(f"{name}: {data_path} holds no valid M³EL records")
    return _record(
        name,
        data_path,
        method="format",
        extra={"instances": len(dataset), "rejected": len(dataset.rejected), "data_checksum": dataset.checksum,
               "quarantine": str(dataset.quarantine_path) if dataset.quarantine_path else None},
    )


def _safe_extract(archive: zipfile.ZipFile, destination: Path) -> None:
    root = destination.resolve()
    for member in archive.infolist():
        target = (destination / member.filename).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"archive member {member.filename!r} would be written outside {destination}")
    archive.extractall(destination)


def _dataset_root(folder: Path) -> Path:
    """The folder holding the record files (archives often wrap them in one top folder)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return _dataset_root(entries[0])
    return folder


def _record(name: str, path: Path, method: str, extra: dict | None = None) -> Path:
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
