"""The aligned palm region of interest handed from detection to feature extraction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

RoiMethod = Literal["landmarks", "classical", "roi"]
"""How the ROI was found: MediaPipe landmarks, the classical valley-point method (NIR), or given as an ROI."""

ROI_SIZE_PX = 128
"""Side of the normalised square ROI in pixels."""


@dataclass(frozen=True, eq=False)
class PalmROI:
    """A square, rotation- and scale-normalised grey palm ROI (``(ROI_SIZE_PX, ROI_SIZE_PX)`` uint8).

    Orientation convention: fingers point up, and left hands are mirrored so that every ROI looks like a right
    palm seen from the palm side (so one extractor serves both hands).
    """

    pixels: NDArray[np.uint8]
    method: RoiMethod
    handedness: Literal["left", "right"] | None = None
