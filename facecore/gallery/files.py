"""The gallery's files: content-hashed names, atomic writes, and how a dead writer's leftovers are found.

Layout under the gallery root::

    faces/<sha256 of the image>.<ext>   each uploaded image once; the extension follows the content
    chips/<sha256 of the PNG>.png       the aligned 150x150 chip, for thumbnails
    index/<sha256(model)[:16]>.npz      a FAISS index (see :mod:`facecore.gallery.index`)

Names come only from hashes, never from person names. A file is written to ``.tmp-<random>-<name>``
beside its final name and moved into place with ``os.replace``, so a reader sees the old file or the
whole new one; a temp file older than ``STALE_TEMP_S`` belongs to a writer that died.
"""

from __future__ import annotations

import io
import os
import secrets
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facecore.images import image_hash

FACES_DIR = "faces"
CHIPS_DIR = "chips"
INDEX_DIR = "index"
STALE_TEMP_S = 3600.0  # a temp file this old belongs to a writer that died
_TEMP_PREFIX = ".tmp-"
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)


def image_suffix(data: bytes) -> str:
    """The extension of an image by its magic bytes (``.img`` when unknown)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((suffix for magic, suffix in _IMAGE_MAGIC if data.startswith(magic)), ".img")


def image_path(sha: str, data: bytes) -> str:
    """Where an image with hash ``sha`` is stored, relative to the root: ``faces/<sha>.<ext>``."""
    return f"{FACES_DIR}/{sha}{image_suffix(data)}"


def chip_path(png: bytes) -> str:
    """Where a chip's PNG is stored, relative to the root: ``chips/<sha256 of the PNG>.png``."""
    return f"{CHIPS_DIR}/{image_hash(png)}.png"


def chip_png(chip: np.ndarray | None) -> bytes:
    """The aligned chip (``(H, W, 3)`` uint8 RGB) as PNG bytes."""
    if chip is None:
        raise ValueError("the face has no chip; the gallery stores the aligned chip as its thumbnail")
    arr = np.asarray(chip)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB chip, got {arr.shape} {arr.dtype}")
    buffer = io.BytesIO()
    # Level 1: a 150x150 chip encodes ~5x faster than at the default 6 (2 vs 9 ms) for ~13% more bytes.
    Image.fromarray(np.ascontiguousarray(arr)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def atomic_write(path: Path, content: bytes) -> None:
    """Write ``path`` so that readers see the old file or the whole new one, never a part."""
    temp = path.with_name(f"{_TEMP_PREFIX}{secrets.token_hex(8)}-{path.name}")
    try:
        with open(temp, "xb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def is_temp(path: Path) -> bool:
    """Whether ``path`` is an :func:`atomic_write` temp file (finished or not)."""
    return path.name.startswith(_TEMP_PREFIX)


def mtime(path: Path, *, default: float) -> float:
    """``path``'s modification time, or ``default`` when it vanished meanwhile."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # another writer finished (or gave up) in the meantime
        return default


def is_stale_temp(path: Path, now: float) -> bool:
    """A temp file old enough that its writer must have died."""
    return is_temp(path) and now - mtime(path, default=now) > STALE_TEMP_S


def remove_strays(root: Path, images: set[str], chips: set[str]) -> int:
    """Delete the files under ``root`` no row uses (``images``: hashes, ``chips``: relative paths) and
    temp files old enough that their writer must have died; index files are left to the index code."""
    now = time.time()
    removed = 0
    for folder in (FACES_DIR, CHIPS_DIR, INDEX_DIR):
        for path in (root / folder).iterdir():
            if not path.is_file():
                continue
            if is_temp(path):
                stray = is_stale_temp(path, now)
            elif folder == FACES_DIR:
                stray = path.stem not in images
            elif folder == CHIPS_DIR:
                stray = f"{CHIPS_DIR}/{path.name}" not in chips
            else:
                stray = False  # index files are replaced when the indexes are rebuilt
            if stray:
                path.unlink(missing_ok=True)
                removed += 1
    return removed
