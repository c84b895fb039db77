"""execution.on() / off(): execution-only event handlers, against a native recording.

Native recording: native/dynamic_bindings.py (agently 4.1.4.10, as script 29) ->
native/dynamic_bindings.json. The same flow runs here, with the handlers registered on the
worker (``TriggerFlowPlugin(event_handlers=[...])``): a lambda is refused with Agently's
text; a binding runs on its event and is saved in ``signal_net.bindings`` with Agently's
keys; ``off`` removes it; after ``async_load`` it is ``missing_handler`` unless the loading
handle registered the same id with ``on()`` first.

Deviations (docs/triggerflow-on-temporal.md, "Execution-only handlers"): ``on()``/``off()``
act before the start or load; a started execution takes ``async_on()``/``async_off()``
(an update of its workflow). A load with a missing handler is refused only with
``validate_resources=True`` (Agently's text), as for missing resources; by default it
loads with the binding ``missing_handler`` (natively ``require_resources=False``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin

NATIVE = json.loads(
    (Path(__file__).parent / "native" / "dynamic_bindings.json").read_text(encoding="utf-8")
)


async def db_step(data):
    await data.async_set_state("started", data.input)


async def db_on_ping(data):
    await data.async_set_state("pinged", data.input)
    return f"handled:{data.input}"


async def db_on_ping_again(data):
    await data.async_set_state("pinged_again", data.input)
    return f"again:{data.input}"


async def db_not_served(data):
    return "never"


flow = TriggerFlow(name="db-bindings")
flow.to(db_step)
HANDLERS = [db_on_ping, db_on_ping_again]


def user_state(state):
    return {k: v for k, v in state.items() if not k.startswith("$")}


async def bindings_view(execution):
    saved = await execution.async_save()
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
        for b in saved["signal_net"]["bindings"]
    ]


def none_if_empty(result):
    return result or None  # nothing listened: [] here, None natively


async def test_bindings_run_save_and_load_as_natively(runtime):
    async with runtime([flow], event_handlers=HANDLERS):
        execution = flow.create_execution(auto_close=False)
        with pytest.raises(ValueError) as refused:
            execution.on("ping", lambda data: None)
        assert str(refused.value).split(";")[0] == NATIVE["lambda"][2]
        await execution.async_start(1)
        with pytest.raises(RuntimeError, match="async_on"):
            execution.on("ping", db_on_ping)
        bound = await execution.async_on(
            "ping", db_on_ping, binding_id="b1", metadata={"why": "test"}
        )
        assert bound == NATIVE["on"]
        assert await execution.async_emit("ping", 5) == NATIVE["emit"]
        assert user_state(await execution.async_get_state()) == NATIVE["state"]
        assert await bindings_view(execution) == NATIVE["bindings"]
        saved = json.loads(json.dumps(await execution.async_save()))

        refused_load = flow.create_execution(auto_close=False)
        with pytest.raises(RuntimeError) as error:
            await refused_load.async_load(
                saved, execution_id=f"{execution.id}-r", validate_resources=True
            )
        assert str(error.value).replace(execution.id, "<id>") == NATIVE["load_default"][2]

        missing = flow.create_execution(auto_close=False)
        await missing.async_load(saved, execution_id=f"{execution.id}-m")
        assert await bindings_view(missing) == NATIVE["missing_bindings"]
        assert none_if_empty(await missing.async_emit("ping", 6)) == NATIVE["missing_emit"]
        assert user_state(await missing.async_get_state()) == NATIVE["missing_state"]

        again = flow.create_execution(auto_close=False)
        assert again.on("ping", db_on_ping_again, binding_id="b1") == "b1"
        await again.async_load(saved, execution_id=f"{execution.id}-a")
        assert await bindings_view(again) == NATIVE["again_bindings"]
        assert await again.async_emit("ping", 7) == NATIVE["again_emit"]
        assert user_state(await again.async_get_state()) == NATIVE["again_state"]

        assert await execution.async_off("b1") is NATIVE["off"]
        assert none_if_empty(await execution.async_emit("ping", 8)) == NATIVE["off_emit"]
        assert await execution.async_off("nope") is NATIVE["off_unknown"]
        assert await bindings_view(execution) == NATIVE["off_bindings"]
        assert user_state(await execution.async_get_state()) == NATIVE["off_state"]


async def test_bindings_registered_before_the_start_go_with_it(runtime):
    async with runtime([flow], event_handlers=HANDLERS):
        execution = flow.create_execution(auto_close=False)
        first = execution.on("ping", db_on_ping)
        execution.on("ping", db_on_ping_again, binding_id="gone")
        assert execution.off("gone") is True and execution.off("gone") is False
        await execution.async_start(2)
        assert [b["binding_id"] for b in await bindings_view(execution)] == [first]
        assert await execution.async_emit("ping", 3) == ["handled:3"]


def test_handlers_a_worker_cannot_find_by_name_are_refused():
    execution = flow.create_execution(auto_close=False)

    def nested(data):
        return None

    for bad in (nested, "db_on_ping", None):
        with pytest.raises(ValueError, match="recoverable handler ref"):
            execution.on("ping", bad)
    with pytest.raises(ValueError, match="flow_data"):
        execution.on("ping", db_on_ping, trigger_type="flow_data")
    with pytest.raises(ValueError, match="durable=False"):
        execution.on("ping", db_on_ping, durable=False)
    with pytest.raises(TypeError, match="handler_ref"):
        execution.on("ping", db_on_ping, handler_ref={"module": "x"})
    with pytest.raises(ValueError, match="recoverable handler ref"):
        TriggerFlowPlugin([flow], event_handlers=[lambda data: None])


async def test_a_handler_the_worker_lacks_fails_its_chain_naming_the_fix(runtime):
    async with runtime([flow], event_handlers=HANDLERS):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(1)
        await execution.async_on("ping", db_not_served, binding_id="lost")
        with pytest.raises(Exception) as failure:
            await execution.async_emit("ping", 1)
        assert "db_not_served" in str(failure.value)


def test_bindings_are_bounded_per_execution():
    from triggerflow_temporal.spec.limits import MAX_BINDINGS

    execution = flow.create_execution(auto_close=False)
    for i in range(MAX_BINDINGS):
        execution.on("ping", db_on_ping, binding_id=f"b{i}")
    execution.on("ping", db_on_ping_again, binding_id="b0")  # the same id: replaced
    with pytest.raises(ValueError, match=f"at most {MAX_BINDINGS}"):
        execution.on("ping", db_on_ping, binding_id="one-more")
    assert execution.off("b1") is True
    assert execution.on("ping", db_on_ping, binding_id="one-more") == "one-more"
