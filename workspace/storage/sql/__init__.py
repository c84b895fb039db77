"""The SQL backend (SQLite through aiosqlite, PostgreSQL through asyncpg).

* ``store``: :class:`~workspace.storage.sql.store.SQLWorkspace`, the storage primitives as SQL.
* ``queries``: statement builders (filters, full-text rank, keyset order) per dialect.
* ``engine``: URLs, SQLite connection setup, sessions and the busy-timeout policy.
* ``migrate``: running the Alembic migrations of ``workspace/migrations`` under a lock.
* ``schema``: SQLAlchemy Core tables and row mappers.
* ``batch``: group commit of concurrent ingests.
"""
