"""SQL implementation of the Workspace contract on SQLAlchemy 2 async.

Backends:

* SQLite through ``aiosqlite`` (default): a file, WAL journal, FTS5 full-text index kept in sync
  by triggers. Write transactions use ``BEGIN IMMEDIATE`` so concurrent writers queue on the
  busy timeout (``busy_timeout``, default 5 s) instead of failing on a lock upgrade; a lock held
  longer than that raises :class:`~workspace.errors.StorageBusyError` (HTTP 503).
* PostgreSQL through ``asyncpg``: a generated ``tsvector`` column with a GIN index, queried with
  ``websearch_to_tsquery``.

The schema is managed by the Alembic migrations shipped in ``workspace/migrations``; ``setup()``
runs them under a lock (a PostgreSQL advisory lock, or SQLite's write lock) so several processes
may call it at once.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
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

from workspace._common import (
    DEFAULT_PAGE_SIZE,
    PINNED_TAG,
    Filters,
    block_text,
    check_limit,
    check_mapping,
    check_name,
    compile_filters,
    decode_content,
    decode_cursor,
    encode_cursor,
    fingerprint,
    iso,
    links_fingerprint,
    new_id,
    now_us,
    opt_ref_id,
    ref_id,
)
from workspace._query import ParsedQuery, any_query, parse_query, to_fts5, to_websearch
from workspace._schema import links as links_t
from workspace._schema import record_tags as tags_t
from workspace._schema import records as records_t
from workspace._schema import records_fts
from workspace._storage import (
    DEFAULT_TENANT,
    NewRecord,
    StorageWorkspace,
    prune_args,
    slice_args,
)
from workspace.base import RefOrId
from workspace.context import Candidate, TokenCounter, approx_tokens
from workspace.errors import InvalidInputError, RecordNotFoundError, StorageBusyError
from workspace.types import BoundedRead, Link, LinkPage, Profile, RecordRef, SearchPage

__all__ = ["DEFAULT_BUSY_TIMEOUT", "SETUP_BUSY_TIMEOUT", "SQLWorkspace", "normalize_url"]

# How long a SQLite statement waits for another connection's lock before giving up (seconds).
DEFAULT_BUSY_TIMEOUT = 5.0
# setup() waits at least this long: another process may be running the migrations.
SETUP_BUSY_TIMEOUT = 60.0
# substr() start positions are int4 on PostgreSQL; no stored value is that long on either backend.
_MAX_SUBSTR_START = 2**31 - 2

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_VERSION_TABLE = "ws_alembic_version"  # as in migrations/env.py
# Arbitrary constant naming this package's setup lock among other advisory-lock users.
_PG_SETUP_LOCK = 0x57_53_50_41_43_45  # "WSPACE"
_CHUNK = 500
_REF_COLUMNS = (
    records_t.c.seq,
    records_t.c.id,
    records_t.c.collection,
    records_t.c.kind,
    records_t.c.sha256,
    records_t.c.size,
    records_t.c.summary,
    records_t.c.scope,
    records_t.c.source,
    records_t.c.meta,
    records_t.c.created_us,
    records_t.c.content_type,
)


# Built once: compiling a fresh INSERT per call dominated ingest time.
_INSERT_RECORDS = sa.insert(records_t).returning(records_t.c.seq, sort_by_parameter_order=True)
_INSERT_TAGS = sa.insert(tags_t)
_MAX_BATCH = 256


class _IngestBatcher:
    """Group commit: ingests that arrive while a write is in flight share the next transaction.

    A write costs a few driver round trips regardless of how many rows it carries, so under
    concurrent load this multiplies throughput. A failing batch is retried one record at a
    time, so one bad record never fails the others.
    """

    def __init__(self, write: Callable[[Sequence[NewRecord]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[tuple[NewRecord, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, new: NewRecord) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((new, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:_MAX_BATCH]
                del self._pending[:_MAX_BATCH]
                try:
                    await self._write([new for new, _ in batch])
                except Exception as exc:
                    if len(batch) == 1 or isinstance(exc, StorageBusyError):
                        # A busy database fails the whole batch: retrying record by record
                        # would wait out the busy timeout once per record.
                        for _, done in batch:
                            _settle(done, exc)
                        continue
                    for new, done in batch:
                        try:
                            await self._write([new])
                        except Exception as single_exc:
                            _settle(done, single_exc)
                        else:
                            _settle(done, None)
                    continue
                for _, done in batch:
                    _settle(done, None)
        except BaseException as exc:
            # Cancelled (e.g. loop shutdown): never leave a caller waiting forever.
            for _, done in self._pending:
                _settle(done, exc)
            self._pending.clear()
            raise


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)


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


# Engines already traced by ``SQLWorkspace.enable_tracing`` (tenants share one engine).
_TRACED_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()

# Engines already given the SQLite hooks: workspaces sharing an engine must not emit BEGIN twice.
_PREPARED_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()


def _is_locked(exc: BaseException) -> bool:
    """Whether a driver error is SQLite's "database is locked" (SQLITE_BUSY / SQLITE_LOCKED)."""
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
            if not _is_locked(exc) or time.monotonic() + delay > deadline:
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


