"""A paused sub-flow across its parent's continue-as-new, and a child failing after resume.

The parent's frame (the paused child) is carried over continue-as-new and the child,
started with ParentClosePolicy.ABANDON, outlives the parent's run: it reports to the
parent's workflow id, whichever run is current. A child that fails after its resume fails
the parent, as a failing sub-flow does.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from triggerflow_temporal import TriggerFlow
from triggerflow_temporal.cli.devserver import start_dev_server
from triggerflow_temporal.testing import start_local_runtime


async def sr_ask(data):
    return await data.async_pause_for(type="approval", interrupt_id="ask")


async def sr_done(data):
    if data.input == "boom":
        raise ValueError("the child refused the answer")
    return {"approved": data.input}


async def sr_after(data):
    await data.async_set_state("after", data.input)


async def sr_tick(data):
    await data.async_append_state("ticks", data.input)


sr_child = TriggerFlow(name="sr-child")
sr_child.to(sr_ask).to(sr_done).end()
sr_parent = TriggerFlow(name="sr-parent")
sr_parent.to_sub_flow(sr_child).to(sr_after)
sr_parent.when("tick").to(sr_tick)


async def test_a_paused_child_survives_the_parents_continue_as_new():
    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"]
    async with start_dev_server(extra_args=extra) as env:
        async with start_local_runtime([sr_parent], client=env.client) as client:
            execution = sr_parent.create_execution(auto_close=False)
            await execution.async_start(None)
            first_run = (await client.get_workflow_handle(execution.id).describe()).run_id
            (pid,) = await execution.async_get_pending_interrupts()
            for i in range(20):
                await execution.async_emit("tick", i)
            handle = client.get_workflow_handle(execution.id)
            assert (await handle.describe()).run_id != first_run  # continued as new
            assert list(await execution.async_get_pending_interrupts()) == [pid]
            frames = (await execution.async_save())["sub_flow_frames"]
            assert list(frames) == [pid.rsplit(":", 1)[0]]
            record = await execution.async_continue_with(pid, "yes")
            assert record["status"] == "resumed"
            state = await execution.async_get_state()
            assert state["after"] == {"approved": "yes"}
            assert state["ticks"] == list(range(20))
            assert (await execution.async_save())["sub_flow_frames"] == {}
            child = client.get_workflow_handle(pid.rsplit(":", 1)[0])
            assert (await child.describe()).status == WorkflowExecutionStatus.COMPLETED
            await execution.async_close()


async def test_a_child_failing_after_its_resume_fails_the_parent(runtime):
    async with runtime([sr_parent]):
        execution = sr_parent.create_execution(auto_close=False)
        await execution.async_start(None)
        (pid,) = await execution.async_get_pending_interrupts()
        with pytest.raises(Exception, match="the child refused the answer"):
            await execution.async_continue_with(pid, "boom")
        assert await execution.async_get_status() == "failed"


async def sr_first(data):
    return await data.async_pause_for(type="approval", interrupt_id="first")


async def sr_second(data):
    return await data.async_pause_for(type="approval", interrupt_id="second")


sr_twice_child = TriggerFlow(name="sr-twice-child")
sr_twice_child.to(sr_first).to(sr_second).to(sr_done).end()
sr_twice = TriggerFlow(name="sr-twice")
sr_twice.to_sub_flow(sr_twice_child).to(sr_after)


async def test_a_child_pausing_again_keeps_only_its_open_pause_in_the_frame(runtime):
    async with runtime([sr_twice]):
        execution = sr_twice.create_execution(auto_close=False)
        await execution.async_start(None)
        (first,) = await execution.async_get_pending_interrupts()
        await execution.async_continue_with(first, "one")
        (second,) = await execution.async_get_pending_interrupts()
        assert second.endswith(":second") and second != first
        (frame,) = (await execution.async_save())["sub_flow_frames"].values()
        assert frame["projected_interrupts"] == {second: "second"}
        assert frame["projected_root_interrupt_ids"] == [second]
        await execution.async_continue_with(second, "two")
        assert (await execution.async_get_state())["after"] == {"approved": "two"}
