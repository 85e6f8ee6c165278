"""A fast, deterministic stand-in for the recognition engine (for API tests that do not need real photos).

"Photos" are small byte strings: ``b"PALM:<name>:<n>"`` is photo ``n`` of palm ``<name>``; ``b"QUALITY:<code>"``
fails the quality check with ``<code>``; ``b"NOHAND"`` has no palm; anything else is an unreadable image.
Templates are real :class:`~palmid.templates.template.Template` objects (extractor ``"double"``), so the byte
format and the store are exercised for real.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ImageError, PalmNotFoundError, QualityError
from palmid.index.base import Matcher as IndexMatcher
from palmid.templates.template import Template

EXTRACTOR_ID = "double"
THRESHOLD = 0.5
CODE_BYTES = 32


def photo(palm: str, n: int = 1) -> bytes:
    return f"PALM:{palm}:{n}".encode()


def _code(palm: str) -> bytes:
    return hashlib.sha256(palm.encode()).digest()


class DoubleIndexMatcher:
    """The index side of the double: similarity 1.0 when two templates share a palm code, else 0.0."""

    code_bytes = CODE_BYTES

    def compare(self, probe: Template, reference: Template) -> float:
        return 1.0 if set(probe.samples) & set(reference.samples) else 0.0

    def compare_many(self, probe: Template, references: Sequence[Template]) -> NDArray[np.float64]:
        return np.array([self.compare(probe, reference) for reference in references], dtype=np.float64)

    def template_nbytes(self, template: Template) -> int:
        return len(template.to_bytes())


class DoubleRecognizer:
    """Implements :class:`palmid.service.engine.Recognizer`; records what it was asked to decode."""

    def __init__(self) -> None:
        self.decoded: list[bytes] = []
        self.closed = False
        self.on_decode: Callable[[], None] | None = None
        """Called before each photo is decoded (to observe the order of events)."""
        self.gate: threading.Event | None = None
        """When set, recognition waits for it (to hold a request inside the thread pool)."""
        self._lock = threading.Lock()
        self._matcher = DoubleIndexMatcher()

    def template_from_bytes(self, data: bytes) -> Template:
        with self._lock:
            self.decoded.append(data)
        if self.on_decode is not None:
            self.on_decode()
        if self.gate is not None and not self.gate.wait(timeout=30):
            raise TimeoutError("test gate never opened")
        if data.startswith(b"PALM:"):
            palm = data.split(b":")[1].decode()
            return Template(extractor_id=EXTRACTOR_ID, version=1, samples=(_code(palm),))
        if data.startswith(b"QUALITY:"):
            raise QualityError("photo not good enough", code=data.split(b":", 1)[1].decode())
        if data == b"NOHAND":
            raise PalmNotFoundError("no hand in the photo", code="no_hand")
        raise ImageError("not an image", code="unreadable_image")

    def merge(self, templates: Sequence[Template]) -> Template:
        samples = tuple(sample for template in templates for sample in template.samples)
        return Template(extractor_id=EXTRACTOR_ID, version=1, samples=samples)

    def compare(self, probe: Template, reference: Template) -> float:
        return self._matcher.compare(probe, reference)

    def threshold_for_fmr(self, fmr: float, *, n_sample_pairs: int) -> float:
        if not 0 < fmr <= 0.5 or n_sample_pairs < 1:
            raise ValueError("bad calibration request")
        return THRESHOLD

    def index_matcher(self) -> IndexMatcher[Template]:
        return self._matcher

    def close(self) -> None:
        self.closed = True
