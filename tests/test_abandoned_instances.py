"""An abandoned workflow instance sends nothing into another workflow (issue 12, item 3).

A worker that stops while a chain waits on a chunk leaves its cached workflow instance in
memory with the chain's coroutines suspended (the SDK does not evict cached runs at worker
shutdown). When the garbage collector later finalizes them, Python throws GeneratorExit into
each suspended coroutine and runs its ``finally`` blocks on whatever thread the collection
happens on. Before the fix, the ``finally`` of ``_guarded`` refreshed the status there:
``workflow.upsert_search_attributes`` then resolved the *current* workflow event loop, which
is another workflow's when the collection runs inside its activation, and the upsert landed
in that workflow's commands. A replay got an upsert its history does not have
(``UpsertWorkflowSearchAttributesMachine does not handle HistoryEvent(id: 6,
ActivityTaskScheduled)``, the CI failures), and a live run recorded one no replay issues.

The collection runs at an allocation the interpreter picks; here an inline chunk calls
``gc.collect()`` inside the other workflow's activation so the timing is not left to chance.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Iterator

import pytest
from temporalio.worker import Replayer

from triggerflow_temporal import ExecutionStateError, TriggerFlow, TriggerFlowPlugin
from triggerflow_temporal.client import persistence as _persistence
from triggerflow_temporal.spec.wire import RUNTIME_VERSION
from triggerflow_temporal.testing import start_local_runtime

RELEASE = asyncio.Event()
COLLECT = {"on": False, "freed": 0}


async def wait_for_release(data):
    await asyncio.wait_for(RELEASE.wait(), 30)
    return 1


def collect_garbage(data):  # inline: runs in the workflow's own activation
    if COLLECT["on"]:
        COLLECT["freed"] += gc.collect()
    return data.input


async def step(data):
    return data.input


def victim_flow() -> TriggerFlow:
    flow = TriggerFlow(name="abandoned-victim")
    flow.to(wait_for_release)
    return flow


def bystander_flow() -> TriggerFlow:
    flow = TriggerFlow(name="abandoned-bystander")
    flow.chunk(collect_garbage, execute_in="workflow")
    flow.to("collect_garbage").to(step)
    return flow


@pytest.fixture
def manual_gc() -> Iterator[None]:
    """Only the inline chunk collects garbage while the test runs."""
    COLLECT.update(on=False, freed=0)
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        COLLECT["on"] = False
        gc.enable()


async def abandon_a_victim(temporal_env, version: int, monkeypatch) -> None:
    """Run the victim (on runtime ``version``) until its chunk is in flight, then stop its
    worker."""
    RELEASE.clear()
    flow = victim_flow()
    monkeypatch.setattr(_persistence, "RUNTIME_VERSION", version)
    async with start_local_runtime([flow], client=temporal_env.client):
        execution = flow.create_execution(execution_id=f"victim-{uuid.uuid4().hex[:8]}")
        start = asyncio.ensure_future(execution.async_start(0))
        for _ in range(200):
            await asyncio.sleep(0.05)
            try:
                if await execution.async_get_status() == "running":
                    break
            except ExecutionStateError:
                continue  # the update-with-start has not created the workflow yet
        await asyncio.sleep(0.2)  # the chunk's activity is scheduled and running
    start.cancel()
    RELEASE.set()
    monkeypatch.undo()


# Runtime versions 1-2 (the nested-await engine, which executions started before version 3
# still run) refreshed the status in a ``finally``; version 3 does it after its wait.
VERSIONS = pytest.mark.parametrize("version", [2, RUNTIME_VERSION])


@VERSIONS
async def test_a_replay_gets_nothing_from_an_abandoned_instance(
    temporal_env, manual_gc, version, monkeypatch
):
    flow = bystander_flow()
    async with start_local_runtime([flow], client=temporal_env.client) as client:
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(1)
        await execution.async_close()
        history = await client.get_workflow_handle(execution.id).fetch_history()
    await abandon_a_victim(temporal_env, version, monkeypatch)
    COLLECT["on"] = True
    result = await Replayer(workflows=[], plugins=[TriggerFlowPlugin([flow])]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert COLLECT["freed"] > 0, "the collection inside the replay freed nothing"
    assert result.replay_failure is None


@VERSIONS
async def test_a_live_run_gets_nothing_from_an_abandoned_instance(
    temporal_env, manual_gc, version, monkeypatch
):
    await abandon_a_victim(temporal_env, version, monkeypatch)
    COLLECT["on"] = True
    flow = bystander_flow()
    plugin = TriggerFlowPlugin([flow])
    async with start_local_runtime([flow], plugin=plugin, client=temporal_env.client) as client:
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(1)
        COLLECT["on"] = False
        await execution.async_close()
        history = await client.get_workflow_handle(execution.id).fetch_history()
    assert COLLECT["freed"] > 0, "the collection inside the live run freed nothing"
    # A stray upsert recorded in the live history is one its replay does not issue.
    result = await Replayer(workflows=[], plugins=[plugin]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None
