"""Classical valley-point palm ROI for NIR / contact-device images (no neural network).

Steps, on a copy normalised to :data:`WORK_PX` on its long side:

1. Segment the hand (:func:`segment_hand`): Gaussian blur and a low threshold between the background level and
   the skin level (finger gaps and background are much darker than skin; the dim finger roots must stay in the
   mask); ``no_hand`` when nothing stands out (:data:`MIN_CONTRAST`) or the hand is too small.
2. Valley points (:func:`find_valleys`), one of two cases decided from the mask (not a fallback):

   * fingers cut by an image border (contact devices such as PolyU: the palm fills the picture) -- the border
     crossed by at least three separate hand runs. Turned so that this border is at the top, the depth of the
     first solid hand pixel in each column is a profile whose peaks are the finger gaps; the outermost two deep
     peaks are the index-middle and ring-little valleys (on peg devices the middle-ring "gap" is the peg);
   * a whole hand inside the picture: convexity defects of the hand contour deeper than
     :data:`MIN_DEPTH_FRACTION` are the gaps; of the most regular run of three consecutive gaps the outer two
     are taken (with exactly two gaps, those).
3. Frame: x-axis through the two valleys, y-axis towards the palm centre (maximum of the distance transform);
   the square ROI below the valley line (:func:`palmid.detect.roi.frame_from_valleys`, with
   :data:`CLASSICAL_SIDE_RATIO` and :data:`CLASSICAL_OFFSET_RATIO`).

Without a thumb the two valleys cannot be told apart, so no mirroring is done (``handedness`` is unknown): the
frame is always a rotation, which keeps ROIs of one device consistent.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
from numpy.typing import NDArray

from palmid.detect.roi import PalmFrame, cut_roi, frame_from_valleys
from palmid.errors import PalmNotFoundError

__all__ = ["CLASSICAL_OFFSET_RATIO", "CLASSICAL_SIDE_RATIO", "classical_frame", "classical_roi", "find_valleys",
           "segment_hand"]

WORK_PX = 352
"""Long side of the working copy (the PolyU device size)."""
THRESHOLD_FRACTION = 0.2
"""Hand threshold: this fraction of the way from the background level to the mean bright (skin) level."""
MIN_DEPTH_FRACTION = 0.06
"""A convexity defect is a finger gap when deeper than this fraction of the working image's long side."""
MIN_CONTRAST = 2.0
"""``no_hand`` unless the hand is at least this many times brighter (mean) than the gaps and background."""
MIN_HAND_FRACTION = 0.15
"""``no_hand`` when the hand mask covers less than this fraction of the image."""
TANGENT_WINDOW_FRACTION = 0.08
"""Half-width (fraction of the finger border) of the search window around each gap for the common tangent."""
SPACING_RATIO_MAX = 2.5
"""In a run of three gaps, the larger neighbour spacing is at most this multiple of the smaller."""
CLASSICAL_SIDE_RATIO = 1.25
"""ROI side / valley distance (real valley points, unlike the landmark MCP line; chosen on PolyU NIR: larger is
more consistent up to the palm's size)."""
CLASSICAL_OFFSET_RATIO = 0.0
"""Gap between the valley line and the ROI's top edge / valley distance."""


