"""Long executions (issue 12): loops and long chains without stack growth, continue-as-new in
the middle of a chain with its pending work carried, bounded runs, replay of every run.

The dev server of this module suggests continue-as-new after ``SUGGEST_AT`` events, so a
loop of a few hundred activities spans several runs. The nested-await interpreter of runtime
version 2 failed these flows with ``RecursionError`` after ~160 ticks and never continued
as new while a chain was in progress.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin
from triggerflow_temporal.interpreter.workflow_base import (
    FAST_YIELD_VERSION,
    INLINE_BATCH,
    INLINE_YIELD_EVERY,
    YIELD_ACTIVITY,
)
from triggerflow_temporal.spec.limits import MAX_RESUME_VALUE_BYTES
from triggerflow_temporal.spec.notifications import PLAN_ACTIVITY
from triggerflow_temporal.spec.wire import RUNTIME_VERSION
from triggerflow_temporal.testing import start_dev_server, start_local_runtime

from .test_foreach_history_bound import run_histories


def local_activity_type(event: Any) -> str:
    """The activity type a local-activity marker records (its ``data`` detail)."""
    payload = event.marker_recorded_event_attributes.details["data"].payloads[0]
    return json.loads(payload.data)["activity_type"]


SUGGEST_AT = 300
TICKS = 400


async def tick(data):
    """One turn of a loop: count, then re-emit the loop's trigger until the target."""
    n = data.input["n"]
    await data.async_set_state("n", n)
    if n < data.input["target"]:
        await data.async_emit("again", {"n": n + 1, "target": data.input["target"]})
    return n


loop = TriggerFlow(name="long-loop")
loop.to(tick)
loop.when("again").to(tick)


async def fragile_tick(data):
    n = data.input["n"]
    if n == data.input["fail_at"]:
        raise ValueError(f"tick {n} broke")
    await data.async_set_state("n", n)
    await data.async_emit("again", {**data.input, "n": n + 1})
    return n


fragile = TriggerFlow(name="long-fragile")
fragile.to(fragile_tick)
fragile.when("again").to(fragile_tick)


async def step(data):
    return data.input + 1


# The same loop with its tick as a local activity: a local activity's failure arrives as a
# bare ApplicationError, which the interpreter did not map to a chunk failure (the loop hung).
local_fragile = TriggerFlow(name="long-local-fragile")
local_fragile_tick = local_fragile.chunk(
    fragile_tick, name="local_fragile_tick", execute_in="local_activity"
)
local_fragile.to(local_fragile_tick)
local_fragile.when("again").to(local_fragile_tick)


CHAIN_LENGTH = 1000
chain = TriggerFlow(name="long-chain")
process = chain.to(chain.chunk(step, name="s0", execute_in="local_activity"))
for index in range(1, CHAIN_LENGTH):
    process = process.to(chain.chunk(step, name=f"s{index}", execute_in="local_activity"))


async def total(data):
    await data.async_set_state("total", data.input)


process.to(total)


async def nested_tick(data):
    """A loop whose chunk waits for the chain it emitted (its continuation is listened)."""
    n = data.input
    if n < 40:
        await data.async_emit("deeper", n + 1)
    return n


async def unwind(data):
    await data.async_append_state("unwound", data.input)


nested = TriggerFlow(name="long-nested")
nested.to(nested_tick).to(unwind)
nested.when("deeper").to(nested_tick)


async def ask(data):
    return await data.async_pause_for(type="approval", payload={"cycle": data.input})


async def decide(data):
    # The 100 KB answer is read and dropped: only its size is kept.
    answer = data.input
    cycle = data.get_state("cycle") or 0
    await data.async_set_state("cycle", cycle + 1)
    await data.async_set_state("last_size", len(answer["blob"]))
    await data.async_emit("ask_again", cycle + 1)


approvals = TriggerFlow(name="long-approvals")
approvals.to(ask).to(decide)
approvals.when("ask_again").to(ask)

