"""09: side_branch(chunk) runs the chunk with the current input; the main chain goes on
from the same trigger, so the next .to() gets the pre-side value too (the side branch's
return value is dropped by the main chain).
"""

from __future__ import annotations

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize


async def inc(data):
    return data.input + 1


async def side(data):
    await data.async_set_state("side_saw", data.input)
    return "side-return"


async def main_next(data):
    await data.async_set_state("main_saw", data.input)


flow = TriggerFlow(name="c09-side")
flow.to(inc).side_branch(side).to(main_next)

also = TriggerFlow(name="c09-side-flag")
also.to(inc).to(side, side_branch=True).to(main_next)

FLOWS = [flow, also]
REPLAY_CASES = [ReplayCase(flow, 1), ReplayCase(also, 10)]


async def test_09_side_branch(runtime):
    async with runtime(FLOWS):
        result = {
            "side_branch": await flow.async_start(1),
            "to_side_branch_flag": await also.async_start(10),
        }
    assert normalize(result) == load_expected("09_side_branch.py")
