"""A corpus of bad and awkward uploads, generated from real photos of the shared data.

Every test layer (facecore, the dashboard pages, the REST API) feeds the same corpus and checks the
same promise: each input gives either a correct result or a clear message, never a traceback.

Usage::

    from tests.bad_inputs import KINDS, bad_input, bad_inputs

    @pytest.mark.parametrize("kind", KINDS)          # static names: nothing is built at collection
    def test_x(sample_data, kind):                   # sample_data: the conftest fixture (a Path)
        case = bad_input(sample_data, kind)          # built on first use, then cached
        case.filename, case.data, case.mime, case.expect, case.faces, case.message, case.shape

    bad_inputs(sample_data)                          # the whole corpus, in KINDS order

``expect`` is ``"error"`` (``facecore.images.ImageError`` whose message contains ``message``) or
``"ok"`` (decodes to an RGB image of ``shape`` and, when ``faces`` is not None, the default ``hog``
detector finds exactly that many faces). Face photos are re-encodings of real photos (kit_harington/2.jpg,
630x374, one face; twenty LFW faces for the crowd), so the counts are what real models give.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facecore.evaluation.datasets import BUNDLED_LFW_HOME

FACE_PHOTO = ("faces_small", "kit_harington", "2.jpg")  # 630x374, one frontal face about 187 px wide
FACE_WIDTH = 187  # HOG's box on FACE_PHOTO
LFW_PEOPLE_STEP = 21  # the crowd: the first photo of every 21st person of the bundled mini LFW (sorted), 20 of them
CROWD_TILE = 150  # central crop of each 250x250 LFW photo: keeps the face, drops faces in the background

# Tag 274 (Orientation) -> the Pillow transpose that makes the stored pixels upright (as exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# ...and its inverse, which turns an upright photo into the pixels a camera stores with that tag.
_STORED = {**_UPRIGHT, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
EXIF_ORIENTATIONS = tuple(range(1, 9))


@dataclass(frozen=True)
class BadInput:
    """One upload and what must come of it."""

    kind: str  # unique, short: usable as a pytest id
    filename: str  # the name an upload would carry (sometimes lying about the content)
    data: bytes
    mime: str
    expect: str  # "error" or "ok"
    faces: int | None = None  # faces the hog detector finds, when it matters ("ok" only)
    message: str = ""  # a fragment of the ImageError message ("error" only)
    shape: tuple[int, int] | None = None  # (height, width) of the decoded image ("ok" only)
    why: str = ""

    def __repr__(self) -> str:  # the bytes would flood pytest's output
        return f"BadInput({self.kind!r}, {self.filename!r}, {len(self.data)} bytes, expect={self.expect!r})"


# ----------------------------------------------------------------------------- encoders


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming ``width x height`` RGB, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_bomb() -> bytes:
    """A real decompression bomb: a 12000x12000 all-black PNG whose zlib stream is only a few hundred KB."""
    width = height = 12_000
    row = b"\x00" + b"\x00" * (width * 3)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its SOF header patched to claim ``width x height`` (the scan data stays small)."""
    data = bytearray(jpeg)
    i = 2
    while i < len(data) - 9:
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):  # baseline, extended, progressive SOF
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise ValueError("no SOF marker found")


