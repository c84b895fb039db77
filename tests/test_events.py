"""RuntimeEvents: Agently's event types, order, hooks, replay safety, the Workspace sink."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer, Worker

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin
from triggerflow_temporal.plugin.events import EventHub, RuntimeEvent, workspace_event_sink
from workspace import MemoryWorkspace

# Agently 4.1.4.10 on the flow below (a -> ask(pause_for) -> b; b puts one stream item;
# start, continue_with, close), as its event center delivered them; ``signal`` and
# ``handler_dispatch`` (DEBUG dispatch traces) left out. Recorded with agently-venv.
NATIVE_ORDER = [
    ("triggerflow.definition_declared", None),
    ("triggerflow.execution_started", None),
    ("chunk.started", "a"),
    ("chunk.started", "ask"),
    ("triggerflow.interrupt_planned", None),
    ("triggerflow.interrupt_persisted", None),
    ("triggerflow.interrupt_raised", None),
    ("triggerflow.stream_item_emitted", None),
    ("triggerflow.interrupt_exposed", None),
    ("chunk.completed", "ask"),
    ("chunk.completed", "a"),
    ("triggerflow.execution_resumed", None),
    ("triggerflow.stream_item_emitted", None),
    ("chunk.started", "b"),
    ("triggerflow.stream_item_emitted", None),
    ("chunk.completed", "b"),
    ("triggerflow.execution_sealed", None),
    ("triggerflow.execution_completed", None),
    ("triggerflow.stream_closed", None),
    ("triggerflow.execution_closed", None),
    ("triggerflow.execution_retention_applied", None),
]
# Native types this runtime does not emit (see docs/observability.md).
NOT_EMITTED = {
    "triggerflow.definition_declared",
    "triggerflow.interrupt_planned",
    "triggerflow.interrupt_persisted",
    "triggerflow.interrupt_exposed",
    "triggerflow.execution_retention_applied",
}


async def a(data):
    return 1


async def ask(data):
    return await data.async_pause_for(type="approval", interrupt_id="q")


async def b(data):
    await data.async_put_into_stream({"b": data.input})
    return 2


async def boom(data):
    raise ValueError("bad input")


async def keep_evidence(data):
    ref = await data.workspace.ingest({"seen": data.input}, "artifacts", "evidence")
    await data.async_set_state("evidence", ref.id)


def pause_flow(name: str = "events") -> TriggerFlow:
    flow = TriggerFlow(name=name)
    flow.to(a).to(ask).to(b)
    return flow


def kinds(events: list[RuntimeEvent]) -> list[tuple[str, str | None]]:
    return [
        (e.event_type, e.payload.get("chunk_name") if e.event_type.startswith("chunk.") else None)
        for e in events
    ]


async def run_pause_resume(flow: TriggerFlow) -> str:
    execution = flow.create_execution(auto_close=False)
    await execution.async_start("x")
    await execution.async_continue_with("q", "yes")
    await execution.async_close()
    return execution.id


def worker_client(temporal_env, plugin: TriggerFlowPlugin) -> Client:
    client = Client(**{**temporal_env.client.config(), "plugins": [plugin]})
    plugin.attach_client(client)
    return client


async def test_pause_resume_events_follow_native_order_except_chunk_completion(runtime):
    flow = pause_flow()
    plugin = TriggerFlowPlugin([flow])
    events: list[RuntimeEvent] = []
    plugin.on_event(events.append)
    async with runtime([flow], plugin=plugin):
        execution_id = await run_pause_resume(flow)
        await plugin.events.flush()
    expected = [k for k in NATIVE_ORDER if k[0] not in NOT_EMITTED]
    # The one documented difference: a chunk completes when its own work is applied, before
    # its continuation runs (natively chunk.completed waits for the whole downstream chain).
    expected.remove(("chunk.completed", "a"))
    expected.insert(expected.index(("chunk.started", "ask")), ("chunk.completed", "a"))
    assert kinds(events) == expected
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len({e.event_id for e in events}) == len(events)
    assert {e.execution_id for e in events} == {execution_id}
    assert all(e.source == "TriggerFlowExecution" for e in events)
    completed_ask = next(e for e in events if kinds([e]) == [("chunk.completed", "ask")])
    assert completed_ask.payload["returned_pause_signal"] is True
    assert completed_ask.payload["status"] == "waiting"
    assert completed_ask.run["run_kind"] == "chunk_execution"
    resumed = next(e for e in events if e.event_type == "triggerflow.execution_resumed")
    assert (resumed.payload["interrupt_id"], resumed.payload["value"]) == ("q", "yes")
    started = events[0]
    assert started.payload == {"initial_value": "x"}
    assert started.run["run_kind"] == "workflow_execution"
    closed = events[-1]
    assert closed.payload["reason"] == "manual"


async def test_replaying_a_history_delivers_no_events(runtime):
    flow = pause_flow("events-replay")
    plugin = TriggerFlowPlugin([flow])
    live: list[RuntimeEvent] = []
    plugin.on_event(live.append)
    async with runtime([flow], plugin=plugin) as client:
        execution_id = await run_pause_resume(flow)
        history = await client.get_workflow_handle(execution_id).fetch_history()
    await plugin.events.flush()
    assert len(live) == 16
    # A fresh plugin (no memory of delivered ids) with a hook replays the whole history.
    replay_plugin = TriggerFlowPlugin([flow])
    replayed: list[RuntimeEvent] = []
    replay_plugin.on_event(replayed.append)
    result = await Replayer(workflows=[], plugins=[replay_plugin]).replay_workflow(history)
    assert result.replay_failure is None
    await asyncio.sleep(0.05)
    assert replayed == []


async def test_uncached_worker_hands_each_event_over_once(temporal_env):
    # With no workflow cache every workflow task replays the history before its new work:
    # the recorder must hand over only the new occurrences (the hub's de-dup not involved).
    flow = pause_flow("events-uncached")
    plugin = TriggerFlowPlugin([flow])
    received: list[RuntimeEvent] = []
    plugin.on_event(received.append)
    handed_over: list[RuntimeEvent] = []
    publish = plugin.events.publish

    def spy(event: RuntimeEvent) -> None:
        handed_over.append(event)
        publish(event)

    plugin.events.publish = spy  # type: ignore[method-assign]
    client = worker_client(temporal_env, plugin)
    queue = f"uncached-{uuid.uuid4().hex[:8]}"
    plugin._explicit_task_queue = queue
    async with Worker(client, task_queue=queue, max_cached_workflows=0):
        await run_pause_resume(flow)
        await plugin.events.flush()
    assert [e.seq for e in handed_over] == list(range(1, 17))
    assert [e.event_id for e in received] == [e.event_id for e in handed_over]


async def test_worker_restart_neither_repeats_nor_renumbers_events(temporal_env):
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    first_flow = pause_flow("events-restart")
    first = TriggerFlowPlugin([first_flow], task_queue=queue)
    before: list[RuntimeEvent] = []
    first.on_event(before.append)
    # No cache: worker 1 leaves no sticky queue behind, so worker 2 gets the next task at once.
    async with Worker(worker_client(temporal_env, first), task_queue=queue, max_cached_workflows=0):
        execution = first_flow.create_execution(auto_close=False)
        await execution.async_start("x")
        await first.events.flush()
    second_flow = pause_flow("events-restart")
    second = TriggerFlowPlugin([second_flow], task_queue=queue)
    after: list[RuntimeEvent] = []
    second.on_event(after.append)
    async with Worker(worker_client(temporal_env, second), task_queue=queue):
        resumed = second_flow.get_execution(execution_id=execution.id)
        await resumed.async_continue_with("q", "yes")
        await resumed.async_close()
        await second.events.flush()
    assert kinds(before)[-1] == ("chunk.completed", "ask")
    assert kinds(after)[0] == ("triggerflow.execution_resumed", None)
    assert [e.seq for e in before + after] == list(range(1, 17))
    assert len({e.event_id for e in before + after}) == 16


def test_hub_drops_an_occurrence_it_already_delivered():
    async def scenario() -> list[int]:
        hub = EventHub()
        seen: list[int] = []
        hub.register(lambda event: seen.append(event.seq))
        async with hub.running():
            # A workflow task that failed after handing over 1-2 is retried: 1-2 come again.
            for seq in (1, 2, 1, 2, 3):
                hub.publish(_event(seq))
            await hub.flush()
        return seen

    assert asyncio.run(scenario()) == [1, 2, 3]


def _event(seq: int, run_id: str = "run-1") -> RuntimeEvent:
    return RuntimeEvent(
        event_id=f"{run_id}:{seq}",
        event_type="chunk.started",
        source="TriggerFlowExecution",
        level="INFO",
        message=None,
        payload={},
        error=None,
        run={},
        meta={"execution_id": "e", "run_id": run_id, "seq": seq},
        timestamp=0,
    )


def test_on_event_rejects_bad_arguments():
    plugin = TriggerFlowPlugin([pause_flow("events-args")])
    with pytest.raises(TypeError, match="callable"):
        plugin.on_event("not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'chunk.finished'"):
        plugin.on_event(print, event_types=["chunk.finished"])
    name = plugin.on_event(print, name="printer")
    with pytest.raises(ValueError, match="already registered"):
        plugin.on_event(print, name="printer")
    plugin.off_event(name)
    with pytest.raises(KeyError, match="printer"):
        plugin.off_event("printer")


async def test_event_type_filter_accepts_workflow_aliases(runtime):
    flow = pause_flow("events-filter")
    plugin = TriggerFlowPlugin([flow])
    events: list[RuntimeEvent] = []
    plugin.on_event(events.append, ["workflow.execution_started", "chunk.completed"])
    async with runtime([flow], plugin=plugin):
        await run_pause_resume(flow)
        await plugin.events.flush()
    assert kinds(events) == [
        ("triggerflow.execution_started", None),
        ("chunk.completed", "a"),
        ("chunk.completed", "ask"),
        ("chunk.completed", "b"),
    ]
    # Numbering counts every occurrence, filtered or not: ids do not depend on the hooks.
    assert [e.seq for e in events] == [1, 3, 7, 12]


async def test_failed_chunk_emits_chunk_failed_then_execution_failed(runtime):
    flow = TriggerFlow(name="events-fail")
    flow.to(a).to(boom)
    plugin = TriggerFlowPlugin([flow])
    events: list[RuntimeEvent] = []
    plugin.on_event(events.append)
    async with runtime([flow], plugin=plugin):
        execution = flow.create_execution(auto_close=False)
        with pytest.raises(ValueError, match="bad input"):
            await execution.async_start(None)
        await plugin.events.flush()
    assert kinds(events) == [
        ("triggerflow.execution_started", None),
        ("chunk.started", "a"),
        ("chunk.completed", "a"),
        ("chunk.started", "boom"),
        ("chunk.failed", "boom"),
        ("triggerflow.execution_failed", None),
    ]
    failed_chunk, failed = events[-2], events[-1]
    assert failed_chunk.level == failed.level == "ERROR"
    assert failed.error is not None
    assert (failed.error["type"], failed.error["message"]) == ("ValueError", "bad input")
    assert failed.payload["chunk"] == "boom"


async def test_a_failing_hook_affects_neither_the_execution_nor_other_hooks(runtime):
    flow = pause_flow("events-bad-hook")
    plugin = TriggerFlowPlugin([flow])

    def broken(event: RuntimeEvent) -> None:
        raise RuntimeError("hook bug")

    received: list[str] = []

    async def slow(event: RuntimeEvent) -> None:
        await asyncio.sleep(0)
        received.append(event.event_type)

    plugin.on_event(broken)
    plugin.on_event(slow)
    async with runtime([flow], plugin=plugin):
        execution_id = await run_pause_resume(flow)
        await plugin.events.flush()
    assert len(received) == 16
    assert received[-1] == "triggerflow.execution_closed"
    assert execution_id


async def test_close_cancelling_a_pending_interrupt_emits_cancellation(runtime):
    flow = pause_flow("events-cancel")
    plugin = TriggerFlowPlugin([flow])
    events: list[RuntimeEvent] = []
    plugin.on_event(events.append)
    async with runtime([flow], plugin=plugin):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("x")
        with pytest.raises(RuntimeError, match="still waiting"):
            await execution.async_close()
        await execution.async_close(pending_interrupts="cancel")
        await plugin.events.flush()
    # No execution_completed: a cancelled execution does not complete.
    assert kinds(events)[-7:] == [
        ("chunk.completed", "ask"),
        ("triggerflow.pending_interrupts_close_rejected", None),
        ("triggerflow.pending_interrupts_cancelled", None),
        ("triggerflow.execution_cancelled", None),
        ("triggerflow.execution_sealed", None),
        ("triggerflow.stream_closed", None),
        ("triggerflow.execution_closed", None),
    ]
    cancelled = next(e for e in events if e.event_type.endswith("pending_interrupts_cancelled"))
    assert cancelled.payload["interrupt_ids"] == ["q"]


async def test_workspace_sink_joins_events_and_evidence_on_execution_id(runtime):
    flow = TriggerFlow(name="events-ws")
    flow.to(keep_evidence)
    ws = MemoryWorkspace()
    plugin = TriggerFlowPlugin([flow], workspace=ws)
    plugin.on_event(workspace_event_sink(ws))
    async with runtime([flow], plugin=plugin):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("doc-1")
        await execution.async_close()
        other = flow.create_execution(auto_close=False)
        await other.async_start("doc-2")
        await other.async_close()
        await plugin.events.flush()
    page = await ws.search(filters={"scope.execution_id": execution.id}, limit=50)
    by_collection: dict[str, list] = {}
    for ref in page.items:
        by_collection.setdefault(ref.collection, []).append(ref)
    assert [ref.kind for ref in by_collection["artifacts"]] == ["evidence"]
    events = sorted(by_collection["observations"], key=lambda ref: ref.meta["seq"])
    assert {ref.kind for ref in events} == {"runtime_event"}
    assert [ref.meta["event_type"] for ref in events] == [
        "triggerflow.execution_started",
        "chunk.started",
        "chunk.completed",
        "triggerflow.execution_sealed",
        "triggerflow.execution_completed",
        "triggerflow.stream_closed",
        "triggerflow.execution_closed",
    ]
    content = await ws.get_data(events[-1])
    assert content["event_type"] == "triggerflow.execution_closed"
    assert content["meta"]["execution_id"] == execution.id
    assert events[-1].scope == {"execution_id": execution.id, "flow": "events-ws"}
