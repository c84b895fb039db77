"""Task queue routing and no-worker detection (issue 12, item 5).

A flow rebuilt from its module (a second TriggerFlow object with the same name and
handlers, not the object handed to the plugin) gets its task queue from the plugin of the
client it uses, by flow name, so it finds the worker. A call no worker will answer fails
within seconds with NoWorkerError naming the flow, the queue and the worker command.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from triggerflow_temporal import (
    NoWorkerError,
    TriggerFlow,
    TriggerFlowError,
    TriggerFlowPlugin,
)
from triggerflow_temporal.examples.approval import refund_flow

from .test_cli import ping_flow

# Loose bound: the check starts after ~2.5 s and confirms for ~4 s; the machine is noisy.
NO_WORKER_WITHIN = 30.0
REFUND_PATH = "triggerflow_temporal.examples.approval:refund_flow"
PING_PATH = "tests.test_cli:ping_flow"


def rebuild(path: str) -> TriggerFlow:
    """The flow at ``path`` built afresh from its module's source, as another process would.

    A new module object runs the module again: a second TriggerFlow with the same name and
    handler names, not the object any plugin was given.
    """
    module_name, attribute = path.split(":")
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = getattr(module, attribute)
    assert isinstance(flow, TriggerFlow)
    return flow


def refund(refund_id: str) -> dict[str, Any]:
    return {"refund_id": refund_id, "amount": 12.5, "reason": "late"}


def plugin_of(client: Any) -> TriggerFlowPlugin:
    plugin = TriggerFlowPlugin.of_client(client)
    assert plugin is not None
    return plugin


async def terminate(client: Any, execution_id: str) -> None:
    try:
        await client.get_workflow_handle(execution_id).terminate("test cleanup")
    except Exception:
        pass


async def wait_status(execution: Any, status: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while await execution.async_get_status() != status:
        assert time.monotonic() < deadline, f"never reached {status!r}"
        await asyncio.sleep(0.2)


# ------------------------------------------------------------------ plugin answers
def test_plugin_answers_the_task_queue_by_flow_name():
    plugin = TriggerFlowPlugin([rebuild(REFUND_PATH)], task_queue="orders")
    assert plugin.serves("refund_approval") and not plugin.serves("cli-ping")
    assert plugin.task_queue_for("refund_approval") == "orders"
    assert plugin.task_queue_for("cli-ping") == "orders"  # task_queue= is its default
    default = TriggerFlowPlugin([rebuild(REFUND_PATH)])
    assert default.task_queue_for("refund_approval") == "triggerflow"
    assert default.task_queue_for("cli-ping") == "triggerflow"
    flow = rebuild(REFUND_PATH)
    assert TriggerFlowPlugin.of_flow(flow) is None  # a rebuilt flow was given to no plugin
    served = TriggerFlowPlugin([flow])
    assert TriggerFlowPlugin.of_flow(flow) is served


def test_no_worker_error_is_typed():
    assert issubclass(NoWorkerError, TriggerFlowError)
    assert issubclass(NoWorkerError, RuntimeError)


# --------------------------------------------------------------- rebuilt flows route
async def test_rebuilt_flow_starts_on_the_plugin_queue_and_completes(runtime):
    async with runtime([refund_flow, ping_flow]) as client:
        queue = plugin_of(client).task_queue
        rebuilt = rebuild(REFUND_PATH)
        assert rebuilt is not refund_flow and TriggerFlowPlugin.of_flow(rebuilt) is None
        eid = f"routing-{uuid.uuid4().hex[:8]}"
        execution = rebuilt.create_execution(client=client, execution_id=eid, auto_close=False)
        await asyncio.wait_for(execution.async_start(refund("r-1")), 60)
        assert (await execution.handle.describe()).task_queue == queue
        pending = await execution.async_get_pending_interrupts()
        assert list(pending) == ["approve-R-1"]
        await asyncio.wait_for(execution.async_continue_with("approve-R-1", {"approved": True}), 60)
        snapshot = await asyncio.wait_for(execution.async_close(), 60)
        assert snapshot["outcome"] == "refunded"

        # get_execution and the hidden-execution sugar from another rebuilt object.
        again = rebuild(REFUND_PATH)
        attached = again.get_execution(client=client, execution_id=eid)
        assert await attached.async_get_status() == "completed"
        hidden = await asyncio.wait_for(rebuild(PING_PATH).async_start("go", client=client), 60)
        assert isinstance(hidden, dict)


async def test_async_load_through_a_rebuilt_flow_completes(runtime):
    async with runtime([refund_flow]) as client:
        eid = f"routing-save-{uuid.uuid4().hex[:8]}"
        original = rebuild(REFUND_PATH).create_execution(
            client=client, execution_id=eid, auto_close=False
        )
        await asyncio.wait_for(original.async_start(refund("r-3")), 60)
        saved = await original.async_save()
        await original.async_close(pending_interrupts="cancel")

        copy = rebuild(REFUND_PATH).create_execution(client=client, execution_id=f"{eid}-copy")
        await asyncio.wait_for(copy.async_load(saved), 60)
        assert (await copy.handle.describe()).task_queue == plugin_of(client).task_queue
        assert list(await copy.async_get_pending_interrupts()) == ["approve-R-3"]
        await asyncio.wait_for(copy.async_continue_with("approve-R-3", {"approved": False}), 60)
        snapshot = await asyncio.wait_for(copy.async_close(), 60)
        assert snapshot["outcome"] == "rejected"


async def test_explicit_task_queue_still_wins(runtime):
    async with runtime([refund_flow]) as client:
        rebuilt = rebuild(REFUND_PATH)
        assert rebuilt.create_execution(client=client, task_queue="elsewhere")._queue() == (
            "elsewhere"
        )
        assert rebuilt.create_execution(client=client)._queue() == plugin_of(client).task_queue


# ------------------------------------------------------------------- no worker
async def test_start_on_a_queue_no_worker_polls_fails_fast_then_runs_once_one_does(
    runtime, temporal_env
):
    client = temporal_env.client
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    eid = f"routing-orphan-{uuid.uuid4().hex[:8]}"
    execution = rebuild(REFUND_PATH).create_execution(
        client=client, execution_id=eid, task_queue=queue, auto_close=False
    )
    try:
        began = time.monotonic()
        with pytest.raises(NoWorkerError) as caught:
            await asyncio.wait_for(execution.async_start(refund("r-4")), 90)
        assert time.monotonic() - began < NO_WORKER_WITHIN
        error = caught.value
        text = str(error)
        assert (error.flow_name, error.task_queue, error.execution_id) == (
            "refund_approval",
            queue,
            eid,
        )
        assert error.reason == "no_pollers"
        assert f"task queue {queue!r}" in text and "flow 'refund_approval'" in text
        assert f"triggerflow-temporal worker {REFUND_PATH} --task-queue {queue}" in text
        assert error.worker_command is not None and f"`{error.worker_command}`" in text
        assert f"Execution {eid!r} was created and stays open" in text
        described = await client.get_workflow_handle(eid).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING

        # An update on it (the workflow exists now) fails the same way.
        began = time.monotonic()
        with pytest.raises(NoWorkerError) as caught:
            await asyncio.wait_for(execution.async_emit("poke"), 90)
        assert time.monotonic() - began < NO_WORKER_WITHIN
        assert "this 'emit' request was not accepted" in str(caught.value)

        # As the message says: it starts once a worker polls the queue.
        async with runtime([refund_flow], task_queue=queue):
            await asyncio.wait_for(execution.async_start(refund("r-4")), 60)
            await wait_status(execution, "waiting")
            assert list(await execution.async_get_pending_interrupts()) == ["approve-R-4"]
            await execution.async_close(pending_interrupts="cancel")
    finally:
        await terminate(client, eid)


async def test_load_with_no_worker_fails_fast(runtime, temporal_env):
    client = temporal_env.client
    async with runtime([refund_flow]) as served:
        eid = f"routing-load-{uuid.uuid4().hex[:8]}"
        original = rebuild(REFUND_PATH).create_execution(
            client=served, execution_id=eid, auto_close=False
        )
        await asyncio.wait_for(original.async_start(refund("r-5")), 60)
        saved = await original.async_save()
        await original.async_close(pending_interrupts="cancel")
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    copy_id = f"{eid}-copy"
    copy = rebuild(REFUND_PATH).create_execution(
        client=client, execution_id=copy_id, task_queue=queue
    )
    try:
        began = time.monotonic()
        with pytest.raises(NoWorkerError) as caught:
            await asyncio.wait_for(copy.async_load(saved), 90)
        assert time.monotonic() - began < NO_WORKER_WITHIN
        assert (caught.value.task_queue, caught.value.execution_id) == (queue, copy_id)
        assert f"The snapshot was loaded into execution {copy_id!r}" in str(caught.value)
        assert f"worker {REFUND_PATH} --task-queue {queue}" in str(caught.value)
    finally:
        await terminate(client, copy_id)


async def test_a_flow_the_polling_workers_do_not_serve_fails_fast(runtime):
    async with runtime([refund_flow]) as client:
        queue = plugin_of(client).task_queue
        eid = f"routing-unserved-{uuid.uuid4().hex[:8]}"
        # Not served by the client's plugin: its default queue, where that worker polls.
        execution = rebuild(PING_PATH).create_execution(client=client, execution_id=eid)
        assert execution._queue() == queue
        try:
            began = time.monotonic()
            with pytest.raises(NoWorkerError) as caught:
                await asyncio.wait_for(execution.async_start("x"), 90)
            assert time.monotonic() - began < NO_WORKER_WITHIN
            error = caught.value
            assert error.reason == "not_served"
            assert error.flow_name == ping_flow.name and error.task_queue == queue
            assert "is not registered on this worker" in str(error)
            assert f"triggerflow-temporal worker {PING_PATH} --task-queue {queue}" in str(error)
        finally:
            await terminate(client, eid)
