"""HTTP-layer unit tests: problem documents, body limits, malformed input, messages, webhooks.

The message and webhook tests here check the HTTP side only, against ``FakeRouter`` (a
stand-in for the runtime's durable mailbox, which is not built yet); the end-to-end test of
correlated messages comes with the mailbox.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from triggerflow_temporal import TriggerFlowPlugin
from triggerflow_temporal.gateway import MessageRouter, create_app
from triggerflow_temporal.gateway._config import parse_config
from triggerflow_temporal.gateway._webhooks import sign

from . import flows
from .conftest import ENV, WEBHOOK_KEY, auth, config_document, observed, start

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert PROBLEM_KEYS <= set(problem) and problem["status"] == status
    assert problem["instance"] == response.request.url.path
    assert problem["detail"] and problem["type"].startswith("urn:triggerflow:gateway:problem:")
    return problem


class FakeRouter:
    """Stand-in for the runtime's mailbox, for HTTP-layer unit tests only."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_next = False

    async def deliver(
        self,
        tenant: str,
        name: str,
        key: str,
        value: Any,
        message_id: str,
        ttl_seconds: int,
        principal: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("mailbox down")
        self.calls.append(
            {
                "tenant": tenant,
                "name": name,
                "key": key,
                "value": value,
                "message_id": message_id,
                "ttl_seconds": ttl_seconds,
                "principal": dict(principal),
            }
        )
        return {"delivered_to": [{"execution_id": "e1", "interrupt_id": "i1"}], "buffered": False}


@pytest_asyncio.fixture(loop_scope="session")
async def unit() -> AsyncIterator[tuple[httpx.AsyncClient, FakeRouter]]:
    """The app over a client of a Temporal that does not exist, with a FakeRouter."""
    client = await Client.connect("127.0.0.1:1", lazy=True, plugins=[TriggerFlowPlugin(flows.ALL)])
    router = FakeRouter()
    assert isinstance(router, MessageRouter)
    app = create_app(
        parse_config(config_document(), env=ENV), client, flows.ALL, message_router=router
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http, router


# ------------------------------------------------------------------------ problems
async def test_unknown_routes_methods_and_parameters_are_problems(unit):
    http, _ = unit
    assert_problem(await http.get("/v2/nothing", headers=auth("alice")), 404)
    assert_problem(await http.delete("/v1/messages", headers=auth("alice")), 405)
    assert_problem(await http.get("/v1/executions?limit=0", headers=auth("alice")), 400)
    assert_problem(await http.get("/v1/executions?limit=x", headers=auth("alice")), 400)
    assert_problem(await http.get("/v1/executions?status=done", headers=auth("alice")), 400)
    assert_problem(await http.get("/v1/executions?flow=a'b", headers=auth("alice")), 400)
    assert_problem(await http.get("/v1/executions?assigned_to=bob", headers=auth("alice")), 400)
    problem = assert_problem(await http.get("/v1/executions/x", headers=auth("alice")), 503)
    assert "Temporal" in problem["detail"]


async def test_temporal_unreachable_is_503_with_retry_after(unit):
    http, _ = unit
    for response in [
        await http.get("/readyz"),
        await http.get("/v1/executions", headers=auth("alice")),
        await http.get("/v1/executions/some-id", headers=auth("alice")),
        await http.post("/v1/flows/gw_quick/executions", json={"input": 1}, headers=auth("alice")),
    ]:
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) > 0
    assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_openapi_and_docs_need_no_credentials(unit):
    http, _ = unit
    document = (await http.get("/openapi.json")).json()
    paths = set(document["paths"])
    assert {
        "/v1/flows/{flow}/executions",
        "/v1/executions",
        "/v1/executions/{execution_id}",
        "/v1/executions/{execution_id}/interrupts/{interrupt_id}/continue",
        "/v1/executions/{execution_id}/events",
        "/v1/executions/{execution_id}/close",
        "/v1/executions/{execution_id}/audit",
        "/v1/messages",
        "/v1/webhooks/{sender}",
        "/healthz",
        "/readyz",
    } <= paths
    assert "bearer" in document["components"]["securitySchemes"]
    start_op = document["paths"]["/v1/flows/{flow}/executions"]["post"]
    assert "input" in json.dumps(start_op["requestBody"])
    assert "409" in start_op["responses"]
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_traceparent_is_kept_or_started(unit):
    http, _ = unit
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    answer = (await http.get("/healthz", headers={"traceparent": incoming})).headers["traceparent"]
    assert answer.startswith("00-0af7651916cd43dd8448eb211c80319c-") and answer != incoming
    fresh = (await http.get("/healthz", headers={"traceparent": "garbage"})).headers["traceparent"]
    assert len(fresh.split("-")) == 4 and "0af76519" not in fresh


# ---------------------------------------------------------------------- body limits
async def test_oversized_bodies_are_413_before_parsing(unit):
    http, router = unit
    big = (
        b'{"name": "n", "correlation_key": "k", "message_id": "m", "value": "'
        + b"x" * (2 * 1024 * 1024)
        + b'"}'
    )
    response = await http.post(
        "/v1/messages", content=big, headers={**auth("alice"), "Content-Type": "application/json"}
    )
    assert_problem(response, 413)

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(40):
            yield b" " * 65536

    response = await http.post("/v1/messages", content=stream(), headers=auth("alice"))
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
    lying = await http.post(
        "/v1/messages", content=b"{}", headers={**auth("alice"), "Content-Length": "99999999"}
    )
    assert lying.status_code == 413
    assert router.calls == []


async def test_malformed_bodies_are_400(unit):
    http, router = unit
    headers = {**auth("alice"), "Content-Type": "application/json"}
    cases = [
        b"",
        b"{",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"name": "n", "correlation_key": "k", "message_id": "m", "extra": 1}).encode(),
        json.dumps({"name": "bad name", "correlation_key": "k", "message_id": "m"}).encode(),
        json.dumps({"name": "n", "correlation_key": ["k"], "message_id": "m"}).encode(),
        json.dumps(
            {"name": "n", "correlation_key": "k", "message_id": "m", "ttl_seconds": 0}
        ).encode(),
        json.dumps({"name": "n", "correlation_key": "k"}).encode(),
    ]
    for body in cases:
        response = await http.post("/v1/messages", content=body, headers=headers)
        assert_problem(response, 400)
    assert router.calls == []