inline_loop = TriggerFlow(name="long-inline-loop")
inline_tick = inline_loop.chunk(tick, name="inline_tick", execute_in="workflow")
inline_loop.to(inline_tick)
inline_loop.when("again").to(inline_tick)

FLOWS = [loop, fragile, local_fragile, chain, nested, approvals, inline_loop]
CYCLES = 60
BLOB = "x" * 100_000


@pytest_asyncio.fixture(scope="module")
async def low_threshold_env() -> AsyncIterator[WorkflowEnvironment]:
    extra = ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={SUGGEST_AT}"]
    async with start_dev_server(extra_args=extra) as env:
        yield env


@pytest_asyncio.fixture
async def served(low_threshold_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    async with start_local_runtime(FLOWS, client=low_threshold_env.client) as client:
        yield client


async def assert_replays(histories: list[WorkflowHistory]) -> None:
    replayer = Replayer(workflows=[], plugins=[TriggerFlowPlugin(FLOWS)])
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


def activities(history: WorkflowHistory) -> int:
    return sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in history.events)


async def test_an_emit_loop_spans_runs_mid_chain_and_start_returns_when_it_ends(served):
    execution = loop.create_execution(auto_close=False)
    await execution.async_start({"n": 1, "target": TICKS})
    # async_start returned only after the whole loop, across every run.
    assert (await execution.async_get_state())["n"] == TICKS
    histories = await run_histories(served, execution.id)
    await execution.async_close()
    assert len(histories) >= 3, "the loop never continued as new in the middle of its chain"
    assert sum(activities(h) for h in histories) == TICKS  # nothing lost, nothing twice
    # Each run stops soon after Temporal suggests continue-as-new (in-flight work finishes).
    assert all(len(h.events) <= SUGGEST_AT + 40 for h in histories[:-1])
    assert all(activities(h) > 0 for h in histories[:-1])  # the chain went on in every run
    await assert_replays(histories)


