"""Hand-pose checks on synthetic landmarks: each guidance code for its situation, and a good pose passes."""

from __future__ import annotations

import numpy as np
import pytest

from palmid.capture.quality import GUIDANCE
from palmid.detect.landmarks import HandLandmarks
from palmid.detect.pose import check_pose, select_single_hand
from palmid.detect.roi import landmark_frame
from palmid.errors import PalmNotFoundError, QualityError


def _points(*, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0), curled: bool = False) -> np.ndarray:
    """An upright right palm (palm side) around (500, 500) in a 1000 x 1000 picture."""
    points = np.zeros((21, 2), np.float32)
    points[0] = (400, 700)
    points[1:5] = [(480, 650), (540, 590), (580, 540), (610, 500)]
    for finger, x in enumerate((470, 410, 350, 290)):
        base = 5 + 4 * finger
        if curled:  # fingers folded back towards the palm
            points[base:base + 4] = [(x, 450), (x, 400), (x + 5, 440), (x, 470)]
        else:
            points[base:base + 4] = [(x, 450), (x, 370), (x, 320), (x, 280)]
    centre = np.array([500.0, 500.0])
    return ((points - centre) * scale + centre + np.array(shift)).astype(np.float32)


def _hand(points: np.ndarray, label: str = "Right", score: float = 0.95) -> HandLandmarks:
    return HandLandmarks(points_px=points, label=label, score=score)  # type: ignore[arg-type]


def _pose_code(hand: HandLandmarks) -> str:
    with pytest.raises(QualityError) as caught:
        check_pose(hand, landmark_frame(hand.points_px), image_width=1000, image_height=1000)
    assert caught.value.code in GUIDANCE
    return caught.value.code


def test_good_pose_passes() -> None:
    hand = _hand(_points())
    check_pose(hand, landmark_frame(hand.points_px), image_width=1000, image_height=1000)


def test_small_palm_asks_to_move_closer() -> None:
    assert _pose_code(_hand(_points(scale=0.3))) == "move_closer"


def test_huge_palm_asks_to_move_back() -> None:
    assert _pose_code(_hand(_points(scale=4.5))) == "move_back"


def test_palm_at_the_edge_asks_to_centre() -> None:
    assert _pose_code(_hand(_points(shift=(0.0, 420.0)))) == "center_hand"


def test_curled_fingers_ask_to_open_the_hand() -> None:
    assert _pose_code(_hand(_points(curled=True))) == "open_hand"


def test_confident_contradicting_handedness_asks_to_show_the_palm() -> None:
    assert _pose_code(_hand(_points(), label="Left", score=0.97)) == "show_palm"
    hand = _hand(_points(), label="Left", score=0.6)  # unsure: not refused
    check_pose(hand, landmark_frame(hand.points_px), image_width=1000, image_height=1000)


def test_no_hand_and_two_hands() -> None:
    with pytest.raises(PalmNotFoundError) as caught:
        select_single_hand([])
    assert caught.value.code == "no_hand"
    first = _hand(_points(scale=0.4, shift=(-250.0, 0.0)))
    second = _hand(_points(scale=0.4, shift=(250.0, 0.0)), score=0.9)
    with pytest.raises(PalmNotFoundError) as caught:
        select_single_hand([first, second])
    assert caught.value.code == "multiple_hands"


def test_duplicate_or_weak_second_detection_is_ignored() -> None:
    first = _hand(_points())
    duplicate = _hand(_points(shift=(5.0, 5.0)), score=0.9)
    weak = _hand(_points(scale=0.4, shift=(250.0, 0.0)), score=0.2)
    assert select_single_hand([first, duplicate, weak]) is first
