"""A real gateway (uvicorn on 127.0.0.1), worker, Workspace service and headless Chromium.

Chromium is the Debian package at /usr/bin/chromium (``.ci/run`` installs it when it is
missing); Playwright drives it and never downloads a browser of its own.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from playwright.async_api import Browser, async_playwright
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.gateway import flows
from tests.gateway.pages_support import pages_app, served, workspace_service
from triggerflow_temporal.testing import start_local_runtime

CHROMIUM = "/usr/bin/chromium"
# API keys by subject: (key, tenant, groups). Tenants no other test uses.
USERS = {
    "ivy": ("tfk-ivy-" + secrets.token_urlsafe(24), "initech", ["reviewers"]),
    "ike": ("tfk-ike-" + secrets.token_urlsafe(24), "initech", []),
    "uma": ("tfk-uma-" + secrets.token_urlsafe(24), "umbrella", ["reviewers"]),
}


def key_headers(subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {USERS[subject][0]}"}


def config_base() -> dict[str, Any]:
    return {
        "auth": {
            "api_keys": [
                {
                    "sha256": hashlib.sha256(key.encode()).hexdigest(),
                    "subject": subject,
                    "tenant": tenant,
                    "groups": groups,
                }
                for subject, (key, tenant, groups) in USERS.items()
            ]
        }
    }


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def browser_client(temporal_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    """A worker for the gateway test flows."""
    async with start_local_runtime(flows.ALL, client=temporal_env.client) as client:
        yield client


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def stack(browser_client: Client) -> AsyncIterator[dict[str, str]]:
    """The Workspace service and the gateway, each on a loopback port."""
    async with workspace_service() as (workspace_url, _store):
        app = pages_app(browser_client, workspace_url, base=config_base())
        async with served(app) as gateway_url:
            yield {"gateway": gateway_url, "workspace": workspace_url}


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (the Debian package), driven by Playwright."""
    playwright = await async_playwright().start()
    try:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
    finally:
        await playwright.stop()
