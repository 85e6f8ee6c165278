"""MediaPipe Tasks ``HandLandmarker``: 21 hand landmarks per hand, in full-resolution pixel coordinates.

The model (``hand_landmarker.task``, built by ``palmid models build``) is loaded lazily on the first call and
shared by all threads; inference is serialised by a lock because a MediaPipe task object is not re-entrant.
Photos are downscaled to :data:`LANDMARK_INPUT_PX` on their long side before landmarking (the landmark network
works on a 224 px crop anyway); the points are scaled back so that the ROI is cut from the full image.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from palmid.capture.resize import downscale_to
from palmid.errors import ModelUnavailableError

__all__ = ["LANDMARK_INPUT_PX", "HandLandmarkDetector", "HandLandmarks"]

LANDMARK_INPUT_PX = 480
"""Long side (pixels) of the copy of the photo given to MediaPipe."""

# MediaPipe hand landmark indices.
WRIST = 0
INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP = 5, 9, 13, 17
FINGER_CHAINS: tuple[tuple[int, int, int, int], ...] = ((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16),
                                                        (17, 18, 19, 20))
"""(MCP, PIP, DIP, TIP) of index, middle, ring and little fingers."""


@dataclass(frozen=True, eq=False)
class HandLandmarks:
    """One detected hand: ``points_px`` is ``(21, 2)`` float32 (x, y) in the coordinates of the full image."""

    points_px: NDArray[np.float32]
    label: Literal["Left", "Right"]
    """MediaPipe's handedness label (its own convention; see :func:`palmid.detect.roi.landmark_frame`)."""
    score: float

    def bounding_box(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the landmarks."""
        xs, ys = self.points_px[:, 0], self.points_px[:, 1]
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


class HandLandmarkDetector:
    """Lazily-loaded, thread-safe wrapper of MediaPipe's ``HandLandmarker`` (IMAGE mode, up to 2 hands)."""

    def __init__(self, model_path: Path, *, max_hands: int = 2, input_px: int = LANDMARK_INPUT_PX,
                 min_detection_confidence: float = 0.4) -> None:
        self.model_path = model_path
        self.max_hands = max_hands
        self.input_px = input_px
        self.min_detection_confidence = min_detection_confidence
        self._lock = threading.Lock()
        self._landmarker: Any = None

    def _load(self) -> Any:
        if not self.model_path.is_file():
            raise ModelUnavailableError(
                f"hand model not found at {self.model_path}: run `palmid models build` first", code="model_missing"
            )
        from mediapipe.tasks.python import BaseOptions, vision  # heavy import: only when first needed

        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=self.model_path.read_bytes()),
            running_mode=vision.RunningMode.IMAGE,
            num_hands=self.max_hands,
            min_hand_detection_confidence=self.min_detection_confidence,
            min_hand_presence_confidence=self.min_detection_confidence,
        )
        try:
            return vision.HandLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise ModelUnavailableError(
                f"hand model at {self.model_path} could not be loaded ({exc}): run `palmid models build`",
                code="model_missing",
            ) from exc

    def close(self) -> None:
        """Release the MediaPipe task (it is re-created on the next :meth:`detect`)."""
        with self._lock:
            landmarker, self._landmarker = self._landmarker, None
        if landmarker is not None:
            landmarker.close()

    def detect(self, rgb: NDArray[np.uint8]) -> list[HandLandmarks]:
        """All hands found in an ``(H, W, 3)`` RGB image, best score first (possibly empty)."""
        height, width = rgb.shape[:2]
        small = downscale_to(rgb, self.input_px)
        import mediapipe as mp

        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(small))
        with self._lock:
            if self._landmarker is None:
                self._landmarker = self._load()
            result = self._landmarker.detect(mp_image)
        sx = width / small.shape[1]
        sy = height / small.shape[0]
        hands: list[HandLandmarks] = []
        for points, categories in zip(result.hand_landmarks, result.handedness, strict=False):
            xy = np.array([[p.x * small.shape[1] * sx, p.y * small.shape[0] * sy] for p in points],
                          dtype=np.float32)
            best = categories[0] if categories else None
            label: Literal["Left", "Right"] = "Left" if best is not None and best.category_name == "Left" \
                else "Right"
            hands.append(HandLandmarks(points_px=xy, label=label, score=float(best.score) if best else 0.0))
        hands.sort(key=lambda hand: hand.score, reverse=True)
        return hands
