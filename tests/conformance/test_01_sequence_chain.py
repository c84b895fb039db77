"""01: to() chain; each chunk's return value is the next chunk's data.input.

flow.async_start() returns the close snapshot (the execution state dict); a manual
execution returns itself from async_start and reports statuses around close.
"""

from __future__ import annotations

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize


async def add_one(data):
    await data.async_set_state("a_input", data.input)
    return data.input + 1


async def times_ten(data):
    await data.async_set_state("b_input", data.input)
    return data.input * 10


async def returns_nothing(data):
    await data.async_set_state("c_input", data.input)


async def sees_none(data):
    await data.async_set_state("d_input", data.input)


flow = TriggerFlow(name="c01-seq")
flow.to(add_one).to(times_ten).to(returns_nothing).to(sees_none)

FLOWS = [flow]
REPLAY_CASES = [ReplayCase(flow, 1), ReplayCase(flow, 2, hidden=True, label="hidden")]


async def test_01_sequence_chain(runtime):
    async with runtime(FLOWS):
        snapshot = await flow.async_start(1)
        execution = flow.create_execution(auto_close=False)
        returned = await execution.async_start(5)
        status_before_close = await execution.async_get_status()
        lifecycle_before_close = await execution.async_get_lifecycle_state()
        manual = await execution.async_close()
        result = {
            "flow_async_start_snapshot": snapshot,
            "manual_start_returns_execution": returned is execution,
            "status_before_close": status_before_close,
            "lifecycle_before_close": lifecycle_before_close,
            "manual_close_snapshot": manual,
            "status_after_close": await execution.async_get_status(),
            "lifecycle_after_close": await execution.async_get_lifecycle_state(),
            # Native calls the sync `flow.start(2)`; the execution API here is async-only
            # (design.md section 3: Agently's methods with the async_ prefix), so the same
            # scenario runs through `await flow.async_start(2)` with the same expected value.
            "sync_flow_start": await flow.async_start(2),
        }
    assert normalize(result) == load_expected("01_sequence_chain.py")
