"""Opening the store: private data dir, 0600 key files, migrations at open, fail closed on key problems."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from storage_helpers import FakeClock, enroll_one, new_tenant, raw_engine

from palmid.config import Settings
from palmid.errors import CryptoError, StorageError
from palmid.storage.crypto import create_secret_file
from palmid.storage.keyring import MASTER_KEY_FILENAME, REF_SECRET_FILENAME, SIGNING_KEY_FILENAME
from palmid.storage.repository import Store

KEY_FILES = (MASTER_KEY_FILENAME, REF_SECRET_FILENAME, SIGNING_KEY_FILENAME)


def test_open_creates_private_dir_and_0600_keys(settings: Settings, open_store: Callable[..., Store]) -> None:
    assert not settings.data_dir.exists()  # nothing happens before open
    open_store()
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    private = [*KEY_FILES, "keystore.db"] + (["palmid.db"] if settings.database_url is None else [])
    for name in private:
        assert stat.S_IMODE((settings.data_dir / name).stat().st_mode) == 0o600, name


def test_migrations_run_at_open_and_are_idempotent(settings: Settings, open_store: Callable[..., Store]) -> None:
    first = open_store()
    tenant = new_tenant(first)
    first.close()
    second = open_store()  # upgrade head again: a no-op that keeps the data
    assert [key.key_id for key in second.list_keys()] == [tenant.key_id]
    engine = raw_engine(settings.effective_database_url)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from palmid.storage.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    engine.dispose()


def test_reopen_decrypts_with_the_same_keys(open_store: Callable[..., Store], clock: FakeClock) -> None:
    store = open_store()
    tenant = new_tenant(store)
    enrolled = enroll_one(store, clock, tenant_id=tenant.tenant_id)
    store.close()
    again = open_store()
    assert [subject for subject, _ in again.iter_templates()] == [enrolled.subject_id]


def test_missing_master_key_fails_closed(settings: Settings, open_store: Callable[..., Store]) -> None:
    open_store().close()
    (settings.data_dir / MASTER_KEY_FILENAME).unlink()
    with pytest.raises(CryptoError) as info:
        open_store()
    assert info.value.code == "key_unavailable"
    assert not (settings.data_dir / MASTER_KEY_FILENAME).exists()  # never silently replaced


@pytest.mark.parametrize("name", KEY_FILES)
def test_replaced_key_is_detected(settings: Settings, open_store: Callable[..., Store], name: str) -> None:
    open_store().close()
    (settings.data_dir / name).unlink()
    create_secret_file(settings.data_dir / name, length=32)
    with pytest.raises(CryptoError) as info:
        open_store()
    assert info.value.code == "key_mismatch"


def test_world_readable_key_is_refused(settings: Settings, open_store: Callable[..., Store]) -> None:
    open_store().close()
    os.chmod(settings.data_dir / MASTER_KEY_FILENAME, 0o644)
    with pytest.raises(CryptoError) as info:
        open_store()
    assert info.value.code == "key_insecure"


def test_lost_keystore_fails_closed(settings: Settings, open_store: Callable[..., Store], clock: FakeClock) -> None:
    store = open_store()
    tenant = new_tenant(store)
    enrolled = enroll_one(store, clock, tenant_id=tenant.tenant_id)
    store.close()
    (settings.data_dir / "keystore.db").unlink()
    for suffix in ("-wal", "-shm"):
        (settings.data_dir / f"keystore.db{suffix}").unlink(missing_ok=True)
    again = open_store()
    with pytest.raises(CryptoError) as info:
        list(again.iter_templates())
    assert info.value.code == "key_unavailable"
    with pytest.raises(CryptoError):
        again.load_template(subject_id=enrolled.subject_id)


def test_unreachable_database_is_a_clear_storage_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://nobody:nothing@127.0.0.1:{port}/none?connect_timeout=2"
    with pytest.raises(StorageError) as info:
        Store.open(settings=Settings(data_dir=tmp_path / "data", database_url=url))
    assert info.value.code == "storage_unavailable"


def test_schema_downgrade_and_upgrade_round_trip(settings: Settings, open_store: Callable[..., Store]) -> None:
    from alembic import command
    from alembic.config import Config

    from palmid.storage.db import MIGRATIONS_DIR

    open_store().close()
    engine = raw_engine(settings.effective_database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert tables <= {"alembic_version"}
    store = open_store()  # upgrade head again from scratch
    assert store.verify_audit().ok


def test_orm_models_match_the_migrations(settings: Settings, open_store: Callable[..., Store]) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from palmid.storage.models import Base

    open_store().close()
    engine = raw_engine(settings.effective_database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
