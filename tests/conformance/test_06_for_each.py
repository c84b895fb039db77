"""06: for_each()/end_for_each(): list/tuple inputs fan out per item; results come back in
item order whatever the completion order. Non-sequence (and str) inputs are one item;
an empty list gives []. for_each nests and takes concurrency=.
"""

from __future__ import annotations

import asyncio

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize

# Not in the native script: counts running items so the concurrency limit is checked too.
active = {"now": 0, "max": 0}


async def square(data):
    if isinstance(data.input, int):
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        try:
            await asyncio.sleep(0.01 * (5 - data.input))  # later items finish first
        finally:
            active["now"] -= 1
        return data.input * data.input
    return data.input


async def plus100(data):
    return data.input + 100


async def after(data):
    await data.async_set_state("after", data.input)


flow = TriggerFlow(name="c06-for-each")
flow.for_each().to(square).end_for_each().to(after)

nested = TriggerFlow(name="c06-nested")
nested.for_each().for_each().to(plus100).end_for_each().end_for_each().to(after)

limited = TriggerFlow(name="c06-limited")
limited.for_each(concurrency=2).to(square).end_for_each().to(after)

FLOWS = [flow, nested, limited]
REPLAY_CASES = [
    ReplayCase(flow, [1, 2, 3, 4], label="list"),
    ReplayCase(flow, [], label="empty"),
    ReplayCase(flow, "ab", label="string"),
    ReplayCase(nested, [[1, 2], [3]]),
    ReplayCase(limited, [1, 2, 3]),
]


async def test_06_for_each(runtime):
    async with runtime(FLOWS):
        result = {
            "list": (await flow.async_start([1, 2, 3, 4]))["after"],
            # The tuple travels as a JSON list through Temporal; native treats both alike.
            "tuple": (await flow.async_start((2, 3)))["after"],
            "empty": (await flow.async_start([]))["after"],
            "scalar": (await flow.async_start(3))["after"],
            "string": (await flow.async_start("ab"))["after"],
            "nested": (await nested.async_start([[1, 2], [3]]))["after"],
        }
        active.update(now=0, max=0)
        result["concurrency_2"] = (await limited.async_start([1, 2, 3]))["after"]
    assert normalize(result) == load_expected("06_for_each.py")
    assert 1 <= active["max"] <= 2
