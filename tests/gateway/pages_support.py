"""Helpers of the approver-page tests (links, inbox; httpx and the browser)."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from triggerflow_temporal.gateway import create_app
from triggerflow_temporal.gateway._config import parse_config
from triggerflow_temporal.plugin.links import ApprovalLinks
from workspace import MemoryWorkspace
from workspace.http.service import create_app as workspace_app

from . import flows
from .conftest import ENV, config_document

LINK_SECRET = "link-" + secrets.token_urlsafe(40)
LINK_BASE = "https://approvals.gateway.test"
WORKSPACE_TOKEN = "ws-" + secrets.token_urlsafe(24)
WORKSPACE_TENANT = "default"
PAGE_ENV = {**ENV, "GW_LINK_SECRET": LINK_SECRET, "GW_WORKSPACE_TOKEN": WORKSPACE_TOKEN}


def links() -> ApprovalLinks:
    """The test's own ApprovalLinks, with the gateway's link secret."""
    return ApprovalLinks(LINK_BASE, LINK_SECRET.encode())


def pages_document(
    workspace_url: str | None = None, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The gateway config with ``links`` (and ``workspace`` when a URL is given)."""
    document = dict(base or config_document())
    document["links"] = {"secret_env": "GW_LINK_SECRET", "base_url": LINK_BASE}
    if workspace_url is not None:
        document["workspace"] = {"url": workspace_url, "token_env": "GW_WORKSPACE_TOKEN"}
    return document


def pages_app(
    client: Client, workspace_url: str | None = None, base: dict[str, Any] | None = None
) -> FastAPI:
    """A gateway app with approval links and, optionally, the Workspace."""
    config = parse_config(pages_document(workspace_url, base), env=PAGE_ENV)
    return create_app(config, client, flows.ALL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """``app`` on uvicorn on a free loopback port in this event loop; its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=60,
        )
    )
    task = asyncio.ensure_future(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def workspace_service() -> AsyncIterator[tuple[str, MemoryWorkspace]]:
    """A real Workspace HTTP service (in memory) whose token is the gateway's."""
    store = MemoryWorkspace(tenant=WORKSPACE_TENANT)
    app = workspace_app(store, tokens={WORKSPACE_TOKEN: WORKSPACE_TENANT})
    async with served(app) as url:
        yield url, store


async def start_review(
    http: httpx.AsyncClient, headers: dict[str, str], **request: Any
) -> dict[str, Any]:
    """Start ``gw_review`` through the API; the 201 view."""
    body: dict[str, Any] = {"input": request}
    if "execution_id" in request:
        body["execution_id"] = request.pop("execution_id")
    response = await http.post("/v1/flows/gw_review/executions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def link_token(view: dict[str, Any], subject: str, **overrides: Any) -> str:
    """A link token for the waiting interrupt of ``view`` (minted like the worker does)."""
    interrupt = view["pending_interrupts"][0]
    options: dict[str, Any] = {
        "execution_id": view["id"],
        "interrupt_id": interrupt["id"],
        "round": 0,
        "payload": interrupt["payload"],
        "subject": subject,
        "tenant": view["tenant"],
    }
    options.update(overrides)
    return links().token(**options)


def control_names(html: str) -> set[str]:
    """The ``name`` attributes of a page's form controls."""
    return set(re.findall(r"<(?:input|select|textarea|button)[^>]*\bname='([^']+)'", html))


def hidden_value(html: str, name: str) -> str:
    """The value of a hidden control."""
    found = re.search(rf"<input type='hidden' name='{re.escape(name)}' value='([^']*)'>", html)
    assert found, f"no hidden {name} in the page"
    return found.group(1)
