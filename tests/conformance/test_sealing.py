"""Sealing: execution.async_seal() / async_unseal() as natively.

Native recording: native/sealing.py (agently 4.1.4.10) -> native/sealing.json. A sealed
execution ignores external emits and continue_with (None and Agently's RuntimeWarning,
no error), accepts state writes, keeps its status and shows lifecycle ``sealed`` and a
``sealed_at`` in its snapshot; unseal opens it again (``sealed_at`` stays); unsealing a
closed execution warns, sealing it does nothing.

Here the refused emit / continue_with is refused by the update's validator, so nothing
of it reaches the workflow history (natively a ``triggerflow.event_rejected`` /
``continue_rejected`` runtime event is also emitted; here there is none).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType

from triggerflow_temporal import TriggerFlow
from triggerflow_temporal.testing import start_dev_server, start_local_runtime

NATIVE = json.loads((Path(__file__).parent / "native" / "sealing.json").read_text(encoding="utf-8"))


async def sl_ask(data):
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(type="approval", interrupt_id="i", payload={"q": 1})


async def sl_after(data):
    await data.async_set_state("resumed", data.input)


async def sl_ping(data):
    await data.async_set_state("pinged", data.input)
    return data.input


def sealing_flow() -> TriggerFlow:
    flow = TriggerFlow(name="sl-seal")
    flow.to(sl_ask).to(sl_after)
    flow.when("ping").to(sl_ping)
    return flow


flow = sealing_flow()
FLOWS = [flow]


async def caught(call: Callable[[], Awaitable[Any]], execution_id: str) -> dict[str, Any]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            result: list[Any] = ["returned", await call()]
        except Exception as error:
            result = ["raised", type(error).__name__, str(error).replace(execution_id, "<id>")]
    return {
        "result": result,
        "warnings": [
            [w.category.__name__, str(w.message).replace(execution_id, "<id>")] for w in seen
        ],
    }


async def view(execution: Any) -> dict[str, Any]:
    snapshot = await execution.async_save()
    lifecycle = await execution.async_get_lifecycle_state()
    state = await execution.async_get_state()
    return {
        "status": await execution.async_get_status(),
        "lifecycle": lifecycle,
        "is_sealed": lifecycle == "sealed",
        "is_open": lifecycle == "open",
        "snapshot_lifecycle": snapshot["lifecycle_state"],
        "snapshot_status": snapshot["status"],
        "snapshot_sealed_at_set": snapshot["sealed_at"] is not None,
        "state": {k: v for k, v in state.items() if not k.startswith("$")},
        "waiting": sorted(await execution.async_get_pending_interrupts()),
    }


async def update_names(client: Any, execution_id: str) -> list[str]:
    """The updates the workflow accepted (a validator-refused one is not in history)."""
    history = await client.get_workflow_handle(execution_id).fetch_history()
    return [
        event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]


async def run_sealing(execution: Any) -> dict[str, Any]:
    """The native script's scenario, step by step."""
    eid = execution.id
    await execution.async_start("x")
    found: dict[str, Any] = {"open": await view(execution)}

    async def seal() -> bool:
        return (await execution.async_seal()) is execution

    async def unseal() -> bool:
        return (await execution.async_unseal()) is execution

    found["seal"] = await caught(seal, eid)
    found["sealed"] = await view(execution)
    found["seal_again"] = await caught(seal, eid)
    found["emit_sealed"] = await caught(lambda: execution.async_emit("ping", 1), eid)
    found["continue_sealed"] = await caught(lambda: execution.async_continue_with("i", "yes"), eid)
    found["set_state_sealed"] = await caught(lambda: execution.async_set_state("outside", 1), eid)
    found["after_refusals"] = await view(execution)
    found["unseal"] = await caught(unseal, eid)
    found["unsealed"] = await view(execution)
    found["emit_open"] = await caught(lambda: execution.async_emit("ping", 2), eid)
    await execution.async_continue_with("i", "yes")
    found["resumed"] = await view(execution)
    await execution.async_seal()
    closed = await execution.async_close()
    found["close_sealed"] = {
        "state": {k: v for k, v in closed.items() if not k.startswith("$")},
        "status": await execution.async_get_status(),
        "lifecycle": await execution.async_get_lifecycle_state(),
    }
    found["unseal_closed"] = await caught(unseal, eid)
    found["seal_closed"] = await caught(seal, eid)
    found["closed_lifecycle"] = await execution.async_get_lifecycle_state()
    return found


