"""SQL implementation of the Workspace contract on SQLAlchemy 2 async (storage layer).

Backends:

* SQLite through ``aiosqlite`` (default): a file, WAL journal, FTS5 full-text index kept in sync
  by triggers; concurrent writers queue on the busy timeout (see :mod:`.engine`).
* PostgreSQL through ``asyncpg``: a generated ``tsvector`` column with a GIN index, queried with
  ``websearch_to_tsquery``.

:class:`SQLWorkspace` implements the storage primitives of
:class:`~workspace.storage.base.StorageWorkspace` as SQL statements; everything else (argument
checks, cursors, context selection) is shared with the memory backend. The schema is managed by
the Alembic migrations shipped in ``workspace/migrations`` (see :mod:`.migrate`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from workspace.context import Candidate, TokenCounter, approx_tokens
from workspace.errors import RecordNotFoundError
from workspace.paging import Key
from workspace.query import ParsedQuery
from workspace.storage.base import DEFAULT_TENANT, LinkSelector, StorageWorkspace
from workspace.storage.filters import PINNED_TAG, Filters
from workspace.storage.records import NewRecord, Stamped, block_text, decode_content, new_link
from workspace.storage.sql import queries
from workspace.storage.sql.batch import IngestBatcher
from workspace.storage.sql.engine import DEFAULT_BUSY_TIMEOUT, Database
from workspace.storage.sql.migrate import migrate
from workspace.storage.sql.schema import (
    REF_COLUMNS,
    links,
    record_tags,
    records,
    to_link,
    to_ref,
)
from workspace.types import BoundedRead, Link, Profile, RecordRef

__all__ = ["SQLWorkspace"]

# substr() start positions are int4 on PostgreSQL; no stored value is that long on either backend.
_MAX_SUBSTR_START = 2**31 - 2
# Ids or seqs per IN list.
_CHUNK = 500
# Built once: compiling a fresh INSERT per call dominated ingest time.
_INSERT_RECORDS = sa.insert(records).returning(records.c.seq, sort_by_parameter_order=True)
_INSERT_TAGS = sa.insert(record_tags)


class SQLWorkspace(StorageWorkspace):
    """A Workspace stored in SQLite (aiosqlite) or PostgreSQL (asyncpg).

    Prefer :meth:`from_url`, which also runs ``setup()`` and disposes the engine.

    Args:
        url: Database URL or SQLite file path (see
            :func:`~workspace.storage.sql.engine.normalize_url`), or an existing ``AsyncEngine``
            (not disposed by ``close()``).
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
        self._db = Database(url, busy_timeout, **engine_kwargs)
        self._batcher = IngestBatcher(self._insert_batch)

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
        return self._db.engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect

    @property
    def busy_timeout(self) -> float:
        """Seconds a SQLite statement waits for another connection's lock."""
        return self._db.busy_timeout

    async def setup(self) -> None:
        """Create or upgrade the schema to the latest migration. Idempotent and process-safe.

        See :func:`~workspace.storage.sql.migrate.migrate`.

        Raises:
            StorageBusyError: SQLite only, if another process held the lock for 60 s.
        """
        await migrate(self._db)

    async def close(self) -> None:
        """Dispose the engine (only if this instance created it)."""
        await self._db.close()

    def enable_tracing(self, tracer_provider: Any = None) -> None:
        """Emit an OpenTelemetry span for every SQL statement on this workspace's engine.

        Needs the ``otel`` extra (``opentelemetry-instrumentation-sqlalchemy``). Only this
        engine is instrumented, nothing process-wide; calling it again is a no-op.

        Args:
            tracer_provider: The provider; default the global one.

        Raises:
            ImportError: Without the OpenTelemetry packages.
        """
        self._db.enable_tracing(tracer_provider)

    async def ping(self) -> None:
        """Run a trivial query; raises if the database is unreachable."""
        await self._db.ping()

    # -- helpers -------------------------------------------------------------------------------

    def _filtered(self, stmt: Any, flt: Filters) -> Any:
        return queries.filtered(stmt, flt, self.tenant, self.dialect)

    def _ranked_stmt(self, query: ParsedQuery, columns: Sequence[Any], flt: Filters) -> Any:
        return queries.ranked(query, columns, flt, self.tenant, self.dialect)

    async def _require(self, session: AsyncSession, ids: Sequence[str]) -> None:
        """Raise RecordNotFoundError for the first of ``ids`` that does not exist."""
        if not ids:
            return
        r = records
        rows = await session.execute(
            sa.select(r.c.id).where(r.c.tenant == self.tenant, r.c.id.in_(sorted(set(ids))))
        )
        found = set(rows.scalars())
        for rid in ids:
            if rid not in found:
                raise RecordNotFoundError(rid)

    # -- records -------------------------------------------------------------------------------

    async def _insert(self, new: NewRecord) -> None:
        await self._batcher.submit(new)

    async def _insert_many(self, news: Sequence[NewRecord]) -> None:
        # One transaction of its own, not the group commit: that retries a failed batch record
        # by record, and an ingest_many batch must be stored whole or not at all.
        await self._insert_batch(news)

    async def _insert_batch(self, batch: Sequence[NewRecord]) -> None:
        async with self._db.writing() as session:
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

    async def _load_ref(self, rid: str) -> RecordRef:
        r = records
        stmt = sa.select(*REF_COLUMNS).where(r.c.id == rid, r.c.tenant == self.tenant)
        async with self._db.reading() as session:
            row = (await session.execute(stmt)).first()
        if row is None:
            raise RecordNotFoundError(rid)
        return to_ref(row)

    async def _load_content(self, rid: str) -> Any:
        r = records
        stmt = sa.select(r.c.content_type, r.c.body_text, r.c.body_blob).where(
            r.c.id == rid, r.c.tenant == self.tenant
        )
        async with self._db.reading() as session:
            row = (await session.execute(stmt)).first()
        if row is None:
            raise RecordNotFoundError(rid)
        return decode_content(row.content_type, row.body_text, row.body_blob)

    async def _load_slice(self, rid: str, offset: int, limit: int) -> BoundedRead:
        r = records
        # Only the slice leaves the database. Past the longest storable value the slice is empty
        # anyway; the clamp keeps the start inside PostgreSQL's int4 substr() argument.
        start = min(offset, _MAX_SUBSTR_START) + 1
        stmt = sa.select(
            r.c.content_type,
            sa.func.length(r.c.body_text).label("text_len"),
            sa.func.length(r.c.body_blob).label("blob_len"),
            sa.func.substr(r.c.body_text, start, limit).label("text_part"),
            sa.func.substr(r.c.body_blob, start, limit).label("blob_part"),
        ).where(r.c.id == rid, r.c.tenant == self.tenant)
        async with self._db.reading() as session:
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

    async def _newest(
        self, flt: Filters, after: Key | None, limit: int
    ) -> list[Stamped[RecordRef]]:
        stmt = self._filtered(sa.select(*REF_COLUMNS), flt)
        if after is not None:
            stmt = stmt.where(queries.after(records, after))
        stmt = stmt.order_by(*queries.newest_first(records)).limit(limit)
        async with self._db.reading() as session:
            rows = (await session.execute(stmt)).all()
        return [Stamped(int(row.created_us), to_ref(row)) for row in rows]

    async def _ranked(
        self, query: ParsedQuery, flt: Filters, offset: int, limit: int
    ) -> list[RecordRef]:
        stmt = (
            self._ranked_stmt(query, REF_COLUMNS, flt)
            .order_by(sa.desc("score"), *queries.newest_first(records))
            .offset(offset)
            .limit(limit)
        )
        async with self._db.reading() as session:
            rows = (await session.execute(stmt)).all()
        return [to_ref(row) for row in rows]

    async def _delete(self, rid: str) -> None:
        r = records
        async with self._db.writing() as session:
            result = await session.execute(
                sa.delete(r).where(r.c.id == rid, r.c.tenant == self.tenant)
            )
            if not getattr(result, "rowcount", 0):
                raise RecordNotFoundError(rid)

    async def _prune(self, flt: Filters, keep_last: int, cutoff_us: int | None) -> int:
        r, tags = records, record_tags
        pinned = sa.select(tags.c.record_seq).where(
            tags.c.tenant == self.tenant, tags.c.tag == PINNED_TAG
        )
        ordered = (
            self._filtered(sa.select(r.c.seq, r.c.created_us), flt)
            .where(r.c.seq.not_in(pinned))
            .order_by(*queries.newest_first(r))
            .offset(keep_last)
            .subquery()
        )
        victims = sa.select(ordered.c.seq)
        if cutoff_us is not None:
            victims = victims.where(ordered.c.created_us < cutoff_us)
        async with self._db.writing() as session:
            seqs = [int(s) for s in (await session.execute(victims)).scalars()]
            for start in range(0, len(seqs), _CHUNK):
                await session.execute(sa.delete(r).where(r.c.seq.in_(seqs[start : start + _CHUNK])))
        return len(seqs)

    # -- links ---------------------------------------------------------------------------------

    async def _insert_link(
        self, source: str, target: str, relation: str, meta: dict[str, Any]
    ) -> Link:
        async with self._db.writing() as session:
            await self._require(session, [source, target])
            stamped = new_link(source, target, relation, meta)
            link = stamped.item
            await session.execute(
                sa.insert(links).values(
                    id=link.id,
                    tenant=self.tenant,
                    source_id=source,
                    target_id=target,
                    relation=relation,
                    meta=link.meta,
                    created_us=stamped.created_us,
                )
            )
        return link

    async def _select_links(
        self, selector: LinkSelector, after: Key | None, limit: int | None
    ) -> list[Stamped[Link]]:
        lk = links
        stmt = sa.select(lk).where(lk.c.tenant == self.tenant)
        if selector.ref is not None:
            stmt = stmt.where(
                sa.or_(lk.c.source_id == selector.ref, lk.c.target_id == selector.ref)
            )
        if selector.source is not None:
            stmt = stmt.where(lk.c.source_id == selector.source)
        if selector.target is not None:
            stmt = stmt.where(lk.c.target_id == selector.target)
        if selector.relation is not None:
            stmt = stmt.where(lk.c.relation == selector.relation)
        if after is not None:
            stmt = stmt.where(queries.after(lk, after))
        stmt = stmt.order_by(*queries.newest_first(lk))
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self._db.reading() as session:
            await self._require(session, selector.ids)
            rows = (await session.execute(stmt)).all()
        return [Stamped(int(row.created_us), to_link(row)) for row in rows]

    # -- context -------------------------------------------------------------------------------

    async def _load_candidates(
        self, ids: Sequence[str], query: ParsedQuery | None
    ) -> list[Candidate]:
        r = records
        scores: dict[int, float] = {}
        rows: list[Any] = []
        async with self._db.reading() as session:
            for start in range(0, len(ids), _CHUNK):
                chunk = list(ids[start : start + _CHUNK])
                found = (
                    await session.execute(
                        sa.select(*REF_COLUMNS, r.c.body_text).where(
                            r.c.tenant == self.tenant, r.c.id.in_(chunk)
                        )
                    )
                ).all()
                rows += found
                if query is not None and found:
                    seqs = [int(row.seq) for row in found]
                    stmt = self._ranked_stmt(query, [r.c.seq], Filters()).where(r.c.seq.in_(seqs))
                    for row in (await session.execute(stmt)).all():
                        scores[int(row.seq)] = float(row.score)
        return [
            Candidate(
                ref=to_ref(row),
                created_us=int(row.created_us),
                text=block_text(row.content_type, row.body_text),
                relevance=max(scores.get(int(row.seq), 0.0), 0.0),
            )
            for row in rows
        ]
