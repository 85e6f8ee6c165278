"""Training-free Gabor orientation codes (BOCV-like sign codes, real and imaginary parts).

For each of ``n_orientations`` Gabor filters (wavelength ``wavelength_px`` on the 128 px ROI) the code keeps the
sign of the real (zero-DC) and imaginary responses on a regular grid: ``2 * n_orientations`` bits per cell. The
ROI is first area-downsampled by ``downsample`` (the filters are low-frequency, so nothing is lost and filtering
is 4x cheaper). Codes are stored for the ROI rotated by each angle in ``rotations_deg`` so that matching can search
relative rotations without re-filtering. A coarse 2048-bit code (filtered at 32 px: two low-frequency banks of 8
orientations, responses box-pooled over an 8x8 grid of cells, real and imaginary signs) serves 1:N shortlisting.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from palmid.detect.palm import ROI_SIZE_PX, PalmROI
from palmid.errors import ValidationFailed
from palmid.features.layout import CodeLayout
from palmid.templates.template import Template

__all__ = ["GaborBank", "GaborBocvExtractor", "GaborParams", "gabor_kernels"]

_COARSE_GRID_CELLS = 8


@dataclass(frozen=True, kw_only=True)
class GaborParams:
    """Filter-bank settings. Part of the template version."""

    wavelength_px: float
    n_orientations: int
    sigma_per_wavelength: float = 0.56
    aspect: float = 1.0


@dataclass(frozen=True)
class GaborBank:
    """Zero-DC real kernels and imaginary kernels, one pair per orientation."""

    real: tuple[NDArray[np.float32], ...]
    imag: tuple[NDArray[np.float32], ...]


def gabor_kernels(params: GaborParams, *, scale: float = 1.0) -> GaborBank:
    """Build the kernels for an image scaled by ``scale`` (0.5 = half resolution)."""
    wavelength = params.wavelength_px * scale
    sigma = params.sigma_per_wavelength * wavelength
    half = int(np.ceil(2.5 * sigma))
    y, x = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    real: list[NDArray[np.float32]] = []
    imag: list[NDArray[np.float32]] = []
    for k in range(params.n_orientations):
        theta = np.pi * k / params.n_orientations
        xr = x * np.cos(theta) + y * np.sin(theta)
        yr = -x * np.sin(theta) + y * np.cos(theta)
        envelope = np.exp(-(xr**2 + (params.aspect * yr) ** 2) / (2 * sigma**2))
        even = envelope * np.cos(2 * np.pi * xr / wavelength)
        even -= envelope * (even.sum() / envelope.sum())
        odd = envelope * np.sin(2 * np.pi * xr / wavelength)
        real.append((even / np.abs(even).sum()).astype(np.float32))
        imag.append((odd / np.abs(odd).sum()).astype(np.float32))
    return GaborBank(real=tuple(real), imag=tuple(imag))


def _sign_code(image: NDArray[np.float32], bank: GaborBank, *, stride: int, pool: bool) -> NDArray[np.bool_]:
    """``(rows, cols, 2 * orientations)`` signs of the responses sampled every ``stride`` pixels."""
    start = stride // 2
    planes: list[NDArray[np.bool_]] = []
    for even, odd in zip(bank.real, bank.imag, strict=True):
        for kernel in (even, odd):
            response = cv2.filter2D(image, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)
            if pool:
                response = cv2.resize(response, None, fx=1 / stride, fy=1 / stride, interpolation=cv2.INTER_AREA)
            else:
                response = response[start::stride, start::stride]
            planes.append(np.asarray(response > 0))
    return np.stack(planes, axis=-1)


def _rotated(image: NDArray[np.float32], warp: NDArray[np.float64]) -> NDArray[np.float32]:
    size = (image.shape[1], image.shape[0])
    return np.asarray(cv2.warpAffine(image, warp, size, borderMode=cv2.BORDER_REFLECT), dtype=np.float32)


class GaborBocvExtractor:
    """ROI -> template with multi-rotation fine codes and a coarse code (see module docstring)."""

    def __init__(
        self,
        *,
        extractor_id: str,
        version: int,
        params: GaborParams,
        coarse_params: tuple[GaborParams, ...],
        layout: CodeLayout,
        downsample: int = 2,
    ) -> None:
        self.extractor_id = extractor_id
        self.version = version
        self.layout = layout
        self.params = params
        self._downsample = downsample
        self._work_px = ROI_SIZE_PX // downsample
        self._stride = self._work_px // layout.grid_cells
        if self._stride * layout.grid_cells != self._work_px or 2 * params.n_orientations != layout.channels:
            raise ValueError("grid and filter bank do not match the layout")
        self._bank = gabor_kernels(params, scale=1 / downsample)
        self._coarse_px = _COARSE_GRID_CELLS * 4  # the coarse code is filtered at 32 px, pooled over 4x4
        self._coarse_banks = tuple(gabor_kernels(bank, scale=self._coarse_px / ROI_SIZE_PX) for bank in coarse_params)
        coarse_bits = sum(2 * bank.n_orientations * _COARSE_GRID_CELLS**2 for bank in coarse_params)
        if coarse_bits != layout.coarse_bytes * 8:
            raise ValueError("coarse filter bank does not match the layout")
        centre = (self._work_px - 1) / 2
        self._warps = tuple(
            np.asarray(cv2.getRotationMatrix2D((centre, centre), angle, 1.0), dtype=np.float64)
            for angle in layout.rotations_deg
        )

    def extract(self, roi: PalmROI) -> Template:
        """One single-sample template from an aligned 128 px ROI."""
        pixels = roi.pixels
        if pixels.shape != (ROI_SIZE_PX, ROI_SIZE_PX) or pixels.dtype != np.uint8:
            raise ValidationFailed(f"palm ROI must be {ROI_SIZE_PX}x{ROI_SIZE_PX} grey uint8", code="invalid_roi")
        size = (self._work_px, self._work_px)
        work = np.asarray(cv2.resize(pixels.astype(np.float32), size, interpolation=cv2.INTER_AREA), np.float32)
        fine = np.stack(
            [
                _sign_code(
                    work if angle == 0 else _rotated(work, warp),
                    self._bank,
                    stride=self._stride,
                    pool=False,
                )
                for angle, warp in zip(self.layout.rotations_deg, self._warps, strict=True)
            ]
        )
        small = np.asarray(
            cv2.resize(work, (self._coarse_px, self._coarse_px), interpolation=cv2.INTER_AREA), np.float32
        )
        coarse = np.concatenate(
            [_sign_code(small, bank, stride=4, pool=True) for bank in self._coarse_banks], axis=-1
        )  # (8, 8, 32): cell-major, 4 bytes per cell
        sample = np.packbits(coarse).tobytes() + np.packbits(fine).tobytes()
        return Template(extractor_id=self.extractor_id, version=self.version, samples=(sample,))
