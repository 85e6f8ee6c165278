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


def _gabor_bocv_v1() -> Extractor:
    """Version 1: wavelength 12 px, 6 orientations, real+imag signs on 32x32 cells; +-8 deg, +-2 cells search."""
    return _gabor_bocv(version=1, match_blocks=1)


def _gabor_bocv_v2() -> Extractor:
    """Version 2: the codes of version 1; matching lets each of 2x2 blocks take its own shift (+-2 cells)."""
    return _gabor_bocv(version=2, match_blocks=2)


def _gabor_bocv(*, version: int, match_blocks: int) -> Extractor:
    layout = CodeLayout(
        rotations_deg=(-4.0, 0.0, 4.0),
        grid_cells=32,
        channels=12,
        coarse_bytes=256,
        # index pairs (a, b): relative rotation 0, +-4 and +-8 degrees
        rotation_pairs=((1, 1), (2, 1), (1, 2), (2, 0), (0, 2)),
        max_shift_cells=2,
        match_blocks=match_blocks,
    )
    return GaborBocvExtractor(
        extractor_id="gabor-bocv",
        version=version,
        params=GaborParams(wavelength_px=12.0, n_orientations=6, sigma_per_wavelength=0.45),
        coarse_params=(
            GaborParams(wavelength_px=24.0, n_orientations=8),
            GaborParams(wavelength_px=40.0, n_orientations=8),
        ),
        layout=layout,
        downsample=2,
    )


_FACTORIES: dict[str, Callable[[], Extractor]] = {"gabor-bocv": _gabor_bocv_v2, "gabor-bocv@1": _gabor_bocv_v1}
"""Extractor names: the plain id is the current version; ``id@N`` makes templates of an older version N."""


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
    """The code layout of templates made by ``extractor_id`` at ``version``; unknown ids or versions are refused."""
    if "@" in extractor_id:
        raise TemplateVersionMismatch(f"invalid extractor id {extractor_id!r}", code="template_version_mismatch")
    for name in (extractor_id, f"{extractor_id}@{version}"):
        if name in _FACTORIES:
            extractor = get_extractor(name)
            if extractor.extractor_id == extractor_id and extractor.version == version:
                return extractor.layout
    raise TemplateVersionMismatch(
        f"templates of extractor {extractor_id!r} version {version} are not supported",
        code="template_version_mismatch",
    )
