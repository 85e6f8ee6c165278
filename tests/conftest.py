"""Shared fixtures: where the real palm data lives; slow tests opt-in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from palmid_testdata import missing_data, shared_data_folder


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data`` (or ``PALMID_SHARED_DATA_DIR``); tests that need it skip, naming it, when absent."""
    folder = shared_data_folder()
    if not (folder / "tongji" / "manifest.csv").exists():
        missing_data(folder)
    return folder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PALMID_RUN_SLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="slow test: set PALMID_RUN_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many tests ran against PostgreSQL, so a CI log shows the second backend was exercised."""
    passed = terminalreporter.stats.get("passed", [])
    on_postgres = [report for report in passed if "postgres" in report.nodeid.lower()]
    if os.environ.get("PALMID_TEST_POSTGRES_URL"):
        folders = sorted({report.nodeid.split("/")[1] for report in on_postgres if report.nodeid.count("/") > 1})
        terminalreporter.write_line(
            f"PostgreSQL backend: {len(on_postgres)} tests passed against a live server ({', '.join(folders)})"
        )
