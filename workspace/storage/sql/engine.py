"""Connections of the SQL backend: URLs, SQLite connection setup, sessions and lock waits.

Storage layer. :class:`Database` owns (or borrows) an SQLAlchemy ``AsyncEngine`` and hands out
read sessions and write transactions. On SQLite, write transactions use ``BEGIN IMMEDIATE`` so
concurrent writers queue on the busy timeout instead of failing on a lock upgrade, and a lock
held longer than the timeout becomes :class:`~workspace.errors.StorageBusyError` (HTTP 503).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from workspace.errors import InvalidInputError, StorageBusyError

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "SETUP_BUSY_TIMEOUT",
    "Database",
    "is_locked",
    "normalize_url",
]

# How long a SQLite statement waits for another connection's lock before giving up (seconds).
DEFAULT_BUSY_TIMEOUT = 5.0
# setup() waits at least this long: another process may be running the migrations.
SETUP_BUSY_TIMEOUT = 60.0

# Engines already traced by ``Database.enable_tracing`` (tenants share one engine).
_TRACED_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()
# Engines already given the SQLite hooks: workspaces sharing an engine must not emit BEGIN twice.
_PREPARED_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()


def normalize_url(url: str | os.PathLike[str]) -> str:
    """Turn a path or a sync URL into an async SQLAlchemy URL.

    Args:
        url: A file path (SQLite), ``sqlite:///...``, ``sqlite+aiosqlite:///...``,
            ``postgresql://...``, ``postgres://...`` or ``postgresql+asyncpg://...``.

    Returns:
        The URL with the async driver.

    Raises:
        InvalidInputError: For other schemes.
    """
    text = os.fspath(url)
    if "://" not in text:
        return "sqlite+aiosqlite:///" + str(Path(text).expanduser().absolute())
    scheme, rest = text.split("://", 1)
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite":
        return "sqlite+aiosqlite://" + rest
    if base in ("postgresql", "postgres"):
        return "postgresql+asyncpg://" + rest
    raise InvalidInputError(
        f"unsupported database URL scheme {scheme!r}; use a SQLite path, sqlite:// or postgresql://"
    )


def is_locked(exc: BaseException) -> bool:
    """Whether a driver error is SQLite's "database is locked" (SQLITE_BUSY / SQLITE_LOCKED).

    Args:
        exc: The error (an SQLAlchemy wrapper or the driver's own).

    Returns:
        True for a lock that outlasted the busy timeout.
    """
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "database is locked" in text or "database table is locked" in text


def _sleep(seconds: float) -> None:
    # Connection events run synchronously inside SQLAlchemy's greenlet on the event loop:
    # await the sleep there so other tasks keep running; plain sleep outside asyncio.
    pause = asyncio.sleep(seconds)
    try:
        await_only(pause)
    except Exception:
        pause.close()
        time.sleep(seconds)


def _enable_wal(dbapi_conn: Any, timeout_s: float) -> None:
    """Switch a SQLite file to WAL, retrying while another connection holds its lock.

    On a file that is not in WAL mode yet (a fresh, empty file in particular) the switch writes
    the database header: SQLite opens a read transaction and then upgrades it to a write. When
    another connection holds the write lock at that moment (another process creating the same
    file, or running the first migration) the upgrade fails at once with "database is locked":
    SQLite never calls the busy handler for a read-to-write upgrade, so ``busy_timeout`` does not
    help. Retrying the statement does: the other writer finishes within milliseconds.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.002
    while True:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.fetchall()
            return
        except Exception as exc:
            if not is_locked(exc) or time.monotonic() + delay > deadline:
                raise
        finally:
            cursor.close()
        _sleep(delay)
        delay = min(delay * 2, 0.1)


def _install_sqlite_events(engine: AsyncEngine, in_memory: bool, busy_ms: int) -> None:
    sync_engine = engine.sync_engine

    def on_connect(dbapi_conn: Any, record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see on_begin): the driver's implicit BEGIN
        # would run DDL outside the transaction and can never be IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.close()
        record.info["ws_busy_ms"] = busy_ms
        if not in_memory:
            # Only a file not in WAL mode yet can make this wait: one being created or
            # migrated by another process, so it gets the patience of setup().
            _enable_wal(dbapi_conn, max(busy_ms / 1000, SETUP_BUSY_TIMEOUT))
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    def on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        # Each workspace (and setup()) brings its own busy timeout; set it only when it changes.
        want = options.get("ws_busy_ms")
        if want is not None:
            info = conn.connection.info
            if info.get("ws_busy_ms") != want:
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(want)}")
                info["ws_busy_ms"] = want
        # Writers take the write lock up front; a deferred transaction that later needs it fails
        # with "database is locked" without waiting when another writer holds it.
        write = options.get("ws_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    if sync_engine in _PREPARED_ENGINES:
        return
    _PREPARED_ENGINES.add(sync_engine)
    event.listen(sync_engine, "connect", on_connect)
    event.listen(sync_engine, "begin", on_begin)


class Database:
    """An SQLite or PostgreSQL database: its engine, sessions and lock-wait policy.

    Args:
        url: Database URL or SQLite file path (see :func:`normalize_url`), or an existing
            ``AsyncEngine`` (then not disposed by :meth:`close`).
        busy_timeout: SQLite only: seconds a statement waits for another connection's lock.
        **engine_kwargs: Passed to ``create_async_engine``.

    Raises:
        InvalidInputError: For an unsupported URL or database, or a bad ``busy_timeout``.
    """

    def __init__(
        self, url: str | os.PathLike[str] | AsyncEngine, busy_timeout: float, **engine_kwargs: Any
    ) -> None:
        if (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, (int, float))
            or not 0 <= busy_timeout <= 3600
        ):
            raise InvalidInputError(
                f"busy_timeout must be a number of seconds between 0 and 3600, got {busy_timeout!r}"
            )
        self._busy_timeout = float(busy_timeout)
        busy_ms = int(self._busy_timeout * 1000)
        if isinstance(url, AsyncEngine):
            self._engine = url
            self._owns_engine = False
        else:
            self._engine = create_async_engine(normalize_url(url), **engine_kwargs)
            self._owns_engine = True
        self._dialect = self._engine.dialect.name
        if self._dialect == "sqlite":
            database = self._engine.url.database
            _install_sqlite_events(self._engine, database in (None, "", ":memory:"), busy_ms)
        elif self._dialect != "postgresql":
            raise InvalidInputError(
                f"SQLWorkspace supports sqlite and postgresql, not {self._dialect!r}"
            )
        self._read: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self._engine.execution_options(ws_busy_ms=busy_ms), expire_on_commit=False
        )
        self._write: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self._engine.execution_options(ws_write=True, ws_busy_ms=busy_ms),
            expire_on_commit=False,
        )
        self._setup_busy_ms = max(busy_ms, int(SETUP_BUSY_TIMEOUT * 1000))

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._dialect

    @property
    def busy_timeout(self) -> float:
        """Seconds a SQLite statement waits for another connection's lock."""
        return self._busy_timeout

    def setup_engine(self, *, write: bool) -> AsyncEngine:
        """The engine with the (longer) lock wait of schema setup.

        Args:
            write: Whether its transactions take the write lock up front (SQLite).

        Returns:
            An engine sharing this database's pool.
        """
        options: dict[str, Any] = {"ws_busy_ms": self._setup_busy_ms}
        if write:
            options["ws_write"] = True
        return self._engine.execution_options(**options)

    @contextmanager
    def busy_errors(self) -> Iterator[None]:
        """Raise ``StorageBusyError`` for a SQLite lock wait past the busy timeout.

        Yields:
            Nothing; wrap the database work.

        Raises:
            StorageBusyError: Instead of the driver's "database is locked".
        """
        try:
            yield
        except sa_exc.OperationalError as exc:
            if self._dialect != "sqlite" or not is_locked(exc):
                raise
            raise StorageBusyError(
                "the database is busy: another connection has held its write lock for more "
                f"than {self._busy_timeout:g} s (busy_timeout); retry shortly",
                retry_after=max(1, math.ceil(min(self._busy_timeout, 30.0))),
            ) from exc

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read session; a lock wait past the busy timeout raises ``StorageBusyError``.

        Yields:
            The session.
        """
        with self.busy_errors():
            async with self._read() as session:
                yield session

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit.

        Yields:
            The session.
        """
        with self.busy_errors():
            async with self._write.begin() as session:
                yield session

    async def ping(self) -> None:
        """Run a trivial query; raises if the database is unreachable."""
        async with self.reading() as session:
            await session.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        """Dispose the engine (only if this object created it)."""
        if self._owns_engine:
            await self._engine.dispose()

    def enable_tracing(self, tracer_provider: Any = None) -> None:
        """Emit an OpenTelemetry span for every SQL statement on this engine (idempotent).

        Args:
            tracer_provider: The provider; default the global one.

        Raises:
            ImportError: Without the OpenTelemetry packages.
        """
        sync_engine = self._engine.sync_engine
        if sync_engine in _TRACED_ENGINES:
            return
        try:
            # Lazy: OpenTelemetry is the optional ``otel`` extra.
            from opentelemetry import metrics, trace
            from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
            from opentelemetry.instrumentation.sqlalchemy.version import __version__
        except ImportError as exc:
            raise ImportError(
                "SQL tracing needs opentelemetry-instrumentation-sqlalchemy; install it with "
                "`pip install 'triggerflow-temporal[otel]'`."
            ) from exc
        name = "opentelemetry.instrumentation.sqlalchemy"
        tracer = trace.get_tracer(name, __version__, tracer_provider)
        usage = metrics.get_meter(name, __version__).create_up_down_counter(
            name="db.client.connections.usage",
            unit="connections",
            description="The number of connections that are currently in the given state.",
        )
        EngineTracer(tracer, sync_engine, usage)
        _TRACED_ENGINES.add(sync_engine)
