"""Synthetic grey 'hands' for detection tests: a textured palm with four fingers and dark gaps between them."""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND = 15
SKIN = 150


def palm_texture(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """Skin-like texture with dark creases (float32)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(SKIN, 12, (height, width)).astype(np.float32), (0, 0), 2)
    for _ in range(25):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, max(height, width), 4))
        cv2.line(base, (x0, y0), (x1, y1), SKIN - 50.0, 2)
    return base


def fingers_cut_by_top_border(*, seed: int = 0) -> tuple[np.ndarray, tuple[tuple[float, float], tuple[float, float]]]:
    """A 300 x 360 grey device image: palm at the bottom, four fingers running off the top border.

    Returns the image and the two outer valley points (x, y) (index-middle and ring-little gaps).
    """
    height, width = 300, 360
    mask = np.zeros((height, width), np.uint8)
    cv2.rectangle(mask, (40, 120), (330, height - 1), 255, thickness=-1)
    finger_width, gap = 58, 16
    lefts = [50 + k * (finger_width + gap) for k in range(4)]
    for left in lefts:
        cv2.rectangle(mask, (left, 0), (left + finger_width, 130), 255, thickness=-1)
    # rounded valleys: the gap between two fingers ends in a semicircle at y = 120
    valleys = []
    for k in range(3):
        centre_x = lefts[k] + finger_width + gap // 2
        cv2.rectangle(mask, (centre_x - gap // 2, 0), (centre_x + gap // 2, 120), 0, thickness=-1)
        cv2.circle(mask, (centre_x, 120), gap // 2, 0, thickness=-1)
        valleys.append((float(centre_x), 120.0 + gap // 2))
    image = np.full((height, width), BACKGROUND, np.float32)
    texture = palm_texture(height, width, seed=seed)
    image[mask > 0] = texture[mask > 0]
    return np.clip(image, 0, 255).astype(np.uint8), (valleys[0], valleys[2])


def whole_hand_inside(*, seed: int = 0) -> np.ndarray:
    """A hand fully inside a dark 400 x 400 picture (fingers up, not touching any border)."""
    size = 400
    mask = np.zeros((size, size), np.uint8)
    cv2.rectangle(mask, (110, 180), (300, 360), 255, thickness=-1)
    for k, length in enumerate((120, 140, 130, 100)):
        left = 112 + k * 48
        cv2.rectangle(mask, (left, 190 - length), (left + 38, 190), 255, thickness=-1)
        cv2.circle(mask, (left + 19, 190 - length), 19, 255, thickness=-1)
    image = np.full((size, size), BACKGROUND, np.float32)
    texture = palm_texture(size, size, seed=seed)
    image[mask > 0] = texture[mask > 0]
    return np.clip(image, 0, 255).astype(np.uint8)
