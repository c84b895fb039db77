"""Long loops from runtime version 4 (issue 18; findings L4 and L5 of bench/RESULTS.md).

- L4: inline chunks yield their workflow activation every ``INLINE_BATCH`` chunks with a
  no-op local activity (``YIELD_ACTIVITY``, one marker) instead of the 1 ms timer of
  version 3, which fires after ~1 s on a server and capped inline loops at ~200 steps/s.
  Executions started at version 3 keep the timer (their histories replay unchanged).
- L5: a chain of local activities keeps one workflow task open until the SDK's heartbeat
  (~8 s), and the history length Temporal reports only changes when a task starts, so
  ``MAX_RUN_EVENTS`` let such runs go a heartbeat of markers past it (~10,000 events).
  From version 4 a run holds for continue-as-new once it has scheduled
  ``MAX_RUN_MARKERS`` local activities: it schedules at most that many (plus those
  started together, a fan-out's in-flight cap), however fast the loop. The count is the
  workflow's own: which local activity first sees a new task's history length differs
  between the live run and a replay when a query comes in (the state is polled here while
  the loop runs, and every run is replayed). The server's suggestion is still only seen
  when a task starts: a run ends at the first task that carries it.

No timing is asserted: the tests count commands in the histories. A run reaching
``MAX_RUN_MARKERS`` takes 8,000 local activities (a minute here, and workflow-task timeouts
on a starved CPU, finding L6): bench/long_loop.py measures it (``--no-suggestion``).
"""

from __future__ import annotations

import asyncio
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
from triggerflow_temporal.client import persistence as _persistence
from triggerflow_temporal.interpreter.workflow_base import (
    FAST_YIELD_VERSION,
    INLINE_BATCH,
    INLINE_YIELD_EVERY,
    YIELD_ACTIVITY,
)
from triggerflow_temporal.spec.limits import MAX_RUN_EVENTS, MAX_RUN_MARKERS
from triggerflow_temporal.testing import start_dev_server, start_local_runtime

from .test_foreach_history_bound import run_histories
from .test_run_long import inline_loop


async def tick(data):
    """One turn of a local-activity loop; ``pause`` seconds long (recordings cross a task)."""
    n = data.input["n"]
    if data.input.get("pause"):
        await asyncio.sleep(data.input["pause"])
    await data.async_set_state("n", n)
    await data.async_set_state("ticks", (data.get_state("ticks") or 0) + 1)
    if n < data.input["target"]:
        await data.async_emit("again", {**data.input, "n": n + 1})
    return n


local_loop = TriggerFlow(name="long-local-loop")
local_tick = local_loop.chunk(tick, name="local_tick", execute_in="local_activity")
local_loop.to(local_tick)
local_loop.when("again").to(local_tick)


FLOWS = [inline_loop, local_loop]


def event_count(history: WorkflowHistory, kind: int) -> int:
    return sum(e.event_type == kind for e in history.events)


def marker_types(history: WorkflowHistory) -> list[str]:
    """The activity type of every local-activity marker of ``history``."""
    found = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        payload = event.marker_recorded_event_attributes.details["data"].payloads[0]
        found.append(json.loads(payload.data)["activity_type"])
    return found


def markers_after_suggestion(history: WorkflowHistory) -> int:
    """Markers recorded after the first workflow task that carried the suggestion."""
    seen = False
    markers = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            seen = seen or event.workflow_task_started_event_attributes.suggest_continue_as_new
        elif seen and event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            markers += 1
    assert seen, "a run continued as new without the suggestion"
    return markers


async def assert_replays(histories: list[WorkflowHistory]) -> None:
    replayer = Replayer(workflows=[], plugins=[TriggerFlowPlugin(FLOWS)])
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


# ================================================================= L4: the inline yield
INLINE_TICKS = 450  # crosses both batches: 9 yields at version 4, 2 at version 3


