"""A worker SIGKILLed while the receiver holds a delivery: the next worker retries it with
the same webhook-id and body, and a receiver that dedups by webhook-id (as Standard
Webhooks asks, and as the gateway's /v1/webhooks does) processes the event exactly once.
The workers are the real CLI (``triggerflow-temporal worker --config FILE``)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from triggerflow_temporal.examples.approval import refund_flow
from triggerflow_temporal.spec.notifications import NOTIFY_WORKFLOW, NotifyOrder

from ..reliability._support import WorkerProcess, address_of, bounded, client_for, wait_until
from ._receiver import DedupConsumer, Receiver, new_secret
from .test_delivery import event

FLOWS = ["triggerflow_temporal.examples.approval:refund_flow"]


@pytest.mark.timeout(240)
async def test_a_killed_worker_redelivers_the_same_event_exactly_once(temporal_env, tmp_path):
    queue = f"notify-kill-{uuid.uuid4().hex[:8]}"
    secret, key = new_secret()
    release = asyncio.Event()
    consumer = DedupConsumer(key, hold_first=release)
    receiver = Receiver(answer=consumer)
    url = await receiver.start()
    config = tmp_path / "triggerflow.json"
    config.write_text(
        json.dumps(
            {
                # The gateway's sections are not the worker's: their unset secrets are fine.
                "auth": {"jwt": [{"issuer": "https://id", "audience": "a",
                                  "hs256_secret_env": "UNSET_GATEWAY_SECRET"}]},
                "notifications": [
                    {"channel": "ops", "webhook_url": url, "secret_env": "TF_KILL_OPS_SECRET"}
                ],
            }
        )
    )  # fmt: skip
    log = tmp_path / "worker.log"
    workers: list[WorkerProcess] = []

    def start_worker() -> WorkerProcess:
        worker = WorkerProcess(
            FLOWS,
            address=address_of(temporal_env.client),
            task_queue=queue,
            log=log,
            args=["--config", str(config)],
            env={"TF_KILL_OPS_SECRET": secret},
        )
        workers.append(worker)
        return worker

    client = client_for(temporal_env.client, [refund_flow], queue)
    order = NotifyOrder(
        webhook_id=f"exe-kill-{queue}:approve-R-1:interrupt.created:1",
        event=event(execution_id=f"exe-kill-{queue}"),
        channels=["ops"],
    )
    try:
        first = start_worker()
        handle = await client.start_workflow(
            NOTIFY_WORKFLOW, order, id=f"notify-{queue}", task_queue=queue, result_type=dict
        )
        await wait_until(
            consumer.held.is_set, timeout=90, what="the first delivery (see worker.log)"
        )
        first.sigkill()  # the receiver processed the event; its answer never arrives
        start_worker()
        result = await bounded(handle.result(), 150, "the delivery after the kill")
        statuses = [request.status for request in receiver.requests]
        output = log.read_text(errors="replace")
    finally:
        release.set()
        for worker in workers:
            worker.sigkill()
        await receiver.stop()

    assert result == {"ops": "delivered"}
    assert "notifications: ops" in output, output[-2000:]
    first_request, *retries = receiver.requests
    assert retries and statuses[0] is None and statuses[-1] == 200, statuses
    for retry in retries:
        assert retry.headers["webhook-id"] == first_request.headers["webhook-id"]
        assert retry.body == first_request.body
    assert first_request.headers["webhook-id"] == order.webhook_id
    assert consumer.refused == []  # every attempt signed with the configured secret
    assert consumer.processed == [order.event]  # exactly once
    assert consumer.duplicates == len(retries)
