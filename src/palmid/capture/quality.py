"""Image quality checks, and the reason codes a kiosk shows as guidance.

:func:`assess_quality` runs on the decoded photo before detection: exposure (``too_dark`` / ``too_bright``)
and focus (``blurry``, variance of the Laplacian on a size-normalised grey copy). The hand-pose checks that need
landmarks (palm size and position, open hand, palm facing the camera, one hand) run in the finder
(:mod:`palmid.detect.pose`) and use the codes published here too.

:data:`GUIDANCE` is the complete list of reason codes that capture and detection can raise, each with a short
instruction for the person in front of the kiosk. Thresholds are deliberately lenient: every photo of the
development datasets (COEP colour photos, PolyU NIR, Tongji ROIs) passes; only clearly unusable images fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import cv2
import numpy as np
from numpy.typing import NDArray

from palmid.capture.image import CapturedImage
from palmid.capture.resize import downscale_to
from palmid.errors import QualityError

__all__ = ["GUIDANCE", "QualityReport", "QualityThresholds", "assess_quality", "measure_quality"]

GUIDANCE: Mapping[str, str] = MappingProxyType(
    {
        # decode (palmid.capture.decode, ImageError)
        "empty_image": "No photo was received. Please try again.",
        "unreadable_image": "The photo could not be read. Please try again.",
        "unsupported_format": "This picture format is not supported. Please use a JPEG, PNG, BMP or WebP photo.",
        "image_too_large": "The photo is too large. Please use a smaller photo.",
        # image quality (assess_quality, QualityError)
        "too_dark": "It is too dark. Please move to a brighter place.",
        "too_bright": "It is too bright. Please avoid direct light on your hand.",
        "blurry": "The photo is blurry. Please hold your hand still.",
        # hand pose (palmid.detect.pose, QualityError)
        "move_closer": "Please move your hand closer to the camera.",
        "move_back": "Please move your hand a little further from the camera.",
        "center_hand": "Please move your hand to the centre of the picture.",
        "open_hand": "Please open your hand and spread your fingers.",
        "show_palm": "Please turn your palm towards the camera.",
        "no_skin_colour": "Please hold your own hand over the camera.",
        # detection (palmid.detect, PalmNotFoundError)
        "no_hand": "No hand was found. Please show your open palm to the camera.",
        "multiple_hands": "Please show only one hand.",
        "roi_failed": "Your palm could not be measured. Please hold your open palm flat, facing the camera.",
    }
)
"""Every reason code raised by capture and detection -> guidance sentence for the kiosk (frozen)."""


@dataclass(frozen=True, kw_only=True)
class QualityThresholds:
    """Rejection thresholds (lenient by design; see the module docstring)."""

    dark_p99_max: float = 50.0
    """``too_dark`` when the 99th percentile of luma is below this (nothing in the picture is lit)."""
    bright_p1_min: float = 235.0
    """``too_bright`` when even the 1st percentile of luma is above this (everything washed out)."""
    saturated_fraction_max: float = 0.6
    """``too_bright`` when more than this fraction of pixels is saturated (>= 250)."""
    photo_focus_min: float = 40.0
    """``blurry`` when var(Laplacian) of a photo normalised to :data:`FOCUS_PHOTO_PX` is below this."""
    roi_focus_min: float = 15.0
    """``blurry`` when var(Laplacian) of an ROI input normalised to :data:`FOCUS_ROI_PX` is below this."""


FOCUS_PHOTO_PX = 512
"""Long side of the grey copy on which the focus of a whole photo is measured."""
FOCUS_ROI_PX = 128
"""Side of the grey copy on which the focus of an ROI input is measured."""


@dataclass(frozen=True, kw_only=True)
class QualityReport:
    """Measured quality figures of one image (no pixels)."""

    focus: float
    luma_p1: float
    luma_p99: float
    saturated_fraction: float


def _normalised_grey(image: CapturedImage, *, roi_input: bool) -> NDArray[np.uint8]:
    """Grey copy at the focus-measurement size (resized in colour first: cheaper than converting megapixels)."""
    if roi_input:
        interpolation = cv2.INTER_AREA if min(image.height, image.width) >= FOCUS_ROI_PX else cv2.INTER_LINEAR
        rgb = np.asarray(cv2.resize(image.rgb, (FOCUS_ROI_PX, FOCUS_ROI_PX), interpolation=interpolation),
                         dtype=np.uint8)
    else:
        rgb = downscale_to(image.rgb, FOCUS_PHOTO_PX)
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def measure_quality(image: CapturedImage, *, roi_input: bool = False) -> QualityReport:
    """Focus and exposure figures of ``image`` (``roi_input``: the image is already a palm ROI)."""
    grey = _normalised_grey(image, roi_input=roi_input)
    laplacian = cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F, ksize=3)
    p1, p99 = np.percentile(grey, [1.0, 99.0])
    return QualityReport(
        focus=float(laplacian.var()),
        luma_p1=float(p1),
        luma_p99=float(p99),
        saturated_fraction=float(np.count_nonzero(grey >= 250) / grey.size),
    )


def assess_quality(image: CapturedImage, *, roi_input: bool = False,
                   thresholds: QualityThresholds | None = None) -> QualityReport:
    """Raise :class:`~palmid.errors.QualityError` (``too_dark``, ``too_bright``, ``blurry``) or return the report.

    Exposure is checked before focus: a black or white picture has no detail either, and "too dark" is the more
    useful guidance.
    """
    limits = thresholds or QualityThresholds()
    report = measure_quality(image, roi_input=roi_input)
    if report.luma_p99 < limits.dark_p99_max:
        raise QualityError("the picture is too dark", code="too_dark")
    if report.luma_p1 > limits.bright_p1_min or report.saturated_fraction > limits.saturated_fraction_max:
        raise QualityError("the picture is too bright", code="too_bright")
    focus_min = limits.roi_focus_min if roi_input else limits.photo_focus_min
    if report.focus < focus_min:
        raise QualityError("the picture is out of focus", code="blurry")
    return report
