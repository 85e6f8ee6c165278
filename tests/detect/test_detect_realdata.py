"""Detection on real palms (../shared/data): COEP photos with landmarks, PolyU NIR with the classical method.

Consistency is measured with the default extractor's similarity: the ROI of a rotated or mirrored photo must match
the original far better than another person's palm does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from palmid.capture.decode import decode_image
from palmid.capture.image import CapturedImage
from palmid.capture.quality import assess_quality
from palmid.detect.finder import PalmFinder
from palmid.detect.model_build import DEFAULT_MODEL_PATH
from palmid.detect.palm import PalmROI
from palmid.errors import PalmNotFoundError
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.templates.compare import compare_templates
from palmid_testdata import dataset_dir

pytestmark = pytest.mark.realdata
LIMITS = {"max_bytes": 15_000_000, "max_pixels": 40_000_000}


def _load(folder: Path, relative: str) -> CapturedImage:
    return decode_image((folder / relative).read_bytes(), **LIMITS)


def _similarity(a: PalmROI, b: PalmROI) -> float:
    extractor = get_extractor(DEFAULT_EXTRACTOR)
    return compare_templates(extractor.extract(a), extractor.extract(b))


def _rotated(rgb: np.ndarray, degrees: float) -> CapturedImage:
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += new_w / 2 - width / 2
    matrix[1, 2] += new_h / 2 - height / 2
    out = cv2.warpAffine(rgb, matrix, (new_w, new_h), borderMode=cv2.BORDER_REPLICATE)
    return CapturedImage(rgb=np.ascontiguousarray(out), source_format="jpeg")


@pytest.fixture(scope="module")
def finder() -> Iterator[PalmFinder]:
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"hand model not built at {DEFAULT_MODEL_PATH} (run `palmid models build`)")
    palm_finder = PalmFinder()
    yield palm_finder
    palm_finder.close()


@pytest.fixture(scope="module")
def coep() -> dict[str, CapturedImage]:
    folder = dataset_dir("coep")
    names = {"a1": "images/001/001_01.jpg", "a2": "images/001/001_03.jpg", "b1": "images/002/002_01.jpg"}
    return {key: _load(folder, path) for key, path in names.items()}


def test_coep_photos_pass_quality_and_give_right_palm_rois(finder: PalmFinder,
                                                          coep: dict[str, CapturedImage]) -> None:
    for image in coep.values():
        assess_quality(image, roi_input=False)
        roi = finder.find_palm(image, method="landmarks")
        assert roi.pixels.shape == (128, 128) and roi.pixels.dtype == np.uint8
        assert roi.method == "landmarks" and roi.handedness == "right"
        assert finder.find_palm(image, method="auto").method == "landmarks"


def test_coep_same_palm_matches_better_than_another(finder: PalmFinder, coep: dict[str, CapturedImage]) -> None:
    a1, a2, b1 = (finder.find_palm(coep[key]) for key in ("a1", "a2", "b1"))
    assert _similarity(a1, a2) > _similarity(a1, b1) + 0.05


@pytest.mark.parametrize("transform", ["mirror", "rot90", "rot180", "rot37", "mirror_rot-60"])
def test_coep_roi_is_rotation_and_mirror_invariant(finder: PalmFinder, coep: dict[str, CapturedImage],
                                                   transform: str) -> None:
    rgb = coep["a1"].rgb
    if transform.startswith("mirror"):
        rgb = np.ascontiguousarray(rgb[:, ::-1])
    degrees = float(transform.split("rot")[1]) if "rot" in transform else 0.0
    moved = _rotated(rgb, degrees) if degrees else CapturedImage(rgb=rgb, source_format="jpeg")
    roi = finder.find_palm(moved, method="landmarks")
    assert roi.handedness == ("left" if transform.startswith("mirror") else "right")
    reference = finder.find_palm(coep["a1"])
    impostor = finder.find_palm(coep["b1"])
    assert _similarity(reference, roi) > _similarity(reference, impostor) + 0.08


def test_two_hands_are_refused(finder: PalmFinder, coep: dict[str, CapturedImage]) -> None:
    left = cv2.resize(coep["a1"].rgb, (800, 600), interpolation=cv2.INTER_AREA)
    right = cv2.resize(coep["b1"].rgb, (800, 600), interpolation=cv2.INTER_AREA)[:, ::-1]
    both = CapturedImage(rgb=np.ascontiguousarray(np.hstack([right, left])), source_format="jpeg")
    with pytest.raises(PalmNotFoundError) as caught:
        finder.find_palm(both, method="landmarks")
    assert caught.value.code == "multiple_hands"


def test_polyu_nir_with_the_classical_method(finder: PalmFinder) -> None:
    folder = dataset_dir("polyu-nir")
    paths = {"a1": "images/0001/1_01.jpg", "a2": "images/0001/2_01.jpg", "b1": "images/0002/1_01.jpg"}
    rois = {}
    for key, path in paths.items():
        image = _load(folder, path)
        assess_quality(image, roi_input=False)
        rois[key] = finder.find_palm(image, method="classical")
        assert rois[key].method == "classical" and rois[key].pixels.shape == (128, 128)
        assert finder.find_palm(image, method="auto").method == "classical"
    assert _similarity(rois["a1"], rois["a2"]) > _similarity(rois["a1"], rois["b1"]) + 0.05


def test_tongji_rois_pass_quality_as_roi_input(finder: PalmFinder) -> None:
    folder = dataset_dir("tongji")
    for path in ("images/session1/00001.png", "images/session2/00001.png"):
        image = _load(folder, path)
        assess_quality(image, roi_input=True)
        roi = finder.find_palm(image, method="roi")
        assert roi.pixels.shape == (128, 128)
