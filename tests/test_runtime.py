"""Chunk execution on a real dev server: execute_in modes, options, data object, errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.common import RetryPolicy

from triggerflow_temporal import ChunkFailedError, TriggerFlow

CALLS: dict[str, int] = {}


async def double(data):
    await data.async_set_state(f"seen.{data.chunk_name}", data.input)
    return data.input * 2


def sync_inc(data):  # a sync handler (runs in a thread on the worker)
    data.set_state("sync_saw", data.input)
    return data.input + 1


async def pure_add(data):  # runs inline in the workflow
    return data.input + 100


def make_modes_flow() -> TriggerFlow:
    flow = TriggerFlow(name="modes")
    flow.chunk(double, name="in_activity", summary="double it")
    flow.chunk(double, name="in_local", execute_in="local_activity")
    flow.chunk(pure_add, execute_in="workflow")
    flow.to("in_activity").to(sync_inc).to("in_local").to("pure_add")
    return flow


async def test_execute_in_modes_and_summary(runtime):
    flow = make_modes_flow()
    async with runtime([flow]) as client:
        snapshot = await flow.async_start(1)
        assert snapshot["seen"] == {"in_activity": 1, "in_local": 3}
        assert snapshot["sync_saw"] == 2
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(2)
        history = await client.get_workflow_handle(execution.id).fetch_history()
        await execution.async_close()
    scheduled = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    names = [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled]
    # one activity per activity chunk; the local activity and the inline chunk add none
    assert names == ["modes.in_activity", "modes.sync_inc"]
    summaries = [
        client.data_converter.payload_converter.from_payload(e.user_metadata.summary, str)
        for e in scheduled
    ]
    assert summaries == ["double it", "sync_inc"]
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert len(markers) == 1  # the local activity


async def inspect_data(data):
    await data.async_set_state(
        "facts",
        {
            "input": data.input,
            "value": data.value,
            "trigger_event": data.trigger_event,
            "trigger_type": data.trigger_type,
            "execution_id": data.execution_id,
            "idempotency_key": data.idempotency_key,
            "nested": data.get_state("cfg.level"),
            "whole_has_cfg": "cfg" in data.get_state(),
            "resource": data.get_resource("shared"),
            "exec_resource": data.require_resource("tenant_db"),
            "missing": data.get_resource("nope", "dflt"),
        },
    )
    try:
        data.require_resource("nope")
    except KeyError as error:
        await data.async_set_state("require_error", str(error))
    await data.async_append_state("log", "a")
    await data.async_append_state("log", "b")
    await data.async_set_state("tmp", 1)
    await data.async_del_state("tmp")
    await data.async_emit("Side", {"from": "inspect"})
    return "done"


async def on_side(data):
    await data.async_set_state("side", {"input": data.input, "event": data.trigger_event})


async def test_data_object(runtime):
    flow = TriggerFlow(name="data-object")
    flow.to(inspect_data)
    flow.when("Side").to(on_side)
    async with runtime([flow], {"shared": "flow-level"}):
        execution = flow.create_execution(auto_close=False, runtime_resources={"tenant_db": "db-7"})
        await execution.async_set_state("cfg", {"level": 3})
        await execution.async_start("hello")
        state = await execution.async_get_state()
        await execution.async_close()
    facts = state["facts"]
    assert facts["input"] == facts["value"] == "hello"
    assert facts["trigger_event"] == "START" and facts["trigger_type"] == "event"
    assert facts["execution_id"] == execution.id
    assert facts["idempotency_key"].startswith(execution.id + ":")
    assert facts["nested"] == 3 and facts["whole_has_cfg"] is True
    assert facts["resource"] == "flow-level" and facts["exec_resource"] == "db-7"
    assert facts["missing"] == "dflt"
    assert state["require_error"].startswith(
        f"\"Execution {execution.id} missing required runtime resource 'nope'. Available resources:"
    )
    assert state["log"] == ["a", "b"] and "tmp" not in state
    assert state["side"] == {"input": {"from": "inspect"}, "event": "Side"}


class RefundError(Exception):
    pass


async def fails(data):
    raise ValueError(f"bad refund {data.input}")


async def fails_custom(data):
    raise RefundError("custom failure")


async def never(data):
    await data.async_set_state("never", True)


async def test_chunk_failure_reaches_client_as_original_type(runtime):
    flow = TriggerFlow(name="fails")
    flow.to(fails).to(never)
    custom = TriggerFlow(name="fails-custom")
    custom.chunk(fails_custom, retry_policy=RetryPolicy(maximum_attempts=1))
    custom.to("fails_custom")
    async with runtime([flow, custom]):
        with pytest.raises(ValueError, match="bad refund 7") as info:
            await flow.async_start(7)
        assert isinstance(info.value, ChunkFailedError)
        assert info.value.chunk_name == "fails" and info.value.error_type == "ValueError"
        execution = flow.create_execution(auto_close=False)
        with pytest.raises(ValueError, match="bad refund 8"):
            await execution.async_start(8)
        assert await execution.async_get_status() == "failed"
        assert await execution.async_get_lifecycle_state() == "open"
        snapshot = await execution.async_close()
        assert "never" not in snapshot
        assert await execution.async_get_status() == "failed"
        with pytest.raises(RefundError, match="custom failure"):
            await custom.async_start(None)


async def side_fails(data):
    raise KeyError("side")


async def survives(data):
    await data.async_set_state("survived", data.input)


async def test_skip_exceptions_keeps_running(runtime):
    flow = TriggerFlow(name="skips", skip_exceptions=True)
    flow.to(side_fails)
    flow.to(survives)
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(5)
        assert await execution.async_get_status() == "running"
        snapshot = await execution.async_close()
        assert snapshot == {"survived": 5}
        assert await execution.async_get_status() == "completed"


async def flaky(data):
    CALLS["flaky"] = CALLS.get("flaky", 0) + 1
    if CALLS["flaky"] < 3:
        raise ConnectionError("transient")
    return CALLS["flaky"]


async def test_retry_policy_per_chunk(runtime):
    fast_retry = RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=5)
    flow = TriggerFlow(name="retries")
    flow.chunk(flaky, retry_policy=fast_retry, start_to_close_timeout=timedelta(seconds=10))
    flow.to("flaky").to(survives)
    once = TriggerFlow(name="no-retries")
    once.chunk(flaky, retry_policy=RetryPolicy(maximum_attempts=1))
    once.to("flaky")
    async with runtime([flow, once]):
        CALLS["flaky"] = 0
        assert await flow.async_start(None) == {"survived": 3}
        CALLS["flaky"] = 0
        with pytest.raises(ConnectionError, match="transient"):
            await once.async_start(None)
        assert CALLS["flaky"] == 1


class NotJson:
    pass


async def returns_object(data):
    return NotJson()


async def test_non_serialisable_output_is_a_clear_error(runtime):
    flow = TriggerFlow(name="bad-output")
    flow.to(returns_object)
    async with runtime([flow]):
        with pytest.raises(TypeError, match="cannot be serialised.*Workspace"):
            await flow.async_start(None)


async def child_step(data):
    await data.async_set_state("child_saw", data.input)
    return data.input + 1


async def parent_after(data):
    await data.async_set_state("parent_got", data.input)


async def test_sub_flow_runs_as_child_workflow(runtime):
    child = TriggerFlow(name="child")
    child.to(child_step)
    parent = TriggerFlow(name="parent")
    parent.to_sub_flow(child).to(parent_after)
    async with runtime([parent]) as client:
        execution = parent.create_execution(auto_close=False)
        await execution.async_start(41)
        snapshot = await execution.async_close()
        children = [
            w
            async for w in client.list_workflows(
                f"WorkflowType = 'child' AND WorkflowId STARTS_WITH '{execution.id}:'"
            )
        ]
    assert snapshot == {"parent_got": {"child_saw": 41}}
    assert len(children) == 1


async def test_emit_after_close_warns_and_second_close_is_equal(runtime):
    flow = TriggerFlow(name="after-close")
    flow.to(survives)
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(1)
        first = await execution.async_close()
        with pytest.warns(RuntimeWarning, match="not open"):
            assert await execution.async_emit("X", 1) is None
        assert await execution.async_close() == first


async def test_auto_close_after_idle_timeout(runtime):
    flow = TriggerFlow(name="auto-close")
    flow.to(survives)
    async with runtime([flow]):
        execution = flow.create_execution(auto_close_timeout=0.2)
        snapshot = await asyncio.wait_for(execution.async_start(3), 30)
        assert snapshot == {"survived": 3}
        info = await execution.async_get_info()
        assert info["close_reason"] == "auto_close_idle_timeout"
        assert info["lifecycle_state"] == "closed" and info["status"] == "completed"


async def store_report(data):
    ref = await data.workspace.ingest(
        "a long report " * 200, collection="artifacts", kind="report", summary="report"
    )
    await data.async_set_state("report_ref", ref.id)
    return ref.id


async def test_chunk_keeps_workspace_ref_in_state(runtime, tmp_path):
    from workspace import open_workspace

    db = tmp_path / "ws.db"
    flow = TriggerFlow(name="ws-ref")
    flow.to(store_report)
    async with runtime([flow], workspace=str(db)):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        snapshot = await execution.async_close()
    async with open_workspace(str(db)) as ws:
        ref = await ws.get(snapshot["report_ref"])
        assert ref.collection == "artifacts" and ref.kind == "report"
        assert ref.scope["execution_id"] == execution.id and ref.scope["flow"] == "ws-ref"
        assert (await ws.get_data(ref)).startswith("a long report")