def exif_rotated_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """The JPEG a camera would write: pixels stored turned, with the EXIF tag that turns them back."""
    stored = upright if orientation == 1 else upright.transpose(_STORED[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def broken_exif_jpeg(photo: Image.Image) -> bytes:
    """A JPEG whose APP1 EXIF segment is garbage: the photo must still be usable."""
    data = encode(photo, "JPEG", quality=92)
    payload = b"Exif\x00\x00" + b"MM\x00*\x00\x00\xff\xff" + b"\xfe" * 40
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + data[2:]


# ----------------------------------------------------------------------------- source photos


def face_photo(sample_data: Path) -> Image.Image:
    """The one-face real photo every re-encoding starts from (RGB, 630x374)."""
    return Image.open(sample_data.joinpath(*FACE_PHOTO)).convert("RGB")


def crowd_photo(sample_data: Path) -> Image.Image:
    """Twenty real LFW faces in a 5x4 grid (750x600): a photo with twenty faces.

    Always from the bundled mini LFW, so the corpus is the same with or without the full LFW."""
    lfw = BUNDLED_LFW_HOME / "lfw_home" / "lfw_funneled"
    people = sorted(p for p in lfw.iterdir() if p.is_dir())[::LFW_PEOPLE_STEP][:20]
    margin = (250 - CROWD_TILE) // 2
    tiles = [
        np.asarray(Image.open(sorted(p.glob("*.jpg"))[0]).convert("RGB"))[
            margin : margin + CROWD_TILE, margin : margin + CROWD_TILE
        ]
        for p in people
    ]
    rows = [np.concatenate(tiles[r * 5 : (r + 1) * 5], axis=1) for r in range(4)]
    return Image.fromarray(np.concatenate(rows, axis=0))


def _scaled(photo: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(photo.width * factor)), max(1, round(photo.height * factor)))
    return photo.resize(size, Image.Resampling.LANCZOS)


def _with_alpha(photo: Image.Image) -> Image.Image:
    """RGBA: the face opaque, the left and right thirds half transparent."""
    rgba = photo.convert("RGBA")
    alpha = np.full((photo.height, photo.width), 255, np.uint8)
    alpha[:, : photo.width // 3] = 128
    alpha[:, 2 * photo.width // 3 :] = 128
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def _sixteen_bit_gray(photo: Image.Image) -> bytes:
    gray = np.asarray(photo.convert("L")).astype(np.uint16) * 257  # full 0..65535 range
    return encode(Image.fromarray(gray), "PNG")


def _sixteen_bit_rgb(photo: Image.Image) -> bytes:
    bgr = cv2.cvtColor(np.asarray(photo), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    return png.tobytes()


def _animated_gif(photo: Image.Image) -> bytes:
    frames = [photo, photo.transpose(Image.Transpose.ROTATE_180), Image.new("RGB", photo.size, "navy")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)


def _heic() -> bytes:
    """The start of an HEIC file (ISO BMFF 'ftyp' box, brand heic): a format we do not decode."""
    ftyp = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    return struct.pack(">I", len(ftyp) + 4) + ftyp + b"\x00\x00\x00\x08free" + bytes(256)


def _no_face_photo() -> Image.Image:
    """A textured landscape-like scene (sky gradient, noisy ground): a photo without a face."""
    rng = np.random.default_rng(7)
    height, width = 360, 480
    sky = np.linspace([90, 140, 220], [200, 220, 250], height // 2)[:, None, :].repeat(width, 1)
    ground = rng.normal([70, 120, 50], 18, (height - height // 2, width, 3))
    return Image.fromarray(np.clip(np.concatenate([sky, ground]), 0, 255).astype(np.uint8))


def _overexposed(photo: Image.Image) -> Image.Image:
    """Blown out: every pixel x4, so almost everything clips to white."""
    return Image.fromarray(np.clip(np.asarray(photo).astype(np.int32) * 4, 0, 255).astype(np.uint8))


def _underexposed(photo: Image.Image) -> Image.Image:
    """Nearly black: 1/16 of the light (values 0..15)."""
    return Image.fromarray((np.asarray(photo) // 16).astype(np.uint8))


# ----------------------------------------------------------------------------- the corpus


class _Sources:
    """The real photos the corpus is made from, loaded on first use."""

    def __init__(self, sample_data: Path) -> None:
        self.sample_data = sample_data

    @functools.cached_property
    def photo(self) -> Image.Image:
        return face_photo(self.sample_data)

    @functools.cached_property
    def shape(self) -> tuple[int, int]:
        return (self.photo.height, self.photo.width)

    @functools.cached_property
    def jpeg(self) -> bytes:
        return encode(self.photo, "JPEG", quality=92)

    @functools.cached_property
    def png(self) -> bytes:
        return encode(self.photo, "PNG")

    @functools.cached_property
    def crowd(self) -> Image.Image:
        return crowd_photo(self.sample_data)

    @functools.cached_property
    def tiny_face(self) -> Image.Image:
        return _scaled(self.photo, 10 / FACE_WIDTH)  # the face becomes 10 px wide


def _mime(filename: str) -> str:
    return {
        ".jpg": "image/jpeg",
        ".png": "image/png",
        ".gif": "image/gif",
        ".webp": "image/webp",
        ".bmp": "image/bmp",
        ".tif": "image/tiff",
        ".heic": "image/heic",
    }.get(Path(filename).suffix.lower(), "application/octet-stream")


def _error(filename: str, data: bytes, message: str, why: str) -> BadInput:
    return BadInput("", filename, data, _mime(filename), "error", message=message, why=why)


def _ok(filename: str, data: bytes, shape: tuple[int, int], faces: int | None, why: str) -> BadInput:
    return BadInput("", filename, data, _mime(filename), "ok", faces=faces, shape=shape, why=why)


def _random_bytes() -> bytes:
    return np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()


def _zip_bytes() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    return buffer.getvalue()


def _float_tiff(photo: Image.Image) -> bytes:
    return encode(Image.fromarray(np.asarray(photo.convert("L"), np.float32) / 255), "TIFF")


_NOT_IMAGE = "not an image we can read"
_CORRUPT = "truncated or corrupt"
_OVERSIZE = "the limit is"

Builder = Callable[[_Sources], BadInput]

# Not images, or broken ones: an ImageError with a clear message.
_ERROR_SPECS: dict[str, Builder] = {
    "empty": lambda s: _error("empty.jpg", b"", "is empty", "zero bytes"),
    "random_bytes": lambda s: _error("noise.jpg", _random_bytes(), _NOT_IMAGE, "4 KB of random bytes"),
    "text_named_jpg": lambda s: _error(
        "holiday.jpg", b"this is not a photo\n" * 20, _NOT_IMAGE, "a text file"
    ),
    "html_named_png": lambda s: _error(
        "page.png", b"<!doctype html><html><body>hi</body></html>", _NOT_IMAGE, "an HTML page named .png"
    ),
    "pdf_named_jpg": lambda s: _error(
        "scan.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", _NOT_IMAGE, "a PDF renamed .jpg"
    ),
    "zip_named_png": lambda s: _error("photos.png", _zip_bytes(), _NOT_IMAGE, "a zip archive renamed .png"),
    "truncated_jpeg": lambda s: _error(
        "cut.jpg", s.jpeg[: len(s.jpeg) // 2], _CORRUPT, "second half missing"
    ),
    "truncated_png": lambda s: _error("cut.png", s.png[: len(s.png) // 2], _CORRUPT, "second half missing"),
    "jpeg_header_only": lambda s: _error("header.jpg", s.jpeg[:200], _CORRUPT, "only the first 200 bytes"),
    "truncated_gif": lambda s: _error(
        "cut.gif", encode(s.photo, "GIF")[:20_000], _CORRUPT, "cut after 20 KB"
    ),
    "png_bomb": lambda s: _error(
        "bomb.png", png_bomb(), _OVERSIZE, "a decompression bomb: 144 MP of zeros in a few hundred KB"
    ),
    "png_header_100000": lambda s: _error(
        "huge.png", png_header_only(100_000, 100_000), _OVERSIZE, "a header claiming 100000x100000 (10 GP)"
    ),
    "png_header_20000": lambda s: _error(
        "big.png", png_header_only(20_000, 20_000), _OVERSIZE, "a header claiming 20000x20000 (400 MP)"
    ),
    "jpeg_header_20000": lambda s: _error(
        "big.jpg",
        jpeg_with_size(s.jpeg, 20_000, 20_000),
        _OVERSIZE,
        "a real JPEG whose SOF claims 20000x20000",
    ),
    "png_zero_width": lambda s: _error(
        "zero.png", png_header_only(0, 10), _NOT_IMAGE, "a header claiming width 0"
    ),
    "heic": lambda s: _error("iphone.heic", _heic(), _NOT_IMAGE, "HEIC is not supported: say so"),
    "ppm": lambda s: _error(
        "photo.ppm", encode(s.photo, "PPM"), _NOT_IMAGE, "PPM: Pillow reads it, we do not"
    ),
}

# Awkward but valid: a correct result (the right size, and the right number of faces where it matters).
_OK_SPECS: dict[str, Builder] = {
    "jpeg": lambda s: _ok("face.jpg", s.jpeg, s.shape, 1, "the plain case, for reference"),
    "png_named_jpg": lambda s: _ok("face.jpg", s.png, s.shape, 1, "a PNG named .jpg: the content decides"),
    "cmyk_jpeg": lambda s: _ok(
        "cmyk.jpg", encode(s.photo.convert("CMYK"), "JPEG", quality=92), s.shape, 1, "CMYK JPEG"
    ),
    "grayscale_jpeg": lambda s: _ok(
        "gray.jpg", encode(s.photo.convert("L"), "JPEG", quality=92), s.shape, 1, "8-bit grayscale"
    ),
    "bilevel_png": lambda s: _ok(
        "bw.png", encode(s.photo.convert("1"), "PNG"), s.shape, 1, "1-bit dithered black and white"
    ),
    "gray16_png": lambda s: _ok("gray16.png", _sixteen_bit_gray(s.photo), s.shape, 1, "16-bit grayscale PNG"),
    "rgb16_png": lambda s: _ok("rgb16.png", _sixteen_bit_rgb(s.photo), s.shape, 1, "16-bit per channel RGB"),
    "rgba_png": lambda s: _ok(
        "alpha.png", encode(_with_alpha(s.photo), "PNG"), s.shape, 1, "RGBA, sides half transparent"
    ),
    "gray_alpha_png": lambda s: _ok(
        "la.png", encode(s.photo.convert("LA"), "PNG"), s.shape, 1, "gray + alpha"
    ),
    "palette_png": lambda s: _ok(
        "palette.png",
        encode(s.photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        s.shape,
        1,
        "256-colour palette",
    ),
    "animated_gif": lambda s: _ok(
        "anim.gif", _animated_gif(s.photo), s.shape, 1, "3 frames; the first counts"
    ),
    "webp": lambda s: _ok("face.webp", encode(s.photo, "WEBP", quality=90), s.shape, 1, "WebP"),
    "bmp": lambda s: _ok("face.bmp", encode(s.photo, "BMP"), s.shape, 1, "BMP"),
    "tiff": lambda s: _ok("face.tif", encode(s.photo, "TIFF"), s.shape, 1, "TIFF"),
    "float_tiff": lambda s: _ok(
        "float.tif", _float_tiff(s.photo), s.shape, 1, "32-bit float gray TIFF, 0..1"
    ),
    "broken_exif": lambda s: _ok("exif.jpg", broken_exif_jpeg(s.photo), s.shape, 1, "EXIF block of garbage"),
    "one_pixel_png": lambda s: _ok(
        "dot.png", encode(Image.new("RGB", (1, 1), "white"), "PNG"), (1, 1), 0, "1x1"
    ),
    "one_pixel_jpeg": lambda s: _ok(
        "dot.jpg", encode(Image.new("RGB", (1, 1), "gray"), "JPEG"), (1, 1), 0, "1x1"
    ),
    "thin_strip": lambda s: _ok(
        "strip.png", encode(s.photo.resize((4000, 1)), "PNG"), (1, 4000), 0, "4000x1"
    ),
    "no_face": lambda s: _ok(
        "landscape.jpg", encode(_no_face_photo(), "JPEG", quality=92), (360, 480), 0, "a scene without a face"
    ),
    "twenty_faces": lambda s: _ok(
        "crowd.jpg",
        encode(s.crowd, "JPEG", quality=92),
        (s.crowd.height, s.crowd.width),
        20,
        "twenty real LFW faces in a 5x4 grid",
    ),
    "ten_pixel_face": lambda s: _ok(
        "tiny.png",
        encode(s.tiny_face, "PNG"),
        (s.tiny_face.height, s.tiny_face.width),
        0,
        "the face is 10 px wide, under every detector's minimum: 'no face', not a crash",
    ),
    "overexposed": lambda s: _ok(
        "bright.jpg",
        encode(_overexposed(s.photo), "JPEG", quality=92),
        s.shape,
        1,
        "every pixel x4: blown out, the face still shows",
    ),
    "all_white": lambda s: _ok(
        "white.jpg",
        encode(Image.new("RGB", s.photo.size, "white"), "JPEG"),
        s.shape,
        0,
        "a blank white frame",
    ),
    "underexposed": lambda s: _ok(
        "dark.jpg",
        encode(_underexposed(s.photo), "JPEG", quality=92),
        s.shape,
        1,
        "1/16 of the light (values 0..15)",
    ),
    "all_black": lambda s: _ok(
        "black.png", encode(Image.new("RGB", s.photo.size, "black"), "PNG"), s.shape, 0, "a black frame"
    ),
    **{
        f"exif_orientation_{o}": (
            lambda s, o=o: _ok(
                f"exif{o}.jpg",
                exif_rotated_jpeg(s.photo, o),
                s.shape,
                1,
                f"pixels stored turned; EXIF Orientation={o} turns them upright",
            )
        )
        for o in EXIF_ORIENTATIONS
    },
}

#: Every kind, errors first; static, so pytest can parametrize without building anything.
_SPECS: dict[str, Builder] = {**_ERROR_SPECS, **_OK_SPECS}
KINDS: tuple[str, ...] = tuple(_SPECS)
ERROR_KINDS: tuple[str, ...] = tuple(_ERROR_SPECS)
OK_KINDS: tuple[str, ...] = tuple(_OK_SPECS)


@functools.lru_cache(maxsize=4)
def _sources(sample_data: Path) -> _Sources:
    return _Sources(sample_data)


@functools.lru_cache(maxsize=256)
def bad_input(sample_data: Path, kind: str) -> BadInput:
    """One case of the corpus, built from the real photos under ``sample_data`` (cached)."""
    return dataclasses.replace(_SPECS[kind](_sources(Path(sample_data))), kind=kind)


def bad_inputs(sample_data: Path) -> tuple[BadInput, ...]:
    """The whole corpus, in ``KINDS`` order."""
    return tuple(bad_input(sample_data, kind) for kind in KINDS)
