"""The gateway on a real uvicorn socket: concurrency, streaming limits, health."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.client import Client

from triggerflow_temporal.gateway._serve import build_server

from . import flows
from .conftest import auth, gateway_config, observed

CONCURRENT = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def base_url(gateway_client: Client) -> AsyncIterator[str]:
    """``serve()``'s uvicorn server on a free loopback port, in this event loop."""
    port = free_port()
    server = await build_server(
        gateway_config(),
        flows=flows.ALL,
        client=gateway_client,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        # Client and server share this event loop: under load a kept-alive connection must
        # not be closed while its next request waits for the loop.
        timeout_keep_alive=60,
    )
    task = asyncio.ensure_future(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_health_over_the_socket(base_url):
    async with httpx.AsyncClient(base_url=base_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.headers["traceparent"].startswith("00-")


async def test_a_streamed_body_over_the_limit_is_cut_off(base_url):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):  # 4 MiB, chunked
            yield b" " * 65536

    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post("/v1/messages", content=chunks(), headers=auth("alice"))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_concurrent_continues_resume_exactly_once(base_url, gateway_client):
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as http:
        started = await http.post(
            "/v1/flows/gw_approval/executions", json={"input": "race"}, headers=auth("alice")
        )
        assert started.status_code == 201, started.text
        execution_id = started.json()["id"]
        interrupt_id = started.json()["pending_interrupts"][0]["id"]
        url = f"/v1/executions/{execution_id}/interrupts/{interrupt_id}/continue"
        keys = [f"race-{i}-{uuid.uuid4().hex[:6]}" for i in range(CONCURRENT)]

        async def resume(i: int) -> httpx.Response:
            for attempt in range(3):  # what Idempotency-Key is for: a lost answer is retried
                try:
                    return await http.post(
                        url,
                        json={"value": {"approved": True, "comment": str(i)}},
                        headers={**auth("bob"), "Idempotency-Key": keys[i]},
                    )
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        answers = await asyncio.gather(*(resume(i) for i in range(CONCURRENT)))
        codes = Counter(a.status_code for a in answers)
        odd = [a.json()["detail"] for a in answers if a.status_code not in (200, 409)][:3]
        assert codes == {200: 1, 409: CONCURRENT - 1}, (codes, odd)
        [winner] = [i for i, a in enumerate(answers) if a.status_code == 200]
        for answer in answers:
            assert answer.headers["content-type"] in (
                "application/json",
                "application/problem+json",
            )
        again = await resume(winner)
        assert again.status_code == 200
        assert again.json()["interrupt"] == answers[winner].json()["interrupt"]
    seen = await observed(gateway_client, execution_id)
    assert seen["status"] == "completed" and seen["pending"] == []
    assert seen["state"]["decision"] == {"approved": True, "comment": str(winner)}
    record = await flows.approval.get_execution(
        client=gateway_client, execution_id=execution_id
    ).async_get_interrupt(interrupt_id)
    assert list(record["resume_requests"]) == [keys[winner]]
