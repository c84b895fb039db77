"""02: execution state API: set/append/del/get, the emit flag, runtime_data watchers,
dotted keys and the data.state namespace.

Chunk writes are applied by the workflow when the chunk completes, in order (design.md
section 4, semantic differences); reads inside the chunk see its own writes, so the
recorded native snapshot is reproduced exactly.
"""

from __future__ import annotations

from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize


async def writer(data):
    await data.async_set_state("k", "v1")  # emit=True -> watchers fire
    await data.async_set_state("quiet", "q", emit=False)  # no watcher fire
    await data.async_set_state("quiet", "loud")  # fires
    await data.async_append_state("items", 1)
    await data.async_append_state("items", 2)
    await data.async_set_state("nested.deep", 3)
    await data.async_set_state("tmp", 0)
    await data.async_del_state("tmp")
    data.state.set("via_namespace", True)
    await data.async_set_state(
        "reads",
        {
            "missing_default": data.get_state("missing", "dflt"),
            "nested_parent": data.get_state("nested"),
            "nested_dotted": data.get_state("nested.deep"),
            "has_k": "k" in data.state,
        },
    )


async def watcher(data):
    await data.async_append_state("watch_log", [data.trigger_type, data.trigger_event, data.input])


flow = TriggerFlow(name="c02-state")
flow.to(writer)
flow.when({"runtime_data": "k"}).to(watcher)
flow.when({"runtime_data": "quiet"}).to(watcher)

FLOWS = [flow]
REPLAY_CASES = [ReplayCase(flow, None)]


async def test_02_state_api(runtime):
    async with runtime(FLOWS):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_set_state("outside", 1)  # execution-level API works too
        snapshot = await execution.async_close()
    assert normalize({"snapshot": snapshot}) == load_expected("02_state_api.py")
