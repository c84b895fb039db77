"""SQLAlchemy Core view of the tables created by the Alembic migrations (used for queries only).

The migrations in ``workspace/migrations/versions`` own the schema; keep this file in step.
"""

from __future__ import annotations

import sqlalchemy as sa

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
