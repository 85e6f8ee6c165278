"""decode_image: formats, limits checked from the header, hostile inputs, EXIF orientation."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from palmid.capture.decode import decode_image, sniff_format
from palmid.errors import ImageError

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 4_000_000}
FORMATS = ["JPEG", "PNG", "BMP", "WEBP"]


def _pattern(height: int = 60, width: int = 80) -> np.ndarray:
    """A smooth colour pattern (survives lossy compression) with a distinct top-left corner."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    rgb[:10, :10] = (255, 255, 255)
    return rgb


def _encode(array: np.ndarray, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _code(data: bytes, **limits: int) -> str:
    with pytest.raises(ImageError) as caught:
        decode_image(data, **{**LIMITS, **limits})
    return caught.value.code


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_decodes_to_rgb(fmt: str) -> None:
    source = _pattern()
    lossless = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    image = decode_image(_encode(source, fmt, **lossless), **LIMITS)
    assert image.rgb.shape == (60, 80, 3)
    assert image.rgb.dtype == np.uint8
    assert image.source_format == fmt.lower()
    tolerance = 12 if fmt == "JPEG" else 0
    assert np.abs(image.rgb.astype(int) - source.astype(int)).mean() <= tolerance


def test_grey_and_alpha_images_become_three_channels() -> None:
    grey = (np.arange(50 * 40) % 256).astype(np.uint8).reshape(50, 40)
    image = decode_image(_encode(grey, "PNG"), **LIMITS)
    assert image.rgb.shape == (50, 40, 3)
    assert np.array_equal(image.rgb[..., 0], grey) and np.array_equal(image.rgb[..., 2], grey)
    rgba = np.dstack([_pattern(), np.full((60, 80), 128, np.uint8)])
    assert decode_image(_encode(rgba, "PNG"), **LIMITS).rgb.shape == (60, 80, 3)


def test_empty_and_oversized_byte_strings() -> None:
    assert _code(b"") == "empty_image"
    assert _code(_encode(_pattern(), "PNG"), max_bytes=100) == "image_too_large"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"GIF89a" + b"\x00" * 64, "unsupported_format"),
        (b"II*\x00" + b"\x00" * 64, "unsupported_format"),
        (b"%PDF-1.7 hello", "unsupported_format"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 32, "unsupported_format"),
        (b"hello, this is not an image at all", "unreadable_image"),
        (bytes(range(256)) * 4, "unreadable_image"),
        (b"\xff\xd8\xff" + b"\x00" * 100, "unreadable_image"),
        (b"BM" + b"\xff" * 100, "unreadable_image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 40, "unreadable_image"),
    ],
)
def test_wrong_or_garbage_formats(data: bytes, code: str) -> None:
    assert _code(data) == code


def test_a_real_gif_is_unsupported() -> None:
    assert _code(_encode(_pattern(), "GIF")) == "unsupported_format"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("keep", [0.5, 0.9, 40])
def test_truncated_files_are_unreadable(fmt: str, keep: float) -> None:
    noisy = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    data = _encode(noisy, fmt)
    cut = int(keep) if keep > 1 else int(len(data) * keep)
    assert _code(data[:cut]) == "unreadable_image"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` followed by a tiny compressed stream (a 'bomb')."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [3_000, 20_000, 60_000])
def test_decompression_bomb_is_refused_from_the_header(side: int) -> None:
    data = _png_header_only(side, side)
    assert len(data) < 1000
    started = time.perf_counter()
    assert _code(data) == "image_too_large"
    assert time.perf_counter() - started < 1.0  # refused without decoding (or allocating) the pixels


def test_pixel_limit_is_inclusive() -> None:
    data = _encode(_pattern(40, 50), "PNG")
    assert decode_image(data, max_bytes=10**6, max_pixels=2000).rgb.shape == (40, 50, 3)
    assert _code(data, max_pixels=1999) == "image_too_large"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    source = _pattern()
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(source, "JPEG", quality=95, exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    image = decode_image(data, **LIMITS)
    assert image.rgb.shape == expected.shape
    assert np.array_equal(image.rgb, expected)


def test_metadata_is_stripped_and_huge_or_corrupt_exif_is_harmless() -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: a near-maximal APP1 segment
    exif[0x0112] = 6
    image = decode_image(_encode(_pattern(), "JPEG", exif=exif.tobytes()), **LIMITS)
    assert image.rgb.shape == (80, 60, 3)  # orientation 6 applied
    assert set(vars(image)) == {"rgb", "source_format"}
    corrupt = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + b"\x01" * 32
    plain = _encode(_pattern(), "JPEG")
    with_corrupt_exif = plain[:2] + b"\xff\xe1" + struct.pack(">H", len(corrupt) + 2) + corrupt + plain[2:]
    assert decode_image(with_corrupt_exif, **LIMITS).rgb.shape == (60, 80, 3)


def test_sniff_format() -> None:
    assert sniff_format(_encode(_pattern(), "WEBP")) == "WEBP"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVE") is None


def test_large_jpeg_can_be_decoded_at_a_reduced_scale() -> None:
    data = _encode(np.repeat(np.repeat(_pattern(), 8, axis=0), 8, axis=1), "JPEG", quality=90)  # 480 x 640
    assert decode_image(data, **LIMITS).rgb.shape == (480, 640, 3)
    assert decode_image(data, **LIMITS, min_long_side_px=300).rgb.shape == (240, 320, 3)
    assert decode_image(data, **LIMITS, min_long_side_px=80).rgb.shape == (60, 80, 3)
    assert decode_image(data, **LIMITS, min_long_side_px=400).rgb.shape == (480, 640, 3)  # 1/2 would be < 400
    png = _encode(_pattern(), "PNG")
    assert decode_image(png, **LIMITS, min_long_side_px=20).rgb.shape == (60, 80, 3)  # only JPEG is reduced
    assert _code(data, max_pixels=1000) == "image_too_large"  # the header size is what the limit checks
