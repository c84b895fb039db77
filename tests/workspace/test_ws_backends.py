"""Backend construction: open_workspace, from_url, setup/migrations and the public API."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

import workspace
from workspace import (
    BaseWorkspace,
    MemoryWorkspace,
    SQLWorkspace,
    WorkspaceClient,
    errors,
    open_workspace,
)
from workspace.context import word_tokens
from workspace.storage.sql.batch import IngestBatcher
from workspace.storage.sql.engine import normalize_url


def test_public_api_is_small_and_complete() -> None:
    assert len(workspace.__all__) <= 10
    for name in workspace.__all__:
        assert hasattr(workspace, name)
    for cls in (MemoryWorkspace, SQLWorkspace, WorkspaceClient):
        assert issubclass(cls, BaseWorkspace)
        assert not getattr(cls, "__abstractmethods__", None)
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.RecordNotFoundError, KeyError)
    assert issubclass(errors.UnknownCollectionError, errors.InvalidInputError)
    with pytest.raises(TypeError):
        BaseWorkspace()  # type: ignore[abstract]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        ("sqlite:///rel.db", "sqlite+aiosqlite:///rel.db"),
        ("sqlite+aiosqlite:///a.db", "sqlite+aiosqlite:///a.db"),
        ("sqlite+pysqlite:///a.db", "sqlite+aiosqlite:///a.db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_normalize_url(target: str, expected: str) -> None:
    assert normalize_url(target) == expected


async def test_open_workspace_picks_the_backend(tmp_path: Path) -> None:
    mem = open_workspace("memory://")
    assert isinstance(mem, MemoryWorkspace)
    assert open_workspace("memory://", tenant="t9").tenant == "t9"  # type: ignore[attr-defined]
    path_ws = open_workspace(tmp_path / "a.db")
    assert isinstance(path_ws, SQLWorkspace)
    assert path_ws.dialect == "sqlite"
    await path_ws.close()
    url_ws = open_workspace(f"sqlite:///{tmp_path / 'b.db'}")
    assert isinstance(url_ws, SQLWorkspace)
    await url_ws.close()
    pg = open_workspace("postgresql://postgres@127.0.0.1:5432/none")
    assert isinstance(pg, SQLWorkspace)
    assert pg.dialect == "postgresql"
    await pg.close()
    client = open_workspace("http://127.0.0.1:9/", token="tok")
    assert isinstance(client, WorkspaceClient)
    assert client.base_url == "http://127.0.0.1:9"
    await client.close()
    with pytest.raises(errors.InvalidInputError):
        open_workspace("memory://", token="tok")
    with pytest.raises(errors.InvalidInputError):
        open_workspace("mysql://u@h/db")


async def test_open_workspace_as_context_manager_sets_up(tmp_path: Path) -> None:
    async with open_workspace(tmp_path / "ctx.db", token_counter=word_tokens) as ws:
        ref = await ws.ingest("hello, world", "artifacts", "t")
        pack = await ws.build_context("hello")
        assert pack.blocks[0].tokens == 3  # word_tokens counts "hello", ",", "world"
        assert await ws.get_data(ref) == "hello, world"
    async with open_workspace(tmp_path / "ctx.db") as again:
        assert await again.get_data(ref.id) == "hello, world"


async def test_setup_is_idempotent_and_builds_the_schema(tmp_path: Path) -> None:
    db = tmp_path / "idem.db"
    async with SQLWorkspace.from_url(db) as ws:
        ref = await ws.ingest("persisted", "artifacts", "t")
        await ws.setup()
        await ws.setup()
        assert await ws.get_data(ref) == "persisted"
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version_num FROM ws_alembic_version").fetchall() == [("0001",)]
        # The FTS index is maintained by triggers, even for rows written outside the package.
        assert {"ws_records_fts", "ws_records_fts_ai", "ws_records_fts_ad"} <= names
        row = conn.execute("SELECT tenant, collection, body_text FROM ws_records").fetchone()
        assert row == ("default", "artifacts", "persisted")


async def test_from_url_without_setup_then_setup(tmp_path: Path) -> None:
    async with SQLWorkspace.from_url(tmp_path / "lazy.db", setup=False) as ws:
        with pytest.raises(Exception, match="ws_records"):
            await ws.search()
        await ws.setup()
        assert (await ws.search()).items == []


async def test_sqlite_in_memory_url_works() -> None:
    async with SQLWorkspace.from_url("sqlite+aiosqlite://") as ws:
        ref = await ws.ingest("in memory db", "observations", "n")
        assert [r.id for r in (await ws.search("memory")).items] == [ref.id]


async def test_shared_engine_is_not_disposed(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}")
    async with SQLWorkspace.from_url(engine) as ws:
        await ws.ingest("x", "artifacts", "t")
    async with SQLWorkspace.from_url(engine, tenant="other") as ws2:
        assert (await ws2.search()).items == []
    async with engine.connect() as conn:
        count = (await conn.exec_driver_sql("SELECT count(*) FROM ws_records")).scalar()
    assert count == 1
    await engine.dispose()


@pytest.mark.postgres
async def test_postgres_schema_has_tsvector_and_gin(pg_store: SQLWorkspace) -> None:
    async with pg_store.engine.connect() as conn:
        column = (
            await conn.exec_driver_sql(
                "SELECT data_type, is_generated FROM information_schema.columns "
                "WHERE table_name = 'ws_records' AND column_name = 'tsv'"
            )
        ).one()
        index = (
            await conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_ws_records_tsv'"
            )
        ).scalar()
    assert tuple(column) == ("tsvector", "ALWAYS")
    assert "gin" in str(index).lower()


def test_unsupported_database_is_rejected() -> None:
    with pytest.raises(errors.InvalidInputError):
        SQLWorkspace("mysql+aiomysql://u@h/db")


async def test_group_commit_batches_and_isolates_a_failing_record() -> None:
    batches: list[list[str]] = []

    async def write(batch: list[str]) -> None:
        batches.append(list(batch))
        await asyncio.sleep(0)
        if "bad" in batch:
            raise RuntimeError("boom")

    batcher = IngestBatcher(write)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(batcher.submit(x) for x in ["a", "bad", "c", "d"]),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and results[3] is None
    assert isinstance(results[1], RuntimeError)
    # One shared transaction first, then one per record to isolate the failure.
    assert batches == [["a", "bad", "c", "d"], ["a"], ["bad"], ["c"], ["d"]]
