"""The aligned palm region of interest handed from detection to feature extraction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

RoiMethod = Literal["landmarks", "classical", "roi", "auto"]
"""How to find the ROI: MediaPipe landmarks, the classical valley-point method (NIR), given as an ROI, or ``auto``
(the documented policy of :class:`palmid.detect.finder.PalmFinder`: colour -> landmarks; grey -> classical, then
landmarks if classical finds no hand). :attr:`PalmROI.method` records the method actually used, never ``auto``."""

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
