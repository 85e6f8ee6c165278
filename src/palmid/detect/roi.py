"""The aligned palm ROI: a palm coordinate frame from finger-valley geometry, and the square cut from it.

The standard contactless palmprint ROI: two valley points, between the index and middle fingers (``V1``) and
between the ring and little fingers (``V2``), define the x-axis; the ROI is a square below that line, in the
palm centre, with a side proportional to ``|V1 - V2|``. Because the frame is built from anatomical directions
(x towards the index finger, y towards the wrist), a left palm comes out mirrored, i.e. looking like a right
palm, and any in-plane rotation or scale of the photo is undone.

With MediaPipe landmarks, the valley points are approximated from the MCP joints:
``V1 = (MCP_index + MCP_middle) / 2`` and ``V2 = (MCP_ring + MCP_little) / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from palmid.detect.landmarks import INDEX_MCP, MIDDLE_MCP, PINKY_MCP, RING_MCP, WRIST
from palmid.detect.palm import ROI_SIZE_PX
from palmid.errors import PalmNotFoundError

__all__ = ["ROI_OFFSET_RATIO", "ROI_SIDE_RATIO", "PalmFrame", "cut_roi", "frame_from_valleys",
           "landmark_frame", "normalise_contrast"]

ROI_SIDE_RATIO = 1.7
"""ROI side as a multiple of the valley-point distance (landmark frames)."""
ROI_OFFSET_RATIO = 0.05
"""Gap between the valley line and the ROI's top edge, as a multiple of the valley-point distance."""

_CLAHE_CLIP = 2.0
_CLAHE_TILES = 4


@dataclass(frozen=True)
class PalmFrame:
    """Where the ROI square lies in the image (pixels): centre, unit axes and side.

    ``right_axis`` points from the little-finger side towards the index finger, ``down_axis`` from the fingers
    towards the wrist. For a right palm seen from the palm side this pair is a rotation; for a left palm it is a
    reflection, which mirrors left palms into right ones.
    """

    centre_px: tuple[float, float]
    right_axis: tuple[float, float]
    down_axis: tuple[float, float]
    side_px: float
    valley_distance_px: float

    @property
    def handedness(self) -> Literal["left", "right"]:
        """``right`` when (right_axis, down_axis) is a rotation in image coordinates (palm-side view)."""
        rx, ry = self.right_axis
        dx, dy = self.down_axis
        return "right" if rx * dy - ry * dx > 0 else "left"

    def corners_px(self) -> NDArray[np.float64]:
        """The four ROI corners (top-left, top-right, bottom-right, bottom-left) in image pixels."""
        centre = np.array(self.centre_px)
        right = np.array(self.right_axis) * self.side_px / 2
        down = np.array(self.down_axis) * self.side_px / 2
        return np.stack([centre - right - down, centre + right - down, centre + right + down,
                         centre - right + down])


def frame_from_valleys(index_valley: NDArray[np.floating], little_valley: NDArray[np.floating],
                       towards_wrist: NDArray[np.floating], *, side_ratio: float = ROI_SIDE_RATIO,
                       offset_ratio: float = ROI_OFFSET_RATIO) -> PalmFrame:
    """Palm frame from the two valley points and any vector pointing from the valleys towards the wrist."""
    v1 = np.asarray(index_valley, dtype=np.float64)
    v2 = np.asarray(little_valley, dtype=np.float64)
    axis = v1 - v2
    distance = float(np.hypot(axis[0], axis[1]))
    if not np.isfinite(distance) or distance < 4.0:
        raise PalmNotFoundError("the palm is too small or malformed to cut an ROI", code="roi_failed")
    right = axis / distance
    down = np.array([-right[1], right[0]])
    if float(np.dot(down, np.asarray(towards_wrist, dtype=np.float64))) < 0:
        down = -down
    side = side_ratio * distance
    centre = (v1 + v2) / 2 + down * (offset_ratio * distance + side / 2)
    return PalmFrame(centre_px=(float(centre[0]), float(centre[1])), right_axis=(float(right[0]), float(right[1])),
                     down_axis=(float(down[0]), float(down[1])), side_px=side, valley_distance_px=distance)


def landmark_frame(points_px: NDArray[np.float32]) -> PalmFrame:
    """Palm frame from the 21 MediaPipe landmarks (valleys approximated from the MCP joints)."""
    points = points_px.astype(np.float64)
    index_valley = (points[INDEX_MCP] + points[MIDDLE_MCP]) / 2
    little_valley = (points[RING_MCP] + points[PINKY_MCP]) / 2
    towards_wrist = points[WRIST] - (index_valley + little_valley) / 2
    return frame_from_valleys(index_valley, little_valley, towards_wrist)


def cut_roi(pixels: NDArray[np.uint8], frame: PalmFrame, *, size_px: int = ROI_SIZE_PX) -> NDArray[np.uint8]:
    """Cut the ``size_px`` grey square described by ``frame`` from ``pixels`` (grey ``(H, W)`` or RGB
    ``(H, W, 3)``; only the ROI's bounding box is converted to grey), anti-aliased, border replicated."""
    scale = frame.side_px / size_px  # source pixels per ROI pixel
    corners = frame.corners_px()
    x0 = max(int(np.floor(corners[:, 0].min())) - 4, 0)
    y0 = max(int(np.floor(corners[:, 1].min())) - 4, 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 5, pixels.shape[1])
    y1 = min(int(np.ceil(corners[:, 1].max())) + 5, pixels.shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise PalmNotFoundError("the palm lies outside the image", code="roi_failed")
    patch = pixels[y0:y1, x0:x1]
    if patch.ndim == 3:
        patch = np.asarray(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    if scale > 1.5:
        patch = np.asarray(cv2.GaussianBlur(patch, (0, 0), sigmaX=0.45 * scale), dtype=np.uint8)
    right = np.array(frame.right_axis) * scale
    down = np.array(frame.down_axis) * scale
    half = (size_px - 1) / 2
    origin = np.array(frame.centre_px) - np.array([x0, y0]) - half * (right + down)
    matrix = np.array([[right[0], down[0], origin[0]], [right[1], down[1], origin[1]]], dtype=np.float64)
    roi = cv2.warpAffine(patch, matrix, (size_px, size_px), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(roi, dtype=np.uint8)


def normalise_contrast(roi: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Local contrast normalisation (CLAHE) so that lighting differences do not dominate the texture."""
    clahe = cv2.createCLAHE(clipLimit=_CLAHE_CLIP, tileGridSize=(_CLAHE_TILES, _CLAHE_TILES))
    return np.asarray(clahe.apply(roi), dtype=np.uint8)
