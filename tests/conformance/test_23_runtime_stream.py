"""23: runtime stream: chunk items plus the interrupt system items, in order; the consumer
lazily starts the execution and its stream ends when the execution closes.

No deviation in the items. The items a consumer sees carry no sequence number (it lives in
``get_async_runtime_stream_items``), so the recorded keys match as they are.
"""

from __future__ import annotations

import asyncio

# The handlers are the ones tests/test_stream.py exercises beyond the native output.
from tests.test_stream import ask, finish, produce
from triggerflow_temporal import TriggerFlow

from ._expected import load_expected, normalize


async def test_runtime_stream_items_and_interrupt_system_items(runtime):
    flow = TriggerFlow(name="stream")
    flow.to(produce).to(ask).to(finish)
    async with runtime([flow]):
        e = flow.create_execution(auto_close=False)
        items = []

        async def consume():
            async for item in e.get_async_runtime_stream("in", timeout=None):
                items.append(item)

        task = asyncio.create_task(consume())
        for _ in range(500):
            await asyncio.sleep(0.02)
            if len(items) >= 3:  # the pause item is out: the execution is waiting
                break
        assert await e.async_is_waiting()
        await e.async_continue_with("i", "ok")
        await e.async_close()
        await asyncio.wait_for(task, 30)
    projected = []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "interrupt":
            projected.append(
                {
                    "type": "interrupt",
                    "action": item["action"],
                    "interrupt_id": item["interrupt"]["id"],
                    "keys": sorted(item),
                    "value": item.get("value"),
                }
            )
        else:
            projected.append(item)
    assert normalize({"items": projected}) == load_expected("23_runtime_stream.py")
