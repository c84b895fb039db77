"""A large for_each keeps each run's history bounded: continue-as-new in mid fan-out.

When Temporal suggests continue-as-new, the interpreter dispatches no new for_each item,
lets the in-flight ones finish, continues as new with the undispatched items and the join
progress, and dispatches the rest in the next run. Fan-outs without ``concurrency`` run at
most ``DEFAULT_FANOUT_CONCURRENCY`` items at a time. The dev server of this module suggests
continue-as-new every ``SUGGEST_AT`` events, so a few hundred items span several runs.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from tests.conformance._replay import replay
from triggerflow_temporal import (
    ChunkOutputError,
    ExecutionStateError,
    TriggerFlow,
    TriggerFlowPlugin,
)
from triggerflow_temporal.interpreter.legacy_engine import DEFAULT_FANOUT_CONCURRENCY
from triggerflow_temporal.spec.wire import RUNTIME_VERSION
from triggerflow_temporal.testing import start_dev_server, start_local_runtime

SUGGEST_AT = 150
ITEMS = 400
# Chunk runs per item key, across every run of every execution (handlers run in-process).
RUNS: Counter[str] = Counter()
RELEASE_SLOW = asyncio.Event()
OPEN_GATE = asyncio.Event()


async def work(data):
    RUNS[f"work:{data.input}"] += 1
    await asyncio.sleep(0.001 * (data.input % 5))  # completions out of item order
    return data.input * 10


async def keep(data):
    await data.async_set_state("results", data.input)


async def prep(data):
    return data.input


async def inner_work(data):
    RUNS[f"inner:{data.input}"] += 1
    return f"v{data.input}"


async def approve(data):
    return await data.async_pause_for(type="approval", interrupt_id="approve")


async def maybe_pause(data):
    RUNS[f"maybe:{data.input}"] += 1
    if data.input == 0:
        return await data.async_pause_for(type="item", interrupt_id="item-0")
    return data.input * 10


async def slow(data):
    await RELEASE_SLOW.wait()
    return "slow done"


async def gated(data):
    RUNS[f"gated:{data.input}"] += 1
    if data.input == 0:
        await OPEN_GATE.wait()
    return data.input * 10


large = TriggerFlow(name="fb-large")
large.for_each().to(work).end_for_each().to(keep)

nested = TriggerFlow(name="fb-nested")
nested.for_each().to(prep).for_each().to(inner_work).end_for_each().end_for_each().to(keep)

after_pause = TriggerFlow(name="fb-after-pause")
after_pause.to(approve).for_each().to(work).end_for_each().to(keep)

item_pauses = TriggerFlow(name="fb-item-pauses")
item_pauses.for_each().to(maybe_pause).end_for_each().to(keep)

close_held = TriggerFlow(name="fb-close-held")
close_held.when("go").for_each().to(work).end_for_each().to(keep)
close_held.when("slow").to(slow)

snapshot_flow = TriggerFlow(name="fb-snapshot")
snapshot_flow.for_each(concurrency=1).to(gated).end_for_each().to(keep)


async def kib(data):
    return "k" * (1024 * data.input)


big_carry = TriggerFlow(name="fb-big-carry")
big_carry.for_each().to(kib).end_for_each().to(keep)

FLOWS = [large, nested, after_pause, item_pauses, close_held, snapshot_flow, big_carry]


@pytest_asyncio.fixture(scope="module")
async def low_threshold_env() -> AsyncIterator[WorkflowEnvironment]:
    extra = ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={SUGGEST_AT}"]
    async with start_dev_server(extra_args=extra) as env:
        yield env


@pytest_asyncio.fixture
async def served(low_threshold_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    async with start_local_runtime(
        FLOWS, plugin=TriggerFlowPlugin(FLOWS), client=low_threshold_env.client
    ) as client:
        yield client


async def run_histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """The history of every run of ``workflow_id``, oldest first (walked back from the last)."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return histories[::-1]
        run_id = started.continued_execution_run_id


def max_in_flight(history: WorkflowHistory) -> int:
    """Most activities scheduled and not yet closed at any point of one run."""
    closed = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    }
    now = peak = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            now += 1
            peak = max(peak, now)
        elif event.event_type in closed:
            now -= 1
    return peak


def runs_scheduling(histories: list[WorkflowHistory], chunk: str) -> int:
    """How many runs scheduled an activity of ``chunk`` (items dispatched in that run)."""
    return sum(
        any(
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name.endswith(f".{chunk}")
            for e in history.events
        )
        for history in histories
    )


def within_bound(history: WorkflowHistory) -> bool:
    """Whether a run stopped growing soon after continue-as-new was suggested.

    The suggestion comes with the first workflow task after ``SUGGEST_AT`` events (the
    task before it adds at most one command per activity it schedules). After it only the
    activities in flight finish: started + completed, and at most one workflow task
    (3 events) each; their chains dispatch no new for_each item.
    """
    return len(history.events) <= SUGGEST_AT + 6 * max_in_flight(history) + 20


