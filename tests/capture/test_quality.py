"""assess_quality: exposure and focus rejections with kiosk guidance codes."""

from __future__ import annotations

from types import MappingProxyType

import cv2
import numpy as np
import pytest

from palmid.capture.image import CapturedImage
from palmid.capture.quality import GUIDANCE, QualityThresholds, assess_quality, measure_quality
from palmid.errors import QualityError


def _image(grey: np.ndarray) -> CapturedImage:
    return CapturedImage(rgb=np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2)), source_format="png")


def _texture(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A skin-like grey texture with thin dark lines (a stand-in for a palm photo)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(150, 30, (height, width)).astype(np.float32), (0, 0), 3)
    for _ in range(40):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, max(height, width), 4))
        cv2.line(base, (x0, y0), (x1, y1), 70.0, 2)
    return np.clip(base, 0, 255).astype(np.uint8)


def _code(image: CapturedImage, *, roi_input: bool = False) -> str:
    with pytest.raises(QualityError) as caught:
        assess_quality(image, roi_input=roi_input)
    assert caught.value.code in GUIDANCE
    return caught.value.code


def test_guidance_is_frozen_and_complete() -> None:
    assert isinstance(GUIDANCE, MappingProxyType)
    expected = {"empty_image", "unreadable_image", "unsupported_format", "image_too_large", "too_dark", "too_bright",
                "blurry", "move_closer", "move_back", "center_hand", "open_hand", "show_palm", "no_hand",
                "multiple_hands", "roi_failed"}
    assert expected <= set(GUIDANCE)
    assert all(isinstance(text, str) and text.endswith(".") for text in GUIDANCE.values())
    with pytest.raises(TypeError):
        GUIDANCE["blurry"] = "x"  # type: ignore[index]


def test_sharp_texture_passes() -> None:
    report = assess_quality(_image(_texture(600, 800)))
    assert report.focus > QualityThresholds().photo_focus_min
    assess_quality(_image(_texture(128, 128, seed=3)), roi_input=True)


@pytest.mark.parametrize("level", [0, 10, 30])
def test_black_images_are_too_dark(level: int) -> None:
    assert _code(_image(np.full((480, 640), level, np.uint8))) == "too_dark"
    assert _code(_image(np.full((128, 128), level, np.uint8)), roi_input=True) == "too_dark"


@pytest.mark.parametrize("level", [240, 255])
def test_white_images_are_too_bright(level: int) -> None:
    assert _code(_image(np.full((480, 640), level, np.uint8))) == "too_bright"


def test_dark_picture_with_noise_is_still_too_dark() -> None:
    noise = np.random.default_rng(0).integers(0, 25, (480, 640)).astype(np.uint8)
    assert _code(_image(noise)) == "too_dark"


@pytest.mark.parametrize("sigma", [6.0, 12.0])
def test_blurred_photo_is_blurry(sigma: float) -> None:
    sharp = _texture(900, 1200)
    blurred = cv2.GaussianBlur(sharp, (0, 0), sigma)
    assert _code(_image(blurred)) == "blurry"


def test_blurred_roi_is_blurry() -> None:
    blurred = cv2.GaussianBlur(_texture(128, 128, seed=5), (0, 0), 8.0)
    assert _code(_image(blurred), roi_input=True) == "blurry"


def test_flat_grey_is_blurry_not_dark() -> None:
    assert _code(_image(np.full((300, 400), 128, np.uint8))) == "blurry"


def test_measure_is_scale_normalised() -> None:
    texture = _texture(1200, 1600, seed=2)
    small = cv2.resize(texture, (512, 384), interpolation=cv2.INTER_AREA)
    big = measure_quality(_image(texture)).focus
    assert big == pytest.approx(measure_quality(_image(small)).focus, rel=0.05)
