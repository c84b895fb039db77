"""Concurrency: parallel writers (tasks and processes) and concurrent setup() calls."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ws_helpers import REPO_ROOT, create_pg_database, drop_pg_database, new_tenant

from workspace import BaseWorkspace, SQLWorkspace

WRITER = """
import asyncio, sys, time
from workspace import SQLWorkspace

url, tenant, name, count, start_at, do_setup = sys.argv[1:7]

async def main():
    ws = SQLWorkspace(url, tenant=tenant)
    try:
        while time.time() < float(start_at):
            await asyncio.sleep(0.005)
        if do_setup == "1":
            await ws.setup()
        for i in range(int(count)):
            ref = await ws.ingest(
                f"concurrent {name} item{i}", "observations", "w",
                scope={"writer": name, "i": i},
            )
            print(ref.id, flush=True)
    finally:
        await ws.close()

asyncio.run(main())
"""


def _run_processes(url: str, tenant: str, count: int, n: int, setup: bool) -> list[str]:
    start_at = time.time() + 1.5  # every process is imported and waiting by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                url,
                tenant,
                f"p{k}",
                str(count),
                str(start_at),
                "1" if setup else "0",
            ],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(n)
    ]
    ids: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        ids += out.split()
    return ids


async def test_parallel_writers_lose_and_duplicate_nothing(ws: BaseWorkspace) -> None:
    async def writer(name: str) -> list[str]:
        return [
            (await ws.ingest(f"parallel {name} {i}", "observations", "w", scope={"w": name})).id
            for i in range(12)
        ]

    batches = await asyncio.gather(*(writer(f"w{k}") for k in range(5)))
    ids = [rid for batch in batches for rid in batch]
    assert len(ids) == len(set(ids)) == 60
    listed = (await ws.search(limit=1000)).items
    assert sorted(r.id for r in listed) == sorted(ids)
    assert len((await ws.search("parallel", limit=1000)).items) == 60
    for k in range(5):
        mine = await ws.search(scope={"w": f"w{k}"}, limit=100)
        assert {r.id for r in mine.items} == set(batches[k])
    contents = await asyncio.gather(*(ws.get_data(rid) for rid in batches[0]))
    assert contents == [f"parallel w0 {i}" for i in range(12)]


async def test_parallel_checkpoints_and_links(ws: BaseWorkspace) -> None:
    refs = await asyncio.gather(*(ws.checkpoint("run-p", {"n": i}) for i in range(20)))
    history = await ws.checkpoint_history("run-p")
    assert sorted(r.id for r in history) == sorted(r.id for r in refs)
    hub = await ws.ingest("hub", "decisions", "d")
    links = await asyncio.gather(*(ws.link(hub, r, "answers") for r in refs))
    assert {x.id for x in await ws.links(hub)} == {x.id for x in links}


async def test_processes_writing_one_sqlite_file(tmp_path: Path) -> None:
    url = str(tmp_path / "multi.db")
    async with SQLWorkspace.from_url(url):
        pass
    tenant = new_tenant()
    ids = await asyncio.to_thread(_run_processes, url, tenant, 20, 3, False)
    assert len(ids) == len(set(ids)) == 60
    async with SQLWorkspace.from_url(url, tenant=tenant) as ws:
        listed = [r.id for r in (await ws.search(limit=1000)).items]
        assert sorted(listed) == sorted(ids)
        assert len((await ws.search("concurrent", limit=1000)).items) == 60


@pytest.mark.postgres
async def test_processes_writing_one_postgres_database(pg_url: str) -> None:
    tenant = new_tenant()
    ids = await asyncio.to_thread(_run_processes, pg_url, tenant, 20, 3, False)
    assert len(ids) == len(set(ids)) == 60
    async with SQLWorkspace.from_url(pg_url, tenant=tenant) as ws:
        assert sorted(r.id for r in (await ws.search(limit=1000)).items) == sorted(ids)
        assert len((await ws.search("concurrent", limit=1000)).items) == 60


async def _assert_single_head(ws: SQLWorkspace) -> None:
    async with ws.engine.connect() as conn:
        rows = (await conn.exec_driver_sql("SELECT version_num FROM ws_alembic_version")).all()
    assert [tuple(r) for r in rows] == [("0001",)]


# Holds SQLite's write lock on a file that is not in WAL mode yet (here: a fresh, empty one), as
# another process creating the same file, or running its first migration, does for a moment.
HOLD_WRITE_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


async def test_setup_waits_for_another_writer_of_a_fresh_file(tmp_path: Path) -> None:
    """Switching a fresh file to WAL while another process holds its write lock must wait.

    The switch upgrades a read transaction to a write, and SQLite never calls the busy handler
    for such an upgrade: before the fix the connection failed at once with "database is
    locked", whatever the busy timeout (the flake of test_concurrent_setup_on_a_fresh_sqlite_file).
    """
    path = tmp_path / "fresh.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(path), "1.0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        async with SQLWorkspace.from_url(path) as ws:
            ref = await ws.ingest("after the other writer", "observations", "w")
            assert await ws.get_data(ref) == "after the other writer"
            async with ws.engine.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        assert mode == "wal"
        assert time.monotonic() - started > 0.3  # it waited for the lock instead of failing
    finally:
        assert holder.wait(timeout=60) == 0


async def test_concurrent_setup_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = str(tmp_path / "fresh.db")
    tenant = new_tenant()
    ids = await asyncio.to_thread(_run_processes, url, tenant, 2, 4, True)
    assert len(set(ids)) == 8
    async with SQLWorkspace.from_url(url, tenant=tenant) as ws:
        await _assert_single_head(ws)
        assert len((await ws.search("concurrent", limit=100)).items) == 8
        async with ws.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        assert mode == "wal"


@pytest.mark.postgres
async def test_concurrent_setup_on_a_fresh_postgres_database() -> None:
    url = await create_pg_database()
    try:
        tenant = new_tenant()
        ids = await asyncio.to_thread(_run_processes, url, tenant, 2, 4, True)
        assert len(set(ids)) == 8
        async with SQLWorkspace.from_url(url, tenant=tenant) as ws:
            await _assert_single_head(ws)
            assert len((await ws.search("concurrent", limit=100)).items) == 8
    finally:
        await drop_pg_database(url)
