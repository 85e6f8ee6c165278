"""Palm frame geometry and ROI cutting: rotation, scale and mirror normalisation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from synthetic_hands import palm_texture

from palmid.detect.palm import ROI_SIZE_PX
from palmid.detect.roi import PalmFrame, cut_roi, frame_from_valleys, landmark_frame, normalise_contrast
from palmid.errors import PalmNotFoundError


def _right_palm_landmarks() -> np.ndarray:
    """21 points of an upright right palm seen from the palm side (thumb on the image's right)."""
    points = np.zeros((21, 2), np.float32)
    points[0] = (400, 700)  # wrist
    points[1:5] = [(480, 650), (540, 590), (580, 540), (610, 500)]  # thumb
    for finger, x in enumerate((470, 410, 350, 290)):  # index .. little: MCP, PIP, DIP, TIP
        base = 5 + 4 * finger
        points[base:base + 4] = [(x, 450), (x, 370), (x, 320), (x, 280)]
    return points


def _transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return (np.c_[points, np.ones(len(points))] @ matrix.T).astype(np.float32)


def test_right_palm_frame_is_a_rotation_with_fingers_up() -> None:
    frame = landmark_frame(_right_palm_landmarks())
    assert frame.handedness == "right"
    assert frame.right_axis == pytest.approx((1.0, 0.0))
    assert frame.down_axis == pytest.approx((0.0, 1.0))
    assert frame.valley_distance_px == pytest.approx(120.0)
    assert frame.centre_px[1] > 450  # below the MCP line, towards the wrist


def test_mirrored_palm_is_left() -> None:
    points = _right_palm_landmarks()
    points[:, 0] = 1000 - points[:, 0]
    frame = landmark_frame(points)
    assert frame.handedness == "left"
    assert frame.right_axis == pytest.approx((-1.0, 0.0))


@pytest.mark.parametrize(("angle", "scale"), [(90, 1.0), (180, 1.0), (-37, 1.0), (23, 1.6), (145, 0.7)])
def test_frame_follows_rotation_and_scale(angle: float, scale: float) -> None:
    points = _right_palm_landmarks()
    matrix = cv2.getRotationMatrix2D((500, 500), angle, scale)
    frame = landmark_frame(points)
    moved = landmark_frame(_transform(points, matrix))
    assert moved.handedness == "right"
    assert moved.side_px == pytest.approx(frame.side_px * scale, rel=1e-4)
    expected_centre = matrix @ np.array([*frame.centre_px, 1.0])
    assert moved.centre_px == pytest.approx(tuple(expected_centre), abs=1e-3)


@pytest.mark.parametrize("angle", [90, 180, 33, -120])
def test_cut_roi_is_rotation_invariant(angle: float) -> None:
    image = np.clip(palm_texture(1000, 1000, seed=7), 0, 255).astype(np.uint8)
    points = _right_palm_landmarks()
    reference = cut_roi(image, landmark_frame(points))
    matrix = cv2.getRotationMatrix2D((500, 500), angle, 1.0)
    rotated = cv2.warpAffine(image, matrix, (1000, 1000), flags=cv2.INTER_CUBIC)
    roi = cut_roi(rotated, landmark_frame(_transform(points, matrix)))
    assert roi.shape == (ROI_SIZE_PX, ROI_SIZE_PX) and roi.dtype == np.uint8
    assert np.corrcoef(reference.ravel().astype(float), roi.ravel().astype(float))[0, 1] > 0.95


def test_left_palm_is_mirrored_into_a_right_one() -> None:
    image = np.clip(palm_texture(1000, 1000, seed=8), 0, 255).astype(np.uint8)
    points = _right_palm_landmarks()
    reference = cut_roi(image, landmark_frame(points))
    mirrored_points = points.copy()
    mirrored_points[:, 0] = 999 - mirrored_points[:, 0]
    roi = cut_roi(np.ascontiguousarray(image[:, ::-1]), landmark_frame(mirrored_points))
    assert np.abs(roi.astype(int) - reference.astype(int)).mean() < 2.0


def test_rgb_and_grey_give_the_same_roi() -> None:
    grey = np.clip(palm_texture(800, 800, seed=9), 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    frame = landmark_frame(_right_palm_landmarks() * 0.8)
    assert np.abs(cut_roi(rgb, frame).astype(int) - cut_roi(grey, frame).astype(int)).max() <= 1


def test_degenerate_valleys_are_refused() -> None:
    with pytest.raises(PalmNotFoundError):
        frame_from_valleys(np.array([10.0, 10.0]), np.array([11.0, 10.0]), np.array([0.0, 1.0]))


def test_roi_outside_the_image_is_refused() -> None:
    frame = PalmFrame(centre_px=(-500.0, -500.0), right_axis=(1.0, 0.0), down_axis=(0.0, 1.0), side_px=100.0,
                      valley_distance_px=60.0)
    with pytest.raises(PalmNotFoundError):
        cut_roi(np.zeros((100, 100), np.uint8), frame)


def test_contrast_normalisation_keeps_shape() -> None:
    roi = np.clip(palm_texture(128, 128) * 0.3 + 80, 0, 255).astype(np.uint8)
    out = normalise_contrast(roi)
    assert out.shape == roi.shape and out.dtype == np.uint8
    assert out.std() > roi.std()
