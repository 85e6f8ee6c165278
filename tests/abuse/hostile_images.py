"""Hostile uploads, built in memory: corrupt and truncated files of each format, bombs, wrong types, no/two hands.

Each :class:`Hostile` names the input, its bytes, the multipart content type it is sent with, and the reason
codes a correct service may answer with (``None``: any 4xx reason code is acceptable, e.g. quality refusals).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

UNREADABLE = frozenset({"unreadable_image"})
TOO_LARGE = frozenset({"image_too_large"})
UNSUPPORTED = frozenset({"unsupported_format", "unreadable_image"})
NO_PALM = frozenset(
    {"no_hand", "roi_failed", "too_dark", "too_bright", "blurry", "low_contrast", "palm_too_small", "poor_quality"}
)


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    content_type: str = "image/jpeg"
    expected_codes: frozenset[str] | None = None
    """Reason codes that are right for this input (None: any 4xx with a reason code)."""
    benign: bool = False
    """A valid photo in a hostile wrapping (huge metadata, wrong declared type, large): the service may accept it,
    but then its answer must equal the answer for the clean photo."""


def _encode(pixels: NDArray[np.uint8], fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decode_rgb(photo: bytes) -> NDArray[np.uint8]:
    pixels = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("not a decodable image")
    return np.ascontiguousarray(pixels[:, :, ::-1], dtype=np.uint8)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int, *, rows: int = 16) -> bytes:
    """A tiny, well-formed PNG header claiming ``width`` x ``height`` (grey, 8 bit), with a few zero rows."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = zlib.compress(b"\x00" * (rows * (width + 1)), 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", raw) + _png_chunk(b"IEND", b"")


def zlib_bomb_png(side_px: int) -> bytes:
    """A real zlib bomb: a ``side_px`` square black PNG whose pixels are all in the (tiny) compressed stream."""
    ihdr = struct.pack(">IIBBBBB", side_px, side_px, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side_px + 1)
    chunks = [compressor.compress(row) for _ in range(side_px)]
    raw = b"".join(chunks) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", raw) + _png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int, base: bytes) -> bytes:
    """``base`` (a JPEG) with the main image's SOFn frame header rewritten to claim ``width`` x ``height``.

    Segments are walked from the start, so an EXIF thumbnail (inside APP1) is never the one rewritten.
    """
    data = bytearray(base)
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ValueError("lost marker sync")
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        at += 2 + length
    raise ValueError("no SOF marker")


