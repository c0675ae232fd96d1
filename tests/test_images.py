"""load_image on bad and awkward files, all built here from real photos or a few lines of Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from facecore.images import (
    MAX_PIXELS,
    ImageError,
    decode_image,
    downscale_to_max_side,
    image_hash,
    load_image,
    read_bytes,
)

# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def face_photo(faces_small: dict[str, list[Path]]) -> Image.Image:
    """A real face photo (630x374), small enough to re-encode quickly in many formats."""
    return Image.open(faces_small["kit_harington"][1]).convert("RGB")


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def assert_rgb(array: np.ndarray, shape: tuple[int, int]) -> None:
    assert array.shape == (*shape, 3)
    assert array.dtype == np.uint8
    assert array.flags.c_contiguous


def assert_image_error(data: bytes, *, contains: str = "", **kwargs) -> str:
    with pytest.raises(ImageError) as info:
        decode_image(data, **kwargs)
    message = str(info.value)
    assert message.strip() and contains in message
    return message


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def huge_png_header(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming a huge size, and almost no pixel data: a bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


# ----------------------------------------------------------------------------- bad input


def test_empty_bytes() -> None:
    assert_image_error(b"", contains="empty")


def test_random_bytes() -> None:
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert_image_error(data, contains="not an image")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "holiday.jpg"
    path.write_text("this is not a photo\n" * 20)
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_missing_path_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(face_photo: Image.Image, fmt: str) -> None:
    data = encode(face_photo, fmt)
    assert_image_error(data[: len(data) // 2], contains="truncated or corrupt")


def test_corrupt_jpeg_body(face_photo: Image.Image) -> None:
    data = bytearray(encode(face_photo, "JPEG"))
    data[len(data) // 3 :] = b"\x00" * (len(data) - len(data) // 3)  # keep the header, wipe the scan
    # libjpeg may decode zeros as grey blocks rather than fail; either outcome must be clean.
    try:
        assert_rgb(decode_image(bytes(data)), (374, 630))
    except ImageError as error:
        assert str(error)


def test_decompression_bomb_beyond_pillow_limit() -> None:
    message = assert_image_error(huge_png_header(30_000, 30_000), contains="limit")
    assert "900 MP" in message  # the size Pillow reported, in words a person can read


def test_image_over_our_limit_is_refused_before_decoding() -> None:
    message = assert_image_error(huge_png_header(7_000, 7_000))  # 49 MP > 40 MP, below Pillow's limit
    assert message == "The image is 7000x7000 pixels (49 MP); the limit is 40 MP."


def test_max_pixels_option(face_photo: Image.Image) -> None:
    data = encode(face_photo, "PNG")
    assert_image_error(data, contains="630x374", max_pixels=100_000)
    assert_rgb(decode_image(data, max_pixels=630 * 374), (374, 630))


def test_unsupported_format_is_refused() -> None:
    # Pillow can read PPM, but we only accept the formats we name in the error message.
    data = encode(Image.new("RGB", (8, 8)), "PPM")
    assert_image_error(data, contains="PNG, JPEG, WebP")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from(
        [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP"]
    ),
    body=st.binary(max_size=300),
)
def test_garbage_only_ever_raises_image_error(prefix: bytes, body: bytes) -> None:
    try:
        assert_rgb(decode_image(prefix + body), decode_image(prefix + body).shape[:2])
    except ImageError as error:
        assert str(error)


# ----------------------------------------------------------------------------- awkward input


def test_sources_bytes_path_and_stream(tmp_path: Path, face_photo: Image.Image) -> None:
    data = encode(face_photo, "PNG")
    path = tmp_path / "face.png"
    path.write_bytes(data)
    stream = io.BytesIO(data)
    stream.read()  # already consumed once, as an upload widget might leave it
    expected = np.asarray(face_photo)
    for source in (data, bytearray(data), str(path), path, stream):
        np.testing.assert_array_equal(load_image(source), expected)


def test_one_pixel_image() -> None:
    array = decode_image(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    assert_rgb(array, (1, 1))
    assert array[0, 0].tolist() == [10, 20, 30]


def test_cmyk_jpeg(face_photo: Image.Image) -> None:
    array = decode_image(encode(face_photo.convert("CMYK"), "JPEG", quality=95))
    assert_rgb(array, (374, 630))
    # Same picture after the CMYK round trip: colours stay close on average.
    assert np.abs(array.astype(int) - np.asarray(face_photo, dtype=int)).mean() < 8


def test_16_bit_png_is_scaled_not_clipped() -> None:
    gradient = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (4, 1))
    image = Image.fromarray(gradient)
    assert image.mode == "I;16"
    array = decode_image(encode(image, "PNG"))
    assert_rgb(array, (4, 256))
    expected = ((gradient.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    np.testing.assert_array_equal(array[..., 0], expected)
    np.testing.assert_array_equal(array[..., 0], array[..., 2])
    assert array.min() == 0 and array.max() == 255
    assert len(np.unique(array)) > 200  # clipping at 255 would leave almost one value


def test_rgba_transparency_becomes_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere ...
    rgba[:2, :, 3] = 0  # ... invisible in the top half
    rgba[2:, :, 3] = 255
    array = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert_rgb(array, (4, 4))
    assert (array[:2] == 255).all()
    assert array[2:].reshape(-1, 3).tolist() == [[255, 0, 0]] * 8


def test_gray_alpha_composites_on_white() -> None:
    image = Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA")
    array = decode_image(encode(image, "PNG"))
    assert array.reshape(-1, 3).tolist() == [[255, 255, 255], [0, 0, 0]]


def test_palette_with_and_without_transparency() -> None:
    image = Image.new("P", (6, 2))
    image.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    image.paste(1, (3, 0, 6, 2))  # left blue (index 0), right green (index 1)
    plain = decode_image(encode(image, "PNG"))
    assert plain[0, 0].tolist() == [0, 0, 255] and plain[0, 5].tolist() == [0, 255, 0]
    see_through = decode_image(encode(image, "PNG", transparency=0))
    assert see_through[0, 0].tolist() == [255, 255, 255] and see_through[0, 5].tolist() == [0, 255, 0]


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale(face_photo: Image.Image, mode: str) -> None:
    array = decode_image(encode(face_photo.convert(mode), "PNG"))
    assert_rgb(array, (374, 630))
    np.testing.assert_array_equal(array[..., 0], array[..., 1])


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (5, 3), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    array = decode_image(data)
    assert_rgb(array, (3, 5))
    assert (array.reshape(-1, 3) == [255, 0, 0]).all()


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF", "GIF"])
def test_other_formats_of_a_real_photo(face_photo: Image.Image, fmt: str) -> None:
    assert_rgb(decode_image(encode(face_photo, fmt)), (374, 630))


@pytest.mark.parametrize(("orientation", "turns"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(face_photo: Image.Image, orientation: int, turns: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(face_photo, "JPEG", exif=exif.tobytes())
    stored = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # pixels as stored, not rotated
    array = load_image(data)
    expected_shape = (374, 630) if orientation == 3 else (630, 374)
    assert_rgb(array, expected_shape)
    np.testing.assert_array_equal(array, np.rot90(stored, turns))


# ----------------------------------------------------------------------------- helpers


def test_read_bytes_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert read_bytes(path) == read_bytes(io.BytesIO(b"abc")) == b"abc"
    assert image_hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert image_hash(b"abd") != image_hash(b"abc")
    with pytest.raises(TypeError):
        read_bytes(12)  # type: ignore[arg-type]


def test_max_pixels_default() -> None:
    assert MAX_PIXELS == 40_000_000


def test_downscale_to_max_side() -> None:
    image = np.zeros((1000, 2500, 3), np.uint8)
    small, scale = downscale_to_max_side(image, 500)
    assert small.shape == (200, 500, 3) and scale == pytest.approx(0.2)
    same, one = downscale_to_max_side(image, 2500)
    assert same is image and one == 1.0
    with pytest.raises(ValueError):
        downscale_to_max_side(image, 0)