async def test_an_inline_loop_yields_its_workflow_task_and_completes(served):
    execution = inline_loop.create_execution(auto_close=False)
    await execution.async_start({"n": 1, "target": 2000})
    assert (await execution.async_get_state())["n"] == 2000
    histories = await run_histories(served, execution.id)
    await execution.async_close()
    timers = sum(
        e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for h in histories for e in h.events
    )
    yields = [
        local_activity_type(e)
        for h in histories
        for e in h.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ].count(YIELD_ACTIVITY)
    if RUNTIME_VERSION >= FAST_YIELD_VERSION:
        # A no-op local activity per INLINE_BATCH inline chunks ends the activation (no
        # deadlock detector), in milliseconds (tests/test_long_loop_yield.py).
        assert (timers, yields) == (0, 2000 // INLINE_BATCH)
    else:
        # Version 3: one short timer per 200 inline chunks ends the workflow task.
        assert (timers, yields) == (2000 // INLINE_YIELD_EVERY, 0)
    await assert_replays(histories)


async def test_a_failure_deep_in_a_loop_fails_the_execution_and_stops_the_loop(served):
    execution = fragile.create_execution(auto_close=False)
    with pytest.raises(ValueError, match="tick 120 broke"):
        await execution.async_start({"n": 1, "fail_at": 120})
    assert await execution.async_get_status() == "failed"
    assert (await execution.async_get_state())["n"] == 119
    histories = await run_histories(served, execution.id)
    assert sum(activities(h) for h in histories) == 120
    await execution.async_close()
    await assert_replays(histories)


async def test_a_failing_local_activity_chunk_fails_the_execution(served):
    execution = local_fragile.create_execution(auto_close=False)
    with pytest.raises(ValueError, match="tick 40 broke"):
        await execution.async_start({"n": 1, "fail_at": 40})
    assert await execution.async_get_status() == "failed"
    assert (await execution.async_get_state())["n"] == 39
    histories = await run_histories(served, execution.id)
    await execution.async_close()
    await assert_replays(histories)


async def test_a_thousand_chunk_chain_completes(served):
    execution = chain.create_execution(auto_close=False)
    await execution.async_start(0)
    snapshot = await execution.async_close()
    assert snapshot["total"] == CHAIN_LENGTH
    histories = await run_histories(served, execution.id)
    markers = [
        local_activity_type(e)
        for h in histories
        for e in h.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    # Every local-activity chunk ran once; the one other marker is the notification plan
    # asked when the execution completed.
    chunks = [m for m in markers if m.startswith(f"{chain.name}.s")]
    assert len(chunks) == len(set(chunks)) == CHAIN_LENGTH, len(markers)
    assert len(markers) == CHAIN_LENGTH + 1 and PLAN_ACTIVITY in markers
    await assert_replays(histories)


async def test_a_chunk_awaiting_its_emitted_chain_unwinds_in_order(served):
    # Each nested_tick waits for the chain it emitted before its continuation runs, as
    # natively: the innermost unwinds first.
    execution = nested.create_execution(auto_close=False)
    await execution.async_start(1)
    state = await execution.async_get_state()
    await execution.async_close()
    assert state["unwound"] == list(range(40, 0, -1))


async def test_pause_resume_cycles_with_large_values_keep_the_carry_bounded(served):
    execution = approvals.create_execution(auto_close=False)
    await execution.async_start(0)
    for cycle in range(CYCLES):
        pending = await execution.async_get_pending_interrupts()
        assert len(pending) == 1
        interrupt_id = next(iter(pending))
        # With a request id each record holds the 100 KB answer three times (resume_value,
        # response, the ledger): over the window of finished records carried. A resume
        # whose chain was handed to the next run still answers with its record.
        record = await execution.async_continue_with(
            interrupt_id, {"blob": BLOB}, resume_request_id=f"r{cycle}"
        )
        assert record is not None, f"cycle {cycle}: continue_with answered None"
        assert record["id"] == interrupt_id and record["status"] == "resumed"
        assert record["resume_request_id"] == f"r{cycle}"
    state = await execution.async_get_state()
    assert state["cycle"] == CYCLES and state["last_size"] == len(BLOB)
    saved = await execution.async_save()
    histories = await run_histories(served, execution.id)
    await execution.async_close(pending_interrupts="cancel")
    assert len(histories) >= 2, "no continue-as-new: the test did not exercise the carry"
    carries = [
        len(h.events[0].workflow_execution_started_event_attributes.input.payloads[0].data)
        for h in histories[1:]
    ]
    # Each resolved record holds a 100 KB answer twice; only a window of them is carried
    # (runtime version 2 carried them all and failed at cycle 7 with a 3.5 MiB carry).
    assert max(carries) < 1024 * 1024, carries
    resolved = [i for i in saved["interrupts"].values() if i["status"] != "waiting"]
    assert 0 < len(resolved) < CYCLES
    await assert_replays(histories)


async def test_a_resume_value_over_the_limit_is_refused_and_the_interrupt_waits(served):
    execution = approvals.create_execution(auto_close=False)
    await execution.async_start(0)
    interrupt_id = next(iter(await execution.async_get_pending_interrupts()))
    too_big = {"blob": "x" * (MAX_RESUME_VALUE_BYTES + 1)}
    with pytest.raises(
        ValueError, match=r"over the 131,072 bytes \(128 KiB\) a resume value may be"
    ):
        await execution.async_continue_with(interrupt_id, too_big)
    with pytest.raises(ValueError, match="Workspace"):
        await execution.async_continue_with_nowait(interrupt_id, too_big)
    assert list(await execution.async_get_pending_interrupts()) == [interrupt_id]
    # Just under the limit resumes.
    fits = {"blob": "x" * (MAX_RESUME_VALUE_BYTES - 100)}
    record = await execution.async_continue_with(interrupt_id, fits)
    assert record is not None and record["status"] == "resumed"
    assert (await execution.async_get_state())["last_size"] == len(fits["blob"])
    await execution.async_close(pending_interrupts="cancel")