def with_app_segments(jpeg: bytes, *, total_bytes: int, marker: int = 0xE1) -> bytes:
    """Insert APPn segments (EXIF-like, 64 KiB each) right after SOI until ``total_bytes`` of metadata."""
    segments: list[bytes] = []
    payload = b"Exif\x00\x00" + b"MM\x00*\x00\x00\x00\x08" + b"\x00" * (65_000 - 14)
    while sum(len(s) for s in segments) < total_bytes:
        segments.append(bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload)
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def bit_flip(data: bytes, *, start_fraction: float, count: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = bytearray(data)
    start = int(len(buffer) * start_fraction)
    for offset in rng.integers(start, len(buffer), size=count):
        buffer[int(offset)] ^= 0xFF
    return bytes(buffer)


def corrupt_bmp_header(bmp: bytes) -> bytes:
    """A BMP whose info header claims a 2^30 wide image and whose pixel offset points past the file."""
    buffer = bytearray(bmp)
    buffer[10:14] = struct.pack("<I", 0x7FFF_FFF0)
    buffer[18:22] = struct.pack("<i", 1 << 30)
    return bytes(buffer)


def mirrored_pair(photo_jpeg: bytes) -> bytes:
    """The photo and its mirror image side by side: two hands (a right and a "left" one)."""
    pixels = cv2.imdecode(np.frombuffer(photo_jpeg, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("not a JPEG")
    pair = np.concatenate([pixels, pixels[:, ::-1]], axis=1)
    ok, encoded = cv2.imencode(".jpg", pair, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("encode failed")
    return encoded.tobytes()


def printed_looking(photo_jpeg: bytes, *, colour: bool = False) -> bytes:
    """A "printout" of the photo: washed out (35-45 % contrast, lifted blacks), flat lighting, a halftone screen,
    slightly blurred, on white paper; grey (laser print) or ``colour`` (inkjet: the hue survives)."""
    pixels = cv2.imdecode(np.frombuffer(photo_jpeg, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("not a JPEG")
    if not colour:
        pixels = cv2.cvtColor(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    flat = pixels.astype(np.float32) * (0.45 if colour else 0.35) + (120 if colour else 150)
    yy, xx = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    screen = (np.sin(xx * 1.3) * np.sin(yy * 1.3) * 18.0)[..., None]
    halftone = cv2.GaussianBlur((flat + screen).clip(0, 255).astype(np.uint8), (5, 5), 0)
    paper = np.full((pixels.shape[0] + 120, pixels.shape[1] + 120, 3), 235, np.uint8)
    paper[60:-60, 60:-60] = halftone
    ok, encoded = cv2.imencode(".jpg", paper, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("encode failed")
    return encoded.tobytes()


def reencoded(photo_jpeg: bytes) -> list[bytes]:
    """The photo (half size) as PNG, BMP and WebP."""
    rgb = decode_rgb(photo_jpeg)
    small = np.ascontiguousarray(rgb[::2, ::2])
    return [_encode(small, "PNG"), _encode(small, "BMP"), _encode(small, "WEBP", quality=80)]


def hostile_inputs(photo_jpeg: bytes, *, max_image_bytes: int) -> list[Hostile]:
    """Every hostile input, built from one real palm photo (JPEG)."""
    rng = np.random.default_rng(7)
    rgb = decode_rgb(photo_jpeg)
    small = np.ascontiguousarray(rgb[::2, ::2])
    png, bmp, webp = _encode(small, "PNG"), _encode(small, "BMP"), _encode(small, "WEBP", quality=80)
    noise: NDArray[np.uint8] = rng.integers(0, 256, size=(900, 1200, 3), dtype=np.uint8)
    grey = np.full((900, 1200, 3), 128, np.uint8)
    big_side = (8660, 5774)  # 50.0 megapixels
    big_jpeg = _encode(np.full((big_side[1], big_side[0], 3), 120, np.uint8), "JPEG", quality=50)
    items = [
        Hostile("zero-bytes", b"", expected_codes=frozenset({"empty_image"})),
        Hostile("one-byte", b"\xff", expected_codes=UNREADABLE),
        # truncated and corrupt files of each format
        Hostile("jpeg-truncated-header", photo_jpeg[:300], expected_codes=UNREADABLE),
        Hostile("jpeg-truncated-30pct", photo_jpeg[: len(photo_jpeg) * 3 // 10], expected_codes=None),
        Hostile("jpeg-bitflips", bit_flip(photo_jpeg, start_fraction=0.05, count=400, seed=1)),
        Hostile("jpeg-garbage-after-soi", b"\xff\xd8\xff" + rng.bytes(50_000), expected_codes=UNREADABLE),
        Hostile("png-truncated", png[: len(png) // 3], "image/png", UNREADABLE),
        Hostile("png-bad-crc", bit_flip(png, start_fraction=0.3, count=50, seed=2), "image/png", None),
        Hostile("png-header-only", png[:33], "image/png", UNREADABLE),
        Hostile("bmp-truncated", bmp[: len(bmp) // 2], "image/bmp", None),
        Hostile("bmp-corrupt-header", corrupt_bmp_header(bmp), "image/bmp", UNREADABLE | TOO_LARGE),
        Hostile("webp-truncated", webp[: len(webp) // 2], "image/webp", UNREADABLE),
        Hostile("webp-bitflips", bit_flip(webp, start_fraction=0.1, count=200, seed=3), "image/webp", None),
        # size and decompression bombs
        Hostile("jpeg-50-megapixels", big_jpeg, expected_codes=TOO_LARGE),
        Hostile(
            "jpeg-39-megapixels-upscaled",
            _encode(np.asarray(cv2.resize(rgb, (7200, 5400)), dtype=np.uint8), "JPEG", quality=70),
            benign=True,
        ),
        Hostile("png-claims-1e10-pixels", png_claiming(100_000, 100_000), "image/png", TOO_LARGE),
        Hostile("png-zlib-bomb-400mpx", zlib_bomb_png(20_000), "image/png", TOO_LARGE),
        Hostile("jpeg-claims-65535-square", jpeg_claiming(65_535, 65_535, photo_jpeg), expected_codes=TOO_LARGE),
        Hostile(
            "over-max-bytes", photo_jpeg + b"\x00" * (max_image_bytes + 1 - len(photo_jpeg)), "image/jpeg", TOO_LARGE
        ),
        Hostile("huge-exif-8mib", with_app_segments(photo_jpeg, total_bytes=8 * 1024 * 1024), benign=True),
        Hostile(
            "huge-icc-app2-2mib", with_app_segments(photo_jpeg, total_bytes=2 * 1024 * 1024, marker=0xE2), benign=True
        ),
        # wrong content types / other formats
        Hostile("gif", b"GIF89a" + rng.bytes(2000), "image/gif", UNSUPPORTED),
        Hostile("tiff", b"II*\x00" + rng.bytes(2000), "image/tiff", UNSUPPORTED),
        Hostile("pdf-as-jpeg", b"%PDF-1.7\n" + rng.bytes(2000), "image/jpeg", UNSUPPORTED),
        Hostile(
            "svg-as-png",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>',
            "image/png",
            UNSUPPORTED,
        ),
        Hostile("html-as-image", b"<html><script>alert(1)</script></html>", "text/html", UNSUPPORTED),
        Hostile("jpeg-sent-as-text", photo_jpeg, "text/plain", benign=True),
        Hostile("jpeg-sent-as-octet-stream", photo_jpeg, "application/octet-stream", benign=True),
        Hostile("json-sent-as-image", b'{"image": "x"}', "application/json", UNSUPPORTED),
        # decodable, but no palm
        Hostile("noise", _encode(noise, "PNG"), "image/png", NO_PALM),
        Hostile("flat-grey", _encode(grey, "JPEG"), expected_codes=NO_PALM),
        Hostile("black", _encode(np.zeros_like(grey), "JPEG"), expected_codes=NO_PALM),
        Hostile("tiny-1x1", _encode(np.zeros((1, 1, 3), np.uint8), "PNG"), "image/png", None),
        Hostile("two-hands", mirrored_pair(photo_jpeg), expected_codes=frozenset({"multiple_hands"})),
        Hostile("printed-looking", printed_looking(photo_jpeg), expected_codes=None),
    ]
    return items
