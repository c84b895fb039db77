"""07: emit/when: single event, chunk completion by chunk name, multi-event joins
(and / or / simple_or) and external emit. execution.async_emit returns the list of
handler return values.

Inside a chunk, ``await data.async_emit(...)`` only records the event; the workflow
dispatches A then B when ``start`` completes (design.md section 4, semantic
differences). The joins see the same signals in the same order, so the native snapshot
is reproduced exactly.
"""

from __future__ import annotations

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize


async def start(data):
    await data.async_emit("A", {"a": data.input})
    await data.async_emit("B", {"b": data.input})
    return "start-done"


async def on_and(data):
    await data.async_set_state("and", data.input)


async def on_or(data):
    await data.async_append_state("or", data.input)


async def on_simple_or(data):
    await data.async_append_state("simple_or", data.input)


async def on_a(data):
    await data.async_set_state("a_only", {"input": data.input, "event": data.event})


async def on_start_done(data):
    await data.async_set_state("after_start_chunk", data.input)


async def external(data):
    await data.async_set_state("external", data.input)
    return "handler-return"


flow = TriggerFlow(name="c07-when")
flow.to(start)
flow.when(["A", "B"], mode="and").to(on_and)
flow.when(["A", "B"], mode="or").to(on_or)
flow.when(["A", "B"], mode="simple_or").to(on_simple_or)
flow.when("A").to(on_a)
flow.when("start").to(on_start_done)  # chunk name -> fires on that chunk's completion
flow.when("Ext").to(external)

FLOWS = [flow]
REPLAY_CASES = [ReplayCase(flow, 1, emits=[("Ext", 42)])]


async def test_07_when_events(runtime):
    async with runtime(FLOWS):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(1)
        emit_return = await execution.async_emit("Ext", 42)
        snapshot = await execution.async_close()
    result = {"snapshot": snapshot, "external_emit_return": emit_return}
    assert normalize(result) == load_expected("07_when_events.py")


# Beyond the script: what async_emit returns when handlers return None or an operator (a
# join gate, a batch) listens. Recorded natively (agently 4.1.4.10, same flow): one entry
# per listener of the event, in definition order, None included.
NATIVE_EMIT_RETURNS = {
    "none_returning_handler": [None],
    "two_handlers": [None, "loud"],
    "join_gate_and_chunk": [None, "a"],
    "batch_operator": [None],
    "snapshot": {"quiet": [1, 2]},
}


async def quiet(data):
    await data.async_append_state("quiet", data.input)


async def loud(data):
    return "loud"


async def joined(data):
    return "joined"


async def a_only(data):
    return "a"


async def left(data):
    return "left"


async def right(data):
    return "right"


returns_flow = TriggerFlow(name="c07-emit-returns")
returns_flow.when("N").to(quiet)
returns_flow.when("M").to(quiet)
returns_flow.when("M").to(loud)
returns_flow.when(["A", "B"]).to(joined)
returns_flow.when("A").to(a_only)
returns_flow.when("C").batch(left, right)

FLOWS.append(returns_flow)
REPLAY_CASES.append(ReplayCase(returns_flow, None, emits=[("N", 1), ("M", 2), ("A", 3), ("C", 4)]))


async def test_07_emit_returns_one_value_per_listener(runtime):
    async with runtime([returns_flow]):
        execution = returns_flow.create_execution(auto_close=False)
        await execution.async_start(None)
        result = {
            "none_returning_handler": await execution.async_emit("N", 1),
            "two_handlers": await execution.async_emit("M", 2),
            "join_gate_and_chunk": await execution.async_emit("A", 3),
            "batch_operator": await execution.async_emit("C", 4),
            "snapshot": await execution.async_close(),
        }
    assert result == NATIVE_EMIT_RETURNS
