"""Synthetic palm-like ROIs for feature tests: random dark creases and wrinkles on a smooth background."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from palmid.detect.palm import PalmROI


def palm_texture(seed: int, size_px: int = 192) -> NDArray[np.uint8]:
    """A larger-than-ROI texture so that shifted / rotated crops stay inside it."""
    rng = np.random.default_rng(seed)
    image = np.full((size_px, size_px), 150, dtype=np.float32)
    for _ in range(40):
        points = rng.integers(0, size_px, size=(3, 2)).astype(np.int32)
        cv2.polylines(image, [points], False, float(rng.integers(60, 120)), int(rng.integers(1, 4)), cv2.LINE_AA)
    image = cv2.GaussianBlur(image, (0, 0), 1.2)
    image += rng.normal(0, 4, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def roi_from(texture: NDArray[np.uint8], *, dx_px: float = 0, dy_px: float = 0, angle_deg: float = 0) -> PalmROI:
    """The central 128 px crop of ``texture`` moved by (dx, dy) and rotated by ``angle_deg``."""
    size = texture.shape[0]
    centre = (size - 1) / 2
    warp = cv2.getRotationMatrix2D((centre, centre), angle_deg, 1.0)
    warp[:, 2] += (dx_px, dy_px)
    moved = cv2.warpAffine(texture, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    start = (size - 128) // 2
    return PalmROI(pixels=np.ascontiguousarray(moved[start : start + 128, start : start + 128]), method="roi")