async def test_bad_idempotency_keys_are_400(unit):
    http, _ = unit
    for key in ("", "has space", "x" * 201, "tab\tkey"):
        response = await http.post(
            "/v1/flows/gw_quick/executions",
            json={"input": 1},
            headers={**auth("alice"), "Idempotency-Key": key},
        )
        assert_problem(response, 400)


# ------------------------------------------------------------------------- messages
async def test_messages_go_to_the_router_with_the_callers_tenant(unit):
    http, router = unit
    response = await http.post(
        "/v1/messages",
        json={
            "name": "invoice.paid",
            "correlation_key": 42,
            "value": {"ok": 1},
            "message_id": "m-1",
        },
        headers=auth("carol"),
    )
    assert response.status_code == 202, response.text
    assert response.json() == {
        "delivered_to": [{"execution_id": "e1", "interrupt_id": "i1"}],
        "buffered": False,
    }
    assert router.calls == [
        {
            "tenant": "globex",
            "name": "invoice.paid",
            "key": "42",
            "value": {"ok": 1},
            "message_id": "m-1",
            "ttl_seconds": 3600,
            "principal": {
                "subject": "carol",
                "tenant": "globex",
                "groups": ["ops"],
                "method": "api_key",
            },
        }
    ]
    assert_problem(await http.post("/v1/messages", json={}), 401)


async def test_messages_without_a_router_are_501(gateway_client):
    app = create_app(parse_config(config_document(), env=ENV), gateway_client, flows.ALL)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        body = {"name": "n", "correlation_key": "k", "message_id": "m"}
        assert_problem(await http.post("/v1/messages", json=body, headers=auth("alice")), 501)


# ------------------------------------------------------------------------- webhooks
def signed(
    body: bytes, *, webhook_id: str | None = None, at: int | None = None, key: bytes = WEBHOOK_KEY
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    at = int(time.time()) if at is None else at
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(at),
        "webhook-signature": sign(key, webhook_id, at, body),
        "content-type": "application/json",
    }


async def test_a_signed_webhook_becomes_one_message(unit):
    http, router = unit
    body = json.dumps({"type": "invoice.paid", "data": {"invoice_id": "INV-9"}}).encode()
    headers = signed(body, webhook_id="msg_1")
    first = await http.post("/v1/webhooks/payments", content=body, headers=headers)
    assert first.status_code == 202, first.text
    replay = await http.post("/v1/webhooks/payments", content=body, headers=headers)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert len(router.calls) == 1
    call = router.calls[0]
    assert (call["tenant"], call["name"], call["key"], call["message_id"]) == (
        "acme",
        "invoice.paid",
        "INV-9",
        "webhook:payments:msg_1",
    )
    assert call["value"] == json.loads(body)
    assert call["principal"]["method"] == "webhook"


async def test_several_signatures_and_key_rotation(unit):
    http, router = unit
    body = json.dumps({"data": {"invoice_id": 7}}).encode()
    headers = signed(body)
    other = sign(b"k" * 32, headers["webhook-id"], headers["webhook-timestamp"], body)
    headers["webhook-signature"] = f"v1a,abc {other} {headers['webhook-signature']}"
    response = await http.post("/v1/webhooks/payments", content=body, headers=headers)
    assert response.status_code == 202 and router.calls[0]["key"] == "7"


