"""Turn whatever a person uploads into one predictable thing: an (H, W, 3) uint8 RGB array.

Every failure becomes an ``ImageError`` whose message can be shown to the person as is, so the
UI never has to interpret Pillow's many exception types. Sizes are checked from the header before
any pixel is decoded, so a small file that claims to be huge (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000

# Only formats we test and trust. Restricting the plugins also keeps Pillow away from formats
# such as EPS, whose plugin runs Ghostscript on load. (Multi-picture phone JPEGs, "MPO", come in
# through the JPEG opener.)
_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
_FORMATS_TEXT = "PNG, JPEG, WebP, GIF, BMP, TIFF"

ImageSource = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO


class ImageError(ValueError):
    """An image could not be used; ``str(error)`` is a sentence meant for the person who sent it."""


# ----------------------------------------------------------------------------- bytes


def read_bytes(source: ImageSource) -> bytes:
    """The raw bytes of ``source`` (bytes, a path, or a binary file object such as an upload)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        return _read_path(Path(source))
    if hasattr(source, "read"):
        return _read_stream(source)
    raise TypeError(f"expected bytes, a path or a binary file object, not {type(source).__name__}")


def _read_path(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"There is no file at {path}.") from None
    except IsADirectoryError:
        raise ImageError(f"{path} is a folder, not an image file.") from None
    except PermissionError:
        raise ImageError(f"The file {path} cannot be read (permission denied).") from None
    except OSError as exc:
        raise ImageError(f"The file {path} cannot be read ({exc.strerror or exc}).") from None


def _read_stream(stream: BinaryIO) -> bytes:
    # Rewind first: an upload that was already read once (e.g. to show it) would otherwise
    # come back empty and look like an empty file.
    if getattr(stream, "seekable", lambda: False)():
        stream.seek(0)
    data = stream.read()
    if isinstance(data, str):
        raise TypeError("the file object was opened in text mode; open it in binary mode ('rb')")
    return bytes(data)


def image_hash(data: bytes) -> str:
    """SHA-256 hex digest of the raw file bytes: the same upload always gets the same key."""
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- decoding


def load_image(source: ImageSource, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read and decode ``source`` into an (H, W, 3) uint8 RGB, C-contiguous array.

    EXIF orientation is applied, transparency is composited on white, 16-bit data is scaled
    (not clipped) to 8 bits, and animated images give their first frame. Raises ``ImageError``.
    """
    return decode_image(read_bytes(source), max_pixels=max_pixels)


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Like ``load_image`` for bytes already in memory (read once, hash and decode the same bytes)."""
    if not data:
        raise ImageError("The file is empty.")
    with warnings.catch_warnings():
        # Pillow only *warns* between its limit and twice its limit; make that an error we catch.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open(data, max_pixels)
        _check_pixel_count(image.size, max_pixels)
        _load_pixels(image, max_pixels)
    return _to_rgb_array(_upright(image))


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Parse only the header; no pixel is decoded yet."""
    Image.init()  # register every plugin: open(formats=...) fails on names not loaded yet (WEBP, TIFF)
    try:
        return Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError:
        raise ImageError(f"This file is not an image we can read ({_FORMATS_TEXT}).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(_bomb_message(exc, max_pixels)) from None
    except Exception:  # Pillow's plugins raise many types on a malformed header
        raise ImageError("The image file is truncated or corrupt.") from None


def _check_pixel_count(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError("The image has no pixels (its width or height is 0).")
    if width * height > max_pixels:
        raise ImageError(
            f"The image is {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
            f"the limit is {max_pixels / 1e6:g} MP."
        )


def _bomb_message(exc: Exception, max_pixels: int) -> str:
    """Pillow refused the size before we saw it; its message holds the pixel count (if worded as usual)."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" ({int(match.group(1)) / 1e6:.0f} MP)" if match else ""
    # The limit a person meets is the smaller of ours and Pillow's: name that one, as _check_pixel_count does.
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    return f"The image is too large to open safely{size}; the limit is {limit / 1e6:.3g} MP."


def _load_pixels(image: Image.Image, max_pixels: int) -> None:
    """Decode now, inside a try, so a truncated file fails here and not deep inside numpy."""
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(_bomb_message(exc, max_pixels)) from None
    except Exception:  # OSError "truncated", SyntaxError, zlib/struct errors, EOFError, ...
        raise ImageError("The image file is truncated or corrupt.") from None


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation so faces are upright, as phones and browsers show them."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        # A broken EXIF block should not make a readable photo unusable: keep the pixels as stored.
        return image


# ----------------------------------------------------------------------------- colour


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        rgb = np.asarray(image)
    elif mode.startswith("I;16") or mode in ("I", "F"):
        rgb = _gray_to_rgb(_high_depth_to_uint8(np.asarray(image), mode))
    elif _has_alpha(image):
        rgb = _composite_on_white(image)
    elif mode in ("1", "L"):
        rgb = _gray_to_rgb(np.asarray(image.convert("L")))
    else:  # P without transparency, CMYK, YCbCr, ...
        rgb = np.asarray(_convert(image, "RGB"))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


def _composite_on_white(image: Image.Image) -> np.ndarray:
    """Transparent pixels become white, as a viewer would show them, not black."""
    rgba = _convert(image, "RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))


def _convert(image: Image.Image, mode: str) -> Image.Image:
    try:
        return image.convert(mode)
    except (ValueError, OSError):
        raise ImageError(f"The image uses a colour mode ({image.mode}) we cannot convert to RGB.") from None


def _high_depth_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16-bit (and 32-bit int / float) grey levels to 0..255 instead of clipping them."""
    if mode == "F":
        values = values.astype(np.float64)
        # Float images come as 0..1 or 0..255; values above 1 mean the latter.
        scale = 255.0 if np.nanmax(values, initial=0.0) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(values * scale), 0, 255).round().astype(np.uint8)
    values = values.astype(np.int64)
    if mode == "I" and values.max(initial=0) <= 255:
        return np.clip(values, 0, 255).astype(np.uint8)  # an 8-bit image stored as 32-bit ints
    # 16-bit: round(v * 255 / 65535), i.e. v / 257, so 65535 -> 255 and 0 -> 0.
    values = np.clip(values, 0, 65535)
    return ((values * 255 + 32767) // 65535).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


# ----------------------------------------------------------------------------- size


def downscale_to_max_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink ``image`` so its longer side is at most ``max_side``; return it and the scale used.

    Images that already fit come back unchanged with scale 1.0. Coordinates found on the result
    map back to the original by dividing by the scale. INTER_AREA avoids aliasing when shrinking.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale
