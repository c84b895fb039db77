"""Stop and restart the Temporal dev server (``--db-filename``) under live executions.

Paused executions, durable timers (pause timeouts, auto close) and running chunks all
survive a restart of the server on the same database file and port, and complete.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.test_notify_flows import Recorder, paced_escalation
from triggerflow_temporal.examples.approval import refund_flow
from triggerflow_temporal.testing import start_dev_server, start_local_runtime

from ._support import WorkerProcess, bounded, client_for, free_port, wait_until
from .flows import gated, marker_path, timed


@pytest.mark.timeout(120)
async def test_paused_executions_survive_worker_and_server_restart(tmp_path: Path):
    database = str(tmp_path / "temporal.db")
    port = free_port()
    queue = f"rel-restart-{uuid.uuid4().hex[:8]}"
    flows = [refund_flow, timed]
    refunds = [f"R-{i}" for i in range(3)]

    async with start_dev_server(database_file=database, port=port) as env:
        async with start_local_runtime(flows, client=env.client, task_queue=queue) as client:
            for refund_id in refunds:
                execution = refund_flow.create_execution(
                    client=client, execution_id=f"{queue}-{refund_id}", auto_close=False
                )
                await execution.async_start({"refund_id": refund_id, "amount": "12.5"})
                assert await execution.async_get_status() == "waiting"
            # A pause timeout and an auto-close timer that are due while the server is down.
            waiting = timed.create_execution(client=client, execution_id=f"{queue}-timed")
            await waiting.async_start({"timeout": 2})
            auto = timed.create_execution(
                client=client,
                execution_id=f"{queue}-auto",
                auto_close=True,
                auto_close_timeout=2.0,
            )
            auto_start = asyncio.create_task(auto.async_start({"timeout": 1}))

            async def auto_waiting() -> bool:
                try:
                    return await auto.async_get_status() == "waiting"
                except Exception:  # not created yet
                    return False

            await wait_until(auto_waiting, timeout=30, what="the auto-close execution to pause")
    # Worker and server are both gone; start both again on the same database and port.
    await asyncio.sleep(2.5)
    async with start_dev_server(database_file=database, port=port) as env:
        async with start_local_runtime(flows, client=env.client, task_queue=queue) as client:
            closed = {}
            for i, refund_id in enumerate(refunds):
                execution = refund_flow.get_execution(
                    client=client, execution_id=f"{queue}-{refund_id}"
                )
                pending = await execution.async_get_pending_interrupts()
                assert list(pending) == [f"approve-{refund_id}"]
                assert pending[f"approve-{refund_id}"]["payload"] == {
                    "refund_id": refund_id,
                    "amount": 12.5,
                }
                record = await execution.async_continue_with(
                    f"approve-{refund_id}", {"approved": i != 1}, resume_request_id=f"r-{i}"
                )
                assert record is not None and record["status"] == "resumed"
                closed[refund_id] = await execution.async_close()
            waiting = timed.get_execution(client=client, execution_id=f"{queue}-timed")

            async def timed_out() -> bool:
                return await waiting.async_get_status() != "waiting"

            await wait_until(timed_out, timeout=30, what="the pause timeout after the restart")
            timed_snapshot = await waiting.async_close()
            auto_snapshot = await bounded(auto_start, 60, "the auto-closing execution")
            auto_info = await auto.async_get_info()

    for i, refund_id in enumerate(refunds):
        assert closed[refund_id] == {
            "refund": {"refund_id": refund_id, "amount": 12.5, "reason": ""},
            "approval_requested": True,
            "decision": {"approved": i != 1},
            "outcome": "rejected" if i == 1 else "refunded",
        }
    assert timed_snapshot == {"decisions": [{"approved": False, "by": "timeout"}]}
    assert auto_snapshot == {"decisions": [{"approved": False, "by": "timeout"}]}
    assert auto_info["close_reason"] == "auto_close_idle_timeout"


@pytest.mark.timeout(120)
async def test_running_chunk_and_pause_survive_server_restart(tmp_path: Path):
    database = str(tmp_path / "temporal.db")
    port = free_port()
    queue = f"rel-restart-{uuid.uuid4().hex[:8]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    worker: WorkerProcess | None = None
    try:
        async with start_dev_server(database_file=database, port=port) as env:
            worker = WorkerProcess(
                [
                    "tests.reliability.flows:gated",
                    "triggerflow_temporal.examples.approval:refund_flow",
                ],
                address=f"127.0.0.1:{port}",
                task_queue=queue,
                log=tmp_path / "worker.log",
            )
            client = client_for(env.client, [gated, refund_flow], queue)
            approval = refund_flow.create_execution(
                client=client, execution_id=f"{queue}-approval", auto_close=False
            )
            await approval.async_start({"refund_id": "s-1", "amount": 3})
            running = gated.create_execution(
                client=client, execution_id=f"{queue}-gated", auto_close=False
            )
            start = asyncio.create_task(running.async_start({"dir": str(markers)}))
            await wait_until(
                lambda: marker_path(str(markers), running.id, "gate1").exists(),
                timeout=60,
                what=f"the gated chunk to run; worker output:\n{worker.output()}",
            )
        # The server is down with the chunk in flight; the chunk finishes during the
        # outage (its completion cannot be delivered), then the server comes back.
        (markers / "release").write_text("")
        await asyncio.sleep(2.5)
        assert worker.proc.poll() is None, worker.output()
        async with start_dev_server(database_file=database, port=port) as env:
            client = client_for(env.client, [gated, refund_flow], queue)
            # The start call made before the outage returns once the chain completes.
            assert await bounded(start, 60, "the interrupted start") is running
            running = gated.get_execution(client=client, execution_id=f"{queue}-gated")
            gated_snapshot = await running.async_close()
            approval = refund_flow.get_execution(client=client, execution_id=f"{queue}-approval")
            await approval.async_continue_with("approve-S-1", {"approved": True})
            approval_snapshot = await approval.async_close()
            assert worker.proc.poll() is None, worker.output()
            worker.stop()
    finally:
        if worker is not None:
            worker.sigkill()
    # The gate's writes are applied exactly once, whichever attempt delivered them.
    assert gated_snapshot == {"log": ["prepare", "gate", "finish"]}
    assert approval_snapshot["outcome"] == "refunded"
    assert worker is not None and worker.proc.returncode == 0, worker.output()


@pytest.mark.timeout(120)
async def test_reminders_and_escalation_survive_a_server_restart(tmp_path: Path):
    """Follow-up timers are durable: the reminder and the escalation due while the server
    and worker were down come after the restart, once each, in one webhook-id sequence."""
    database = str(tmp_path / "temporal.db")
    port = free_port()
    queue = f"rel-notify-{uuid.uuid4().hex[:8]}"
    ops = Recorder("ops")
    kw = {"task_queue": queue, "notifiers": [ops]}
    execution_id = f"{queue}-esc"
    async with start_dev_server(database_file=database, port=port) as env:
        async with start_local_runtime([paced_escalation], client=env.client, **kw) as client:
            execution = paced_escalation.create_execution(
                client=client, execution_id=execution_id, auto_close=False
            )
            await execution.async_start(None)

            async def created() -> bool:
                return ops.types() == ["interrupt.created"]

            await wait_until(created, timeout=30, what="interrupt.created")
    await asyncio.sleep(3.5)  # reminder (2 s) and escalation (3 s) fall due while down
    async with start_dev_server(database_file=database, port=port) as env:
        async with start_local_runtime([paced_escalation], client=env.client, **kw) as client:

            async def escalated() -> bool:
                return "interrupt.escalated" in ops.types()

            await wait_until(escalated, timeout=60, what="the escalation after the restart")
            execution = paced_escalation.get_execution(client=client, execution_id=execution_id)
            record = await execution.async_get_interrupt("esc")
            assert record["access"]["assignees"] == ["alice", "bob"]
            await execution.async_continue_with("esc", "ok", actor="bob")
            await execution.async_close()

            async def completed() -> bool:
                return "execution.completed" in ops.types()

            await wait_until(completed, timeout=60, what="execution.completed")
    types = ops.types()
    assert types[0] == "interrupt.created" and types[-2:] == [
        "interrupt.resumed",
        "execution.completed",
    ]
    assert types.count("interrupt.escalated") == 1 and "interrupt.reminded" in types
    ids = [n.webhook_id for n in ops.sent]
    assert len(set(ids)) == len(ids)
