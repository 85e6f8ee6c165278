"""Bytes -> :class:`CapturedImage`: format sniffing, size limits checked from the header, EXIF orientation.

Order of checks (each failure is an :class:`~palmid.errors.ImageError` with a reason code):

1. ``empty_image``        no bytes at all;
2. ``image_too_large``    more than ``max_bytes`` bytes;
3. ``unsupported_format`` recognisably another format (GIF, TIFF, HEIC, PDF, ...); unknown bytes are
   ``unreadable_image``;
4. ``image_too_large``    width x height *from the header* above ``max_pixels`` (before any pixel is decoded,
   so a decompression bomb never allocates its pixels);
5. ``unreadable_image``   truncated or corrupt data.

The EXIF orientation is applied to the pixels and then every piece of metadata is dropped: only the ``RGB``
array survives in the returned :class:`CapturedImage`.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from palmid.capture.image import CapturedImage
from palmid.errors import ImageError

__all__ = ["SUPPORTED_FORMATS", "decode_image", "sniff_format"]

SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "WEBP")
"""Formats accepted by :func:`decode_image` (Pillow names)."""

_EXIF_ORIENTATION_TAG = 0x0112

_OTHER_FORMATS: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"%PDF", 0, "PDF"),
    (b"ftyp", 4, "HEIF/AVIF/MP4"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"8BPS", 0, "PSD"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", 0, "JPEG XL"),
    (b"<svg", 0, "SVG"),
    (b"<?xml", 0, "SVG/XML"),
)


def sniff_format(data: bytes) -> str | None:
    """Return the supported format name from the magic bytes, or ``None`` when it is not one of them."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"BM"):
        return "BMP"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _other_format(data: bytes) -> str | None:
    for magic, offset, name in _OTHER_FORMATS:
        if data[offset : offset + len(magic)] == magic:
            return name
    return None


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int,
                 min_long_side_px: int | None = None) -> CapturedImage:
    """Decode ``data`` (JPEG, PNG, BMP or WebP) into an orientation-corrected RGB image, within limits.

    ``min_long_side_px`` (optional speed knob): a JPEG larger than needed is decoded directly at a reduced DCT
    scale (1/2, 1/4 or 1/8), the smallest that keeps its long side at least ``min_long_side_px``; e.g. 800 turns
    a 1600 x 1200 photo into 800 x 600 at a third of the decoding cost. ``None`` (default) decodes at full size.
    The pixel limit always applies to the size declared in the header.
    """
    if not data:
        raise ImageError("the image is empty", code="empty_image")
    if len(data) > max_bytes:
        raise ImageError(f"the image is larger than {max_bytes} bytes", code="image_too_large")
    fmt = sniff_format(data)
    if fmt is None:
        other = _other_format(data)
        if other is not None:
            raise ImageError(f"{other} images are not supported (use JPEG, PNG, BMP or WebP)",
                             code="unsupported_format")
        raise ImageError("the data is not a readable image", code="unreadable_image")
    with warnings.catch_warnings():
        # Pillow warns about (or refuses) huge headers itself; we apply our own, stricter limit below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)  # corrupt EXIF / metadata: ignored, never trusted
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
        except Image.DecompressionBombError as exc:
            raise ImageError("the image has too many pixels", code="image_too_large") from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageError(f"the {fmt} data is corrupt", code="unreadable_image") from exc
        with image:
            return _decode_opened(image, fmt=fmt, max_pixels=max_pixels, min_long_side_px=min_long_side_px)


def _decode_opened(image: Image.Image, *, fmt: str, max_pixels: int, min_long_side_px: int | None) -> CapturedImage:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError("the image has no pixels", code="unreadable_image")
    if width * height > max_pixels:
        raise ImageError(f"the image has more than {max_pixels} pixels", code="image_too_large")
    orientation = _read_orientation(image)
    try:
        if fmt == "JPEG" and min_long_side_px is not None and max(width, height) >= 2 * min_long_side_px:
            scale = max(width, height) / min_long_side_px  # draft picks the largest reduction keeping >= size
            image.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
        image.load()
        rgb_image = image if image.mode == "RGB" else image.convert("RGB")
        pixels: NDArray[np.uint8] = np.asarray(rgb_image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"the {fmt} data is truncated or corrupt", code="unreadable_image") from exc
    except MemoryError as exc:  # pragma: no cover - depends on the host
        raise ImageError("the image is too large to decode", code="image_too_large") from exc
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError("the image could not be converted to RGB", code="unreadable_image")
    oriented = _apply_orientation(pixels, orientation)
    return CapturedImage(rgb=np.ascontiguousarray(oriented), source_format=fmt.lower())


def _read_orientation(image: Image.Image) -> int:
    """EXIF orientation 1..8 (1 when absent or invalid). A corrupt EXIF block is ignored, not trusted."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF: we just ignore such EXIF
            value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # any EXIF parsing problem means "no orientation"
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(pixels: NDArray[np.uint8], orientation: int) -> NDArray[np.uint8]:
    """Turn stored pixels into display orientation (EXIF 2..8: mirror and/or rotate)."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1, :]
    if orientation == 5:
        return pixels.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(pixels, k=-1)
    if orientation == 7:
        return np.rot90(pixels, k=-1)[::-1, :]
    if orientation == 8:
        return np.rot90(pixels, k=1)
    return pixels
