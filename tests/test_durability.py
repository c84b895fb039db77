"""Durability: a worker restarted mid-chunk loses nothing; long runs continue-as-new."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import RetryPolicy

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin
from triggerflow_temporal.testing import start_dev_server, start_local_runtime

ATTEMPTS = {"slow": 0}
FIRST_ATTEMPT_RUNNING = asyncio.Event()


async def before(data):
    await data.async_set_state("before", data.input)
    return data.input + 1


async def slow(data):
    ATTEMPTS["slow"] += 1
    await data.async_append_state("slow_attempt_writes", ATTEMPTS["slow"])
    if ATTEMPTS["slow"] == 1:
        FIRST_ATTEMPT_RUNNING.set()
        await asyncio.sleep(3600)  # the worker dies under this attempt
    return data.input * 10


async def after(data):
    await data.async_set_state("after", data.input)


def restart_flow() -> TriggerFlow:
    flow = TriggerFlow(name="restart")
    flow.chunk(
        slow,
        start_to_close_timeout=timedelta(seconds=5),
        retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
    )
    flow.to(before).to("slow").to(after)
    return flow


async def test_worker_restart_mid_chunk_loses_nothing(temporal_env):
    flow = restart_flow()
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    ATTEMPTS["slow"] = 0
    async with start_local_runtime([flow], client=temporal_env.client, task_queue=queue):
        execution = flow.create_execution(auto_close=False)
        started = asyncio.create_task(execution.async_start(1))
        await asyncio.wait_for(FIRST_ATTEMPT_RUNNING.wait(), 30)
    # Worker 1 is gone with the attempt in flight; a new worker process picks it up.
    async with start_local_runtime([restart_flow()], client=temporal_env.client, task_queue=queue):
        await asyncio.wait_for(started, 60)
        snapshot = await execution.async_close()
    assert ATTEMPTS["slow"] == 2
    # The failed attempt's writes were never applied; the retry's were, exactly once.
    assert snapshot == {"before": 1, "slow_attempt_writes": [2], "after": 20}


async def tick(data):
    await data.async_append_state("ticks", data.input)


async def test_continue_as_new_carries_state():
    flow = TriggerFlow(name="ticker")
    flow.when("tick").to(tick)
    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"]
    async with start_dev_server(extra_args=extra) as env:
        plugin = TriggerFlowPlugin([flow])
        async with start_local_runtime([flow], plugin=plugin, client=env.client) as client:
            execution = flow.create_execution(auto_close=False)
            await execution.async_start(None)
            first_run = (await client.get_workflow_handle(execution.id).describe()).run_id
            for i in range(25):
                await execution.async_emit("tick", i)
            snapshot = await execution.async_close()
            last_run = (await client.get_workflow_handle(execution.id).describe()).run_id
            first_history = await client.get_workflow_handle(
                execution.id, run_id=first_run
            ).fetch_history()
    assert snapshot == {"ticks": list(range(25))}
    assert last_run != first_run
    assert (
        first_history.events[-1].event_type
        == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    )
    assert isinstance(client, Client)