async def test_forged_stale_and_incomplete_webhooks_are_refused(unit):
    http, router = unit
    body = json.dumps({"data": {"invoice_id": "INV-1"}}).encode()
    now = int(time.time())
    good = signed(body)
    tampered_body = body.replace(b"INV-1", b"INV-2")
    cases = [
        (signed(body, key=b"x" * 32), body),  # wrong secret
        (good, tampered_body),  # body changed after signing
        ({**good, "webhook-id": "msg_other"}, body),  # id changed after signing
        ({**good, "webhook-signature": "v1,AAAA"}, body),
        ({**good, "webhook-signature": good["webhook-signature"].replace("v1,", "v2,")}, body),
        (signed(body, at=now - 301), body),  # stale
        (signed(body, at=now + 301), body),  # from the future
        ({k: v for k, v in good.items() if k != "webhook-signature"}, body),
        ({k: v for k, v in good.items() if k != "webhook-timestamp"}, body),
        ({**good, "webhook-timestamp": "12a"}, body),
    ]
    for headers, content in cases:
        response = await http.post("/v1/webhooks/payments", content=content, headers=headers)
        problem = assert_problem(response, 401)
        assert "payments" in response.headers["www-authenticate"], problem
    assert router.calls == []
    assert_problem(await http.post("/v1/webhooks/nobody", content=body, headers=good), 404)
    no_key = json.dumps({"data": {}}).encode()
    assert_problem(
        await http.post("/v1/webhooks/payments", content=no_key, headers=signed(no_key)), 400
    )
    as_list = json.dumps({"data": {"invoice_id": [1]}}).encode()
    assert_problem(
        await http.post("/v1/webhooks/payments", content=as_list, headers=signed(as_list)), 400
    )
    assert router.calls == []


async def test_a_repeat_during_delivery_is_409_then_a_duplicate(unit):
    http, router = unit
    gate = asyncio.Event()
    deliver = router.deliver

    async def slow(*args: Any) -> Mapping[str, Any]:
        await gate.wait()
        return await deliver(*args)

    router.deliver = slow  # type: ignore[method-assign]
    body = json.dumps({"data": {"invoice_id": "INV-4"}}).encode()
    headers = signed(body)
    first = asyncio.ensure_future(http.post("/v1/webhooks/payments", content=body, headers=headers))
    await asyncio.sleep(0.05)
    during = await http.post("/v1/webhooks/payments", content=body, headers=headers)
    assert_problem(during, 409)
    assert during.headers["retry-after"] == "1"
    gate.set()
    assert (await first).status_code == 202
    after = await http.post("/v1/webhooks/payments", content=body, headers=headers)
    assert after.status_code == 200 and after.json()["duplicate"] is True
    assert len(router.calls) == 1


async def test_a_failed_delivery_is_not_remembered(unit):
    http, router = unit
    body = json.dumps({"data": {"invoice_id": "INV-3"}}).encode()
    headers = signed(body)
    router.fail_next = True
    failed = await http.post("/v1/webhooks/payments", content=body, headers=headers)
    assert_problem(failed, 503)
    retried = await http.post("/v1/webhooks/payments", content=body, headers=headers)
    assert retried.status_code == 202 and len(router.calls) == 1


# ------------------------------------------------------------- against a real execution
async def test_refused_bodies_change_nothing_in_the_execution(http, gateway_client):
    view = await start(http)
    execution_id, interrupt_id = view["id"], view["pending_interrupts"][0]["id"]
    before = await observed(gateway_client, execution_id)
    url = f"/v1/executions/{execution_id}/interrupts/{interrupt_id}/continue"
    headers = {**auth("alice"), "Content-Type": "application/json"}
    huge = b'{"value": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert_problem(await http.post(url, content=huge, headers=headers), 413)
    assert_problem(await http.post(url, content=b'{"value": ', headers=headers), 400)
    assert_problem(await http.post(url, content=b'{"valu": 1}', headers=headers), 400)
    assert_problem(
        await http.post(url, json={"value": {"approved": "yes"}}, headers=auth("alice")), 422
    )
    assert_problem(await http.post(url, json={"value": None}, headers=auth("alice")), 422)
    events = f"/v1/executions/{execution_id}/events"
    assert_problem(await http.post(events, content=b"[]", headers=headers), 400)
    assert_problem(await http.post(events, json={"event": ""}, headers=auth("alice")), 400)
    assert_problem(await http.post(events, json={"event": "START"}, headers=auth("alice")), 400)
    assert_problem(
        await http.post(events, json={"event": "Chunk[ask]-x"}, headers=auth("alice")), 400
    )
    close = f"/v1/executions/{execution_id}/close"
    assert_problem(
        await http.post(close, json={"pending_interrupts": "drop"}, headers=auth("alice")), 400
    )
    assert await observed(gateway_client, execution_id) == before


@pytest.mark.parametrize("bad_id", ["..", "a b", "x" * 300, "%00"])
async def test_odd_execution_ids_are_404(http, bad_id):
    assert_problem(await http.get(f"/v1/executions/{bad_id}", headers=auth("alice")), 404)
