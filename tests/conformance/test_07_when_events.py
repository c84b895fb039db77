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
