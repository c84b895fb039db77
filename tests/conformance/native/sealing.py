"""Native recording: execution.async_seal() / async_unseal() and what a sealed execution
refuses (external emits and continue_with: ignored with a RuntimeWarning, no error), what
it still accepts (state writes), and its status, lifecycle and snapshot.

Run with agently==4.1.4.10: ``python sealing.py > sealing.json``.
tests/conformance/test_sealing.py runs the same flow on Temporal.
"""

import warnings

from _common import make_execution, out, run
from agently import TriggerFlow


async def sl_ask(data):
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(type="approval", interrupt_id="i", payload={"q": 1})


async def sl_after(data):
    await data.async_set_state("resumed", data.input)


async def sl_ping(data):
    await data.async_set_state("pinged", data.input)
    return data.input


def sealing_flow():
    flow = TriggerFlow(name="sl-seal")
    flow.to(sl_ask).to(sl_after)
    flow.when("ping").to(sl_ping)
    return flow


async def caught(call, execution_id):
    """What ``call`` returns or raises, and the warnings it issues (id replaced)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            result = ["returned", await call()]
        except Exception as error:
            result = ["raised", type(error).__name__, str(error).replace(execution_id, "<id>")]
    return {
        "result": result,
        "warnings": [
            [w.category.__name__, str(w.message).replace(execution_id, "<id>")] for w in seen
        ],
    }


def view(execution):
    snapshot = execution.save()
    return {
        "status": execution.get_status(),
        "lifecycle": execution.get_lifecycle_state(),
        "is_sealed": execution.is_sealed(),
        "is_open": execution.is_open(),
        "snapshot_lifecycle": snapshot["lifecycle_state"],
        "snapshot_status": snapshot["status"],
        "snapshot_sealed_at_set": snapshot["sealed_at"] is not None,
        "state": {k: v for k, v in execution.get_state().items() if not k.startswith("$")},
        "waiting": sorted(execution.get_pending_interrupts()),
    }


async def main():
    execution = make_execution(sealing_flow(), auto_close=False)
    eid = execution.id
    await execution.async_start("x")
    found = {"open": view(execution)}

    async def seal():
        return (await execution.async_seal()) is execution

    found["seal"] = await caught(seal, eid)
    found["sealed"] = view(execution)
    found["seal_again"] = await caught(seal, eid)
    found["emit_sealed"] = await caught(lambda: execution.async_emit("ping", 1), eid)
    found["continue_sealed"] = await caught(lambda: execution.async_continue_with("i", "yes"), eid)
    found["set_state_sealed"] = await caught(lambda: execution.async_set_state("outside", 1), eid)
    found["after_refusals"] = view(execution)

    async def unseal():
        return (await execution.async_unseal()) is execution

    found["unseal"] = await caught(unseal, eid)
    found["unsealed"] = view(execution)
    found["emit_open"] = await caught(lambda: execution.async_emit("ping", 2), eid)
    await execution.async_continue_with("i", "yes")
    found["resumed"] = view(execution)
    await execution.async_seal()
    closed = await execution.async_close()
    found["close_sealed"] = {
        "state": {k: v for k, v in closed.items() if not k.startswith("$")},
        "status": execution.get_status(),
        "lifecycle": execution.get_lifecycle_state(),
    }
    found["unseal_closed"] = await caught(unseal, eid)
    found["seal_closed"] = await caught(seal, eid)
    found["closed_lifecycle"] = execution.get_lifecycle_state()
    out(found)


if __name__ == "__main__":
    run(main)
