"""Classical valley-point ROI on synthetic device images: valleys (also of oblique gaps), rotation invariance, ROI
scale policy, refusals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from synthetic_hands import BACKGROUND, fingers_cut_by_top_border, palm_texture, whole_hand_inside

from palmid.detect.classical import (
    CLASSICAL_SIDE_RATIO,
    DEVICE_VALLEY_FRACTION,
    classical_frame,
    find_valleys,
    segment_hand,
)
from palmid.detect.roi import cut_roi
from palmid.errors import PalmNotFoundError, ValidationFailed


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


def _turned(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned in-plane about its centre, its fingers first lengthened past the top border so that they
    still leave the picture there; and the affine matrix (original -> turned pixel coordinates)."""
    extra = 80
    image = image.copy()
    image[:, :50] = BACKGROUND  # align the palm's side with the outer finger (no step to form a pocket)
    tall = np.vstack([np.repeat(image[:1], extra, axis=0), image])
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D((width / 2, extra + height / 2), degrees, 1.0)
    turned = cv2.warpAffine(tall, matrix, (width, height + extra), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND)[extra:]
    to_turned = matrix @ np.array([[1.0, 0.0, 0.0], [0.0, 1.0, extra], [0.0, 0.0, 1.0]])
    to_turned[1, 2] -= extra
    return np.ascontiguousarray(turned), to_turned


@pytest.mark.parametrize("degrees", [-15.0, -8.0, 8.0, 15.0])
def test_valleys_of_oblique_gaps_of_a_turned_hand(degrees: float) -> None:
    # A turned hand on a contact device: the gaps meet the border obliquely, under the neighbouring finger, so the
    # first hand pixel of each column is not the gap's end. The valleys must follow the gap to its end.
    image, valleys = fingers_cut_by_top_border(seed=1)
    turned, matrix = _turned(image, degrees)
    truth = sorted((matrix @ np.array([x, y, 1.0]) for x, y in valleys), key=lambda point: float(point[0]))
    found = sorted(find_valleys(segment_hand(turned)), key=lambda point: float(point[0]))
    for point, expected in zip(found, truth, strict=True):
        assert np.linalg.norm(point - expected) < 6.0


@pytest.mark.parametrize("degrees", [-12.0, 12.0])
def test_frame_of_a_turned_hand_turns_with_it(degrees: float) -> None:
    image, _ = fingers_cut_by_top_border(seed=2)
    image[:, :50] = BACKGROUND  # as _turned does
    reference = classical_frame(image)
    turned, matrix = _turned(image, degrees)
    frame = classical_frame(turned)
    expected_centre = matrix @ np.array([*reference.centre_px, 1.0])
    assert np.linalg.norm(np.array(frame.centre_px) - expected_centre) < 5.0
    expected_right = matrix[:, :2] @ np.array(reference.right_axis)
    assert float(np.dot(expected_right, frame.right_axis)) > np.cos(np.radians(2.0))
    assert frame.side_px == pytest.approx(reference.side_px)


def test_device_scale_fixes_the_roi_size_and_valley_scale_follows_the_hand() -> None:
    image, (first, second) = fingers_cut_by_top_border()
    distance = float(np.linalg.norm(np.array(first) - np.array(second)))
    device_side = CLASSICAL_SIDE_RATIO * DEVICE_VALLEY_FRACTION * max(image.shape)
    assert classical_frame(image, scale="device").side_px == pytest.approx(device_side, rel=1e-6)
    assert classical_frame(image, scale="valleys").side_px == pytest.approx(CLASSICAL_SIDE_RATIO * distance, rel=0.08)
    # fingers cut by the border at about the device's scale: "auto" uses the device scale ...
    assert classical_frame(image).side_px == pytest.approx(device_side, rel=1e-6)
    # ... the same hand spread wider (valleys 12% further apart) keeps the same ROI size and top edge
    wide = np.ascontiguousarray(cv2.resize(image, None, fx=1.12, fy=1.0, interpolation=cv2.INTER_LINEAR)[:, :360])
    assert classical_frame(wide).side_px == pytest.approx(device_side, rel=1e-6)


def test_auto_scale_follows_the_valleys_when_the_hand_is_not_at_device_scale() -> None:
    image, (first, second) = fingers_cut_by_top_border()
    small = cv2.resize(image, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)  # a hand further from a camera
    canvas = np.full(image.shape, BACKGROUND, np.uint8)
    left = (image.shape[1] - small.shape[1]) // 2
    canvas[: small.shape[0], left:left + small.shape[1]] = small
    distance = 0.6 * float(np.linalg.norm(np.array(first) - np.array(second)))
    frame = classical_frame(canvas)
    assert frame.side_px == pytest.approx(CLASSICAL_SIDE_RATIO * distance, rel=0.1)
    whole = whole_hand_inside()  # a whole hand in the picture: always the valley scale
    whole_frame = classical_frame(whole)
    assert whole_frame.side_px == pytest.approx(CLASSICAL_SIDE_RATIO * whole_frame.valley_distance_px)


def test_valleys_too_close_for_the_palm_are_refused() -> None:
    # three narrow fingers on one side of a wide palm: the gaps found span far less than a hand's valleys do
    mask = np.zeros((300, 360), np.uint8)
    cv2.rectangle(mask, (20, 110), (340, 299), 255, thickness=-1)
    for left in (30, 75, 120):
        cv2.rectangle(mask, (left, 0), (left + 33, 120), 255, thickness=-1)
    image = np.full(mask.shape, BACKGROUND, np.float32)
    texture = palm_texture(*mask.shape, seed=3)
    image[mask > 0] = texture[mask > 0]
    with pytest.raises(PalmNotFoundError) as caught:
        classical_frame(np.clip(image, 0, 255).astype(np.uint8))
    assert caught.value.code == "roi_failed"


def test_unknown_scale_is_refused() -> None:
    image, _ = fingers_cut_by_top_border()
    with pytest.raises(ValidationFailed):
        classical_frame(image, scale="huge")  # type: ignore[arg-type]


@pytest.mark.realdata
def test_polyu_nir_rois_agree_across_sessions() -> None:
    """Palms whose session-2 hands are turned or spread differently (oblique gaps, a finger leaving by another
    border) used to get displaced ROIs that matched at impostor level; each must now match its other session far
    better than the other palms."""
    from palmid.detect.palm import PalmROI
    from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
    from palmid.templates.compare import compare_templates
    from palmid.templates.template import Template
    from palmid_testdata import dataset_dir

    folder = dataset_dir("polyu-nir")
    extractor = get_extractor(DEFAULT_EXTRACTOR)

    def template(relative: str) -> Template:
        grey = cv2.imread(str(folder / "images" / relative), cv2.IMREAD_GRAYSCALE)
        return extractor.extract(PalmROI(pixels=cut_roi(grey, classical_frame(grey)), method="classical"))

    palms = ("0032", "0057", "0058", "0039")
    first = {palm: template(f"{palm}/1_01.jpg") for palm in palms}
    second = {palm: template(f"{palm}/2_05.jpg") for palm in palms}
    for palm in palms:
        genuine = compare_templates(second[palm], first[palm])
        impostor = max(compare_templates(second[palm], first[other]) for other in palms if other != palm)
        assert genuine > impostor + 0.05, (palm, genuine, impostor)


def test_a_palm_square_off_the_hand_is_refused() -> None:
    image, _ = fingers_cut_by_top_border()
    cropped = np.ascontiguousarray(image[:170])  # the picture ends just below the valleys: no palm to cut
    with pytest.raises(PalmNotFoundError) as caught:
        classical_frame(cropped)
    assert caught.value.code == "roi_failed"