def _to_ref(row: Any) -> RecordRef:
    return RecordRef(
        id=row.id,
        collection=row.collection,
        kind=row.kind,
        sha256=row.sha256,
        size=int(row.size),
        summary=row.summary,
        scope=dict(row.scope or {}),
        source=row.source,
        meta=dict(row.meta or {}),
        created_at=iso(int(row.created_us)),
        content_type=row.content_type,
    )


def _to_link(row: Any) -> Link:
    return Link(
        id=row.id,
        source=row.source_id,
        target=row.target_id,
        relation=row.relation,
        meta=dict(row.meta or {}),
        created_at=iso(int(row.created_us)),
    )


class SQLWorkspace(StorageWorkspace):
    """A Workspace stored in SQLite (aiosqlite) or PostgreSQL (asyncpg).

    Prefer :meth:`from_url`, which also runs ``setup()`` and disposes the engine.

    Args:
        url: Database URL or SQLite file path (see :func:`normalize_url`), or an existing
            ``AsyncEngine`` (not disposed by ``close()``).
        tenant: Every row is written with and filtered by this tenant.
        token_counter: Counts tokens for ``build_context``.
        profiles: Extra named context profiles.
        busy_timeout: SQLite only: seconds a statement waits for another connection's lock
            (another process writing, an external ``BEGIN IMMEDIATE``) before it fails with
            :class:`~workspace.errors.StorageBusyError`. ``setup()`` waits at least 60 s.
        **engine_kwargs: Passed to ``create_async_engine`` (e.g. ``pool_size``, ``echo``).

    Raises:
        InvalidInputError: For an unsupported URL or database, or a bad ``busy_timeout``.
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | AsyncEngine,
        *,
        tenant: str = DEFAULT_TENANT,
        token_counter: TokenCounter = approx_tokens,
        profiles: Mapping[str, Profile] | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        **engine_kwargs: Any,
    ) -> None:
        super().__init__(tenant=tenant, token_counter=token_counter, profiles=profiles)
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
        self._batcher = _IngestBatcher(self._insert_batch)

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls,
        url: str | os.PathLike[str] | AsyncEngine,
        *,
        tenant: str = DEFAULT_TENANT,
        setup: bool = True,
        **kwargs: Any,
    ) -> AsyncIterator[SQLWorkspace]:
        """Open a workspace on a database URL, set it up, and dispose it on exit.

        Args:
            url: Database URL, SQLite file path, or an engine (then not disposed on exit).
            tenant: The tenant to act for.
            setup: Run the (idempotent) migrations on entry.
            **kwargs: Passed to the constructor.

        Yields:
            The workspace.
        """
        ws = cls(url, tenant=tenant, **kwargs)
        try:
            if setup:
                await ws.setup()
            yield ws
        finally:
            await ws.close()

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

    def _busy(self, exc: BaseException) -> StorageBusyError:
        return StorageBusyError(
            "the database is busy: another connection has held its write lock for more than "
            f"{self._busy_timeout:g} s (busy_timeout); retry shortly",
            retry_after=max(1, math.ceil(min(self._busy_timeout, 30.0))),
        )

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        """A read session; a lock wait past the busy timeout raises ``StorageBusyError``."""
        try:
            async with self._read() as session:
                yield session
        except sa_exc.OperationalError as exc:
            if self._dialect == "sqlite" and _is_locked(exc):
                raise self._busy(exc) from exc
            raise

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
        try:
            async with self._write.begin() as session:
                yield session
        except sa_exc.OperationalError as exc:
            if self._dialect == "sqlite" and _is_locked(exc):
                raise self._busy(exc) from exc
            raise

    async def setup(self) -> None:
        """Create or upgrade the schema to the latest migration. Idempotent and process-safe.

        The whole upgrade runs in one transaction that first takes a lock (PostgreSQL advisory
        transaction lock; SQLite ``BEGIN IMMEDIATE``), so concurrent callers run it one at a
        time and the later ones find the schema already at head. On SQLite it waits up to
        ``max(busy_timeout, 60 s)`` for the lock.

        Raises:
            StorageBusyError: SQLite only, if the lock stayed taken that long.
        """
        # Everything slow (importing Alembic, reading the scripts) happens before the lock, and a
        # schema already at head is recognized without taking it: the write lock of a SQLite
        # file is held only while a migration really runs, never while a module is imported.
        heads = _head_revisions()
        try:
            reader = self._engine.execution_options(ws_busy_ms=self._setup_busy_ms)
            async with reader.connect() as conn:
                current = await conn.run_sync(_current_revisions)
            if sorted(current) == sorted(heads):
                return
        except sa_exc.DBAPIError:
            pass  # the locked upgrade below reports real problems
        options = {"ws_write": True, "ws_busy_ms": self._setup_busy_ms}
        try:
            async with self._engine.execution_options(**options).begin() as conn:
                if self._dialect == "postgresql":
                    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SETUP_LOCK)))
                await conn.run_sync(_upgrade)
        except sa_exc.OperationalError as exc:
            if self._dialect == "sqlite" and _is_locked(exc):
                raise self._busy(exc) from exc
            raise

    async def close(self) -> None:
        """Dispose the engine (only if this instance created it)."""
        if self._owns_engine:
            await self._engine.dispose()

    def enable_tracing(self, tracer_provider: Any = None) -> None:
        """Emit an OpenTelemetry span for every SQL statement on this workspace's engine.

        Needs the ``otel`` extra (``opentelemetry-instrumentation-sqlalchemy``). Only this
        engine is instrumented, nothing process-wide; calling it again is a no-op.

        Args:
            tracer_provider: The provider; default the global one.

        Raises:
            ImportError: Without the OpenTelemetry packages.
        """
        sync_engine = self._engine.sync_engine
        if sync_engine in _TRACED_ENGINES:
            return
        try:
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

    async def ping(self) -> None:
        """Run a trivial query; raises if the database is unreachable."""
        async with self._reading() as session:
            await session.execute(sa.text("SELECT 1"))

    # -- query helpers -----------------------------------------------------------------------

    def _where(self, stmt: Any, flt: Filters) -> Any:
        r = records_t
        stmt = stmt.where(r.c.tenant == self._tenant)
        if flt.collections is not None:
            stmt = stmt.where(r.c.collection.in_(sorted(flt.collections)))
        if flt.kinds is not None:
            stmt = stmt.where(r.c.kind.in_(sorted(flt.kinds)))
        if flt.ids is not None:
            stmt = stmt.where(r.c.id.in_(sorted(flt.ids)))
        for group in flt.tag_groups:
            if self._dialect == "sqlite":
                # seq is SQLite's rowid: the IN list drives direct rowid lookups.
                stmt = stmt.where(
                    r.c.seq.in_(
                        sa.select(tags_t.c.record_seq).where(
                            tags_t.c.tenant == self._tenant, tags_t.c.tag.in_(sorted(group))
                        )
                    )
                )
            else:
                # A correlated EXISTS keeps PostgreSQL on index probes even before the tables
                # are analyzed; the IN form degrades to a quadratic join on missing statistics.
                stmt = stmt.where(
                    sa.exists().where(
                        tags_t.c.record_seq == r.c.seq,
                        tags_t.c.tenant == self._tenant,
                        tags_t.c.tag.in_(sorted(group)),
                    )
                )
        return stmt

    def _ranked(self, query: ParsedQuery, columns: Sequence[Any], flt: Filters) -> Any:
        """SELECT columns + score for records matching the query (caller adds order/limit)."""
        r = records_t
        if self._dialect == "sqlite":
            score = sa.literal_column("-bm25(ws_records_fts, 0.5, 2.0, 1.0)")
            stmt = (
                sa.select(*columns, score.label("score"))
                .select_from(records_fts.join(r, r.c.seq == records_fts.c.rowid))
                .where(sa.text("ws_records_fts MATCH :fts_q").bindparams(fts_q=to_fts5(query)))
            )
        else:
            tsq = sa.func.websearch_to_tsquery(
                sa.literal_column("'english'::regconfig"),
                sa.bindparam("pg_q", to_websearch(query), type_=sa.Text()),
            )
            tsv = sa.literal_column("ws_records.tsv")
            score = sa.func.ts_rank(tsv, tsq)
            stmt = sa.select(*columns, score.label("score")).where(tsv.op("@@")(tsq))
        return self._where(stmt, flt)

    async def _find_row(self, session: AsyncSession, ref: object) -> Any:
        rid = ref_id(ref)
        row = (
            await session.execute(
                sa.select(*_REF_COLUMNS).where(
                    records_t.c.id == rid, records_t.c.tenant == self._tenant
                )
            )
        ).first()
        if row is None:
            raise RecordNotFoundError(rid)
        return row

    # -- records -----------------------------------------------------------------------------

    async def ingest(
        self,
        content: str | bytes | dict[str, Any] | list[Any],
        collection: str,
        kind: str,
        summary: str | None = None,
        scope: Mapping[str, Any] | None = None,
        source: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> RecordRef:
        """See :meth:`workspace.base.BaseWorkspace.ingest`.

        Args:
            content: The content.
            collection: The collection.
            kind: The kind.
            summary: Optional summary.
            scope: Scope keys.
            source: Provenance.
            meta: Metadata.

        Returns:
            The new record's ref.
        """
        new = self._prepare(content, collection, kind, summary, scope, source, meta)
        await self._batcher.submit(new)
        return new.ref

    async def _insert_batch(self, batch: Sequence[NewRecord]) -> None:
        async with self._writing() as session:
            result = await session.execute(
                _INSERT_RECORDS,
                [
                    {
                        "id": new.ref.id,
                        "tenant": new.tenant,
                        "collection": new.ref.collection,
                        "kind": new.ref.kind,
                        "content_type": new.encoded.content_type,
                        "body_text": new.encoded.text,
                        "body_blob": new.encoded.blob,
                        "sha256": new.encoded.sha256,
                        "size": new.encoded.size,
                        "summary": new.ref.summary,
                        "source": new.ref.source,
                        "scope": new.ref.scope,
                        "meta": new.ref.meta,
                        "created_us": new.created_us,
                    }
                    for new in batch
                ],
            )
            seqs = [int(seq) for seq in result.scalars().all()]
            tags = [
                {"record_seq": seq, "tenant": new.tenant, "tag": tag}
                for seq, new in zip(seqs, batch, strict=True)
                for tag in new.tags
            ]
            if tags:
                await session.execute(_INSERT_TAGS, tags)

    async def get(self, ref: RefOrId) -> RecordRef:
        """See :meth:`workspace.base.BaseWorkspace.get`.

        Args:
            ref: A ref or id.

        Returns:
            The ref.
        """
        async with self._reading() as session:
            return _to_ref(await self._find_row(session, ref))

    async def get_data(self, ref: RefOrId) -> Any:
        """See :meth:`workspace.base.BaseWorkspace.get_data`.

        Args:
            ref: A ref or id.

        Returns:
            The content.
        """
        rid = ref_id(ref)
        r = records_t
        async with self._reading() as session:
            row = (
                await session.execute(
                    sa.select(r.c.content_type, r.c.body_text, r.c.body_blob).where(
                        r.c.id == rid, r.c.tenant == self._tenant
                    )
                )
            ).first()
        if row is None:
            raise RecordNotFoundError(rid)
        return decode_content(row.content_type, row.body_text, row.body_blob)

    async def read_bounded(self, ref: RefOrId, offset: int = 0, limit: int = 65536) -> BoundedRead:
        """See :meth:`workspace.base.BaseWorkspace.read_bounded`.

        Only the slice leaves the database.

        Args:
            ref: A ref or id.
            offset: Start of the slice.
            limit: Maximum slice length.

        Returns:
            The slice.
        """
        offset, limit = slice_args(offset, limit)
        rid = ref_id(ref)
        r = records_t
        # Past the longest storable value the slice is empty anyway; the clamp keeps the start
        # inside PostgreSQL's int4 substr() argument.
        start = min(offset, _MAX_SUBSTR_START) + 1
        stmt = sa.select(
            r.c.content_type,
            sa.func.length(r.c.body_text).label("text_len"),
            sa.func.length(r.c.body_blob).label("blob_len"),
            sa.func.substr(r.c.body_text, start, limit).label("text_part"),
            sa.func.substr(r.c.body_blob, start, limit).label("blob_part"),
        ).where(r.c.id == rid, r.c.tenant == self._tenant)
        async with self._reading() as session:
            row = (await session.execute(stmt)).first()
        if row is None:
            raise RecordNotFoundError(rid)
        part: str | bytes
        if row.content_type == "bytes":
            part, total = bytes(row.blob_part or b""), int(row.blob_len or 0)
        else:
            part, total = row.text_part or "", int(row.text_len or 0)
        return BoundedRead(
            id=rid,
            content_type=row.content_type,
            data=part,
            offset=offset,
            total=total,
            has_more=offset + len(part) < total,
        )

    async def search(
        self,
        query: str | None = None,
        filters: Mapping[str, Any] | None = None,
        scope: Mapping[str, Any] | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        """See :meth:`workspace.base.BaseWorkspace.search`.

        Args:
            query: Search text.
            filters: Exact filters.
            scope: Scope keys to match.
            limit: Page size.
            cursor: Next-page cursor.

        Returns:
            The page.
        """
        parsed = parse_query(query)
        flt = compile_filters(filters, scope)
        limit = check_limit(limit)
        fp = fingerprint(None if parsed is None else parsed.groups, flt.key())
        r = records_t
        if parsed is None:
            stmt = self._where(sa.select(*_REF_COLUMNS), flt)
            if cursor is not None:
                pos = decode_cursor(cursor, fp, "k")
                stmt = stmt.where(
                    sa.or_(
                        r.c.created_us < pos["c"],
                        sa.and_(r.c.created_us == pos["c"], r.c.id < pos["i"]),
                    )
                )
            stmt = stmt.order_by(r.c.created_us.desc(), r.c.id.desc()).limit(limit + 1)
            if flt.impossible:
                return SearchPage([], None)
            async with self._reading() as session:
                rows = (await session.execute(stmt)).all()
            next_cursor = None
            if len(rows) > limit:
                last = rows[limit - 1]
                next_cursor = encode_cursor(
                    {"m": "k", "f": fp, "c": int(last.created_us), "i": last.id}
                )
            return SearchPage([_to_ref(row) for row in rows[:limit]], next_cursor)
        offset = 0 if cursor is None else int(decode_cursor(cursor, fp, "o")["o"])
        if parsed.empty or flt.impossible:
            return SearchPage([], None)
        stmt = (
            self._ranked(parsed, _REF_COLUMNS, flt)
            .order_by(sa.desc("score"), r.c.created_us.desc(), r.c.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
        async with self._reading() as session:
            rows = (await session.execute(stmt)).all()
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor({"m": "o", "f": fp, "o": offset + limit})
        return SearchPage([_to_ref(row) for row in rows[:limit]], next_cursor)

    async def delete(self, ref: RefOrId) -> None:
        """See :meth:`workspace.base.BaseWorkspace.delete`.

        Args:
            ref: A ref or id.
        """
        rid = ref_id(ref)
        async with self._writing() as session:
            result = await session.execute(
                sa.delete(records_t).where(
                    records_t.c.id == rid, records_t.c.tenant == self._tenant
                )
            )
            if not getattr(result, "rowcount", 0):
                raise RecordNotFoundError(rid)

    async def prune(
        self,
        scope: Mapping[str, Any] | None = None,
        older_than: timedelta | float | None = None,
        keep_last: int | None = None,
        collection: str | None = None,
    ) -> int:
        """See :meth:`workspace.base.BaseWorkspace.prune`.

        Args:
            scope: Scope keys to match.
            older_than: Minimum age of a deleted record.
            keep_last: Newest records to keep.
            collection: Only this collection.

        Returns:
            The number of deleted records.
        """
        args = prune_args(scope, older_than, keep_last, collection)
        flt = compile_filters(
            None if args.collection is None else {"collection": args.collection}, args.scope
        )
        r = records_t
        pinned = sa.select(tags_t.c.record_seq).where(
            tags_t.c.tenant == self._tenant, tags_t.c.tag == PINNED_TAG
        )
        ordered = (
            self._where(sa.select(r.c.seq, r.c.created_us), flt)
            .where(r.c.seq.not_in(pinned))
            .order_by(r.c.created_us.desc(), r.c.id.desc())
            .offset(args.keep_last)
            .subquery()
        )
        victims = sa.select(ordered.c.seq)
        if args.cutoff_us is not None:
            victims = victims.where(ordered.c.created_us < args.cutoff_us)
        async with self._writing() as session:
            seqs = [int(s) for s in (await session.execute(victims)).scalars()]
            for start in range(0, len(seqs), _CHUNK):
                await session.execute(sa.delete(r).where(r.c.seq.in_(seqs[start : start + _CHUNK])))
        return len(seqs)

    # -- links -------------------------------------------------------------------------------

    async def _existing_ids(self, session: AsyncSession, ids: Sequence[str]) -> set[str]:
        r = records_t
        rows = await session.execute(
            sa.select(r.c.id).where(r.c.tenant == self._tenant, r.c.id.in_(sorted(set(ids))))
        )
        return set(rows.scalars())

    async def _require(self, session: AsyncSession, refs: Sequence[object]) -> list[str]:
        ids = [ref_id(x) for x in refs]
        found = await self._existing_ids(session, ids)
        for rid in ids:
            if rid not in found:
                raise RecordNotFoundError(rid)
        return ids

    async def link(
        self,
        source: RefOrId,
        target: RefOrId,
        relation: str,
        meta: Mapping[str, Any] | None = None,
    ) -> Link:
        """See :meth:`workspace.base.BaseWorkspace.link`.

        Args:
            source: Source record.
            target: Target record.
            relation: Relation name.
            meta: Metadata.

        Returns:
            The link.
        """
        relation_s = str(check_name(relation, "relation"))
        meta_d = check_mapping(meta, "meta")
        async with self._writing() as session:
            src, dst = await self._require(session, [source, target])
            created = now_us()
            link = Link(new_id("lnk", created), src, dst, relation_s, meta_d, iso(created))
            await session.execute(
                sa.insert(links_t).values(
                    id=link.id,
                    tenant=self._tenant,
                    source_id=src,
                    target_id=dst,
                    relation=relation_s,
                    meta=meta_d,
                    created_us=created,
                )
            )
        return link

    async def _links_query(
        self,
        session: AsyncSession,
        ref: RefOrId | None,
        source: RefOrId | None,
        target: RefOrId | None,
        relation: str | None,
    ) -> Any:
        given = {
            k: v for k, v in (("ref", ref), ("source", source), ("target", target)) if v is not None
        }
        lk = links_t
        stmt = sa.select(lk).where(lk.c.tenant == self._tenant)
        ids = dict(zip(given, await self._require(session, list(given.values())), strict=True))
        if "ref" in ids:
            stmt = stmt.where(sa.or_(lk.c.source_id == ids["ref"], lk.c.target_id == ids["ref"]))
        if "source" in ids:
            stmt = stmt.where(lk.c.source_id == ids["source"])
        if "target" in ids:
            stmt = stmt.where(lk.c.target_id == ids["target"])
        if relation is not None:
            stmt = stmt.where(lk.c.relation == relation)
        return stmt.order_by(lk.c.created_us.desc(), lk.c.id.desc())

    async def links(
        self,
        ref: RefOrId | None = None,
        *,
        source: RefOrId | None = None,
        target: RefOrId | None = None,
        relation: str | None = None,
    ) -> list[Link]:
        """See :meth:`workspace.base.BaseWorkspace.links`.

        Args:
            ref: Either end.
            source: Source record.
            target: Target record.
            relation: Relation name.

        Returns:
            Matching links, newest first.
        """
        rel = check_name(relation, "relation", optional=True)
        async with self._reading() as session:
            stmt = await self._links_query(session, ref, source, target, rel)
            rows = (await session.execute(stmt)).all()
        return [_to_link(row) for row in rows]

    async def links_page(
        self,
        ref: RefOrId | None = None,
        *,
        source: RefOrId | None = None,
        target: RefOrId | None = None,
        relation: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> LinkPage:
        """See :meth:`workspace.base.BaseWorkspace.links_page`.

        Args:
            ref: Either end.
            source: Source record.
            target: Target record.
            relation: Relation name.
            limit: Page size.
            cursor: Next-page cursor.

        Returns:
            The page.
        """
        rel = check_name(relation, "relation", optional=True)
        limit = check_limit(limit)
        fp = links_fingerprint(opt_ref_id(ref), opt_ref_id(source), opt_ref_id(target), rel)
        pos = None if cursor is None else decode_cursor(cursor, fp, "k")
        lk = links_t
        async with self._reading() as session:
            stmt = await self._links_query(session, ref, source, target, rel)
            if pos is not None:
                stmt = stmt.where(
                    sa.or_(
                        lk.c.created_us < pos["c"],
                        sa.and_(lk.c.created_us == pos["c"], lk.c.id < pos["i"]),
                    )
                )
            rows = (await session.execute(stmt.limit(limit + 1))).all()
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(
                {"m": "k", "f": fp, "c": int(last.created_us), "i": last.id}
            )
        return LinkPage([_to_link(row) for row in rows[:limit]], next_cursor)

    # -- context -----------------------------------------------------------------------------

    async def _context_candidates(
        self,
        *,
        terms: list[str],
        scope: dict[str, Any],
        collections: list[str],
        limit: int,
        required: list[str],
    ) -> list[Candidate]:
        r = records_t
        query = any_query(terms)
        weighted = compile_filters(None, scope, collections=collections)
        pinned = Filters(
            tag_groups=(*compile_filters(None, scope).tag_groups, frozenset({PINNED_TAG}))
        )
        async with self._reading() as session:
            seqs: set[int] = set()
            if terms and not weighted.impossible:
                top = (
                    self._ranked(query, [r.c.seq], weighted)
                    .order_by(sa.desc("score"), r.c.created_us.desc(), r.c.id.desc())
                    .limit(limit)
                )
                seqs.update(int(row.seq) for row in (await session.execute(top)).all())
            if not weighted.impossible:
                newest = (
                    self._where(sa.select(r.c.seq), weighted)
                    .order_by(r.c.created_us.desc(), r.c.id.desc())
                    .limit(limit)
                )
                seqs.update(int(s) for s in (await session.execute(newest)).scalars())
            pinned_stmt = self._where(sa.select(r.c.seq), pinned).limit(1000)
            seqs.update(int(s) for s in (await session.execute(pinned_stmt)).scalars())
            if required:
                found = await session.execute(
                    sa.select(r.c.id, r.c.seq).where(
                        r.c.tenant == self._tenant, r.c.id.in_(required)
                    )
                )
                by_id = {row.id: int(row.seq) for row in found.all()}
                for rid in required:
                    if rid not in by_id:
                        raise RecordNotFoundError(rid)
                seqs.update(by_id.values())
            ordered = sorted(seqs)
            scores: dict[int, float] = {}
            rows: list[Any] = []
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                in_chunk = Filters()
                if terms:
                    stmt = self._ranked(query, [r.c.seq], in_chunk).where(r.c.seq.in_(chunk))
                    for row in (await session.execute(stmt)).all():
                        scores[int(row.seq)] = float(row.score)
                rows += (
                    await session.execute(
                        sa.select(*_REF_COLUMNS, r.c.body_text).where(
                            r.c.tenant == self._tenant, r.c.seq.in_(chunk)
                        )
                    )
                ).all()
        return [
            Candidate(
                ref=_to_ref(row),
                created_us=int(row.created_us),
                text=block_text(row.content_type, row.body_text),
                relevance=max(scores.get(int(row.seq), 0.0), 0.0),
            )
            for row in rows
        ]


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _head_revisions() -> tuple[str, ...]:
    """The head revision(s) of the shipped migrations; imports Alembic (once per process)."""
    from alembic import command  # noqa: F401  (imported here so _upgrade never pays for it)
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(_alembic_config()).get_heads())


def _current_revisions(connection: Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": _VERSION_TABLE})
    return tuple(context.get_current_heads())


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")
