"""Handlers for the bad-input catalogue (test_bad_input.py)."""

from __future__ import annotations

from typing import Any

from temporalio.common import RetryPolicy

from triggerflow_temporal import TriggerFlow

CALLS: dict[str, int] = {}
MB = 1024 * 1024


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


class NotJson:
    """An object the JSON converter cannot serialise."""


async def writes_object_to_state(data: Any) -> None:
    _count("writes_object_to_state")
    await data.async_set_state("bad", NotJson())


async def emits_object(data: Any) -> None:
    _count("emits_object")
    await data.async_emit("Next", NotJson())


async def pauses_with_object(data: Any) -> Any:
    _count("pauses_with_object")
    return await data.async_pause_for(type="approval", payload={"obj": NotJson()})


async def returns_big(data: Any) -> str:
    _count("returns_big")
    return "x" * int(data.input * MB)


async def writes_big_state(data: Any) -> None:
    _count("writes_big_state")
    await data.async_set_state("big", "y" * int(data.input * MB))
    return data.input


async def grows_state(data: Any) -> Any:
    _count("grows_state")
    await data.async_append_state("parts", "z" * int(data.input * MB))
    return data.input


async def after_growth(data: Any) -> None:
    _count("after_growth")
    await data.async_set_state("after_growth_ran", True)


async def pauses_against_own_schema(data: Any) -> Any:
    _count("pauses_against_own_schema")
    return await data.async_pause_for(
        type="approval",
        interrupt_id="bad-request",
        payload={"amount": "not a number"},
        request_payload_schema={
            "type": "object",
            "properties": {"amount": {"type": "number"}},
            "required": ["amount"],
        },
    )


async def pauses_with_invalid_schema(data: Any) -> Any:
    _count("pauses_with_invalid_schema")
    return await data.async_pause_for(
        type="approval",
        interrupt_id="bad-schema",
        response_payload_schema={"type": "no-such-type"},
    )


async def good(data: Any) -> None:
    _count("good")
    await data.async_set_state("good", data.input)


async def ingest_to_workspace(data: Any) -> str:
    _count("ingest_to_workspace")
    ref = await data.workspace.ingest(
        data.input["content"], "artifacts", "report", summary=data.input.get("summary", "")
    )
    await data.async_set_state("ref", ref.id)
    return ref.id


async def audit(data: Any) -> None:
    await data.async_set_state("audited", True)


def single(name: str, *handlers: Any) -> TriggerFlow:
    """A flow running ``handlers`` in sequence."""
    flow = TriggerFlow(name=name)
    builder: Any = flow
    for handler in handlers:
        builder = builder.to(handler)
    return flow


NON_JSON_WRITERS = [writes_object_to_state, emits_object, pauses_with_object]
OVERSIZED = [returns_big, writes_big_state]
SCHEMA_VIOLATIONS = [pauses_against_own_schema, pauses_with_invalid_schema]
WORKSPACE_ERRORS = ["PayloadTooLargeError", "InvalidInputError"]


def non_json_flow(handler: Any) -> TriggerFlow:
    return single(f"rel-bad-{handler.__name__}", handler)


def oversized_flow(handler: Any) -> TriggerFlow:
    return single(f"rel-big-{handler.__name__}", handler)


def schema_flow(handler: Any) -> TriggerFlow:
    return single(f"rel-{handler.__name__}", handler)


def workspace_flow(error_name: str) -> TriggerFlow:
    return single(f"rel-ws-{error_name}", ingest_to_workspace)


def good_flow() -> TriggerFlow:
    return single("rel-good", good)


def growing_state_flow() -> TriggerFlow:
    """Four chunks each append ``input`` MB to state, then ``after_growth``."""
    flow = TriggerFlow(name="rel-growing-state")
    for index in range(4):
        flow.chunk(grows_state, name=f"grow_{index}")
    flow.to("grow_0").to("grow_1").to("grow_2").to("grow_3").to(after_growth)
    return flow


def under_limit_flow() -> TriggerFlow:
    flow = TriggerFlow(name="rel-under-limit")
    flow.to(writes_big_state).to(returns_big).to(good)
    return flow


def rolling_flows() -> tuple[TriggerFlow, TriggerFlow]:
    """The deployed definition and a newer one with a chunk the old worker lacks."""
    old = TriggerFlow(name="rel-rolling")
    old.to(good)
    new = TriggerFlow(name="rel-rolling")
    new.chunk(audit, retry_policy=RetryPolicy(maximum_attempts=2))
    new.to(good).to("audit")
    return old, new


async def item_of_kib(data: Any) -> str:
    """An item's output of ``data.input`` KiB (fine alone; many of them are not)."""
    return "k" * (int(data.input) * 1024)


async def keep_all(data: Any) -> None:
    _count("keep_all")
    await data.async_set_state("kept", len(data.input))


def big_join_flow() -> TriggerFlow:
    """A for_each whose collected outputs are too big to hand to the next chunk."""
    flow = TriggerFlow(name="rel-big-join")
    flow.for_each().to(item_of_kib).end_for_each().to(keep_all)
    return flow
