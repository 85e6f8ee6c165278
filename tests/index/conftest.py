"""A toy template format for index tests: 64-byte codes compared with a one-byte shift tolerance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray

from palmid.index.base import AlignedProbeCodes

CODE_BYTES = 64


@dataclass(frozen=True)
class ToyTemplate:
    code: bytes


class ToyMatcher:
    """Scan code = the raw bytes; full comparison = best agreement over byte shifts -1, 0, +1. The probe's scan codes
    are its code alone, or (``dense``) its code rolled by -1, 0, +1 bytes."""

    @property
    def code_bytes(self) -> int:
        return CODE_BYTES

    @property
    def scan_bytes(self) -> int:
        return CODE_BYTES

    @property
    def aligned_bytes(self) -> int:
        return 0

    @property
    def aligned_head_bytes(self) -> int:
        return 0

    def scan_probe_codes(self, template: ToyTemplate, *, dense: bool = False) -> NDArray[np.uint8]:
        code = np.frombuffer(template.code, dtype=np.uint8)
        return np.stack([np.roll(code, shift) for shift in ((-1, 0, 1) if dense else (0,))])

    def aligned_probe_codes(self, template: ToyTemplate) -> AlignedProbeCodes:
        empty = np.zeros((0, 0), dtype=np.uint8)
        return AlignedProbeCodes(unrotated=empty, rotated=empty)

    def index_code(self, template: ToyTemplate) -> NDArray[np.uint8]:
        return np.frombuffer(template.code, dtype=np.uint8).copy()

    def index_codes(self, templates: Sequence[ToyTemplate]) -> NDArray[np.uint8]:
        return np.stack([self.index_code(t) for t in templates]) if templates else np.zeros((0, CODE_BYTES), np.uint8)

    def compare(self, probe: ToyTemplate, reference: ToyTemplate) -> float:
        return float(self.compare_many(probe, [reference])[0])

    def compare_many(self, probe: ToyTemplate, references: Sequence[ToyTemplate]) -> NDArray[np.float64]:
        if not references:
            return np.zeros(0, dtype=np.float64)
        p = np.frombuffer(probe.code, dtype=np.uint8)
        refs = np.stack([np.frombuffer(r.code, dtype=np.uint8) for r in references])
        best = np.zeros(len(references), dtype=np.float64)
        for shift in (-1, 0, 1):
            agree = 1.0 - np.bitwise_count(refs ^ np.roll(p, shift)).sum(axis=1) / (8 * CODE_BYTES)
            best = np.maximum(best, agree)
        return best

    def template_nbytes(self, template: ToyTemplate) -> int:
        return len(template.code)


class AlignedToyMatcher(ToyMatcher):
    """Index code = 16 scan bytes (the raw code's first bytes, shift-sensitive: the probe's scan code is its own
    first 16 bytes) + the 64-byte code again as an aligned code; the probe's aligned codes are its code rolled by -1,
    0, +1 bytes (the full comparison's shifts), and the rotated set adds rolls by -2 and +2."""

    head = 16

    @property
    def code_bytes(self) -> int:
        return self.head + CODE_BYTES

    @property
    def scan_bytes(self) -> int:
        return self.head

    @property
    def aligned_bytes(self) -> int:
        return CODE_BYTES

    @property
    def aligned_head_bytes(self) -> int:
        return CODE_BYTES // 2

    def scan_probe_codes(self, template: ToyTemplate, *, dense: bool = False) -> NDArray[np.uint8]:
        return np.frombuffer(template.code, dtype=np.uint8)[None, : self.head].copy()

    def index_codes(self, templates: Sequence[ToyTemplate]) -> NDArray[np.uint8]:
        raw = super().index_codes(templates)
        return np.concatenate([raw[:, : self.head], raw], axis=1)

    def aligned_probe_codes(self, template: ToyTemplate) -> AlignedProbeCodes:
        code = np.frombuffer(template.code, dtype=np.uint8)
        rotated = np.stack([np.roll(code, shift) for shift in (-1, 0, 1, -2, 2)])
        return AlignedProbeCodes(unrotated=rotated[:3], rotated=rotated)


@pytest.fixture
def aligned_matcher() -> AlignedToyMatcher:
    return AlignedToyMatcher()


def random_template(rng: np.random.Generator) -> ToyTemplate:
    return ToyTemplate(rng.integers(0, 256, CODE_BYTES, dtype=np.uint8).tobytes())


def noisy_copy(template: ToyTemplate, rng: np.random.Generator, *, flip: float = 0.15, shift: int = 0) -> ToyTemplate:
    bits = np.unpackbits(np.frombuffer(template.code, dtype=np.uint8))
    bits ^= (rng.random(bits.size) < flip).astype(np.uint8)
    return ToyTemplate(np.roll(np.packbits(bits), shift).tobytes())


@pytest.fixture
def matcher() -> ToyMatcher:
    return ToyMatcher()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@dataclass(frozen=True)
class ToyFactory:
    rng: np.random.Generator

    def random(self) -> ToyTemplate:
        return random_template(self.rng)

    def noisy(self, template: ToyTemplate, *, flip: float = 0.15, shift: int = 0) -> ToyTemplate:
        return noisy_copy(template, self.rng, flip=flip, shift=shift)


@pytest.fixture
def toys(rng: np.random.Generator) -> ToyFactory:
    return ToyFactory(rng)


def synthetic_palm(seed: int, *, variant: int = 0) -> NDArray[np.uint8]:
    """A 128x128 palm-like grey image: a few curved principal lines and finer wrinkles on skin-like texture.

    ``variant`` > 0 adds a small shift, a slight rotation and fresh sensor noise (another capture of the same palm).
    """
    import cv2

    rng = np.random.default_rng(seed)
    image = np.full((160, 160), 150, dtype=np.float32)
    image += cv2.GaussianBlur(rng.normal(0, 18, (160, 160)).astype(np.float32), (0, 0), 4)
    for width, count in ((3, 3), (1, 14)):
        for _ in range(count):
            points = np.cumsum(rng.normal(0, 9, (6, 2)), axis=0) + rng.uniform(20, 140, 2)
            cv2.polylines(image, [points.astype(np.int32)], False, float(rng.uniform(60, 100)), width, cv2.LINE_AA)
    capture = np.random.default_rng((seed, variant))
    if variant:
        angle = capture.uniform(-3, 3)
        shift = capture.uniform(-3, 3, 2)
        warp = cv2.getRotationMatrix2D((80, 80), angle, 1.0)
        warp[:, 2] += shift
        image = cv2.warpAffine(image, warp, (160, 160), borderMode=cv2.BORDER_REFLECT)
    image = cv2.GaussianBlur(image, (0, 0), 0.8) + capture.normal(0, 4, image.shape).astype(np.float32)
    return np.clip(image[16:144, 16:144], 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def make_palm_image() -> Callable[..., NDArray[np.uint8]]:
    """:func:`synthetic_palm` as a fixture (test modules do not import conftest)."""
    return synthetic_palm