@pytest.mark.parametrize("version", [3, FAST_YIELD_VERSION])
async def test_an_inline_loop_yields_with_a_local_activity_from_version_4(
    time_skipping_env, version, monkeypatch
):
    # The client decides the version of the executions it starts (as after an upgrade,
    # executions started before it keep theirs).
    monkeypatch.setattr(_persistence, "RUNTIME_VERSION", version)
    async with start_local_runtime(FLOWS, client=time_skipping_env.client) as client:
        execution = inline_loop.create_execution(auto_close=False)
        await execution.async_start({"n": 1, "target": INLINE_TICKS})
        state = await execution.async_get_state()
        await execution.async_close()
        histories = await run_histories(client, execution.id)
    assert state["n"] == INLINE_TICKS
    assert len(histories) == 1
    history = histories[0]
    timers = event_count(history, EventType.EVENT_TYPE_TIMER_STARTED)
    yields = marker_types(history).count(YIELD_ACTIVITY)
    if version >= FAST_YIELD_VERSION:
        # No timer: one no-op local activity (a marker) per INLINE_BATCH inline chunks.
        assert timers == 0
        assert yields == INLINE_TICKS // INLINE_BATCH
    else:
        # Version 3 replays as recorded: a 1 ms timer per INLINE_YIELD_EVERY chunks.
        assert timers == INLINE_TICKS // INLINE_YIELD_EVERY
        assert yields == 0
    await assert_replays(histories)


# ========================================================= L5: runs bounded by markers
LOW_SUGGESTION = 100
LOOP = {"n": 1, "target": 300, "pause": 0.05}  # ~8 s: more than one workflow task


@pytest_asyncio.fixture(scope="module")
async def low_suggestion_env() -> AsyncIterator[WorkflowEnvironment]:
    extra = ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={LOW_SUGGESTION}"]
    async with start_dev_server(extra_args=extra) as env:
        yield env


async def poll_state(execution: Any) -> None:
    """Query the state while the loop runs, as a UI would (queries come in mid-task)."""
    while True:
        await asyncio.sleep(0.1)
        try:
            await execution.async_get_state()
        except Exception:  # not started yet, or between runs
            continue


async def run_local_loop(client: Client, value: dict[str, Any]) -> list[WorkflowHistory]:
    execution = local_loop.create_execution(auto_close=False)
    poller = asyncio.ensure_future(poll_state(execution))
    try:
        await execution.async_start(value)
    finally:
        poller.cancel()
    state = await execution.async_get_state()
    await execution.async_close()
    assert state["n"] == state["ticks"] == value["target"], state  # none lost or twice
    return await run_histories(client, execution.id)


@pytest.mark.timeout(600)
async def test_a_local_activity_loop_spans_runs_each_within_the_bound(low_suggestion_env):
    # The suggestion (100 events) is seen when a workflow task starts: with local
    # activities, at the SDK's heartbeat, so a run holds what the loop did in one task.
    # Whatever that is, no run schedules more than MAX_RUN_MARKERS local activities.
    async with start_local_runtime(FLOWS, client=low_suggestion_env.client) as client:
        histories = await run_local_loop(client, LOOP)
    events = [len(h.events) for h in histories]
    assert len(histories) >= 2, f"the loop never continued as new: {events}"
    assert all(len(marker_types(h)) <= MAX_RUN_MARKERS for h in histories), events
    assert all(n <= MAX_RUN_EVENTS for n in events), events
    ticks = [marker_types(h).count(f"{local_loop.name}.local_tick") for h in histories]
    assert sum(ticks) == LOOP["target"] and all(ticks), ticks  # the chain went on in every run
    # Each run took no new work once a workflow task told it of the suggestion: the tick
    # in flight then finished, and the run continued as new. (Which local activity first
    # sees a new task's values can be one later than the task's event: two markers.)
    late = [markers_after_suggestion(h) for h in histories[:-1]]
    assert all(n <= 2 for n in late), late
    await assert_replays(histories)
