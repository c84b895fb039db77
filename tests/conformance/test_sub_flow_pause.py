"""Pauses inside sub-flows, projected to the parent, against a native recording.

Native recording: native/sub_flow_pause.py (agently 4.1.4.10) -> native/sub_flow_pause.json.
The same flows run here with the child as a child workflow (interpreter/subflow_frames.py):
the parent is ``waiting`` with the child's interrupt under ``<frame id>:<child id>`` and
Agently's record keys, ``continue_with`` on that id resumes the child, which writes back
and lets the parent go on; unknown and stale ids are refused; close is refused while the
child waits and cancels it with ``pending_interrupts="cancel"``; save/load with the child
waiting; two deep.

Deviations (docs/triggerflow-on-temporal.md, "Sub-flows"): ``continue_with`` returns the
projected interrupt record (as for any interrupt here; natively the child's close
snapshot); a child's execution id is ``<parent id>:<operator id>:child-<n>`` (a readable
workflow id, unique in the namespace), so a frame id repeats its parent's path and a
two-deep projected id has more segments than natively (same first and last ones).
"""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from triggerflow_temporal import TriggerFlow
from triggerflow_temporal.spec.search_attributes import PENDING_TYPES, STATUS

NATIVE = json.loads(
    (Path(__file__).parent / "native" / "sub_flow_pause.json").read_text(encoding="utf-8")
)


async def sp_prep(data):
    await data.async_set_state("child_seen", data.input)
    return {"n": data.input}


async def sp_ask(data):
    return await data.async_pause_for(
        type="approval", interrupt_id="ask", payload={"q": data.input}
    )


async def sp_done(data):
    return {"approved": data.input}


async def sp_after(data):
    await data.async_set_state("after", data.input)
    return data.input


sp_child = TriggerFlow(name="sp-child")
sp_child.to(sp_prep).to(sp_ask).to(sp_done).end()
sp_middle = TriggerFlow(name="sp-middle")
sp_middle.to_sub_flow(sp_child).end()
sp_parent = TriggerFlow(name="sp-parent")
sp_parent.to_sub_flow(sp_child).to(sp_after).end()
sp_deep = TriggerFlow(name="sp-deep")
sp_deep.to_sub_flow(sp_middle).to(sp_after).end()

FLOWS = [sp_parent, sp_deep]


def user_state(state):
    return {k: v for k, v in state.items() if not k.startswith("$")}


async def caught(call):
    try:
        return ["returned", await call()]
    except Exception as error:
        return ["raised", type(error).__name__]


async def test_one_level_is_projected_resumed_and_refuses_stale_ids(runtime):
    native = NATIVE["one_level"]
    async with runtime(FLOWS):
        execution = sp_parent.create_execution(auto_close=False)
        await execution.async_start(5)
        assert await execution.async_get_status() == native["status"] == "waiting"
        pending = await execution.async_get_pending_interrupts()
        ((pid, record),) = pending.items()
        assert pid.split(":")[0] == execution.id and pid.endswith(":ask")
        assert set(native["record_keys"]) <= set(record), set(native["record_keys"]) - set(record)
        assert record["local_interrupt_id"] == native["local_interrupt_id"]
        assert pid == f"{record['sub_flow_frame_id']}:ask"
        assert record["type"] == native["type"]
        assert record["payload"] == native["payload"]
        assert record["child_interrupt"]["id"] == native["child_interrupt_id"]
        snapshot = await execution.async_save()
        assert snapshot["status"] == native["snapshot_status"]
        assert list(snapshot["interrupts"]) == [pid]
        ((frame_id, frame),) = snapshot["sub_flow_frames"].items()
        assert frame_id == record["sub_flow_frame_id"]
        assert frame["status"] == native["frame_status"]
        assert sorted(frame) == native["frame_keys"]
        assert list(frame["projected_interrupts"].values()) == native["frame_projected"]
        assert frame["child_saved_state"]["status"] == native["frame_child_saved_status"]
        # The Temporal UI's view: the parent's search attributes show the child's pause.
        description = await execution.handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        attributes = description.typed_search_attributes
        assert attributes.get(STATUS) == "waiting"
        assert "approval" in (attributes.get(PENDING_TYPES) or [])

        assert (
            await caught(lambda: execution.async_continue_with("ask", 1))
            == native["unknown_local_id"]
        )
        answer = await execution.async_continue_with(pid, "yes")
        assert answer["id"] == pid and answer["status"] == "resumed"
        assert await execution.async_get_status() == native["after_status"]
        assert user_state(await execution.async_get_state()) == native["after_state"]
        assert (await execution.async_get_interrupt(pid))["status"] == native[
            "after_interrupt_status"
        ]
        assert await caught(lambda: execution.async_continue_with(pid, "again")) == native["stale"]
        assert (await execution.async_save())["sub_flow_frames"] == {}


