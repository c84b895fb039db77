"""03: if_condition/elif_condition/else_condition/end_condition.

Conditions are called synchronously with ``data`` and must return exactly True (a truthy
1 does not match). The value after end_condition() is the taken branch's output.
"""

from __future__ import annotations

import asyncio

import pytest

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize


def gt10(data):
    return data.value > 10


def gt5_returns_int(data):
    return 1 if data.value > 5 else 0


async def big(data):
    return "big"


async def mid(data):
    return "mid"


async def other(data):
    return "other"


async def after(data):
    await data.async_set_state("after", data.input)


flow = TriggerFlow(name="c03-if")
(
    flow.if_condition(gt10)
    .to(big)
    .elif_condition(gt5_returns_int)
    .to(mid)
    .else_condition()
    .to(other)
    .end_condition()
    .to(after)
)

value_flow = TriggerFlow(name="c03-if-value")
value_flow.if_condition("yes").to(big).else_condition().to(other).end_condition().to(after)

FLOWS = [flow, value_flow]
REPLAY_CASES = [
    ReplayCase(flow, 20, label="big"),
    ReplayCase(flow, 7, label="truthy-int"),
    ReplayCase(value_flow, "yes", label="yes"),
    ReplayCase(value_flow, "no", label="no"),
]


async def test_03_if_condition(runtime):
    async with runtime(FLOWS):
        results = {}
        for value in (20, 7, 1):
            results[str(value)] = (await flow.async_start(value))["after"]
        results["value_case_yes"] = (await value_flow.async_start("yes"))["after"]
        results["value_case_no"] = (await value_flow.async_start("no"))["after"]
    assert normalize(results) == load_expected("03_if_condition.py")


# A condition runs in workflow code; when it raises, native 4.1.4.10 fails the execution
# with the original exception (verified: TypeError, status "failed"). It must not become a
# workflow task failure that Temporal retries forever.
def positive(data):
    return data.value > 0


raising_flow = TriggerFlow(name="c03-if-raises")
raising_flow.if_condition(positive).to(big).else_condition().to(other).end_condition().to(after)

FLOWS.append(raising_flow)
REPLAY_CASES.append(ReplayCase(raising_flow, [1], raises=TypeError))


async def test_03_condition_error_fails_the_execution(runtime):
    async with runtime(FLOWS):
        with pytest.raises(TypeError, match="not supported between"):
            await asyncio.wait_for(raising_flow.async_start([1]), 15)
        execution = raising_flow.create_execution(auto_close=False)
        with pytest.raises(TypeError, match="not supported between"):
            await asyncio.wait_for(execution.async_start([1]), 15)
        assert await execution.async_get_status() == "failed"
        # The same flow still routes values its condition can judge.
        assert await raising_flow.async_start(3) == {"after": "big"}
