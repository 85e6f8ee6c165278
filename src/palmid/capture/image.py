"""The decoded camera image handed from capture to detection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class CapturedImage:
    """A decoded, orientation-corrected image held in memory only (never written anywhere).

    ``rgb`` is an ``(H, W, 3)`` uint8 array in RGB order; grey sources are expanded to three channels.
    """

    rgb: NDArray[np.uint8]
    source_format: str

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    def grey(self) -> NDArray[np.uint8]:
        """Luma as an ``(H, W)`` uint8 array (ITU-R BT.601 weights)."""
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        luma = self.rgb.astype(np.float32) @ weights
        return np.asarray(np.clip(luma + 0.5, 0, 255), dtype=np.uint8)
