"""Storage fixtures: every store test runs on SQLite and on PostgreSQL.

The PostgreSQL variant needs ``PALMID_TEST_POSTGRES_URL`` (``scripts/ci_postgres.sh start`` prints it; ``.ci/run``
sets it). Without it the variant is skipped with a reason, unless ``PALMID_REQUIRE_POSTGRES=1`` (CI), where it
fails. Each PostgreSQL test gets its own schema (dropped afterwards); each SQLite test its own tmp data dir.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from storage_helpers import FakeClock

from palmid.config import Settings
from palmid.storage.repository import Store

BACKENDS = ["sqlite", "postgres"]


def _postgres_url() -> str:
    url = os.environ.get("PALMID_TEST_POSTGRES_URL", "")
    if not url:
        message = "PostgreSQL variant: PALMID_TEST_POSTGRES_URL is not set (run scripts/ci_postgres.sh start)"
        if os.environ.get("PALMID_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None for SQLite (the default file in the data dir), or a PostgreSQL URL bound to a fresh schema."""
    if request.param == "sqlite":
        yield None
        return
    base = _postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def open_store(settings: Settings, clock: FakeClock) -> Iterator[Callable[..., Store]]:
    """Open (or reopen) a store on the test's settings; all are closed at the end."""
    opened: list[Store] = []

    def _open(**overrides: object) -> Store:
        chosen = settings.model_copy(update=overrides) if overrides else settings
        store = Store.open(settings=chosen, clock=clock)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    return open_store()
