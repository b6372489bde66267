"""The download registry: every external file the project can use, and how to get it.

Each entry names a URL, a sha256 where known, a size, a licence and instructions for getting the
file by hand. `fetch` downloads into the cache resumably (an interrupted download continues from
its `.part` file) and verifies the checksum before the file appears under its final name.
Offline, it raises `DownloadUnavailable` saying which file, where to get it and where to put it;
`register` records a file the user downloaded by hand (checksum checked, or, for the M³EL release
whose checksum is unknown, format validation by `m3el_lib.data.release`, and which one was used is
recorded). The registration record is written atomically and is what makes a copy current.
"""
from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..fsutil import CHUNK, atomic_write_with, sha256_file
from .registrations import download_dir, local_copy, read_record, record_path, write_record  # noqa: F401 - registry API

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


def target_path(name: str) -> Path:
    return download_dir(name) / entry(name).file_name


def unavailable_message(name: str, reason: str) -> str:
    item = entry(name)
    return (
        f"{item.name}: the file {item.file_name} is not available ({reason}).\n"
        f"  get it from: {item.url}\n"
        f"  how: {item.instructions}\n"
        f"  it belongs at: {target_path(name)}\n"
        f"  licence: {item.licence}; size: {item.size}"
    )


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
    if item.verify == "format":  # the release: unpack, validate and register it like a hand download
        from .release import register_release

        return register_release(name, target)
    return write_record(name, target, method="sha256" if item.sha256 else "none")


def register(name: str, source: Path | str) -> Path:
    """Adopt a file (or for the release, a folder or archive) the user downloaded by hand."""
    item = entry(name)
    source = Path(source).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    source = source.resolve()
    if item.verify == "sha256":
        if not source.is_file():
            raise ValueError(f"{source}: not a regular file")
        digest = sha256_file(source)
        if digest != item.sha256:
            raise ChecksumMismatch(f"{name}: {source} has sha256 {digest}, expected {item.sha256}")
        target = target_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source != target:
            atomic_write_with(target, lambda handle: _copy_into(source, handle))
        return write_record(name, target, method="sha256")
    from .release import register_release

    return register_release(name, source)


def _copy_into(source: Path, handle) -> None:
    with open(source, "rb") as reader:
        shutil.copyfileobj(reader, handle, CHUNK)


