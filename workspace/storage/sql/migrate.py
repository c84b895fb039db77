"""Schema setup of the SQL backend: run the shipped Alembic migrations, once, under a lock.

Storage layer. The migrations live in ``workspace/migrations`` (no ``alembic.ini`` needed); their
environment finds the version table in :mod:`workspace.storage.sql.schema`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from workspace.storage.sql.engine import Database
from workspace.storage.sql.schema import VERSION_TABLE

__all__ = ["MIGRATIONS_DIR", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Arbitrary constant naming this package's setup lock among other advisory-lock users.
_PG_SETUP_LOCK = 0x57_53_50_41_43_45  # "WSPACE"


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _head_revisions() -> tuple[str, ...]:
    """The head revision(s) of the shipped migrations (the scripts are read once per process)."""
    return tuple(ScriptDirectory.from_config(_alembic_config()).get_heads())


def _current_revisions(connection: Connection) -> tuple[str, ...]:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return tuple(context.get_current_heads())


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


async def migrate(db: Database) -> None:
    """Create or upgrade the schema to the latest migration. Idempotent and process-safe.

    The whole upgrade runs in one transaction that first takes a lock (PostgreSQL advisory
    transaction lock; SQLite ``BEGIN IMMEDIATE``), so concurrent callers run it one at a time
    and the later ones find the schema already at head. On SQLite it waits up to
    ``max(busy_timeout, 60 s)`` for the lock.

    Args:
        db: The database.

    Raises:
        StorageBusyError: SQLite only, if the lock stayed taken that long.
    """
    # Everything slow (reading the scripts) happens before the lock, and a schema already at
    # head is recognized without taking it: the write lock of a SQLite file is held only while
    # a migration really runs.
    heads = _head_revisions()
    try:
        async with db.setup_engine(write=False).connect() as conn:
            current = await conn.run_sync(_current_revisions)
        if sorted(current) == sorted(heads):
            return
    except sa_exc.DBAPIError:
        pass  # the locked upgrade below reports real problems
    with db.busy_errors():
        async with db.setup_engine(write=True).begin() as conn:
            if db.dialect == "postgresql":
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SETUP_LOCK)))
            await conn.run_sync(_upgrade)
