"""Flows for tests/test_agently_compat.py, built with either TriggerFlow class.

Every ``build_*`` takes the TriggerFlow class to build with (``agently.TriggerFlow`` or
``triggerflow_temporal.TriggerFlow``): the builder API is the same, so one definition gives
the native flow and the hand-written equivalent. The handlers live here, in an importable
module, as a worker needs.
"""

from __future__ import annotations

import functools
from typing import Any

RATE = {"rate": 3}


# ----------------------------------------------------------------- order flow
async def normalize_order(data):
    order = dict(data.input)
    await data.async_set_state("order_id", order["id"])
    return order


def is_rush(data):
    return data.value.get("rush") is True


async def rush(data):
    await data.async_set_state("route", "rush")
    return data.input["lines"]


async def standard(data):
    await data.async_set_state("route", "standard")
    return data.input["lines"]


async def price_line(data):
    rate = data.require_resource("rate")
    return data.input * rate


async def total(data):
    return sum(data.input)


async def count(data):
    return len(data.input)


async def store_quote(data):
    await data.async_set_state("quote", data.input)
    return data.input


def build_order(flow_class: Any, name: str = "agently-order") -> Any:
    """normalize -> if rush/else -> for_each(price_line) -> batch(total, count) -> store."""
    flow = flow_class(name=name)
    flow.update_runtime_resources(RATE)
    (
        flow.to(normalize_order)
        .if_condition(is_rush)
        .to(rush)
        .else_condition()
        .to(standard)
        .end_condition()
        .for_each()
        .to(price_line)
        .end_for_each()
        .batch(total, count)
        .to(store_quote)
    )
    return flow


# -------------------------------------------------------------- approval flow
async def ask(data):
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(type="approval", payload={"ticket": data.input})


async def commit(data):
    await data.async_set_state("decision", data.input)
    await data.async_set_state("commit_is_resume", data.is_resume)


def build_approval(flow_class: Any, name: str = "agently-approval") -> Any:
    """ask (pause_for approval) -> commit."""
    flow = flow_class(name=name)
    flow.to(ask).to(commit)
    return flow


# ---------------------------------------------------------- sub-flow, collect
async def double(data):
    return data.input * 2


async def remember(data):
    await data.async_set_state("child_value", data.input)
    return data.input


async def prepare(data):
    return data.input + 1


async def finish(data):
    await data.async_set_state("from_child", data.input)


def build_parent(flow_class: Any, name: str = "agently-parent") -> Any:
    """prepare -> sub-flow (double -> remember) -> finish."""
    child = flow_class(name=f"{name}-child")
    child.to(double).to(remember)
    flow = flow_class(name=name)
    flow.to(prepare).to_sub_flow(child).to(finish)
    return flow


def is_odd(data):
    return isinstance(data.value, int) and data.value % 2 == 1


async def left(data):
    return "L"


async def right(data):
    return "R"


def build_joins(flow_class: Any, name: str = "agently-joins") -> Any:
    """Branches joined by collect, a when-root, a value case and a hit_all match."""
    flow = flow_class(name=name)
    start = flow.to(prepare)
    start.to(left).collect("sides", "left")
    start.to(right).collect("sides", "right").to(store_quote)
    flow.when("poke").to(double).to(remember)
    (
        flow.when(["a", "b"], mode="simple_or")
        .match(mode="hit_all")
        .case(3)
        .to(left)
        .case(is_odd)
        .to(right)
        .end_match()
        .to(store_hits)
    )
    return flow


async def store_hits(data):
    await data.async_set_state("hits", data.input)


# ------------------------------------------------------- flows that must fail
def build_lambda(flow_class: Any, name: str = "agently-lambda") -> Any:
    flow = flow_class(name=name)
    flow.to(normalize_order).to(lambda data: data.input)
    return flow


def make_step(n: int) -> Any:
    async def step(data):
        return data.input + n

    return step


def build_clash(flow_class: Any, name: str = "agently-clash") -> Any:
    flow = flow_class(name=name)
    flow.to(make_step(1)).to(make_step(2))
    return flow


def above(data, limit=0):
    return data.value > limit


def build_partial_condition(flow_class: Any, name: str = "agently-partial") -> Any:
    flow = flow_class(name=name)
    flow.if_condition(functools.partial(above, limit=3)).to(double).end_condition()
    return flow
