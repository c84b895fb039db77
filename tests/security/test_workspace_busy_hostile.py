"""Another process holding the SQLite write lock (issue 17): a bounded wait, then a typed 503.

Before: ingest hung for the 30 s busy timeout and answered 500. Now the wait is the configurable
``busy_timeout`` (5 s by default), the library raises ``StorageBusyError`` and the service
answers 503 with ``Retry-After``; nothing is written, and the same call works once the lock is
released. (PostgreSQL has no equivalent file lock.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.workspace.ws_helpers import new_tenant
from workspace import SQLWorkspace, WorkspaceClient, errors
from workspace.http.service import create_app

# Holds the write lock (like `sqlite3 file.db "BEGIN IMMEDIATE"` in a shell) until stdin closes.
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""

TOKEN = "busy-test-token-0123456789"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "busy.db"
    async with SQLWorkspace.from_url(path) as ws:
        await ws.ingest("already here", "artifacts", "seed")
    yield path


@pytest.fixture
def lock_holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    try:
        yield proc
    finally:
        release(proc)


def release(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


async def _rows(db: Path) -> list[str]:
    async with SQLWorkspace.from_url(db, setup=False) as ws:
        async with ws.engine.connect() as conn:
            rows = (await conn.exec_driver_sql("SELECT id FROM ws_records ORDER BY id")).all()
    return [row[0] for row in rows]


async def test_library_writes_fail_fast_with_a_typed_error_and_write_nothing(
    db: Path, lock_holder: subprocess.Popen[str]
) -> None:
    before = await _rows(db)
    async with SQLWorkspace.from_url(db, busy_timeout=0.5, tenant="default") as ws:
        seed = (await ws.search()).items[0]  # reads still work in WAL mode while it is held
        writes = [
            lambda: ws.ingest("blocked", "artifacts", "k"),
            lambda: ws.checkpoint("run", {"n": 1}),
            lambda: ws.link(seed, seed, "self"),
            lambda: ws.delete(seed),
            lambda: ws.prune(keep_last=0),
        ]
        for write in writes:
            started = time.monotonic()
            with pytest.raises(errors.StorageBusyError) as info:
                await write()
            assert time.monotonic() - started < 10
            assert info.value.retry_after >= 1
            assert "busy_timeout" in str(info.value)
        # Concurrent ingests share one group-commit batch: they fail together, after one wait,
        # not once per record.
        started = time.monotonic()
        results = await asyncio.gather(
            *(ws.ingest(f"blocked {i}", "artifacts", "k") for i in range(20)),
            return_exceptions=True,
        )
        assert all(isinstance(r, errors.StorageBusyError) for r in results)
        assert time.monotonic() - started < 10
        assert await _rows(db) == before
        release(lock_holder)
        ref = await ws.ingest("after the lock", "artifacts", "k")
        assert await ws.get_data(ref) == "after the lock"


async def test_default_busy_timeout_is_a_few_seconds(
    db: Path, lock_holder: subprocess.Popen[str]
) -> None:
    async with SQLWorkspace.from_url(db) as ws:
        assert ws.busy_timeout == 5.0
        started = time.monotonic()
        with pytest.raises(errors.StorageBusyError):
            await ws.ingest("blocked", "artifacts", "k")
        waited = time.monotonic() - started
    assert 4.5 <= waited < 25, waited


@pytest.mark.parametrize("bad", [-1, 3601, "5", True, float("nan")])
def test_busy_timeout_is_validated(tmp_path: Path, bad: object) -> None:
    with pytest.raises(errors.InvalidInputError):
        SQLWorkspace(tmp_path / "x.db", busy_timeout=bad)  # type: ignore[arg-type]


async def test_service_answers_503_with_retry_after_and_writes_nothing(
    db: Path, lock_holder: subprocess.Popen[str]
) -> None:
    before = await _rows(db)
    app = create_app(database_url=str(db), tokens={TOKEN: "default"}, busy_timeout=1.0)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://workspace",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as http,
    ):
        body = {"content": "blocked", "collection": "artifacts", "kind": "k"}
        started = time.monotonic()
        response = await http.post("/v1/records", json=body)
        assert time.monotonic() - started < 15
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
        payload = response.json()
        assert payload["error"] == "StorageBusyError"
        assert payload["retry_after"] >= 1
        assert (await http.post("/v1/search", json={})).status_code == 200
        # The typed client raises the same error as the library.
        client = WorkspaceClient("http://workspace", TOKEN, transport=httpx.ASGITransport(app=app))
        try:
            with pytest.raises(errors.StorageBusyError) as info:
                await client.checkpoint("run", {"n": 1})
            assert info.value.retry_after >= 1
        finally:
            await client.close()
        assert await _rows(db) == before
        release(lock_holder)
        assert (await http.post("/v1/records", json=body)).status_code == 201
    assert len(await _rows(db)) == len(before) + 1


async def test_a_service_starting_on_a_locked_file_waits_for_setup_not_busy_timeout(
    tmp_path: Path,
) -> None:
    """setup() (migrations from another process) may wait longer than the busy timeout."""
    db = tmp_path / "fresh.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        ws = SQLWorkspace(db, busy_timeout=0.2, tenant=new_tenant())
        setup = asyncio.create_task(ws.setup())
        await asyncio.sleep(1.0)
        assert not setup.done()  # still waiting, well past the 0.2 s busy timeout
        release(proc)
        await asyncio.wait_for(setup, 60)
        ref = await ws.ingest("migrated", "artifacts", "k")
        assert await ws.get_data(ref) == "migrated"
        await ws.close()
    finally:
        release(proc)
