"""SQLAlchemy Core view of the tables the Alembic migrations create, and row mappers (storage).

The migrations in ``workspace/migrations/versions`` own the schema (they stay frozen, so they
spell their columns out rather than import these); keep this file in step with them. The
Alembic environment imports :data:`VERSION_TABLE` from here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from workspace.storage.records import iso
from workspace.types import Link, RecordRef

# Alembic's version table, named apart from any other Alembic user of the same database.
VERSION_TABLE = "ws_alembic_version"

metadata = sa.MetaData()

_ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

records = sa.Table(
    "ws_records",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", _ID, nullable=False, unique=True),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("collection", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(128), nullable=False),
    sa.Column("content_type", sa.String(8), nullable=False),
    sa.Column("body_text", sa.Text(), nullable=True),
    sa.Column("body_blob", sa.LargeBinary(), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("summary", sa.Text(), nullable=True),
    sa.Column("source", sa.Text(), nullable=True),
    sa.Column("scope", sa.JSON(), nullable=False),
    sa.Column("meta", sa.JSON(), nullable=False),
    sa.Column("created_us", sa.BigInteger(), nullable=False),
)

record_tags = sa.Table(
    "ws_record_tags",
    metadata,
    sa.Column("record_seq", _SEQ, sa.ForeignKey("ws_records.seq", ondelete="CASCADE")),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("tag", sa.String(40), nullable=False),
)

links = sa.Table(
    "ws_links",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", _ID, nullable=False, unique=True),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("source_id", _ID, nullable=False),
    sa.Column("target_id", _ID, nullable=False),
    sa.Column("relation", sa.String(128), nullable=False),
    sa.Column("meta", sa.JSON(), nullable=False),
    sa.Column("created_us", sa.BigInteger(), nullable=False),
)

# FTS5 virtual table (SQLite only); its rowid is ws_records.seq.
records_fts = sa.table("ws_records_fts", sa.column("rowid"))

# What a RecordRef is read from (plus seq, the join key of tags and full-text rows).
REF_COLUMNS = (
    records.c.seq,
    records.c.id,
    records.c.collection,
    records.c.kind,
    records.c.sha256,
    records.c.size,
    records.c.summary,
    records.c.scope,
    records.c.source,
    records.c.meta,
    records.c.created_us,
    records.c.content_type,
)


def to_ref(row: Any) -> RecordRef:
    """Build a ref from a row holding :data:`REF_COLUMNS`.

    Args:
        row: The row.

    Returns:
        The ref.
    """
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


def to_link(row: Any) -> Link:
    """Build a link from a ``ws_links`` row.

    Args:
        row: The row.

    Returns:
        The link.
    """
    return Link(
        id=row.id,
        source=row.source_id,
        target=row.target_id,
        relation=row.relation,
        meta=dict(row.meta or {}),
        created_at=iso(int(row.created_us)),
    )
