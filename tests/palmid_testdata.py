"""Where the real palm data lives (import as ``from palmid_testdata import dataset_dir``).

Tests that need ../shared/data skip with a reason naming the folder when it is absent; CI sets
PALMID_REQUIRE_SHARED_DATA=1 so that a missing folder fails loudly instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

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


def postgres_base_url() -> str:
    """The test PostgreSQL server (scripts/ci_postgres.sh start); skip, or fail when CI requires it, without it."""
    url = os.environ.get("PALMID_TEST_POSTGRES_URL", "")
    if not url:
        message = "PostgreSQL variant: PALMID_TEST_POSTGRES_URL is not set (run scripts/ci_postgres.sh start)"
        if os.environ.get("PALMID_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


@contextmanager
def postgres_schema_url(*, prefix: str = "t") -> Iterator[str]:
    """A PostgreSQL URL bound to a fresh schema (``search_path``), dropped afterwards."""
    base = postgres_base_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
