"""Classical valley-point ROI on synthetic device images: valleys, rotation invariance, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_hands import BACKGROUND, fingers_cut_by_top_border, whole_hand_inside

from palmid.detect.classical import classical_frame
from palmid.detect.roi import cut_roi
from palmid.errors import PalmNotFoundError


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def test_valleys_of_fingers_cut_by_the_border() -> None:
    image, (first, second) = fingers_cut_by_top_border()
    frame = classical_frame(image)
    valley_centre = (np.array(first) + np.array(second)) / 2
    distance = float(np.linalg.norm(np.array(first) - np.array(second)))
    assert frame.valley_distance_px == pytest.approx(distance, rel=0.08)
    # the ROI hangs below the valley line, centred between the valleys
    assert frame.centre_px[0] == pytest.approx(valley_centre[0], abs=6)
    assert frame.centre_px[1] >= valley_centre[1] + frame.side_px / 2 - 3
    assert frame.down_axis[1] > 0.99
    assert frame.handedness == "right"  # never mirrored by the classical method


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_roi_is_invariant_to_quarter_turns(turns: int) -> None:
    image, _ = fingers_cut_by_top_border(seed=4)
    reference = cut_roi(image, classical_frame(image))
    turned = np.ascontiguousarray(np.rot90(image, k=turns))
    roi = cut_roi(turned, classical_frame(turned))
    assert roi.shape == (128, 128)
    assert _correlation(reference, roi) > 0.9


def test_whole_hand_inside_the_picture_uses_the_contour() -> None:
    image = whole_hand_inside()
    frame = classical_frame(image)
    assert frame.valley_distance_px == pytest.approx(96, rel=0.1)  # gaps at x = 155 and 251
    assert frame.down_axis[1] > 0.99
    roi = cut_roi(image, frame)
    assert np.mean(roi <= BACKGROUND + 10) < 0.02  # inside the palm (the top edge touches the valleys)


@pytest.mark.parametrize(
    "image",
    [
        np.full((288, 352), BACKGROUND, np.uint8),
        np.full((288, 352), 200, np.uint8),
        np.random.default_rng(0).integers(0, 256, (288, 352)).astype(np.uint8),
    ],
    ids=["dark", "flat", "noise"],
)
def test_no_hand_is_refused(image: np.ndarray) -> None:
    with pytest.raises(PalmNotFoundError) as caught:
        classical_frame(image)
    assert caught.value.code in {"no_hand", "roi_failed"}


def test_a_blob_without_fingers_is_refused() -> None:
    image = np.full((288, 352), BACKGROUND, np.uint8)
    image[60:230, 80:280] = 160
    with pytest.raises(PalmNotFoundError):
        classical_frame(image)
