"""Storage fixtures: every store test runs on SQLite and on PostgreSQL.

The PostgreSQL variant needs ``PALMID_TEST_POSTGRES_URL`` (``scripts/ci_postgres.sh start`` prints it; ``.ci/run``
sets it). Without it the variant is skipped with a reason, unless ``PALMID_REQUIRE_POSTGRES=1`` (CI), where it
fails. Each PostgreSQL test gets its own schema (dropped afterwards); each SQLite test its own tmp data dir.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from storage_helpers import FakeClock

from palmid.config import Settings
from palmid.storage.repository import Store
from palmid_testdata import postgres_schema_url

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None for SQLite (the default file in the data dir), or a PostgreSQL URL bound to a fresh schema."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_schema_url() as url:
        yield url


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
