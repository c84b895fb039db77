"""Gateway benchmark: a resume through HTTP against the raw ``continue_with`` update.

Run on demand (not part of the tests)::

    python bench/gateway_bench.py                # 40 rounds
    python bench/gateway_bench.py --rounds 200

One embedded dev server and worker; each round starts three executions of the same
approval flow (paused at one interrupt) and resumes one each way, interleaved so drift on a
shared machine hits all three alike:

- ``raw``: ``execution.async_continue_with(...)`` (one update, returns when the resumed
  chunk ran);
- ``asgi``: ``POST .../continue`` to the gateway app in this process (httpx ASGI transport):
  authentication, a ``describe`` for tenancy, the update and a ``status`` query;
- ``socket``: the same over a real uvicorn socket on loopback.

Prints medians, p90 and the ratios to ``raw``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import secrets
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from triggerflow_temporal import TriggerFlow, send_message  # noqa: E402
from triggerflow_temporal.gateway import MailboxRouter, create_app  # noqa: E402
from triggerflow_temporal.gateway._config import parse_config  # noqa: E402
from triggerflow_temporal.gateway._serve import build_server  # noqa: E402
from triggerflow_temporal.testing import start_local_runtime  # noqa: E402

TENANT = "bench"


async def ask(data):
    return await data.async_pause_for(type="approval", payload={"n": data.input})


async def record(data):
    await data.async_set_state("decision", data.input)


bench_approval = TriggerFlow(name="bench_gateway_approval")
bench_approval.to(ask).to(record)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def paused(flow: TriggerFlow, client: Any, n: int) -> tuple[Any, str]:
    execution = flow.create_execution(client=client, auto_close=False, tenant=TENANT)
    await execution.async_start(n)
    pending = await execution.async_get_pending_interrupts()
    return execution, next(iter(pending))


async def message_rates(
    client: Any, asgi: httpx.AsyncClient, headers: dict[str, str], count: int
) -> dict[str, float]:
    """Messages per second into the durable mailbox: raw ``send_message`` vs the gateway.

    Each message has its own key (its own mailbox, buffered): the cost of a first message.
    """
    gate = asyncio.Semaphore(10)
    run = secrets.token_hex(3)

    async def raw(i: int) -> None:
        async with gate:
            await send_message(
                client, "bench", f"raw-{run}-{i}", i, message_id=f"m{i}", tenant=TENANT
            )

    async def gateway(i: int) -> None:
        async with gate:
            body = {
                "name": "bench",
                "correlation_key": f"gw-{run}-{i}",
                "value": i,
                "message_id": f"m{i}",
            }
            response = await asgi.post("/v1/messages", json=body, headers=headers)
            assert response.status_code == 202, response.text

    rates: dict[str, float] = {}
    for name, send in (("raw", raw), ("gateway", gateway)):
        begin = time.perf_counter()
        await asyncio.gather(*(send(i) for i in range(count)))
        rates[name] = count / (time.perf_counter() - begin)
    return rates


async def main(rounds: int, messages: int) -> None:
    # The flow must come from an importable module (handlers are found by module and name).
    module = importlib.import_module("bench.gateway_bench")
    flow: TriggerFlow = module.bench_approval
    key = "bench-" + secrets.token_urlsafe(24)
    config = parse_config(
        {
            "auth": {
                "api_keys": [
                    {
                        "sha256": hashlib.sha256(key.encode()).hexdigest(),
                        "subject": "bencher",
                        "tenant": TENANT,
                    }
                ]
            }
        },
        env={},
    )
    headers = {"Authorization": f"Bearer {key}"}
    timings: dict[str, list[float]] = {"raw": [], "asgi": [], "socket": []}
    async with start_local_runtime([flow]) as client:
        app = create_app(config, client, [flow], message_router=MailboxRouter(client))
        port = free_port()
        server = await build_server(
            config, flows=[flow], client=client, port=port, log_level="warning", access_log=False
        )
        serving = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
        sock = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
        try:
            for warm in range(3):  # first calls pay for connections and caches
                for http in (asgi, sock):
                    execution, interrupt_id = await paused(flow, client, warm)
                    url = f"/v1/executions/{execution.id}/interrupts/{interrupt_id}/continue"
                    await http.post(url, json={"value": True}, headers=headers)
            for n in range(rounds):
                raw_exec, raw_interrupt = await paused(flow, client, n)
                asgi_exec, asgi_interrupt = await paused(flow, client, n)
                sock_exec, sock_interrupt = await paused(flow, client, n)
                begin = time.perf_counter()
                await raw_exec.async_continue_with(raw_interrupt, {"ok": n}, resume_request_id="r")
                timings["raw"].append(time.perf_counter() - begin)
                for name, http, execution, interrupt_id in (
                    ("asgi", asgi, asgi_exec, asgi_interrupt),
                    ("socket", sock, sock_exec, sock_interrupt),
                ):
                    url = f"/v1/executions/{execution.id}/interrupts/{interrupt_id}/continue"
                    begin = time.perf_counter()
                    response = await http.post(
                        url, json={"value": {"ok": n}}, headers={**headers, "Idempotency-Key": "r"}
                    )
                    timings[name].append(time.perf_counter() - begin)
                    assert response.status_code == 200, response.text
            rates = await message_rates(client, asgi, headers, messages)
        finally:
            await asgi.aclose()
            await sock.aclose()
            server.should_exit = True
            await serving
    raw = statistics.median(timings["raw"])
    print(f"messages per second, {messages} buffered messages each way, 10 in flight")
    for name, rate in rates.items():
        print(f"{name:<8} {rate:8.1f}/s {rate / rates['raw']:6.2f}x")
    print()
    print(f"resume round trip, {rounds} rounds (ms)")
    print(f"{'path':<8} {'median':>8} {'p90':>8} {'ratio':>7}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:<8} {median * 1000:8.1f} {pct(values, 0.9) * 1000:8.1f} {median / raw:6.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--messages", type=int, default=200)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.messages))