async def test_close_is_refused_while_the_child_waits_and_cancels_it(runtime, temporal_env):
    native = NATIVE["closing"]
    async with runtime(FLOWS):
        execution = sp_parent.create_execution(auto_close=False)
        await execution.async_start(1)
        (pid,) = await execution.async_get_pending_interrupts()
        frame_id = pid.rsplit(":", 1)[0]
        assert await caught(lambda: execution.async_close()) == native["close"]
        assert (await caught(lambda: execution.async_close(pending_interrupts="cancel")))[0] == (
            native["close_cancel"][0]
        )
        assert await execution.async_get_status() == native["status"]
        assert (await execution.async_get_interrupt(pid))["status"] == native["interrupt_status"]
        # The waiting child workflow is closed with its parent (cancelled, as its interrupt).
        child = temporal_env.client.get_workflow_handle(frame_id)
        await child.result()
        assert (await child.query("status")) == "cancelled"


async def test_save_and_load_with_the_child_waiting(runtime):
    native = NATIVE["save_load"]
    async with runtime(FLOWS):
        execution = sp_parent.create_execution(auto_close=False)
        await execution.async_start(7)
        (pid,) = await execution.async_get_pending_interrupts()
        saved = json.loads(json.dumps(await execution.async_save()))
        loaded = sp_parent.create_execution(auto_close=False)
        await loaded.async_load(saved, execution_id=f"{execution.id}-copy")
        assert await loaded.async_get_status() == native["loaded_status"]
        assert (list(await loaded.async_get_pending_interrupts()) == [pid]) is native[
            "loaded_pending_same"
        ]
        await loaded.async_continue_with(pid, "from-load")
        assert user_state(await loaded.async_get_state()) == native["loaded_after_state"]
        # The original is untouched: its own child still waits.
        assert await execution.async_get_status() == native["original_status"]
        await execution.async_continue_with(pid, "original")
        assert user_state(await execution.async_get_state()) == {"after": {"approved": "original"}}


async def test_two_deep(runtime):
    native = NATIVE["two_deep"]
    async with runtime(FLOWS):
        execution = sp_deep.create_execution(auto_close=False)
        await execution.async_start(2)
        assert await execution.async_get_status() == native["status"]
        ((pid, record),) = (await execution.async_get_pending_interrupts()).items()
        assert pid.split(":")[0] == execution.id and pid.endswith(":ask")
        assert pid == f"{record['sub_flow_frame_id']}:{record['local_interrupt_id']}"
        assert record["local_interrupt_id"].endswith(":ask")
        assert ("sub_flow_frame_id" in record["child_interrupt"]) is native[
            "child_interrupt_is_projected"
        ]
        saved = await execution.async_save()
        loaded = sp_deep.create_execution(auto_close=False)
        await loaded.async_load(saved, execution_id=f"{execution.id}-copy")
        await loaded.async_continue_with(pid, "deep")
        assert user_state(await loaded.async_get_state()) == native["after_state"]
        # And the original, resumed in place.
        await execution.async_continue_with(pid, "deep")
        assert user_state(await execution.async_get_state()) == native["after_state"]
