"""08: collect(name, branch_id) joins branches that hang off the SAME root chain and emits
{branch_id: value} once every configured branch has a value. Branches rooted in separate
flow.when(...) calls get separate collect namespaces and never join.

Native 4.1.4.10 raises KeyError for when({"collect": name}); design.md section 4,
deviation 6 makes it work here, so that expectation differs on purpose and the
feature is exercised by its own flow.
"""

from __future__ import annotations

import asyncio

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize


async def left(data):
    return "L:" + str(data.input)


async def right(data):
    await asyncio.sleep(0.01)
    return "R:" + str(data.input)


async def done(data):
    await data.async_append_state("done", data.input)


async def fan(data):
    await data.async_emit("L", data.input)
    await data.async_emit("R", data.input)


async def passthrough(data):
    return data.input


same_root = TriggerFlow(name="c08-collect-same-root")
same_root.to(left).collect("pair", "l")
same_root.to(right).collect("pair", "r").to(done)

forked = TriggerFlow(name="c08-collect-forked")
root = forked.to(passthrough)  # forks from one process object also share the root
root.to(left).collect("pair", "l")
root.to(right).collect("pair", "r").to(done)

separate = TriggerFlow(name="c08-collect-separate-when")
separate.to(fan)
separate.when("L").to(left).collect("pair", "l")
separate.when("R").to(right).collect("pair", "r").to(done)

# Deviation 6: a root listening to the collect join itself.
collect_when = TriggerFlow(name="c08-collect-when")
collect_when.to(left).collect("pair", "l")
collect_when.to(right).collect("pair", "r")
collect_when.when({"collect": "pair"}).to(done)

FLOWS = [same_root, forked, separate, collect_when]
REPLAY_CASES = [
    ReplayCase(same_root, "x"),
    ReplayCase(forked, "y"),
    ReplayCase(separate, "z"),
    ReplayCase(collect_when, "w"),
]


def when_collect_dict() -> str:
    try:
        TriggerFlow(name="c08-bad").when({"collect": "pair"})
    except Exception as error:  # the native script records the type name
        return type(error).__name__
    return "ok"


async def test_08_collect(runtime):
    async with runtime(FLOWS):
        result = {
            "same_root": (await same_root.async_start("x"))["done"],
            "forked_root": (await forked.async_start("y"))["done"],
            "separate_when_roots": (await separate.async_start("z"))["done"],
            "when_collect_dict": when_collect_dict(),
        }
        collect_when_snapshot = await collect_when.async_start("w")
    expected = load_expected("08_collect.py")
    # Deviation 6 (design.md section 4): when({"collect": name}) works; native raises
    # KeyError ("QUIRK" in EXPECTED.md).
    assert expected["when_collect_dict"] == "KeyError"
    expected["when_collect_dict"] = "ok"
    assert normalize(result) == expected
    # ...and it really fires, once, with the collected dict of the same-root branches.
    assert collect_when_snapshot == {"done": [{"l": "L:w", "r": "R:w"}]}