def started_version(history: WorkflowHistory) -> int:
    """The runtime version in the run's workflow input."""
    import json

    started = history.events[0].workflow_execution_started_event_attributes
    return json.loads(started.input.payloads[0].data)["options"]["runtime_version"]


def ends_continued(history: WorkflowHistory) -> bool:
    return history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW


async def assert_replays(histories: list[WorkflowHistory]) -> None:
    plugin = TriggerFlowPlugin(FLOWS)
    for history in histories:
        await replay(history, plugin)


async def wait_for(check: Any, what: str, attempts: int = 300) -> Any:
    """Poll ``check()`` (async) until it returns a truthy value."""
    for _ in range(attempts):
        try:
            value = await check()
        except ExecutionStateError:
            value = None  # the start (update-with-start) has not created the workflow yet
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_large_for_each_spans_runs_with_bounded_history(served):
    RUNS.clear()
    execution = large.create_execution(
        execution_id=new_id("fb-large"), auto_close=True, auto_close_timeout=0.0, hidden=True
    )
    snapshot = await execution.async_start(list(range(ITEMS)))
    histories = await run_histories(served, execution.id)

    assert snapshot["results"] == [i * 10 for i in range(ITEMS)]
    assert {f"work:{i}" for i in range(ITEMS)} == set(RUNS)
    assert set(RUNS.values()) == {1}, "every item's chunk runs exactly once"
    assert len(histories) > 1
    assert all(ends_continued(h) for h in histories[:-1])
    # No concurrency given: the default cap, reached at once by the first dispatch.
    assert max(max_in_flight(h) for h in histories) == DEFAULT_FANOUT_CONCURRENCY
    lengths = [len(h.events) for h in histories]
    assert all(within_bound(h) for h in histories), lengths
    assert sum(lengths) > SUGGEST_AT + 6 * DEFAULT_FANOUT_CONCURRENCY + 20  # not one run
    # The new dispatch is chosen by the input's runtime version (no patch marker, no
    # TemporalChangeVersion upsert): histories from before it replay unchanged.
    assert started_version(histories[0]) == RUNTIME_VERSION
    assert not any(
        e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED for e in histories[0].events
    )
    await assert_replays(histories)


async def test_start_without_auto_close_returns_once_the_carried_items_finished(served):
    # The main API: async_start (an update) returns when the chain is quiescent. Its
    # for_each is still held for continue-as-new; the client follows the runs (settle).
    RUNS.clear()
    execution = large.create_execution(execution_id=new_id("fb-start"), auto_close=False)
    await execution.async_start(list(range(ITEMS)))
    # Right after the start returns, every item has run and the chain went on to `keep`.
    assert await execution.async_get_state("results") == [i * 10 for i in range(ITEMS)]
    assert set(RUNS.values()) == {1} and len(RUNS) == ITEMS
    snapshot = await execution.async_close()
    histories = await run_histories(served, execution.id)

    assert snapshot["results"] == [i * 10 for i in range(ITEMS)]
    assert len(histories) > 1
    assert runs_scheduling(histories, "work") > 1
    assert all(within_bound(h) for h in histories), [len(h.events) for h in histories]
    assert started_version(histories[0]) == RUNTIME_VERSION
    await assert_replays(histories)


async def test_continue_with_returns_once_its_carried_items_finished(served):
    # The HITL shape: an approval resumes a chain whose for_each outgrows one run. The
    # update returns the interrupt record only when every item ran, in whichever run.
    RUNS.clear()
    execution = after_pause.create_execution(
        client=served, execution_id=new_id("fb-cw"), auto_close=False
    )
    await execution.async_start(None)
    record = await execution.async_continue_with("approve", list(range(ITEMS)))
    assert record is not None and record["status"] == "resumed"
    assert await execution.async_get_state("results") == [i * 10 for i in range(ITEMS)]
    assert set(RUNS.values()) == {1} and len(RUNS) == ITEMS
    await execution.async_close()
    histories = await run_histories(served, execution.id)
    assert runs_scheduling(histories, "work") > 1
    assert all(within_bound(h) for h in histories), [len(h.events) for h in histories]
    await assert_replays(histories)


async def test_emit_returns_once_its_carried_items_finished(served):
    # (A test of its own: assert_replays builds a plugin that the flows then point at.)
    RUNS.clear()
    RELEASE_SLOW.set()
    emitted = close_held.create_execution(
        client=served, execution_id=new_id("fb-emit"), auto_close=False
    )
    await emitted.async_start(None)
    await emitted.async_emit("go", list(range(ITEMS)))
    assert await emitted.async_get_state("results") == [i * 10 for i in range(ITEMS)]
    await emitted.async_close()
    histories = await run_histories(served, emitted.id)
    assert runs_scheduling(histories, "work") > 1
    await assert_replays(histories)


