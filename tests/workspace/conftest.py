"""Fixtures for the Workspace suite: one ``ws`` fixture parametrized over every backend.

Backends: memory, SQLite file, PostgreSQL (a fresh database per session, dropped afterwards) and
the HTTP client against a real uvicorn server on 127.0.0.1. SQL and HTTP backends are shared per
session; each test gets a fresh tenant, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
import uvicorn

from workspace import MemoryWorkspace, SQLWorkspace, WorkspaceClient
from workspace.base import BaseWorkspace
from workspace.service import create_app

PG_ADMIN_DSN = os.environ.get(
    "WORKSPACE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
PG_SERVER = PG_ADMIN_DSN.rsplit("/", 1)[0].split("://", 1)[1]
REPO_ROOT = Path(__file__).resolve().parents[2]


def _start_local_postgres() -> None:
    """Start the machine's cluster if it is stopped (it is expected to be up)."""
    if not shutil.which("pg_ctlcluster") or not os.path.isdir("/etc/postgresql"):
        return
    for version in os.listdir("/etc/postgresql"):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


async def pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError):
        _start_local_postgres()
        for _ in range(50):
            try:
                return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(0.2)
        raise


async def create_pg_database() -> str:
    """Create a uniquely named database; returns its SQLAlchemy URL."""
    name = f"ws_test_{os.getpid()}_{secrets.token_hex(4)}"
    conn = await pg_admin()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG_SERVER}/{name}"


async def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await pg_admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def new_tenant() -> str:
    return f"t_{secrets.token_hex(6)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HttpServer:
    """A uvicorn server in a background thread; ``tokens`` is read per request."""

    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def token_for(self, tenant: str) -> str:
        token = secrets.token_urlsafe(16)
        self.tokens[token] = tenant
        return token


def run_server(app: object, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, thread


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@pytest.fixture(scope="session")
async def pg_store(pg_url: str) -> AsyncIterator[SQLWorkspace]:
    async with SQLWorkspace.from_url(pg_url) as store:
        yield store


@pytest.fixture(scope="session")
async def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SQLWorkspace]:
    path = tmp_path_factory.mktemp("ws_sqlite") / "conformance.db"
    async with SQLWorkspace.from_url(path) as store:
        yield store


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    path = tmp_path_factory.mktemp("ws_http") / "service.db"
    tokens: dict[str, str] = {}
    # A small limit keeps the oversized-body tests fast; the default is 8 MiB.
    app = create_app(database_url=str(path), tokens=tokens, max_body_bytes=2 * 1024 * 1024)
    port = free_port()
    server, thread = run_server(app, port)
    yield HttpServer(url=f"http://127.0.0.1:{port}", tokens=tokens)
    server.should_exit = True
    thread.join(timeout=30)


BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "http"]


@pytest.fixture(params=BACKENDS)
async def ws(
    request: pytest.FixtureRequest,
    sqlite_store: SQLWorkspace,
    pg_store: SQLWorkspace,
    http_server: HttpServer,
) -> AsyncIterator[BaseWorkspace]:
    """A workspace on each backend, empty for this test (fresh tenant)."""
    tenant = new_tenant()
    if request.param == "memory":
        yield MemoryWorkspace(tenant=tenant)
    elif request.param == "sqlite":
        yield sqlite_store.for_tenant(tenant)
    elif request.param == "postgres":
        yield pg_store.for_tenant(tenant)
    else:
        async with WorkspaceClient(http_server.url, http_server.token_for(tenant)) as client:
            yield client


STORAGE_BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORAGE_BACKENDS)
def store(
    request: pytest.FixtureRequest, sqlite_store: SQLWorkspace, pg_store: SQLWorkspace
) -> MemoryWorkspace | SQLWorkspace:
    """A library backend (no HTTP) on a fresh tenant, for tenant-level tests."""
    tenant = new_tenant()
    if request.param == "memory":
        return MemoryWorkspace(tenant=tenant)
    return (sqlite_store if request.param == "sqlite" else pg_store).for_tenant(tenant)
