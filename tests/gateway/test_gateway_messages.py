"""``POST /v1/messages`` and webhooks end to end: the gateway on the runtime's durable
mailbox (issue 14). A message before its pause is buffered and delivered once when the
pause starts; a signed webhook becomes one message; another tenant's pause is not reached.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.client import Client

from triggerflow_temporal.gateway import MailboxRouter, create_app

from . import flows
from .conftest import auth, gateway_config
from .test_gateway_http_layer import signed


@pytest_asyncio.fixture(loop_scope="session")
async def mailbox_http(gateway_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        gateway_config(), gateway_client, flows.ALL, message_router=MailboxRouter(gateway_client)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def paid_with(client: Client, execution_id: str, timeout: float = 30.0) -> object:
    execution = flows.invoice.get_execution(client=client, execution_id=execution_id)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await execution.async_get_state()
        if "paid_with" in state:
            return state["paid_with"]
        assert asyncio.get_running_loop().time() < deadline, "the message never resumed it"
        await asyncio.sleep(0.1)


async def start_invoice(http: httpx.AsyncClient, invoice: str, who: str = "alice") -> str:
    response = await http.post(
        "/v1/flows/gw_invoice/executions", json={"input": invoice}, headers=auth(who)
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_a_message_before_its_pause_is_delivered_once(mailbox_http, gateway_client):
    invoice = f"INV-{uuid.uuid4().hex[:6]}"
    body = {
        "name": "invoice.paid",
        "correlation_key": invoice,
        "value": {"amount": 30},
        "message_id": f"pay-{invoice}",
    }
    first = await mailbox_http.post("/v1/messages", json=body, headers=auth("alice"))
    assert first.status_code == 202, first.text
    assert first.json() == {"delivered_to": [], "buffered": True}
    execution_id = await start_invoice(mailbox_http, invoice)
    assert await paid_with(gateway_client, execution_id) == {"amount": 30}
    # The same message id again: one delivery, the answer says where it went.
    again = await mailbox_http.post("/v1/messages", json=body, headers=auth("alice"))
    assert again.status_code == 202
    assert again.json()["delivered_to"] == [{"execution_id": execution_id, "interrupt_id": "paid"}]
    # A second pause on the key finds nothing left.
    second = await start_invoice(mailbox_http, invoice)
    await asyncio.sleep(1.5)
    view = await mailbox_http.get(f"/v1/executions/{second}", headers=auth("alice"))
    assert [i["id"] for i in view.json()["pending_interrupts"]] == ["paid"]


async def test_a_message_reaches_only_its_tenant(mailbox_http, gateway_client):
    invoice = f"INV-{uuid.uuid4().hex[:6]}"
    execution_id = await start_invoice(mailbox_http, invoice)  # alice: tenant acme
    await asyncio.sleep(1.0)
    body = {"name": "invoice.paid", "correlation_key": invoice, "value": 1, "message_id": "x"}
    other = await mailbox_http.post("/v1/messages", json=body, headers=auth("carol"))  # globex
    assert other.status_code == 202 and other.json()["buffered"] is True
    await asyncio.sleep(1.0)
    view = await mailbox_http.get(f"/v1/executions/{execution_id}", headers=auth("alice"))
    assert [i["id"] for i in view.json()["pending_interrupts"]] == ["paid"]
    ours = await mailbox_http.post(
        "/v1/messages", json={**body, "message_id": "y", "value": 2}, headers=auth("bob")
    )
    assert ours.status_code == 202, ours.text
    assert await paid_with(gateway_client, execution_id) == 2


async def test_a_signed_webhook_resumes_the_waiting_invoice(mailbox_http, gateway_client):
    invoice = f"INV-{uuid.uuid4().hex[:6]}"
    execution_id = await start_invoice(mailbox_http, invoice)
    payload = {"type": "invoice.paid", "data": {"invoice_id": invoice, "amount": 7}}
    body = json.dumps(payload).encode()
    response = await mailbox_http.post("/v1/webhooks/payments", content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    assert await paid_with(gateway_client, execution_id) == payload
