"""Gateway fixtures: one worker for the package's flows, an app, credentials and tokens."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from triggerflow_temporal import TriggerFlow
from triggerflow_temporal.gateway import GatewayConfig, create_app
from triggerflow_temporal.gateway._config import parse_config
from triggerflow_temporal.testing import start_local_runtime

from . import flows

ISSUER = "https://id.gateway.test"
AUDIENCE = "triggerflow"
HS_SECRET = "hs-" + secrets.token_urlsafe(40)
WEBHOOK_KEY = secrets.token_bytes(32)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()
# API keys by name: (key, subject, tenant, groups)
KEYS = {
    "alice": ("tfk-alice-" + secrets.token_urlsafe(24), "alice", "acme", ["ops"]),
    "bob": ("tfk-bob-" + secrets.token_urlsafe(24), "bob", "acme", []),
    "carol": ("tfk-carol-" + secrets.token_urlsafe(24), "carol", "globex", ["ops"]),
}
ENV = {"GW_JWT_SECRET": HS_SECRET, "GW_PAYMENTS_SECRET": WEBHOOK_SECRET}


def config_document() -> dict[str, Any]:
    return {
        "auth": {
            "jwt": [
                {
                    "issuer": ISSUER,
                    "audience": AUDIENCE,
                    "hs256_secret_env": "GW_JWT_SECRET",
                    "tenant_claim": "tenant",
                    "groups_claim": "groups",
                }
            ],
            "api_keys": [
                {
                    "sha256": hashlib.sha256(key.encode()).hexdigest(),
                    "subject": subject,
                    "tenant": tenant,
                    "groups": groups,
                }
                for key, subject, tenant, groups in KEYS.values()
            ],
        },
        "webhooks": [
            {
                "sender": "payments",
                "secret_env": "GW_PAYMENTS_SECRET",
                "tenant": "acme",
                "message": {"name": "invoice.paid", "correlation_key": "$.data.invoice_id"},
            }
        ],
    }


def gateway_config() -> GatewayConfig:
    return parse_config(config_document(), env=ENV)


def auth(name: str) -> dict[str, str]:
    """Headers of the API key ``name``."""
    return {"Authorization": f"Bearer {KEYS[name][0]}"}


def token(
    sub: str = "dana",
    tenant: str | None = "acme",
    *,
    key: str | bytes = HS_SECRET,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A JWT; claims default to a valid one of ISSUER for AUDIENCE (exp in 5 minutes)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
        "groups": ["ops"],
    }
    if tenant is not None:
        payload["tenant"] = tenant
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def gateway_client(temporal_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    """A client with a worker serving the gateway test flows."""
    async with start_local_runtime(flows.ALL, client=temporal_env.client) as client:
        yield client


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def http(gateway_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app on the package's worker, called in-process (ASGI)."""
    app = create_app(gateway_config(), gateway_client, flows.ALL)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@pytest.fixture
def flow_of() -> dict[str, TriggerFlow]:
    return {flow.name: flow for flow in flows.ALL}


async def start(
    http: httpx.AsyncClient, flow: str = "gw_approval", value: Any = "T-1", who: str = "alice"
) -> dict[str, Any]:
    """Start through the gateway; the 201 view."""
    response = await http.post(
        f"/v1/flows/{flow}/executions", json={"input": value}, headers=auth(who)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def observed(client: Client, execution_id: str) -> dict[str, Any]:
    """What the runtime itself says about an execution (not through the gateway)."""
    flow = next(f for f in flows.ALL if execution_id.startswith(f.name + "-"))
    execution = flow.get_execution(client=client, execution_id=execution_id)
    return {
        "status": await execution.async_get_status(),
        "pending": sorted(await execution.async_get_pending_interrupts()),
        "state": await execution.async_get_state(),
        "resume_requests": {
            interrupt_id: sorted(
                (await execution.async_get_interrupt(interrupt_id) or {}).get("resume_requests")
                or {}
            )
            for interrupt_id in await execution.async_get_pending_interrupts()
        },
    }
