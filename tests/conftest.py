"""Shared fixtures: where the real palm data lives, and the hand model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _missing_data(folder: Path) -> None:
    """Skip (developer machine) or fail (CI sets PALMID_REQUIRE_SHARED_DATA=1) when real data is absent."""
    message = f"real palm data not found at {folder} (set PALMID_SHARED_DATA_DIR)"
    if os.environ.get("PALMID_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _shared_data_dir() -> Path:
    configured = os.environ.get("PALMID_SHARED_DATA_DIR")
    return Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data`` (or ``PALMID_SHARED_DATA_DIR``); tests that need it skip, naming it, when absent."""
    folder = _shared_data_dir()
    if not (folder / "tongji" / "manifest.csv").exists():
        _missing_data(folder)
    return folder


def dataset_dir(name: str) -> Path:
    """A dataset folder under the shared data dir, or skip naming it."""
    folder = _shared_data_dir() / name
    if not (folder / "manifest.csv").exists():
        _missing_data(folder)
    return folder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PALMID_RUN_SLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="slow test: set PALMID_RUN_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
