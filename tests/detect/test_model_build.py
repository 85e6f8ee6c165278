from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from palmid.detect.model_build import DEFAULT_MODEL_PATH, build_hand_model, model_digest
from palmid.errors import ModelUnavailableError


def _fake_wheel(folder: Path, *, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(folder / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl", "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)


def test_bundle_holds_the_two_models_under_task_names(tmp_path: Path) -> None:
    _fake_wheel(
        tmp_path,
        members={
            "mediapipe/modules/palm_detection/palm_detection_full.tflite": b"detector",
            "mediapipe/modules/hand_landmark/hand_landmark_full.tflite": b"landmarks",
        },
    )
    target = build_hand_model(destination=tmp_path / "out" / "hand.task", wheel_dir=tmp_path)
    with zipfile.ZipFile(target) as bundle:
        assert bundle.read("hand_detector.tflite") == b"detector"
        assert bundle.read("hand_landmarks_detector.tflite") == b"landmarks"
    assert len(model_digest(target)) == 64
    assert not (tmp_path / "out" / "hand.partial").exists()


def test_wheel_without_models_is_refused(tmp_path: Path) -> None:
    _fake_wheel(tmp_path, members={"mediapipe/__init__.py": b""})
    with pytest.raises(ModelUnavailableError, match="lacks"):
        build_hand_model(destination=tmp_path / "hand.task", wheel_dir=tmp_path)
    assert not (tmp_path / "hand.task").exists()


def test_built_model_is_a_loadable_task_bundle() -> None:
    if not DEFAULT_MODEL_PATH.exists():
        pytest.skip(f"hand model not built at {DEFAULT_MODEL_PATH} (run `palmid models build`)")
    with zipfile.ZipFile(DEFAULT_MODEL_PATH) as bundle:
        assert sorted(bundle.namelist()) == ["hand_detector.tflite", "hand_landmarks_detector.tflite"]
