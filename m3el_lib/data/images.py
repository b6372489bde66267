"""The one way pictures are opened: evaluation, statistics figures, training and the book use it.

A picture is decoded only when it is a regular file (a FIFO, device or folder is refused without
blocking: the file is opened non-blocking and checked before a byte is read), lies under the
given root (when one is given; links are resolved first), is at most `MAX_IMAGE_BYTES` long and
declares at most `MAX_IMAGE_PIXELS` pixels (a decompression bomb is refused before decoding).
Anything else is "unusable", with the reason, never an exception: callers count unusable
pictures (evaluation reports them per task; figures draw an empty, labelled box).
"""
from __future__ import annotations

import io
import logging
import os
import stat
import struct
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 40_000_000  # about 6,300 x 6,300: larger pictures are treated as unusable
MAX_IMAGE_BYTES = 64 << 20


def read_picture_bytes(path: Path | str, root: Path | str | None = None) -> tuple[bytes | None, str]:
    """The bytes of a picture file and "" , or None and why not (never blocks, never leaves root)."""
    path = Path(path)
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: a link loop
        return None, f"unresolvable ({err})"
    if root is not None and not resolved.is_relative_to(Path(root).resolve()):
        return None, "outside the data root"
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None, "file missing"
    except OSError as err:
        return None, f"cannot be opened ({err.strerror or err})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size > MAX_IMAGE_BYTES:
            return None, f"too large ({info.st_size:,} bytes; limit {MAX_IMAGE_BYTES:,})"
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as err:
        return None, f"unreadable ({err.strerror or err})"
    finally:
        os.close(fd)
    if len(data) > MAX_IMAGE_BYTES:
        return None, "too large"
    return data, ""


def decode_picture(data: bytes) -> tuple[Any, str]:
    """An RGB PIL image from encoded bytes and "", or None and why not (pixel cap checked first)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                pixels = image.width * image.height
                if pixels > MAX_IMAGE_PIXELS:
                    return None, f"too many pixels ({image.width}x{image.height}; limit {MAX_IMAGE_PIXELS:,})"
                return image.convert("RGB"), ""
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return None, "too many pixels (a decompression bomb)"
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError, MemoryError, IndexError,
            TypeError, struct.error) as err:  # what Pillow's decoders raise on broken files
        return None, f"not a decodable picture ({type(err).__name__})"


def open_picture_with_reason(path: Path | str | None, root: Path | str | None = None) -> tuple[Any, str]:
    """An RGB PIL image and "", or None and why not ("no picture", "file missing", ...)."""
    if path is None:
        return None, "no picture"
    data, why = read_picture_bytes(path, root)
    if data is None:
        log.debug("picture %s unusable: %s", path, why)
        return None, why
    image, why = decode_picture(data)
    if image is None:
        log.debug("picture %s unusable: %s", path, why)
    return image, why


def open_picture(path: Path | str | None, root: Path | str | None = None) -> Any:
    """An RGB PIL image, or None when there is no usable picture at `path` (see the module docstring)."""
    return open_picture_with_reason(path, root)[0]
