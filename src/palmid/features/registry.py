"""Extractor names -> extractors. Unknown names are refused (no silent fallback)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Protocol, runtime_checkable

from palmid.detect.palm import PalmROI
from palmid.errors import ConfigError, TemplateVersionMismatch
from palmid.features.gabor import GaborBocvExtractor, GaborParams
from palmid.features.layout import CodeLayout
from palmid.templates.template import Template

__all__ = ["DEFAULT_EXTRACTOR", "Extractor", "extractor_names", "get_extractor", "layout_for"]

DEFAULT_EXTRACTOR = "gabor-bocv"
"""The extractor new templates are made with."""


@runtime_checkable
class Extractor(Protocol):
    """Turns an aligned palm ROI into a single-sample template of a fixed code layout."""

    extractor_id: str
    version: int
    layout: CodeLayout

    def extract(self, roi: PalmROI) -> Template: ...


def _gabor_bocv() -> Extractor:
    """Version 1: wavelength 12 px, 6 orientations, real+imag signs on 32x32 cells; +-8 deg, +-2 cells search."""
    layout = CodeLayout(
        rotations_deg=(-4.0, 0.0, 4.0),
        grid_cells=32,
        channels=12,
        coarse_bytes=256,
        # index pairs (a, b): relative rotation 0, +-4 and +-8 degrees
        rotation_pairs=((1, 1), (2, 1), (1, 2), (2, 0), (0, 2)),
        max_shift_cells=2,
    )
    return GaborBocvExtractor(
        extractor_id="gabor-bocv",
        version=1,
        params=GaborParams(wavelength_px=12.0, n_orientations=6, sigma_per_wavelength=0.45),
        coarse_params=(
            GaborParams(wavelength_px=24.0, n_orientations=8),
            GaborParams(wavelength_px=40.0, n_orientations=8),
        ),
        layout=layout,
        downsample=2,
    )


_FACTORIES: dict[str, Callable[[], Extractor]] = {"gabor-bocv": _gabor_bocv}


def extractor_names() -> tuple[str, ...]:
    return tuple(sorted(_FACTORIES))


@cache
def get_extractor(name: str) -> Extractor:
    """The extractor registered as ``name``; unknown names raise ``ConfigError(unknown_extractor)``."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(
            f"unknown feature extractor {name!r} (known: {', '.join(extractor_names())})", code="unknown_extractor"
        )
    return factory()


def layout_for(extractor_id: str, version: int) -> CodeLayout:
    """The code layout of templates made by ``extractor_id`` at ``version``; other versions are refused."""
    try:
        extractor = get_extractor(extractor_id)
    except ConfigError as exc:
        raise TemplateVersionMismatch(
            f"templates of extractor {extractor_id!r} are not supported", code="template_version_mismatch"
        ) from exc
    if extractor.version != version:
        raise TemplateVersionMismatch(
            f"template version {version} of {extractor_id!r} is not the supported version {extractor.version}",
            code="template_version_mismatch",
        )
    return extractor.layout