async def test_sealing_as_natively(runtime):
    async with runtime(FLOWS) as client:
        execution = flow.create_execution(auto_close=False)
        got = await run_sealing(execution)
        accepted = await update_names(client, execution.id)
    assert got == NATIVE
    # The refused emit and continue_with never reached the history: one emit (the open
    # one), one continue_with (the resume).
    assert accepted.count("emit") == 1
    assert accepted.count("continue_with") == 1
    # seal, seal again (a no-op), unseal, seal before close; not those sent after close.
    assert accepted.count("seal") == 4


async def test_sealed_execution_does_not_auto_close_and_internal_work_goes_on(runtime):
    async with runtime(FLOWS):
        execution = flow.create_execution(auto_close=True, auto_close_timeout=2.0)
        await execution.async_start_settled("x")  # paused: no auto close while it waits
        await execution.async_continue_with("i", "yes")
        await execution.async_seal()  # well within the 2 s idle timeout
        # State writes (and the watchers they trigger) are accepted while sealed.
        await execution.async_set_state("outside", 1)
        info = await execution.async_get_info()
        assert info["lifecycle_state"] == "sealed" and info["sealed_at"] is not None
        # Idle for longer than auto_close_timeout: natively the monitor skips a sealed
        # execution, so it stays sealed.
        await asyncio.sleep(3)
        assert await execution.async_get_lifecycle_state() == "sealed"
        await execution.async_unseal()
        snapshot = await execution.async_result()  # unsealed: it auto-closes when idle
    assert snapshot["resumed"] == "yes" and snapshot["outside"] == 1


async def tick(data):
    await data.async_append_state("ticks", data.input)


ticker = TriggerFlow(name="sl-ticker")
ticker.when("tick").to(tick)


async def test_sealed_survives_continue_as_new():
    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"]
    async with start_dev_server(extra_args=extra) as env:
        async with start_local_runtime([ticker], client=env.client) as client:
            execution = ticker.create_execution(auto_close=False)
            await execution.async_start(None)
            first_run = (await client.get_workflow_handle(execution.id).describe()).run_id
            for i in range(10):
                await execution.async_emit("tick", i)
            await execution.async_seal()
            sealed_at = (await execution.async_get_info())["sealed_at"]
            # Internal work (state writes) while sealed pushes the run into continue-as-new.
            for i in range(10, 40):
                await execution.async_append_state("ticks", i)
            last_run = (await client.get_workflow_handle(execution.id).describe()).run_id
            info = await execution.async_get_info()
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                assert await execution.async_emit("tick", 99) is None
            assert [w.category for w in seen] == [RuntimeWarning]
            await execution.async_unseal()
            await execution.async_emit("tick", 100)
            snapshot = await execution.async_close()
    assert last_run != first_run
    assert info["lifecycle_state"] == "sealed" and info["sealed_at"] == sealed_at
    assert snapshot["ticks"] == [*range(40), 100]


async def test_a_sealed_snapshot_loads_sealed(runtime):
    async with runtime(FLOWS):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("x")
        await execution.async_seal()
        saved = await execution.async_save()
        copy = flow.create_execution(auto_close=False)
        copy = await copy.async_load(saved, execution_id=f"{execution.id}-copy")
        info = await copy.async_get_info()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert await copy.async_continue_with("i", "yes") is None
        await copy.async_unseal()
        await copy.async_continue_with("i", "yes")
        snapshot = await copy.async_close()
        await execution.async_close(pending_interrupts="cancel")
    assert info["lifecycle_state"] == "sealed" and info["sealed_at"] == saved["sealed_at"]
    assert [str(w.message) for w in seen] == [
        f"TriggerFlow execution {copy.id} ignored continue_with() because lifecycle state is "
        "'sealed'."
    ]
    assert snapshot["resumed"] == "yes"
