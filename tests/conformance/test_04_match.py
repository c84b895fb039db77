"""04: match(mode=hit_first|hit_all)/case/case_else/end_match.

hit_first: first True case only; no hit and no else -> the input passes through.
hit_all: all True cases run concurrently; the result is a list in case order.
"""

from __future__ import annotations

import asyncio

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize


def is_pos(data):
    return data.value > 0


def gt1(data):
    return data.value > 1


def gt100(data):
    return data.value > 100


async def a(data):
    await asyncio.sleep(0.02)  # finishes after b: the result keeps case order anyway
    return "A"


async def b(data):
    return "B"


async def c(data):
    return "C"


async def fallback(data):
    return "ELSE:" + str(data.input)


async def after(data):
    await data.async_set_state("after", data.input)


first = TriggerFlow(name="c04-hit-first")
first.match().case("x").to(a).case(is_pos).to(b).case_else().to(fallback).end_match().to(after)

no_else = TriggerFlow(name="c04-no-else")
no_else.match().case("x").to(a).end_match().to(after)

hit_all = TriggerFlow(name="c04-hit-all")
(
    hit_all.match(mode="hit_all")
    .case(is_pos)
    .to(a)
    .case(gt1)
    .to(b)
    .case(gt100)
    .to(c)
    .end_match()
    .to(after)
)

FLOWS = [first, no_else, hit_all]
REPLAY_CASES = [
    ReplayCase(first, "x", label="value"),
    ReplayCase(first, 3, label="callable"),
    ReplayCase(first, -3, label="else"),
    ReplayCase(no_else, "y", label="passthrough"),
    ReplayCase(hit_all, 5, label="two"),
    ReplayCase(hit_all, -1, label="none"),
]


async def test_04_match(runtime):
    async with runtime(FLOWS):
        res = {
            "hit_first_value_case": (await first.async_start("x"))["after"],
            "hit_first_callable": (await first.async_start(3))["after"],
            "hit_first_else": (await first.async_start(-3))["after"],
            "no_hit_no_else_passthrough": (await no_else.async_start("y"))["after"],
            "hit_all_two": (await hit_all.async_start(5))["after"],
            "hit_all_one": (await hit_all.async_start(1))["after"],
            "hit_all_none_passthrough": (await hit_all.async_start(-1))["after"],
        }
    assert normalize(res) == load_expected("04_match.py")
