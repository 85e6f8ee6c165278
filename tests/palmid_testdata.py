"""Where the real palm data lives (import as ``from palmid_testdata import dataset_dir``).

Tests that need ../shared/data skip with a reason naming the folder when it is absent; CI sets
PALMID_REQUIRE_SHARED_DATA=1 so that a missing folder fails loudly instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def missing_data(folder: Path) -> None:
    """Skip (developer machine) or fail (CI sets PALMID_REQUIRE_SHARED_DATA=1) when real data is absent."""
    message = f"real palm data not found at {folder} (set PALMID_SHARED_DATA_DIR)"
    if os.environ.get("PALMID_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(message)
    pytest.skip(message)


def shared_data_folder() -> Path:
    configured = os.environ.get("PALMID_SHARED_DATA_DIR")
    return Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "data").resolve()


def dataset_dir(name: str) -> Path:
    """A dataset folder under the shared data dir, or skip naming it."""
    folder = shared_data_folder() / name
    if not (folder / "manifest.csv").exists():
        missing_data(folder)
    return folder
