"""Duplicate and concurrent continue_with, emits racing close, calls on closed, failed and
unknown executions: exactly-once resume and clear, typed errors.

Single-caller rejections (unknown interrupt id, schema violations, conflicting request id,
not waiting) are in tests/test_pause_resume.py; these are the concurrent and lifecycle
cases.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from triggerflow_temporal import ExecutionStateError, TriggerFlowError

from ._support import bounded, expect_ignored, expect_raises
from .flows import approval, half_failed_flow, listener

CONCURRENCY = 25


async def _outcomes(calls: list[Any]) -> list[Any]:
    """Run ``calls`` concurrently; each result is the return value or the exception."""
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_concurrent_continues_with_different_values_resume_exactly_once(runtime):
    async with runtime([approval]):
        execution = approval.create_execution(auto_close=False)
        await execution.async_start({"ticket": 1})
        results = await _outcomes(
            [
                execution.async_continue_with(
                    "approve", {"approved": i % 2 == 0, "n": i}, resume_request_id=f"req-{i}"
                )
                for i in range(CONCURRENCY)
            ]
        )
        record = await execution.async_get_interrupt("approve")
        snapshot = await execution.async_close()
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if not isinstance(r, dict)]
    assert record is not None
    assert len(winners) == 1, results
    assert all(isinstance(e, ValueError) and "is not waiting" in str(e) for e in losers), losers
    assert winners[0]["resume_value"] == record["resume_value"]
    assert snapshot == {"decisions": [record["resume_value"]]}
    assert list(record["resume_requests"]) == [record["resume_request_id"]]


async def test_concurrent_duplicates_of_one_request_resume_once_and_all_succeed(runtime):
    async with runtime([approval]):
        execution = approval.create_execution(auto_close=False)
        await execution.async_start({"ticket": 2})
        value = {"approved": True}
        results = await _outcomes(
            [
                execution.async_continue_with("approve", value, resume_request_id="same")
                for _ in range(CONCURRENCY)
            ]
        )
        conflicting = await _outcomes(
            [
                execution.async_continue_with(
                    "approve", {"approved": False}, resume_request_id="same"
                )
            ]
        )
        snapshot = await execution.async_close()
    assert all(isinstance(r, dict) and r["status"] == "resumed" for r in results), results
    assert isinstance(conflicting[0], ValueError)
    assert "conflicting resume_request_id" in str(conflicting[0])
    assert snapshot == {"decisions": [value]}


async def test_emits_racing_close_are_applied_exactly_when_accepted(runtime):
    async with runtime([listener]):
        execution = listener.create_execution(auto_close=False)
        await execution.async_start(None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            calls = [execution.async_emit("Ping", i) for i in range(CONCURRENCY)]
            calls.insert(CONCURRENCY // 2, execution.async_close())
            results = await _outcomes(calls)
        snapshot = results.pop(CONCURRENCY // 2)
        await expect_ignored(execution.async_emit("Ping", "late"))
        assert await execution.async_close() == snapshot
    assert isinstance(snapshot, dict), snapshot
    accepted = {i for i, r in enumerate(results) if r is not None}
    rejected = {i for i, r in enumerate(results) if r is None}
    assert all(r is None or r == [i] for i, r in enumerate(results)), results
    got = snapshot.get("got", [])  # absent when the close overtook every emit
    assert sorted(got) == sorted(accepted)  # accepted once, never lost
    assert len(got) == len(set(got))
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == len(rejected)


async def _closed_approval(runtime_client: Any) -> tuple[Any, dict[str, Any]]:
    execution = approval.create_execution(auto_close=False)
    await execution.async_start({"ticket": 3})
    await execution.async_continue_with("approve", {"approved": True})
    return execution, await execution.async_close()


async def test_continue_and_emit_after_close_are_ignored_with_a_warning(runtime):
    async with runtime([approval]) as client:
        execution, snapshot = await _closed_approval(client)
        await expect_ignored(execution.async_continue_with("approve", {"approved": False}))
        await expect_ignored(execution.async_emit("Anything", 1))
        assert await execution.async_close() == snapshot
        assert await execution.async_get_state() == snapshot == {"decisions": [{"approved": True}]}


async def test_emit_nowait_after_close_is_ignored_with_a_warning(runtime):
    # Same contract as async_emit: "sealed/closed -> ignored with a RuntimeWarning".
    async with runtime([approval]) as client:
        execution, snapshot = await _closed_approval(client)
        await expect_ignored(execution.async_emit_nowait("Anything", 1))
        assert await execution.async_get_state() == snapshot


async def test_set_state_after_close_is_a_typed_error(runtime):
    async with runtime([approval]) as client:
        execution, snapshot = await _closed_approval(client)
        late = execution.async_set_state("late", 1)
        await expect_raises(late, ExecutionStateError, f"{execution.id}.*closed")
        assert await execution.async_get_state() == snapshot


async def test_start_again_after_close_is_a_no_op(runtime):
    # Native: "Start is idempotent (async_start on a started or loaded execution is a
    # no-op)". A second start must not begin a new run under the same id, which would
    # replace the closed execution's state.
    async with runtime([listener]) as client:
        execution = listener.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_emit("Ping", 1)
        snapshot = await execution.async_close()
        await bounded(execution.async_start(None), 10, "second start")
        attached = listener.get_execution(execution_id=execution.id)
        await bounded(attached.async_start(None), 10, "start on an attached handle")
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{execution.id}'")]
        assert len(runs) == 1, [r.status for r in runs]
        assert await execution.async_get_state() == snapshot == {"got": [1]}
        assert await execution.async_get_status() == "completed"


async def test_a_closed_execution_id_is_not_reused_by_a_new_handle(runtime):
    # A second run under the id would become the "current" execution and hide the
    # closed one's state from every handle and from the UI's default view.
    async with runtime([listener]) as client:
        first = listener.create_execution(auto_close=False)
        await first.async_start(None)
        await first.async_emit("Ping", 1)
        snapshot = await first.async_close()
        again = listener.create_execution(execution_id=first.id, auto_close=False)
        await expect_raises(again.async_start(None), ExecutionStateError, f"{first.id}.*closed")
        late = listener.create_execution(execution_id=first.id, auto_close=False)
        await expect_raises(late.async_set_state("k", 1), ExecutionStateError, "already ran")
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{first.id}'")]
        assert len(runs) == 1
        assert await first.async_get_state() == snapshot == {"got": [1]}


async def test_unknown_execution_id_is_a_typed_error_naming_it(runtime):
    async with runtime([approval]):
        ghost = approval.get_execution(execution_id="no-such-execution")
        for call in (
            ghost.async_get_state(),
            ghost.async_get_status(),
            ghost.async_continue_with("approve", {"approved": True}),
            ghost.async_emit("Ping", 1),
            ghost.async_close(),
        ):
            await expect_raises(call, TriggerFlowError, "no-such-execution")


async def test_continue_on_a_failed_execution(runtime):
    flow = half_failed_flow()
    async with runtime([flow]):
        # Failed but open (native: lifecycle stays open): the waiting branch can still be
        # resumed, exactly once, and the execution stays failed.
        execution = flow.create_execution(auto_close=False)
        await expect_raises(execution.async_start({"ticket": 4}), ValueError, "broken branch")
        assert await execution.async_get_status() == "failed"
        assert await execution.async_get_lifecycle_state() == "open"
        record = await execution.async_continue_with("approve", {"approved": True})
        assert record is not None and record["status"] == "resumed"
        again = execution.async_continue_with("approve", {"approved": True})
        await expect_raises(again, ValueError, "is not waiting")
        assert await execution.async_get_status() == "failed"
        assert await execution.async_close() == {"decisions": [{"approved": True}]}
        assert await execution.async_get_status() == "failed"
        # Failed and closed: continue is ignored with a warning, nothing changes.
        other = flow.create_execution(auto_close=False)
        await expect_raises(other.async_start({"ticket": 5}), ValueError, "broken branch")
        snapshot = await other.async_close(pending_interrupts="cancel")
        await expect_ignored(other.async_continue_with("approve", {"approved": True}))
        assert await other.async_close() == snapshot == {}
