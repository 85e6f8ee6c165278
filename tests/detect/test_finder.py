"""PalmFinder: explicit methods, the documented auto policy, lazy model loading, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from synthetic_hands import fingers_cut_by_top_border, palm_texture

from palmid.capture.image import CapturedImage
from palmid.detect.finder import PalmFinder, is_grey_image
from palmid.detect.model_build import DEFAULT_MODEL_PATH
from palmid.errors import ModelUnavailableError, PalmNotFoundError, QualityError, ValidationFailed


def _captured(array: np.ndarray) -> CapturedImage:
    rgb = array if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)
    return CapturedImage(rgb=np.ascontiguousarray(rgb), source_format="png")


@pytest.fixture(scope="module")
def finder() -> Iterator[PalmFinder]:
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"hand model not built at {DEFAULT_MODEL_PATH} (run `palmid models build`)")
    palm_finder = PalmFinder()
    yield palm_finder
    palm_finder.close()


def test_roi_method_resizes_grey_without_detection(tmp_path: Path) -> None:
    offline = PalmFinder(hand_model_path=tmp_path / "missing.task")  # never loaded for "roi"
    grey = np.clip(palm_texture(150, 150), 0, 255).astype(np.uint8)
    roi = offline.find_palm(_captured(grey), method="roi")
    assert roi.pixels.shape == (128, 128) and roi.pixels.dtype == np.uint8
    assert roi.method == "roi" and roi.handedness is None
    exact = np.clip(palm_texture(128, 128), 0, 255).astype(np.uint8)
    assert np.array_equal(offline.find_palm(_captured(exact), method="roi").pixels, exact)


def test_missing_model_fails_on_first_use_not_at_construction(tmp_path: Path) -> None:
    offline = PalmFinder(hand_model_path=tmp_path / "missing.task")
    with pytest.raises(ModelUnavailableError) as caught:
        offline.find_palm(_captured(_skin_tinted(np.full((64, 64), 128, np.uint8))), method="landmarks")
    assert "palmid models build" in caught.value.message
    assert caught.value.code == "model_missing"


def test_unknown_method_is_refused(tmp_path: Path) -> None:
    offline = PalmFinder(hand_model_path=tmp_path / "missing.task")
    with pytest.raises(ValidationFailed):
        offline.find_palm(_captured(np.zeros((64, 64), np.uint8)), method="magic")  # type: ignore[arg-type]


def test_classical_method_on_a_device_image(tmp_path: Path) -> None:
    image, _ = fingers_cut_by_top_border()
    roi = PalmFinder(hand_model_path=tmp_path / "missing.task").find_palm(_captured(image), method="classical")
    assert roi.method == "classical" and roi.pixels.shape == (128, 128)


def test_is_grey_image() -> None:
    grey = np.clip(palm_texture(100, 100), 0, 255).astype(np.uint8)
    assert is_grey_image(_captured(grey))
    colour = np.repeat(grey[..., None], 3, axis=2)
    colour[..., 0] = np.clip(colour[..., 0].astype(int) + 40, 0, 255).astype(np.uint8)
    assert not is_grey_image(_captured(colour))


def test_auto_uses_classical_for_grey_device_images(tmp_path: Path) -> None:
    image, _ = fingers_cut_by_top_border()
    offline = PalmFinder(hand_model_path=tmp_path / "missing.task")  # classical succeeds: no model needed
    assert offline.find_palm(_captured(image), method="auto").method == "classical"


def test_auto_tries_landmarks_when_classical_finds_no_hand(tmp_path: Path) -> None:
    offline = PalmFinder(hand_model_path=tmp_path / "missing.task")
    flat = np.full((200, 200), 20, np.uint8)
    with pytest.raises(ModelUnavailableError):  # proves the documented second step ran
        offline.find_palm(_captured(flat), method="auto")


def test_auto_on_colour_goes_straight_to_landmarks(tmp_path: Path) -> None:
    offline = PalmFinder(hand_model_path=tmp_path / "missing.task")
    colour = np.zeros((100, 100, 3), np.uint8)
    colour[..., 0] = 200
    with pytest.raises(ModelUnavailableError):
        offline.find_palm(_captured(colour), method="auto")


def test_no_hand_in_a_texture(finder: PalmFinder) -> None:
    texture = np.clip(palm_texture(480, 640, seed=2), 0, 255).astype(np.uint8)
    with pytest.raises(PalmNotFoundError) as caught:
        finder.find_palm(_captured(_skin_tinted(texture)), method="landmarks")
    assert caught.value.code == "no_hand"


def _skin_tinted(grey: np.ndarray) -> np.ndarray:
    """A colour picture from a grey one (skin-like tint), as a colour camera would deliver."""
    tint = np.array([1.0, 0.8, 0.65], dtype=np.float32)
    return np.clip(grey[..., None].astype(np.float32) * tint, 0, 255).astype(np.uint8)


def test_landmarks_refuse_a_colourless_picture_as_a_printout() -> None:
    grey = np.full((480, 640, 3), 120, dtype=np.uint8)
    grey[100:380, 200:440] = 180  # a bright, hand-sized but colourless patch
    with pytest.raises(QualityError) as caught:
        PalmFinder().find_palm(CapturedImage(rgb=grey, source_format="PNG"), method="landmarks")
    assert caught.value.code == "no_skin_colour"
