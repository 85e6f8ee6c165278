"""The whole recognition story in five calls.

    decode_image -> assess_quality -> find_palm -> extract (template) -> compare / search

Each stage lives in its own package (``capture``, ``detect``, ``features``, ``templates``, ``index``) and can
be used on its own; this module only wires them together with the configured limits. Nothing is loaded at
import time: the hand model is loaded on first use by :class:`~palmid.detect.finder.PalmFinder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from palmid.capture.decode import decode_image
from palmid.capture.quality import assess_quality
from palmid.detect.finder import PalmFinder
from palmid.detect.palm import PalmROI, RoiMethod
from palmid.errors import ValidationFailed
from palmid.features.registry import DEFAULT_EXTRACTOR, Extractor, get_extractor
from palmid.templates.compare import compare_templates, merge_templates
from palmid.templates.template import Template

__all__ = ["Acquisition", "Pipeline", "PipelineOptions", "compare_templates"]


@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    """Limits and choices for turning photos into templates."""

    max_image_bytes: int = 15 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    decode_min_long_side_px: int | None = 800
    """Large JPEGs are decoded at a reduced DCT scale keeping at least this long side (speed; ``None``: full)."""
    hand_model_path: Path | None = None
    extractor: str = DEFAULT_EXTRACTOR


@dataclass(frozen=True, eq=False)
class Acquisition:
    """One photo's template and how its palm was found (``roi_method`` is never ``"auto"``)."""

    template: Template
    roi_method: RoiMethod


class Pipeline:
    """Photo bytes in, versioned palm template out. Thread-safe for concurrent ``template_from_bytes`` calls."""

    def __init__(self, *, options: PipelineOptions | None = None) -> None:
        self.options = options or PipelineOptions()
        self._finder = PalmFinder(hand_model_path=self.options.hand_model_path)
        self._extractor: Extractor = get_extractor(self.options.extractor)

    @property
    def extractor(self) -> Extractor:
        return self._extractor

    def template_from_bytes(self, data: bytes, *, detector: RoiMethod = "landmarks") -> Template:
        """Decode one photo, check its quality, find the palm and extract its template.

        ``detector`` is chosen explicitly: ``"landmarks"`` (camera photos), ``"classical"`` (NIR / contact
        devices), ``"roi"`` (the image already is an aligned palm ROI) or ``"auto"`` (a documented policy:
        colour photos -> landmarks; grey photos -> classical, then landmarks if classical finds no hand; the
        method used is reported by :meth:`acquire`). There is no silent fallback.
        Raises :class:`~palmid.errors.InputError` subclasses with reason codes a kiosk can show.
        """
        return self.acquire(data, detector=detector).template

    def acquire(self, data: bytes, *, detector: RoiMethod = "landmarks") -> Acquisition:
        """Like :meth:`template_from_bytes`, also telling which ROI method found the palm (for ``"auto"``)."""
        image = decode_image(
            data,
            max_bytes=self.options.max_image_bytes,
            max_pixels=self.options.max_image_pixels,
            min_long_side_px=self.options.decode_min_long_side_px,
        )
        assess_quality(image, roi_input=detector == "roi")
        roi: PalmROI = self._finder.find_palm(image, method=detector)
        return Acquisition(template=self._extractor.extract(roi), roi_method=roi.method)

    def enroll(self, photos: Sequence[bytes], *, detector: RoiMethod = "landmarks") -> Template:
        """Make one multi-sample template from several photos of the same palm (every photo must pass)."""
        if not photos:
            raise ValidationFailed("enrollment needs at least one photo", code="no_images")
        return merge_templates([self.template_from_bytes(photo, detector=detector) for photo in photos])

    def close(self) -> None:
        """Release the hand model (call at shutdown; it would reload on the next photo)."""
        self._finder.close()

    @staticmethod
    def compare(probe: Template, reference: Template) -> float:
        """Similarity in [0, 1]; higher means the same palm. Refuses templates of different versions."""
        return compare_templates(probe, reference)
