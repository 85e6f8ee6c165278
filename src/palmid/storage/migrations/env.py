"""Alembic environment for palmid. The store passes an open connection in ``config.attributes['connection']``;
the ``alembic`` command line (with alembic.ini next to this file) uses ``sqlalchemy.url`` instead."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from palmid.storage.models import Base


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (alembic -x) or open the store with palmid.storage.db")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


_run()
