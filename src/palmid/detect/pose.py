"""Hand-pose checks on MediaPipe landmarks: one hand, palm size and position, open hand, palm side.

Each failure raises with a reason code from :data:`palmid.capture.quality.GUIDANCE`. Thresholds are lenient (all
development photos pass); they only refuse pictures from which no reproducible ROI can be cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from palmid.detect.landmarks import FINGER_CHAINS, HandLandmarks
from palmid.detect.roi import PalmFrame
from palmid.errors import PalmNotFoundError, QualityError

__all__ = ["PoseThresholds", "check_pose", "select_single_hand"]


@dataclass(frozen=True, kw_only=True)
class PoseThresholds:
    second_hand_min_score: float = 0.5
    """A second detection with at least this score, not overlapping the first, means ``multiple_hands``."""
    same_hand_iou: float = 0.3
    """Two detections overlapping more than this are the same hand."""
    min_valley_fraction: float = 0.05
    """``move_closer`` when the valley distance is below this fraction of the image's short side..."""
    min_roi_side_px: float = 48.0
    """...or when the ROI would be cut from fewer source pixels than this."""
    max_valley_fraction: float = 0.5
    """``move_back`` when the valley distance exceeds this fraction of the image's short side."""
    max_outside_fraction: float = 0.15
    """``center_hand`` / ``move_back`` when an ROI corner lies more than this fraction of its side outside."""
    min_straightness: float = 0.55
    """A finger counts as extended when |tip - MCP| / (length along its joints) is at least this..."""
    min_extended_fingers: int = 3
    """...and ``open_hand`` is raised when fewer fingers than this are extended."""
    palm_side_min_score: float = 0.85
    """``show_palm`` only when MediaPipe's handedness is at least this confident and contradicts the geometry."""


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def select_single_hand(hands: Sequence[HandLandmarks], *, thresholds: PoseThresholds | None = None) -> HandLandmarks:
    """The one hand in the picture; ``no_hand`` when there is none, ``multiple_hands`` when there are two."""
    limits = thresholds or PoseThresholds()
    if not hands:
        raise PalmNotFoundError("no hand was found in the picture", code="no_hand")
    best = hands[0]
    for other in hands[1:]:
        if other.score >= limits.second_hand_min_score and \
                _iou(best.bounding_box(), other.bounding_box()) < limits.same_hand_iou:
            raise PalmNotFoundError("more than one hand is in the picture", code="multiple_hands")
    return best


def _extended_fingers(points: np.ndarray, min_straightness: float) -> int:
    count = 0
    for chain in FINGER_CHAINS:
        joints = points[list(chain)]
        along = float(np.sum(np.linalg.norm(np.diff(joints, axis=0), axis=1)))
        direct = float(np.linalg.norm(joints[-1] - joints[0]))
        if along > 0 and direct / along >= min_straightness:
            count += 1
    return count


def check_pose(hand: HandLandmarks, frame: PalmFrame, *, image_width: int, image_height: int,
               thresholds: PoseThresholds | None = None) -> None:
    """Raise :class:`~palmid.errors.QualityError` with kiosk guidance when the hand pose is unusable."""
    limits = thresholds or PoseThresholds()
    short_side = float(min(image_width, image_height))
    if frame.valley_distance_px > limits.max_valley_fraction * short_side:
        raise QualityError("the hand is too close to the camera", code="move_back")
    if frame.valley_distance_px < limits.min_valley_fraction * short_side or frame.side_px < limits.min_roi_side_px:
        raise QualityError("the hand is too far from the camera", code="move_closer")
    corners = frame.corners_px()
    margin = limits.max_outside_fraction * frame.side_px
    outside = (corners[:, 0].min() < -margin or corners[:, 1].min() < -margin
               or corners[:, 0].max() > image_width + margin or corners[:, 1].max() > image_height + margin)
    if outside:
        code = "move_back" if frame.side_px > 0.6 * short_side else "center_hand"
        raise QualityError("the palm is not fully in the picture", code=code)
    if _extended_fingers(hand.points_px.astype(np.float64), limits.min_straightness) < limits.min_extended_fingers:
        raise QualityError("the hand is not open", code="open_hand")
    label_side = hand.label.lower()
    if hand.score >= limits.palm_side_min_score and label_side != frame.handedness:
        raise QualityError("the back of the hand is facing the camera", code="show_palm")
