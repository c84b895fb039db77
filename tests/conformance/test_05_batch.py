"""05: batch(*chunks): every branch gets the same input concurrently; the next step gets a
dict keyed by chunk name (a ("name", fn) tuple sets the key); concurrency= limits the
number of branches running at once.

The activities run in the test's process (start_local_runtime), so the handlers share the
``active`` counter with the test, as the native script does.
"""

from __future__ import annotations

import asyncio

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize

active = {"now": 0, "max": 0}


async def slow_inc(data):
    active["now"] += 1
    active["max"] = max(active["max"], active["now"])
    # Native sleeps 30 ms. Here activity dispatch adds latency, so wait (bounded) for a
    # sibling branch to be running instead: the overlap is then not a matter of timing.
    for _ in range(30):
        if active["now"] > 1:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.03)
    active["now"] -= 1
    return data.input + 1


async def double(data):
    active["now"] += 1
    active["max"] = max(active["max"], active["now"])
    await asyncio.sleep(0.01)
    active["now"] -= 1
    return data.input * 2


async def named_impl(data):
    return "custom:" + str(data.input)


async def after(data):
    await data.async_set_state("after", data.input)


flow = TriggerFlow(name="c05-batch")
flow.batch(slow_inc, double, ("custom_key", named_impl)).to(after)

limited_flow = TriggerFlow(name="c05-batch-limited")
limited_flow.batch(slow_inc, double, concurrency=1).to(after)

FLOWS = [flow, limited_flow]
REPLAY_CASES = [ReplayCase(flow, 3), ReplayCase(limited_flow, 4)]


async def test_05_batch(runtime):
    active.update(now=0, max=0)
    async with runtime(FLOWS):
        unlimited = (await flow.async_start(3))["after"]
        max_unlimited = active["max"]
        active["max"] = 0
        limited = (await limited_flow.async_start(4))["after"]
    result = {
        "result": unlimited,
        "max_parallel_default": max_unlimited,
        "result_concurrency_1": limited,
        "max_parallel_concurrency_1": active["max"],
    }
    assert normalize(result) == load_expected("05_batch.py")