async def test_nested_for_each_survives_continue_as_new(served):
    RUNS.clear()
    # More rows than the cap: the outer fan-out is held; rows whose prep finishes while
    # holding reach their inner for_each, which holds all its items at once.
    value = [[i * 10 + j for j in range(3)] for i in range(150)]
    execution = nested.create_execution(
        execution_id=new_id("fb-nested"), auto_close=True, auto_close_timeout=0.0, hidden=True
    )
    snapshot = await execution.async_start(value)
    histories = await run_histories(served, execution.id)

    assert snapshot["results"] == [[f"v{x}" for x in row] for row in value]
    assert set(RUNS) == {f"inner:{x}" for row in value for x in row}
    assert set(RUNS.values()) == {1}
    assert runs_scheduling(histories, "prep") > 1
    assert runs_scheduling(histories, "inner_work") > 1
    # Nested fan-outs multiply: up to cap x cap items in flight, each run bounded by that.
    assert all(within_bound(h) for h in histories), [len(h.events) for h in histories]
    await assert_replays(histories)


async def test_for_each_after_a_pause_survives_continue_as_new(served):
    RUNS.clear()
    execution = after_pause.create_execution(
        execution_id=new_id("fb-after-pause"), auto_close=True, auto_close_timeout=0.0
    )
    started = asyncio.create_task(execution.async_start(None))
    await wait_for(execution.async_get_pending_interrupts, "the approval interrupt")
    # The signal variant: nobody awaits the resumed chain, so its for_each may be held.
    await execution.async_continue_with_nowait("approve", list(range(200)))
    snapshot = await asyncio.wait_for(started, 100)
    histories = await run_histories(served, execution.id)

    assert snapshot["results"] == [i * 10 for i in range(200)]
    assert set(RUNS) == {f"work:{i}" for i in range(200)}
    assert set(RUNS.values()) == {1}
    assert runs_scheduling(histories, "work") > 1
    await assert_replays(histories)


async def test_an_item_paused_across_continue_as_new_completes_the_for_each(served):
    RUNS.clear()
    execution = item_pauses.create_execution(
        execution_id=new_id("fb-item-pauses"), auto_close=True, auto_close_timeout=0.0
    )
    started = asyncio.create_task(execution.async_start(list(range(200))))

    async def only_item_0_waits() -> bool:
        if len(RUNS) < 200:
            return False
        saved = await execution.async_save()
        return (
            list(saved["interrupts"]) == ["item-0"]
            and not saved["durable_system_state"]["temporal"]["pending"]
        )

    # Item 0 paused in the first run; the other items went on over continue-as-new.
    await wait_for(only_item_0_waits, "every item but the paused one to finish")
    assert runs_scheduling(await run_histories(served, execution.id), "maybe_pause") > 1
    assert "results" not in await execution.async_get_state()
    await execution.async_continue_with("item-0", "resumed")
    snapshot = await asyncio.wait_for(started, 100)
    histories = await run_histories(served, execution.id)

    assert snapshot["results"] == ["resumed", *[i * 10 for i in range(1, 200)]]
    assert set(RUNS) == {f"maybe:{i}" for i in range(200)}
    assert set(RUNS.values()) == {1}
    await assert_replays(histories)


async def test_close_while_items_are_held_runs_them_in_the_same_run(served):
    RUNS.clear()
    RELEASE_SLOW.clear()
    execution = close_held.create_execution(execution_id=new_id("fb-close"), auto_close=False)
    await execution.async_start(None)
    # A slow update keeps the run busy, so the continue-as-new the items are held for waits.
    slow_emit = asyncio.create_task(execution.async_emit("slow", None))
    await execution.async_emit_nowait("go", list(range(ITEMS)))

    async def held() -> bool:
        saved = await execution.async_save()
        pending = saved["durable_system_state"]["temporal"]["pending"]
        fanouts = [p for p in pending if p["kind"] == "fanout"]
        chunk_runs = [p for p in pending if p["kind"] == "chunk"]  # queued work aside
        # Held: the in-flight items finished; only the slow chunk runs.
        return (
            bool(fanouts) and len(chunk_runs) == 1 and len(RUNS) + len(fanouts[0]["items"]) == ITEMS
        )

    await wait_for(held, "the for_each items to be held")
    closing = asyncio.create_task(execution.async_close())

    async def sealed() -> bool:
        return (await execution.async_get_info())["lifecycle_state"] == "sealed"

    await wait_for(sealed, "close to start draining")
    RELEASE_SLOW.set()
    snapshot = await asyncio.wait_for(closing, 100)
    await slow_emit
    histories = await run_histories(served, execution.id)

    assert snapshot["results"] == [i * 10 for i in range(ITEMS)]
    assert set(RUNS.values()) == {1}
    assert len(RUNS) == ITEMS
    assert len(histories) == 1  # close overtook the continue-as-new
    await assert_replays(histories)


