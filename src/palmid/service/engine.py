"""What the service needs from the recognition engine, and the adapter over the real :class:`Pipeline`.

The service talks to a :class:`Recognizer` so that tests can inject a fast double; the default is
:class:`PipelineRecognizer`, which wires :class:`palmid.pipeline.Pipeline`, the template codec, the calibration
table (thresholds from a target false-match rate) and the index matcher of the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from palmid.config import Settings
from palmid.detect.palm import RoiMethod
from palmid.index.base import Matcher as IndexMatcher
from palmid.index.engine import EngineMatcher
from palmid.pipeline import Pipeline, PipelineOptions
from palmid.templates.calibration import threshold_for_fmr as calibrated_threshold
from palmid.templates.compare import merge_templates
from palmid.templates.template import Template


class Recognizer(Protocol):
    """Photo bytes -> templates, comparisons and calibrated thresholds. Safe to call from several threads."""

    def template_from_bytes(self, data: bytes) -> Template:
        """One photo -> one template. Raises InputError subclasses with kiosk reason codes."""
        ...

    def merge(self, templates: Sequence[Template]) -> Template:
        """Several templates of the same palm -> one multi-sample template."""
        ...

    def compare(self, probe: Template, reference: Template) -> float:
        """Similarity in [0, 1]; higher means the same palm."""
        ...

    def threshold_for_fmr(self, fmr: float, *, n_sample_pairs: int) -> float:
        """Similarity threshold giving false-match rate ``fmr`` per comparison of ``n_sample_pairs`` pairs."""
        ...

    def index_matcher(self) -> IndexMatcher[Template]:
        """How the identification index derives codes from and compares these templates."""
        ...

    def close(self) -> None:
        """Release models (service shutdown)."""
        ...


class PipelineRecognizer:
    """The real engine: :class:`palmid.pipeline.Pipeline` with the configured limits and detector."""

    def __init__(self, *, settings: Settings, detector: RoiMethod | None = None) -> None:
        self.detector: RoiMethod = detector or settings.detector
        self.pipeline = Pipeline(
            options=PipelineOptions(
                max_image_bytes=settings.max_image_bytes,
                max_image_pixels=settings.max_image_pixels,
                hand_model_path=settings.hand_model_path,
            )
        )

    def template_from_bytes(self, data: bytes) -> Template:
        return self.pipeline.template_from_bytes(data, detector=self.detector)

    def merge(self, templates: Sequence[Template]) -> Template:
        return merge_templates(templates)

    def compare(self, probe: Template, reference: Template) -> float:
        return self.pipeline.compare(probe, reference)

    def threshold_for_fmr(self, fmr: float, *, n_sample_pairs: int) -> float:
        extractor = self.pipeline.extractor
        return calibrated_threshold(
            fmr, extractor_id=extractor.extractor_id, version=extractor.version, n_sample_pairs=n_sample_pairs
        )

    def index_matcher(self) -> IndexMatcher[Template]:
        return EngineMatcher()

    def close(self) -> None:
        self.pipeline.close()