def segment_hand(grey: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Binary hand mask (255 = hand): a low threshold between the background (2nd percentile) and the mean of
    the bright (above-Otsu) pixels, so that dim finger roots stay in the hand and only dark gaps are cut out."""
    blurred = cv2.GaussianBlur(grey, (0, 0), 2.0)
    otsu, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    background = float(np.percentile(blurred, 2.0))
    bright = blurred[blurred > otsu]
    if bright.size == 0:
        raise PalmNotFoundError("no hand was found in the picture", code="no_hand")
    level = background + THRESHOLD_FRACTION * (float(bright.mean()) - background)
    _, mask = cv2.threshold(blurred, level, 255, cv2.THRESH_BINARY)
    inside, outside = blurred[mask > 0], blurred[mask == 0]
    if inside.size == 0 or outside.size == 0 or float(inside.mean()) < MIN_CONTRAST * max(float(outside.mean()), 1.0):
        raise PalmNotFoundError("no hand stands out from the background", code="no_hand")
    return np.asarray(cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)), dtype=np.uint8)


def _hand_runs(line: NDArray[np.uint8], min_run_px: int) -> int:
    """Number of hand runs (at least ``min_run_px`` long) along one line of the mask."""
    runs = 0
    length = 0
    for value in (line > 0).tolist():
        if value:
            length += 1
            continue
        runs += length >= min_run_px
        length = 0
    return runs + (length >= min_run_px)


def _finger_side_turns(mask: NDArray[np.uint8]) -> int | None:
    """Quarter turns (``np.rot90`` ``k``) that bring the border cut by the fingers to the top, or ``None``.

    The finger border is the one crossed by the most separate hand runs (fingers with gaps between them);
    at least three are needed (two gaps).
    """
    counts = dict.fromkeys(range(4), 0)
    for fraction in (0.02, 0.06, 0.1):
        inset_y, inset_x = int(fraction * mask.shape[0]), int(fraction * mask.shape[1])
        sides = {0: mask[inset_y, :], 1: mask[:, -1 - inset_x], 2: mask[-1 - inset_y, :], 3: mask[:, inset_x]}
        for turns, line in sides.items():
            counts[turns] = max(counts[turns], _hand_runs(line, max(3, int(0.03 * line.size))))
    turns = max(counts, key=lambda k: counts[k])
    return turns if counts[turns] >= 3 else None


def _peaks(profile: NDArray[np.float64], min_prominence: float) -> list[int]:
    """Indices of interior local maxima of ``profile`` whose prominence is at least ``min_prominence``."""
    found: list[int] = []
    size = profile.size
    for index in range(1, size - 1):
        value = profile[index]
        if value < profile[index - 1] or value <= profile[index + 1]:
            continue
        left = index
        while left > 0 and profile[left - 1] <= value:
            left -= 1
        right = index
        while right < size - 1 and profile[right + 1] <= value:
            right += 1
        base = max(float(profile[left:index + 1].min()), float(profile[index:right + 1].min()))
        if value - base >= min_prominence:
            found.append(index)
    return found


def _border_valleys(mask: NDArray[np.uint8], turns: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Valley points of a hand whose fingers are cut by the border brought to the top by ``turns``."""
    upright = np.ascontiguousarray(np.rot90(mask, k=turns))
    height, width = upright.shape
    run_px = max(3, int(0.04 * height))
    # solid[y, x] is set when mask[y : y + run_px, x] is all hand: skips specks (pegs, reflections) in gaps.
    kernel = np.ones((run_px, 1), np.uint8)
    solid = cv2.erode(upright, kernel, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    has_hand = solid.any(axis=0)
    depth = np.where(has_hand, np.argmax(solid > 0, axis=0), height).astype(np.float64)
    depth = cv2.medianBlur(depth.astype(np.float32).reshape(1, -1), 5).reshape(-1).astype(np.float64)
    peaks = [index for index in _peaks(depth, 0.05 * height) if depth[index] < 0.8 * height]
    if len(peaks) < 2:
        raise PalmNotFoundError("the finger gaps could not be found", code="roi_failed")
    deepest = max(depth[index] for index in peaks)
    deep = [index for index in peaks if depth[index] >= 0.3 * deepest]
    if len(deep) < 2 or deep[-1] - deep[0] < 0.2 * width:
        raise PalmNotFoundError("the finger gaps could not be found", code="roi_failed")
    first, last = _bitangent(depth, deep[0], deep[-1], window=max(2, int(TANGENT_WINDOW_FRACTION * width)),
                             max_depth=0.8 * height)
    upright_points = [np.array([float(x), float(depth[x])]) for x in (first, last)]
    height0, width0 = mask.shape
    return (_unrotate(upright_points[0], turns, height0, width0),
            _unrotate(upright_points[1], turns, height0, width0))


def _bitangent(depth: NDArray[np.float64], first: int, last: int, *, window: int,
               max_depth: float) -> tuple[int, int]:
    """Refine two gap peaks of the depth profile into the points where one line touches both gaps from the palm
    side (the classic PolyU tangent construction: stable under small rotations of the hand, unlike the deepest
    column of each gap)."""
    middle = (first + last) // 2
    for _ in range(8):
        slope = (depth[last] - depth[first]) / max(last - first, 1)
        moved = False
        for which in (0, 1):
            anchor = first if which == 0 else last
            low = max(0, anchor - window) if which == 0 else max(middle + 1, anchor - window)
            high = min(middle, anchor + window) if which == 0 else min(depth.size - 1, anchor + window)
            columns = np.arange(low, high + 1)
            columns = columns[depth[columns] < max_depth]
            if columns.size == 0:
                continue
            below = depth[columns] - (depth[first] + slope * (columns - first))
            best = int(columns[int(np.argmax(below))])
            if best != anchor and below.max() > 1e-9:
                moved = True
                if which == 0:
                    first = best
                else:
                    last = best
        if not moved:
            break
    return first, last


def _unrotate(point: NDArray[np.float64], turns: int, height: int, width: int) -> NDArray[np.float64]:
    """Map ``(x, y)`` in ``np.rot90(image, k=turns)`` back to ``image`` (``height`` x ``width``)."""
    x, y = float(point[0]), float(point[1])
    k = turns % 4
    if k == 0:
        return np.array([x, y])
    if k == 1:  # rot90: out[i, j] = in[j, W - 1 - i]
        return np.array([width - 1 - y, x])
    if k == 2:  # out[i, j] = in[H - 1 - i, W - 1 - j]
        return np.array([width - 1 - x, height - 1 - y])
    # k == 3: out[i, j] = in[H - 1 - j, i]
    return np.array([y, height - 1 - x])


def _defect_valleys(mask: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Valley points of a whole hand inside the picture: deepest points of the hand contour's convexity defects."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count < 2:
        raise PalmNotFoundError("no hand was found in the picture", code="no_hand")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    hand = np.where(labels == largest, 255, 0).astype(np.uint8)
    padded = cv2.copyMakeBorder(hand, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise PalmNotFoundError("no hand was found in the picture", code="no_hand")
    contour = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(contour, returnPoints=False)
    try:
        defects = cv2.convexityDefects(contour, hull)
    except cv2.error as exc:  # self-intersecting hull on degenerate masks
        raise PalmNotFoundError("the finger gaps could not be found", code="roi_failed") from exc
    if defects is None:
        raise PalmNotFoundError("the finger gaps could not be found", code="roi_failed")
    rows = defects.reshape(-1, 4)
    min_depth = MIN_DEPTH_FRACTION * max(mask.shape) * 256.0  # depths are fixed-point (8 fractional bits)
    gaps = sorted(int(row[2]) for row in rows if row[3] >= min_depth)
    points = [contour[index, 0].astype(np.float64) - 1.0 for index in gaps]
    if len(points) < 2:
        raise PalmNotFoundError("the finger gaps could not be found", code="roi_failed")
    if len(points) == 2:
        return points[0], points[1]
    return _most_compact_run(points)


def find_valleys(mask: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The two outer finger-gap valley points ``(x, y)`` of a hand mask (index-middle and ring-little)."""
    turns = _finger_side_turns(mask)
    if turns is not None:
        return _border_valleys(mask, turns)
    return _defect_valleys(mask)


def _most_compact_run(points: list[NDArray[np.float64]]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    best: tuple[float, int, int] | None = None
    count = len(points)
    for start in range(count):
        first, middle, last = (points[(start + k) % count] for k in range(3))
        near = float(np.linalg.norm(middle - first))
        far = float(np.linalg.norm(last - middle))
        if min(near, far) <= 0 or max(near, far) / min(near, far) > SPACING_RATIO_MAX:
            continue
        span = near + far
        if best is None or span < best[0]:
            best = (span, start, (start + 2) % count)
    if best is not None:
        return points[best[1]], points[best[2]]
    # No regular run of three: the closest pair of consecutive gaps.
    pairs = [(float(np.linalg.norm(a - b)), a, b) for a, b in itertools.pairwise([*points, points[0]])]
    _, a, b = min(pairs, key=lambda pair: pair[0])
    return a, b


def _locate(grey: NDArray[np.uint8]) -> tuple[PalmFrame, NDArray[np.uint8], float]:
    """Frame in ``grey`` coordinates, the hand mask of the working copy and the working scale."""
    height, width = grey.shape
    scale = WORK_PX / max(height, width)
    work = grey
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        work = np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR),
                          dtype=np.uint8)
    mask = segment_hand(work)
    if np.count_nonzero(mask) < MIN_HAND_FRACTION * mask.size:
        raise PalmNotFoundError("no hand was found in the picture", code="no_hand")
    first, second = find_valleys(mask)
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    centre_y, centre_x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    towards_palm = np.array([centre_x, centre_y], dtype=np.float64) - (first + second) / 2
    # Orient so that (right, down) is a rotation: no mirroring without knowing which valley is which.
    axis = first - second
    down = np.array([-axis[1], axis[0]])
    if float(np.dot(down, towards_palm)) < 0:
        first, second = second, first
    frame = frame_from_valleys(first / scale, second / scale, towards_palm,
                               side_ratio=CLASSICAL_SIDE_RATIO, offset_ratio=CLASSICAL_OFFSET_RATIO)
    return frame, mask, scale


def classical_frame(grey: NDArray[np.uint8]) -> PalmFrame:
    """Palm frame (in ``grey``'s pixel coordinates) from segmentation and finger-gap valley points."""
    return _locate(grey)[0]


def classical_roi(grey: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The aligned 128 x 128 ROI of a device image (:func:`classical_frame` cut from ``grey``).

    Pixels outside the hand that a large palm square can reach (gaps, device edges) are kept as they are: filling
    them with the skin level was measured to lower accuracy on PolyU NIR (EER 7.3% vs 6.9%)."""
    return cut_roi(grey, _locate(grey)[0])
