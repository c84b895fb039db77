"""Helpers shared by the workspace tests (a plain module so test files can import it)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import uvicorn

PG_ADMIN_DSN = os.environ.get("WORKSPACE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
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
