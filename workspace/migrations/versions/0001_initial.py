"""Initial workspace schema: records, tags, links and full-text search.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Only the first 200k characters of a record are full-text indexed: PostgreSQL caps a tsvector
# at 1 MiB, and the SQLite index uses the same cap so both backends match the same records.
FTS_CHARS = 200_000


def _id() -> sa.types.TypeEngine:
    # "C" collation so ids order bytewise on PostgreSQL, like SQLite and Python do.
    return sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")


def _seq() -> sa.types.TypeEngine:
    # SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias FTS5 joins on).
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ws_records",
        sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
        sa.Column("id", _id(), nullable=False),
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
        sa.UniqueConstraint("id", name="uq_ws_records_id"),
    )
    op.create_index(
        "ix_ws_records_tenant_created", "ws_records", ["tenant", "created_us", "id"]
    )
    op.create_index(
        "ix_ws_records_tenant_collection",
        "ws_records",
        ["tenant", "collection", "created_us"],
    )
    op.create_table(
        "ws_record_tags",
        sa.Column(
            "record_seq",
            _seq(),
            sa.ForeignKey("ws_records.seq", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("tag", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("record_seq", "tag", name="pk_ws_record_tags"),
    )
    op.create_index("ix_ws_record_tags_tag", "ws_record_tags", ["tenant", "tag", "record_seq"])
    op.create_table(
        "ws_links",
        sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column(
            "source_id",
            _id(),
            sa.ForeignKey("ws_records.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "target_id",
            _id(),
            sa.ForeignKey("ws_records.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("relation", sa.String(128), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("id", name="uq_ws_links_id"),
    )
    op.create_index("ix_ws_links_source", "ws_links", ["tenant", "source_id"])
    op.create_index("ix_ws_links_target", "ws_links", ["tenant", "target_id"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # Contentless FTS5 index kept in sync by triggers, so no code path can forget it.
        # Records are immutable, so insert and delete triggers are enough.
        op.execute(
            "CREATE VIRTUAL TABLE ws_records_fts USING fts5("
            "kind, summary, body, content='', "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        values = (
            "{r}.seq, {r}.kind, coalesce({r}.summary, ''), "
            f"substr(coalesce({{r}}.body_text, ''), 1, {FTS_CHARS})"
        )
        op.execute(
            "CREATE TRIGGER ws_records_fts_ai AFTER INSERT ON ws_records BEGIN "
            "INSERT INTO ws_records_fts(rowid, kind, summary, body) VALUES ("
            + values.format(r="new")
            + "); END"
        )
        op.execute(
            "CREATE TRIGGER ws_records_fts_ad AFTER DELETE ON ws_records BEGIN "
            "INSERT INTO ws_records_fts(ws_records_fts, rowid, kind, summary, body) "
            "VALUES ('delete', " + values.format(r="old") + "); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE ws_records ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english'::regconfig, coalesce(kind, '')), 'C') || "
            "setweight(to_tsvector('english'::regconfig, coalesce(summary, '')), 'A') || "
            "setweight(to_tsvector('english'::regconfig, "
            f"left(coalesce(body_text, ''), {FTS_CHARS})), 'B')"
            ") STORED"
        )
        op.execute("CREATE INDEX ix_ws_records_tsv ON ws_records USING gin (tsv)")
    else:
        raise RuntimeError(f"workspace supports sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS ws_records_fts_ad")
        op.execute("DROP TRIGGER IF EXISTS ws_records_fts_ai")
        op.execute("DROP TABLE IF EXISTS ws_records_fts")
    op.drop_table("ws_links")
    op.drop_table("ws_record_tags")
    op.drop_table("ws_records")
