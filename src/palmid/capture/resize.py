"""Fast anti-aliased downscaling shared by quality assessment and hand landmarking."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["downscale_to"]


def downscale_to(pixels: NDArray[np.uint8], long_side_px: int) -> NDArray[np.uint8]:
    """``pixels`` resized so that its long side is ``long_side_px`` (never enlarged), anti-aliased.

    OpenCV's area interpolation is fast only for factors 2 and 4, so the image is first area-reduced by the
    largest power of two that keeps it at least ``long_side_px`` (factors 2/4 at a time), then bilinearly resized
    to the exact size (a factor below 2: no aliasing).
    """
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest <= long_side_px:
        return pixels
    while max(pixels.shape[:2]) >= 2 * long_side_px:
        factor = 4 if max(pixels.shape[:2]) >= 4 * long_side_px else 2
        reduced = (max(1, pixels.shape[1] // factor), max(1, pixels.shape[0] // factor))
        pixels = np.asarray(cv2.resize(pixels, reduced, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    scale = long_side_px / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
