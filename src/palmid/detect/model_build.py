"""Build the MediaPipe hand-landmarker model file from a PyPI package (no download at run time).

``mediapipe`` >= 1.0 ships no hand model, but the ``mediapipe==0.10.21`` wheel contains
``palm_detection_full.tflite`` and ``hand_landmark_full.tflite``. Zipped as ``hand_detector.tflite`` and
``hand_landmarks_detector.tflite`` they form a ``.task`` bundle that the current Tasks API ``HandLandmarker``
loads offline. This runs once at set-up (``palmid models build``), never while serving.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from palmid.errors import ModelUnavailableError

SOURCE_PACKAGE = "mediapipe==0.10.21"
_MEMBERS = {
    "mediapipe/modules/palm_detection/palm_detection_full.tflite": "hand_detector.tflite",
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite": "hand_landmarks_detector.tflite",
}
DEFAULT_MODEL_PATH = Path(__file__).parent / "assets" / "hand_landmarker.task"


def build_hand_model(*, destination: Path = DEFAULT_MODEL_PATH, wheel_dir: Path | None = None) -> Path:
    """Download the source wheel with pip (from the package index) and write the ``.task`` bundle.

    ``wheel_dir`` may hold an already-downloaded wheel (offline builds). Returns the written path.
    """
    with tempfile.TemporaryDirectory(prefix="palmid-model-") as scratch:
        folder = wheel_dir or Path(scratch)
        wheels = sorted(folder.glob("mediapipe-0.10.21-*.whl"))
        if not wheels:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                       "--dest", str(folder), SOURCE_PACKAGE]
            result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
            wheels = sorted(folder.glob("mediapipe-0.10.21-*.whl"))
            if result.returncode != 0 or not wheels:
                raise ModelUnavailableError(
                    f"could not download {SOURCE_PACKAGE} to build the hand model: {result.stderr.strip()[-400:]}"
                )
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_suffix(".partial")
        with zipfile.ZipFile(wheels[0]) as wheel, zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as bundle:
            for member, name in _MEMBERS.items():
                try:
                    bundle.writestr(name, wheel.read(member))
                except KeyError as exc:
                    raise ModelUnavailableError(f"{wheels[0].name} lacks {member}") from exc
        partial.replace(destination)
    return destination


def model_digest(path: Path) -> str:
    """SHA-256 of the model file (recorded in logs so that a deployment knows which model it runs)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