async def test_a_snapshot_keeps_the_items_not_dispatched_yet(served):
    RUNS.clear()
    OPEN_GATE.clear()
    original = snapshot_flow.create_execution(execution_id=new_id("fb-snap"), auto_close=False)
    starting = asyncio.create_task(original.async_start([0, 1, 2]))

    async def item_0_running() -> bool:
        return RUNS["gated:0"] == 1

    await wait_for(item_0_running, "item 0 to run")
    saved = await original.async_save()
    pending = saved["durable_system_state"]["temporal"]["pending"]
    assert [p["kind"] for p in pending] == ["chunk", "fanout"]
    assert [item for item, _ in pending[1]["items"]] == [1, 2]
    copy = snapshot_flow.create_execution(execution_id=f"{original.id}-copy", auto_close=False)
    loading = asyncio.create_task(copy.async_load(saved))
    await wait_for(lambda: _equals(RUNS["gated:0"], 2), "the copy to re-run item 0")
    OPEN_GATE.set()
    await asyncio.wait_for(asyncio.gather(starting, loading), 60)
    copied, first = await copy.async_close(), await original.async_close()

    assert copied["results"] == first["results"] == [0, 10, 20]
    # The in-flight item re-runs in the copy (at least once); the others run once each.
    assert RUNS == Counter({"gated:0": 2, "gated:1": 2, "gated:2": 2})


async def _equals(value: Any, expected: Any) -> bool:
    return value == expected


async def test_a_fork_from_a_later_run_finishes_the_for_each(served):
    RUNS.clear()
    execution = large.create_execution(
        execution_id=new_id("fb-fork"), auto_close=True, auto_close_timeout=0.0, hidden=True
    )
    await execution.async_start(list(range(ITEMS)))
    assert len(await run_histories(served, execution.id)) > 1
    steps = await execution.async_get_history()
    runs = [step["run_id"] for step in steps]
    # A step of a later run while items were still undispatched there.
    step = next(
        s
        for s in steps
        if s["run_id"] != runs[0]
        and any(
            p["kind"] == "fanout"
            for p in s["snapshot"]["durable_system_state"]["temporal"]["pending"]
        )
    )
    RUNS.clear()
    fork = await execution.async_fork(step["step"], execution_id=f"{execution.id}-fork")
    # The load returns once the re-run work is quiescent, across the copy's own runs.
    assert await fork.async_get_state("results") == [i * 10 for i in range(ITEMS)]
    assert runs_scheduling(await run_histories(served, fork.id), "work") > 1
    snapshot = await fork.async_result()

    assert snapshot["results"] == [i * 10 for i in range(ITEMS)]
    assert set(RUNS.values()) == {1}  # only the items not finished at that step run again
    assert len(RUNS) < ITEMS


async def test_a_carry_too_big_for_the_next_run_fails_clearly(served):
    # Inline 8 KiB outputs: the collected results travel in every continue-as-new carry,
    # which Temporal refuses over 2 MiB (the run would retry its last task forever).
    execution = big_carry.create_execution(
        execution_id=new_id("fb-big-carry"), auto_close=True, auto_close_timeout=0.0, hidden=True
    )
    with pytest.raises(ChunkOutputError, match="cannot continue as new.*Workspace"):
        await asyncio.wait_for(execution.async_start([8] * 300), 60)
    histories = await run_histories(served, execution.id)
    assert len(histories) > 1
    last = histories[-1].events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    await assert_replays(histories)


async def test_cli_start_returns_once_the_carried_items_finished(served, low_threshold_env, capsys):
    # `triggerflow-temporal start --no-auto-close` reports the execution once its chain is
    # quiescent, like async_start: it settles a for_each that went on in later runs.
    from tests.test_cli import CLI, address_of, queue_of

    RUNS.clear()
    cli = CLI(capsys, address_of(low_threshold_env))
    eid = new_id("fb-cli")
    code, out, err = await cli(
        "start", "tests.test_foreach_history_bound:large", "--id", eid, "--no-auto-close",
        "--input", json.dumps(list(range(ITEMS))), "--task-queue", queue_of(served),
    )  # fmt: skip
    assert code == 0, err
    assert f"started {eid}" in out
    state = await served.get_workflow_handle(eid).query("state")
    assert state["results"] == [i * 10 for i in range(ITEMS)]
    assert runs_scheduling(await run_histories(served, eid), "work") > 1
    await large.create_execution(client=served, execution_id=eid).async_close()
