"""Native recording: a pause inside a sub-flow, projected to the parent.

What the parent shows while its child waits (status, pending interrupt ids and keys, the
frame in the snapshot), what ``continue_with`` on the projected id does (the child resumes,
writes back, the parent goes on), a stale and an unknown id, closing with the child
waiting (refused; then ``pending_interrupts="cancel"``), save/load with the child waiting,
and sub-flows nested two deep.

Run with agently==4.1.4.10: ``python sub_flow_pause.py > sub_flow_pause.json``.
tests/conformance/test_sub_flow_pause.py runs the same flows on Temporal.
"""

from _common import make_execution, out, run
from agently import TriggerFlow


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


def child_flow():
    flow = TriggerFlow(name="sp-child")
    flow.to(sp_prep).to(sp_ask).to(sp_done).end()
    return flow


def middle_flow():
    flow = TriggerFlow(name="sp-middle")
    flow.to_sub_flow(child_flow()).end()
    return flow


def parent_flow(child):
    flow = TriggerFlow(name="sp-parent")
    flow.to_sub_flow(child).to(sp_after).end()
    return flow


def shape(interrupt_id, execution_id):
    """An id's segments: the parent's id as <exe>, other ids as <id>, the local id kept."""
    parts = interrupt_id.split(":")
    return ["<exe>" if p == execution_id else ("ask" if p == "ask" else "<id>") for p in parts]


def user_state(execution):
    return {k: v for k, v in execution.get_state().items() if not k.startswith("$")}


async def caught(call, execution_id):
    try:
        return ["returned", await call()]
    except Exception as error:
        return ["raised", type(error).__name__]


async def one_level():
    execution = make_execution(parent_flow(child_flow()), auto_close=False)
    eid = execution.id
    await execution.async_start(5)
    pending = execution.get_pending_interrupts()
    ((pid, record),) = pending.items()
    snapshot = execution.save()
    ((frame_id, frame),) = snapshot["sub_flow_frames"].items()
    found = {
        "status": execution.get_status(),
        "id_shape": shape(pid, eid),
        "record_keys": sorted(record),
        "local_interrupt_id": record["local_interrupt_id"],
        "frame_is_prefix": pid == f"{record['sub_flow_frame_id']}:ask",
        "type": record["type"],
        "payload": record["payload"],
        "child_interrupt_id": record["child_interrupt"]["id"],
        "snapshot_status": snapshot["status"],
        "snapshot_interrupt_ids_match": list(snapshot["interrupts"]) == [pid],
        "frame_status": frame["status"],
        "frame_keys": sorted(frame),
        "frame_projected": list(frame["projected_interrupts"].values()),
        "frame_child_saved_status": frame["child_saved_state"]["status"],
        "unknown_local_id": await caught(lambda: execution.async_continue_with("ask", 1), eid),
    }
    await execution.async_continue_with(pid, "yes")
    found["after_status"] = execution.get_status()
    found["after_state"] = user_state(execution)
    found["after_interrupt_status"] = execution.get_interrupt(pid)["status"]
    found["stale"] = await caught(lambda: execution.async_continue_with(pid, "again"), eid)
    return found


async def closing():
    execution = make_execution(parent_flow(child_flow()), auto_close=False)
    eid = execution.id
    await execution.async_start(1)
    (pid,) = execution.get_pending_interrupts()
    found = {"close": await caught(lambda: execution.async_close(), eid)}
    found["close_cancel"] = await caught(
        lambda: execution.async_close(pending_interrupts="cancel"), eid
    )
    found["status"] = execution.get_status()
    found["interrupt_status"] = execution.get_interrupt(pid)["status"]
    return found


async def save_load():
    execution = make_execution(parent_flow(child_flow()), auto_close=False)
    await execution.async_start(7)
    (pid,) = execution.get_pending_interrupts()
    saved = execution.save()
    loaded = make_execution(parent_flow(child_flow()), auto_close=False)
    await loaded.async_load(saved)
    found = {
        "loaded_status": loaded.get_status(),
        "loaded_pending_same": list(loaded.get_pending_interrupts()) == [pid],
    }
    await loaded.async_continue_with(pid, "from-load")
    found["loaded_after_state"] = user_state(loaded)
    found["original_status"] = execution.get_status()
    return found


async def two_deep():
    execution = make_execution(parent_flow(middle_flow()), auto_close=False)
    eid = execution.id
    await execution.async_start(2)
    ((pid, record),) = execution.get_pending_interrupts().items()
    found = {
        "status": execution.get_status(),
        "id_shape": shape(pid, eid),
        "local_shape": shape(record["local_interrupt_id"], eid),
        "child_interrupt_is_projected": "sub_flow_frame_id" in record["child_interrupt"],
    }
    saved = execution.save()
    loaded = make_execution(parent_flow(middle_flow()), auto_close=False)
    await loaded.async_load(saved)
    await loaded.async_continue_with(pid, "deep")
    found["after_state"] = user_state(loaded)
    return found


async def main():
    out(
        {
            "one_level": await one_level(),
            "closing": await closing(),
            "save_load": await save_load(),
            "two_deep": await two_deep(),
        }
    )


run(main)
