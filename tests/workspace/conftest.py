"""Fixtures for the Workspace suite: one ``ws`` fixture parametrized over every backend.

Backends: memory, SQLite file, PostgreSQL (a fresh database per session, dropped afterwards) and
the HTTP client against a real uvicorn server on 127.0.0.1. SQL and HTTP backends are shared per
session; each test gets a fresh tenant, so tests never see each other's rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from ws_helpers import (
    HttpServer,
    create_pg_database,
    drop_pg_database,
    free_port,
    new_tenant,
    run_server,
)

from workspace import BaseWorkspace, MemoryWorkspace, SQLWorkspace, WorkspaceClient
from workspace.http.service import create_app


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


@pytest.fixture
async def http(http_server: HttpServer) -> AsyncIterator[httpx.AsyncClient]:
    """A raw httpx client on the shared service, authenticated as a fresh tenant."""
    token = http_server.token_for(new_tenant())
    async with httpx.AsyncClient(
        base_url=http_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "http"]
_SHARED = {"sqlite": "sqlite_store", "postgres": "pg_store", "http": "http_server"}


@pytest.fixture(params=BACKENDS)
def ws_backend(request: pytest.FixtureRequest) -> tuple[str, object]:
    """The backend name and its shared session object, created only when first needed.

    Looked up lazily so that ``-m "not postgres"`` runs without a PostgreSQL server.
    """
    name = request.param
    return name, None if name == "memory" else request.getfixturevalue(_SHARED[name])


@pytest.fixture
async def ws(ws_backend: tuple[str, object]) -> AsyncIterator[BaseWorkspace]:
    """A workspace on each backend, empty for this test (fresh tenant)."""
    name, shared = ws_backend
    tenant = new_tenant()
    if name == "memory":
        yield MemoryWorkspace(tenant=tenant)
    elif isinstance(shared, SQLWorkspace):
        yield shared.for_tenant(tenant)
    else:
        assert isinstance(shared, HttpServer)
        async with WorkspaceClient(shared.url, shared.token_for(tenant)) as client:
            yield client


STORAGE_BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORAGE_BACKENDS)
def store(request: pytest.FixtureRequest) -> MemoryWorkspace | SQLWorkspace:
    """A library backend (no HTTP) on a fresh tenant, for tenant-level tests."""
    tenant = new_tenant()
    if request.param == "memory":
        return MemoryWorkspace(tenant=tenant)
    shared = request.getfixturevalue(_SHARED[request.param])
    assert isinstance(shared, SQLWorkspace)
    return shared.for_tenant(tenant)
