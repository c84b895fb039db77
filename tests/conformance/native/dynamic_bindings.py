"""Native recording: execution.on() / off() dynamic handlers (as script 29).

A lambda is refused; a named handler bound with ``on(event, fn, binding_id=...)`` runs on
the event and is saved in ``signal_net.bindings``; ``off`` removes it (True, then False
for an unknown id); after ``load`` the binding is ``missing_handler`` (it does not run)
unless the loading execution registered the same ``binding_id`` with ``on()`` first, and
``require_resources`` (the default) refuses the load with the missing handler named.

Run with agently==4.1.4.10: ``python dynamic_bindings.py > dynamic_bindings.json``.
tests/conformance/test_dynamic_bindings.py runs the same flow on Temporal.
"""

from _common import make_execution, out, run
from agently import TriggerFlow


async def db_step(data):
    await data.async_set_state("started", data.input)


async def db_on_ping(data):
    await data.async_set_state("pinged", data.input)
    return f"handled:{data.input}"


async def db_on_ping_again(data):
    await data.async_set_state("pinged_again", data.input)
    return f"again:{data.input}"


def bindings_flow():
    flow = TriggerFlow(name="db-bindings")
    flow.to(db_step)
    return flow


def user_state(execution):
    return {k: v for k, v in execution.get_state().items() if not k.startswith("$")}


def bindings_view(execution):
    return [
        {
            "binding_id": b["binding_id"],
            "trigger_type": b["trigger_type"],
            "trigger_event": b["trigger_event"],
            "handler_kind": b["handler_ref"]["kind"],
            "handler_name": b["handler_ref"]["name"],
            "callable_name": b["handler_ref"]["callable_name"],
            "metadata": b["metadata"],
            "status": b["status"],
            "keys": sorted(b),
        }
        for b in execution.save()["signal_net"]["bindings"]
    ]


async def main():
    found = {}
    execution = make_execution(bindings_flow(), auto_close=False)
    await execution.async_start(1)
    try:
        execution.on("ping", lambda data: None)
        found["lambda"] = ["returned"]
    except Exception as error:
        found["lambda"] = ["raised", type(error).__name__, str(error).split(";")[0]]
    found["on"] = execution.on("ping", db_on_ping, binding_id="b1", metadata={"why": "test"})
    found["emit"] = await execution.async_emit("ping", 5)
    found["state"] = user_state(execution)
    found["bindings"] = bindings_view(execution)
    saved = execution.save()

    refused = make_execution(bindings_flow(), auto_close=False)
    try:
        await refused.async_load(saved)
        found["load_default"] = ["returned"]
    except Exception as error:
        found["load_default"] = [
            "raised",
            type(error).__name__,
            str(error).replace(saved["execution_id"], "<id>"),
        ]
    missing = make_execution(bindings_flow(), auto_close=False)
    await missing.async_load(saved, require_resources=False)
    found["missing_bindings"] = bindings_view(missing)
    found["missing_emit"] = await missing.async_emit("ping", 6)
    found["missing_state"] = user_state(missing)

    again = make_execution(bindings_flow(), auto_close=False)
    again.on("ping", db_on_ping_again, binding_id="b1")
    await again.async_load(saved)
    found["again_bindings"] = bindings_view(again)
    found["again_emit"] = await again.async_emit("ping", 7)
    found["again_state"] = user_state(again)

    found["off"] = execution.off("b1")
    found["off_emit"] = await execution.async_emit("ping", 8)
    found["off_unknown"] = execution.off("nope")
    found["off_bindings"] = bindings_view(execution)
    found["off_state"] = user_state(execution)
    out(found)


run(main)
