"""The runtime stream: chunk items and system items over temporalio.contrib.workflow_streams,
with stable sequence numbers, consumers that start first, stop_stream, restarts and CAN."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin
from triggerflow_temporal.client import stream as _stream
from triggerflow_temporal.client.stream import RuntimeStreamItem
from triggerflow_temporal.plugin.events import RuntimeEvent
from triggerflow_temporal.testing import start_dev_server, start_local_runtime


async def produce(data):
    await data.async_put_into_stream({"step": 1})
    data.put_into_stream("two")
    return data.input


async def ask(data):
    return await data.async_pause_for(type="approval", interrupt_id="i", payload={"p": 1})


async def finish(data):
    await data.async_put_into_stream({"final": data.input})


async def put_then_stop(data):
    await data.async_put_into_stream("last")
    await data.async_stop_stream()
    return data.input


async def put_after_stop(data):
    await data.async_put_into_stream("dropped")
    await data.async_set_state("after_stop", True)


async def fail(data):
    raise ValueError("no stream for you")


async def review(data):
    for record in data.interventions:
        await data.async_mark_intervention_consumed(record["id"])
    await data.async_put_into_stream({"reviewed": len(data.interventions)})


async def tick(data):
    # Items only at the ends: a subscriber's poll waits while continue-as-new is due.
    if data.input in (0, 24):
        await data.async_put_into_stream(data.input)


def pause_flow(name: str) -> TriggerFlow:
    flow = TriggerFlow(name=name)
    flow.to(produce).to(ask).to(finish)
    return flow


async def collect(stream, into: list[RuntimeStreamItem]) -> None:
    async for entry in stream:
        into.append(entry)


async def wait_for(condition, what: str, attempts: int = 500) -> None:
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_consumer_started_before_the_execution_reads_every_item_with_stable_seq(runtime):
    flow = pause_flow("stream-seq")
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        live: list[RuntimeStreamItem] = []
        consumer = asyncio.create_task(
            collect(execution.get_async_runtime_stream_items("in", timeout=None), live)
        )
        await wait_for(lambda: len(live) >= 3, "the pause item")
        assert await execution.async_get_status() == "waiting"
        # A second consumer reconnects mid-way: same numbers for the same items.
        again: list[RuntimeStreamItem] = []
        with pytest.warns(RuntimeWarning, match="no item within"):
            await collect(execution.get_async_runtime_stream_items(from_seq=1, timeout=0.5), again)
        await execution.async_continue_with("i", "ok")
        await execution.async_close()
        await asyncio.wait_for(consumer, 30)
        replayed: list[RuntimeStreamItem] = []
        await collect(execution.get_async_runtime_stream_items(from_seq=3), replayed)
    assert [(e.seq, e.system) for e in live] == [
        (0, False),
        (1, False),
        (2, True),
        (3, True),
        (4, False),
    ]
    assert [e.item for e in live][:2] == [{"step": 1}, "two"]
    assert (live[2].item["action"], live[3].item["action"]) == ("pause", "resume")
    assert live[4].item == {"final": "ok"}
    assert again == live[1:3]
    assert replayed == live[3:]
    # At least once across reconnects; de-duplicating by seq restores the stream exactly.
    seen: dict[int, RuntimeStreamItem] = {}
    for entry in live[:2] + again + replayed:
        seen.setdefault(entry.seq, entry)
    assert [seen[s] for s in sorted(seen)] == live


async def test_stream_reads_the_same_items_after_a_worker_restart(temporal_env):
    queue = f"stream-restart-{uuid.uuid4().hex[:8]}"
    flow = pause_flow("stream-restart")
    async with start_local_runtime([flow], client=temporal_env.client, task_queue=queue):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("in")
        before: list[RuntimeStreamItem] = []
        with pytest.warns(RuntimeWarning, match="no item within"):
            await collect(execution.get_async_runtime_stream_items(timeout=0.5), before)
    # A new worker rebuilds the stream by replaying the history; items keep their numbers.
    flow = pause_flow("stream-restart")
    async with start_local_runtime([flow], client=temporal_env.client, task_queue=queue):
        handle = flow.get_execution(execution_id=execution.id)
        after: list[RuntimeStreamItem] = []
        consumer = asyncio.create_task(
            collect(handle.get_async_runtime_stream_items(timeout=None), after)
        )
        await handle.async_continue_with("i", "ok")
        await handle.async_close()
        await asyncio.wait_for(consumer, 30)
    assert [e.seq for e in before] == [0, 1, 2]
    assert after[:3] == before
    assert [e.seq for e in after] == [0, 1, 2, 3, 4]


async def test_interventions_appear_as_system_items(runtime):
    flow = TriggerFlow(name="stream-iv")
    flow.to(ask).intervention_point(name="point", target="review").to(review)
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        kept = await execution.async_intervene({"hint": "strict"}, target="review")
        left = await execution.async_intervene({"hint": "unused"}, target="elsewhere")
        await execution.async_continue_with("i", "go")
        await execution.async_close()
        entries: list[RuntimeStreamItem] = []
        await collect(execution.get_async_runtime_stream_items(), entries)
    summary = [
        (e.item["type"], e.item["action"], e.item.get("intervention", {}).get("id"))
        if e.system
        else e.item
        for e in entries
    ]
    assert summary == [
        ("interrupt", "pause", None),
        ("intervention", "append", kept["id"]),
        ("intervention", "append", left["id"]),
        ("interrupt", "resume", None),
        ("intervention", "insert", kept["id"]),
        ("intervention", "consume", kept["id"]),
        {"reviewed": 1},
        ("intervention", "expire", left["id"]),
    ]
    assert all(e.item["execution_id"] == execution.id for e in entries if e.system)
    assert entries[-1].item["intervention"]["status"] == "expired"


async def test_stop_stream_ends_consumers_and_later_items_are_rejected(runtime):
    flow = TriggerFlow(name="stream-stop")
    flow.to(put_then_stop).to(put_after_stop)
    plugin = TriggerFlowPlugin([flow])
    rejected: list[RuntimeEvent] = []
    plugin.on_event(rejected.append, "triggerflow.stream_item_rejected")
    async with runtime([flow], plugin=plugin):
        execution = flow.create_execution(auto_close=False)
        items = [item async for item in execution.get_async_runtime_stream("x", timeout=None)]
        assert items == ["last"]
        await wait_for(lambda: len(rejected) == 1, "the rejected item event")
        # The execution is still open; a second stop is a no-op.
        assert await execution.async_get_lifecycle_state() == "open"
        assert await execution.async_get_state("after_stop") is True
        await execution.async_stop_stream()
        await execution.async_close()
    assert rejected[0].payload["item"] == "dropped"
    assert rejected[0].payload["origin_chunk"]["chunk_name"] == "put_after_stop"


@pytest.mark.parametrize("start_fails", ["while_polling", "before_polling"])
async def test_stream_consumer_raises_the_error_of_a_start_it_made(
    runtime, monkeypatch, start_fails
):
    if start_fails == "before_polling":
        found = _stream._wait_until_exists

        async def late(client, execution_id, start_task, timeout):
            exists = await found(client, execution_id, start_task, timeout)
            await asyncio.wait({start_task}, timeout=30)  # the start has failed by now
            return exists

        monkeypatch.setattr(_stream, "_wait_until_exists", late)
    flow = TriggerFlow(name="stream-fail")
    flow.to(fail)
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        with pytest.raises(ValueError, match="no stream for you"):
            async for _ in execution.get_async_runtime_stream(None, timeout=None):
                pass


async def test_stream_timeout_warns_and_ends(runtime):
    flow = pause_flow("stream-timeout")
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("in")
        with pytest.warns(RuntimeWarning, match="no item within 0.3 s"):
            items = [item async for item in execution.get_async_runtime_stream(timeout=0.3)]
        assert len(items) == 3
        await execution.async_close(pending_interrupts="cancel")


async def test_stream_follows_continue_as_new_with_a_subscriber_connected():
    flow = TriggerFlow(name="stream-can")
    flow.when("tick").to(tick)
    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"]
    async with start_dev_server(extra_args=extra) as env:
        plugin = TriggerFlowPlugin([flow])
        async with start_local_runtime([flow], plugin=plugin, client=env.client) as client:
            assert isinstance(client, Client)
            execution = flow.create_execution(auto_close=False)
            await execution.async_start(None)
            first_run = (await client.get_workflow_handle(execution.id).describe()).run_id
            entries: list[RuntimeStreamItem] = []
            consumer = asyncio.create_task(
                collect(execution.get_async_runtime_stream_items(timeout=None), entries)
            )
            await execution.async_emit("tick", 0)
            await wait_for(lambda: len(entries) == 1, "item 0")
            await asyncio.sleep(0.3)  # past the poll interval: the next poll is waiting
            for i in range(1, 25):
                await execution.async_emit("tick", i)
            await execution.async_close()
            await asyncio.wait_for(consumer, 60)
            runs = await count_runs(client, execution.id, first_run)
    # ~11 history events per tick and a suggestion every 60: several runs, although the
    # subscriber was waiting on a poll the whole time (a waiting poll must not block CAN).
    assert runs >= 3
    assert [e.item for e in entries] == [0, 24]
    assert [e.seq for e in entries] == [0, 1]


async def count_runs(client: Client, workflow_id: str, run_id: str | None) -> int:
    """The number of runs in the continue-as-new chain from ``run_id``."""
    runs = 0
    while run_id and runs < 100:
        runs += 1
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = (
            attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return runs
