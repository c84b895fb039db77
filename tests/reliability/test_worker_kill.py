"""SIGKILL the worker process mid-chunk, again and again.

Every execution must end with its one correct state: a killed attempt's state writes and
emits are never applied (the workflow applies them only when an activity completes), and
the retry's are applied exactly once. The worker is the real CLI
(``python -m triggerflow_temporal.cli worker ...``) in its own process.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from triggerflow_temporal.examples.approval import refund_flow

from ._support import WorkerProcess, address_of, bounded, client_for, wait_until
from .flows import CHAIN_LENGTH, build_chain, marker_path

WORKER_FLOWS = [
    "tests.reliability.flows:chain",
    "triggerflow_temporal.examples.approval:refund_flow",
]

# Where each execution's first attempts block, round by round: the worker is SIGKILLed
# once every block of the round has been reached. Labels are chunk indexes ("3") or the
# `when` branch for an index ("side1").
PLAN: dict[str, list[list[tuple[str, str]]]] = {
    "first-chunk-then-after-writes": [[("0", "start")], [("3", "after_writes")]],
    "after-writes-then-last-chunk": [[("2", "after_writes")], [("5", "start")]],
    # An emit is awaited by its chunk's continuation, so the chain waits for side1 too.
    "when-branch": [[("side1", "side")], [("side5", "side")]],
    "last-chunk-after-writes": [[("5", "after_writes")], []],
}
ARBITRARY = 3  # executions killed at whatever point they happen to be in round 2


def _history_facts(history: Any) -> tuple[Counter[str], dict[str, int]]:
    """Completed activities per type, and the highest attempt started per type."""
    scheduled: dict[int, str] = {}
    completed: Counter[str] = Counter()
    attempts: dict[str, int] = {}
    started_type: dict[int, str] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            name = scheduled[attrs.scheduled_event_id]
            started_type[event.event_id] = name
            attempts[name] = max(attempts.get(name, 0), attrs.attempt)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs = event.activity_task_completed_event_attributes
            completed[scheduled[attrs.scheduled_event_id]] += 1
    return completed, attempts


@pytest.mark.timeout(170)
async def test_sigkill_at_varied_points_keeps_every_state_exact(temporal_env, tmp_path):
    queue = f"rel-kill-{uuid.uuid4().hex[:8]}"
    address = address_of(temporal_env.client)
    chain = build_chain()
    client = client_for(temporal_env.client, [chain, refund_flow], queue)
    log = tmp_path / "worker.log"
    workers: list[WorkerProcess] = []

    def start_worker() -> WorkerProcess:
        worker = WorkerProcess(WORKER_FLOWS, address=address, task_queue=queue, log=log)
        workers.append(worker)
        return worker

    def cfg_for(label: str) -> dict[str, Any]:
        blocks = [list(block) for rnd in PLAN[label] for block in rnd]
        return {"dir": str(tmp_path), "blocks": blocks}

    def blocked(execution_id: str, labels: list[tuple[str, str]]) -> bool:
        return all(marker_path(str(tmp_path), execution_id, lbl).exists() for lbl, _ in labels)

    try:
        worker = start_worker()
        executions = {
            label: chain.create_execution(
                client=client, auto_close=False, execution_id=f"k-{label}-{queue}"
            )
            for label in PLAN
        }
        starts = {
            label: asyncio.create_task(execution.async_start(cfg_for(label)))
            for label, execution in executions.items()
        }
        approval = refund_flow.create_execution(client=client, auto_close=False)
        await approval.async_start({"refund_id": "k-1", "amount": "10"})
        assert await approval.async_get_status() == "waiting"

        # Round 1: every execution blocked at its first point -> SIGKILL.
        await wait_until(
            lambda: all(blocked(e.id, PLAN[label][0]) for label, e in executions.items()),
            timeout=60,
            what="round-1 blocks",
        )
        worker.sigkill()

        # Round 2: a new worker retries the killed attempts; a few more executions are
        # caught mid-flight at arbitrary points; SIGKILL again.
        worker = start_worker()
        await wait_until(
            lambda: all(blocked(e.id, PLAN[label][1]) for label, e in executions.items()),
            timeout=90,
            what=f"round-2 blocks; worker output:\n{worker.output()}",
        )
        free = {
            f"arbitrary-{i}": chain.create_execution(
                client=client, auto_close=False, execution_id=f"k-free{i}-{queue}"
            )
            for i in range(ARBITRARY)
        }
        free_cfg = {"dir": str(tmp_path), "blocks": [], "delay": 0.3}
        for label, execution in free.items():
            starts[label] = asyncio.create_task(execution.async_start(free_cfg))

        async def all_mid_flight() -> bool:
            try:
                states = [await e.async_get_state() for e in free.values()]
            except Exception:  # not created yet
                return False
            return all(len(state.get("done", [])) >= 2 for state in states)

        await wait_until(all_mid_flight, timeout=60, what="arbitrary executions in flight")
        worker.sigkill()

        # Round 3: everything completes on a third worker.
        worker = start_worker()
        await bounded(asyncio.gather(*starts.values()), 120, "the killed executions")
        await approval.async_continue_with("approve-K-1", {"approved": True})
        snapshots = {label: await e.async_close() for label, e in {**executions, **free}.items()}
        approval_snapshot = await approval.async_close()
        histories = {
            label: await client.get_workflow_handle(e.id).fetch_history()
            for label, e in {**executions, **free}.items()
        }
        worker.stop()
    finally:
        for proc in workers:
            proc.sigkill()

    for label, snapshot in snapshots.items():
        cfg = free_cfg if label.startswith("arbitrary") else cfg_for(label)
        execution_id = ({**executions, **free})[label].id
        assert snapshot["cfg"] == cfg, label
        assert snapshot["done"] == list(range(CHAIN_LENGTH)), (label, snapshot)
        assert sorted(snapshot["side"]) == list(range(CHAIN_LENGTH)), (label, snapshot)
        assert sorted(snapshot["by_chunk"]) == [str(i) for i in range(CHAIN_LENGTH)], label
        for index, entry in snapshot["by_chunk"].items():
            assert entry["index"] == int(index)
            assert entry["key"].startswith(f"{execution_id}:"), entry
        assert set(snapshot) == {"cfg", "done", "side", "by_chunk"}, label

        completed, attempts = _history_facts(histories[label])
        expected_completed = {f"rel-chain.step_{i}": 1 for i in range(CHAIN_LENGTH)}
        expected_completed["rel-chain.remember_cfg"] = 1
        expected_completed["rel-chain.on_side"] = CHAIN_LENGTH
        assert dict(completed) == expected_completed, label
        for blocks in PLAN.get(label, []):
            for block_label, _ in blocks:
                if block_label.startswith("side"):
                    assert attempts["rel-chain.on_side"] >= 2, (label, attempts)
                else:
                    assert attempts[f"rel-chain.step_{block_label}"] >= 2, (label, attempts)

    assert approval_snapshot["decision"] == {"approved": True}
    assert approval_snapshot["outcome"] == "refunded"
    assert approval_snapshot["refund"]["refund_id"] == "K-1"
