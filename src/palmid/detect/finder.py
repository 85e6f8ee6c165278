"""Find the palm and cut its aligned ROI, with an explicit choice of method.

Methods (``PalmFinder.find_palm(image, method=...)``):

``"landmarks"``
    MediaPipe hand landmarks on a downscaled copy, pose checks (one open hand, palm side, size and position),
    then the valley-point frame (:func:`palmid.detect.roi.landmark_frame`) cut from the full-resolution image.
``"classical"``
    Segmentation and finger-gap valley points (:mod:`palmid.detect.classical`), for NIR / contact devices where
    MediaPipe rarely finds a hand.
``"roi"``
    The image already is an aligned palm ROI: grey, resized to 128 x 128; no detection.
``"auto"``
    An explicit, documented policy (never a silent fallback inside the other methods): colour photos use
    ``"landmarks"``; grey photos (all three channels equal, as decoded from NIR / single-channel sensors) use
    ``"classical"`` first and ``"landmarks"`` only when the classical method finds no hand. The method actually
    used is recorded in :attr:`PalmROI.method`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from palmid.capture.image import CapturedImage
from palmid.detect.classical import classical_roi
from palmid.detect.landmarks import HandLandmarkDetector
from palmid.detect.palm import ROI_SIZE_PX, PalmROI, RoiMethod
from palmid.detect.pose import PoseThresholds, check_pose, select_single_hand
from palmid.detect.roi import cut_roi, landmark_frame
from palmid.errors import PalmNotFoundError, QualityError, ValidationFailed

__all__ = ["GREY_CHROMA_MAX", "PalmFinder", "is_grey_image"]

GREY_CHROMA_MAX = 2.0
"""An image counts as grey for ``method="auto"`` when the mean |R-G| + |G-B| is at most this (JPEG tolerance)."""

_METHODS: tuple[str, ...] = ("landmarks", "classical", "roi", "auto")


def is_grey_image(image: CapturedImage) -> bool:
    """True when the three channels are (nearly) equal: a grey or NIR picture expanded to RGB."""
    step = max(1, max(image.height, image.width) // 256)
    sample = image.rgb[::step, ::step].astype(np.int16)
    chroma = np.abs(sample[..., 0] - sample[..., 1]) + np.abs(sample[..., 1] - sample[..., 2])
    return float(chroma.mean()) <= GREY_CHROMA_MAX


def _as_roi(grey: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if grey.shape == (ROI_SIZE_PX, ROI_SIZE_PX):
        return np.ascontiguousarray(grey)
    interpolation = cv2.INTER_AREA if min(grey.shape) >= ROI_SIZE_PX else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(grey, (ROI_SIZE_PX, ROI_SIZE_PX), interpolation=interpolation), dtype=np.uint8)


class PalmFinder:
    """Turns a :class:`CapturedImage` into a :class:`PalmROI`. Thread-safe; the hand model loads on first use."""

    def __init__(self, *, hand_model_path: Path | None = None, pose_thresholds: PoseThresholds | None = None) -> None:
        if hand_model_path is None:
            from palmid.detect.model_build import DEFAULT_MODEL_PATH

            hand_model_path = DEFAULT_MODEL_PATH
        self.hand_model_path = hand_model_path
        self.pose_thresholds = pose_thresholds or PoseThresholds()
        self._detector = HandLandmarkDetector(hand_model_path)

    def close(self) -> None:
        """Release the hand model (it reloads on the next landmark call)."""
        self._detector.close()

    def find_palm(self, image: CapturedImage, *, method: RoiMethod = "landmarks") -> PalmROI:
        """The aligned 128 x 128 grey palm ROI of ``image`` found with ``method`` (see the module docstring).

        Raises :class:`~palmid.errors.PalmNotFoundError` (``no_hand``, ``multiple_hands``, ``roi_failed``) or
        :class:`~palmid.errors.QualityError` (pose guidance such as ``open_hand``).
        """
        if method == "roi":
            return PalmROI(pixels=_as_roi(image.grey()), method="roi")
        if method == "landmarks":
            return self._find_with_landmarks(image)
        if method == "classical":
            return self._find_classical(image)
        if method == "auto":
            if not is_grey_image(image):
                return self._find_with_landmarks(image)
            try:
                return self._find_classical(image)
            except PalmNotFoundError:
                return self._find_with_landmarks(image, require_colour=False)
        raise ValidationFailed(f"unknown ROI method {method!r} (expected one of {', '.join(_METHODS)})",
                               code="invalid_request")

    def _find_with_landmarks(self, image: CapturedImage, *, require_colour: bool = True) -> PalmROI:
        if require_colour and is_grey_image(image):
            # A colour kiosk camera never returns a colourless frame of a live hand: a grey picture here is a
            # printout or a screen replay. (Grey NIR devices use method "classical" or "auto".)
            raise QualityError("the camera sees no skin colour (a printout or a grey picture?)", code="no_skin_colour")
        hands = self._detector.detect(image.rgb)
        hand = select_single_hand(hands, thresholds=self.pose_thresholds)
        frame = landmark_frame(hand.points_px)
        check_pose(hand, frame, image_width=image.width, image_height=image.height,
                   thresholds=self.pose_thresholds)
        pixels = cut_roi(image.rgb, frame)
        return PalmROI(pixels=pixels, method="landmarks", handedness=frame.handedness)

    @staticmethod
    def _find_classical(image: CapturedImage) -> PalmROI:
        return PalmROI(pixels=classical_roi(image.grey()), method="classical", handedness=None)
