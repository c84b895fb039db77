"""SQL statements shared by the SQL backend's primitives: filters, full-text rank, keyset order.

Storage layer. Each dialect gets the form its planner handles best; both return the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from workspace.paging import Key
from workspace.query import ParsedQuery, to_fts5, to_websearch
from workspace.storage.filters import Filters
from workspace.storage.sql.schema import record_tags, records, records_fts

__all__ = ["after", "filtered", "newest_first", "ranked"]


def filtered(stmt: Any, flt: Filters, tenant: str, dialect: str) -> Any:
    """Restrict a SELECT over ``ws_records`` to a tenant's records matching ``flt``.

    Args:
        stmt: The statement.
        flt: The filters.
        tenant: The tenant.
        dialect: ``sqlite`` or ``postgresql``.

    Returns:
        The restricted statement.
    """
    r, tags = records, record_tags
    stmt = stmt.where(r.c.tenant == tenant)
    if flt.collections is not None:
        stmt = stmt.where(r.c.collection.in_(sorted(flt.collections)))
    if flt.kinds is not None:
        stmt = stmt.where(r.c.kind.in_(sorted(flt.kinds)))
    if flt.ids is not None:
        stmt = stmt.where(r.c.id.in_(sorted(flt.ids)))
    for group in flt.tag_groups:
        if dialect == "sqlite":
            # seq is SQLite's rowid: the IN list drives direct rowid lookups.
            stmt = stmt.where(
                r.c.seq.in_(
                    sa.select(tags.c.record_seq).where(
                        tags.c.tenant == tenant, tags.c.tag.in_(sorted(group))
                    )
                )
            )
        else:
            # A correlated EXISTS keeps PostgreSQL on index probes even before the tables
            # are analyzed; the IN form degrades to a quadratic join on missing statistics.
            stmt = stmt.where(
                sa.exists().where(
                    tags.c.record_seq == r.c.seq,
                    tags.c.tenant == tenant,
                    tags.c.tag.in_(sorted(group)),
                )
            )
    return stmt


def ranked(
    query: ParsedQuery, columns: Sequence[Any], flt: Filters, tenant: str, dialect: str
) -> Any:
    """SELECT ``columns`` and a ``score`` for the records matching a non-empty query.

    The caller adds the order and the limit.

    Args:
        query: The parsed query.
        columns: Columns to select.
        flt: The filters.
        tenant: The tenant.
        dialect: ``sqlite`` or ``postgresql``.

    Returns:
        The statement.
    """
    r = records
    if dialect == "sqlite":
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
    return filtered(stmt, flt, tenant, dialect)


def after(table: sa.Table, key: Key) -> Any:
    """Keyset predicate: rows strictly after ``key`` in newest-first order.

    Args:
        table: ``ws_records`` or ``ws_links``.
        key: ``(created_us, id)`` of the last row of the previous page.

    Returns:
        The WHERE clause.
    """
    created, last_id = key
    return sa.or_(
        table.c.created_us < created,
        sa.and_(table.c.created_us == created, table.c.id < last_id),
    )


def newest_first(table: sa.Table) -> tuple[Any, Any]:
    """ORDER BY of newest-first listings: ``created_us`` then ``id``, descending.

    Args:
        table: ``ws_records`` or ``ws_links``.

    Returns:
        The order clauses.
    """
    return table.c.created_us.desc(), table.c.id.desc()
