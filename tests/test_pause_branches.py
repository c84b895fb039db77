"""Pauses in concurrent branches: design deviations 1 and 2 and for_each items that pause."""

from __future__ import annotations

from triggerflow_temporal import TriggerFlow


async def after_item(data):
    return {"item": data.resume.interrupt["payload"], "answer": data.input}


async def gather(data):
    await data.async_set_state("gathered", data.input)


async def item_pause_with_payload(data):
    return await data.async_pause_for(
        type="item", interrupt_id=f"item-{data.input}", payload=data.input
    )


for_each_flow = TriggerFlow(name="pb-for-each")
(for_each_flow.for_each().to(item_pause_with_payload).to(after_item).end_for_each().to(gather))


async def quick(data):
    return f"quick:{data.input}"


async def left_pause(data):
    return await data.async_pause_for(type="left", interrupt_id="left")


async def right_pause(data):
    return await data.async_pause_for(type="right", interrupt_id="right")


async def joined(data):
    await data.async_set_state("joined", data.input)


one_pauses = TriggerFlow(name="pb-one-pauses")
one_pauses.batch(quick, left_pause).to(joined)

both_pause = TriggerFlow(name="pb-both-pause")
both_pause.batch(left_pause, right_pause).to(joined)


async def test_for_each_items_that_all_pause_each_resume_their_own_item(runtime):
    async with runtime([for_each_flow]):
        execution = for_each_flow.create_execution(auto_close=False)
        await execution.async_start([1, 2, 3])
        assert sorted(await execution.async_get_pending_interrupts()) == [
            "item-1",
            "item-2",
            "item-3",
        ]
        assert await execution.async_get_status() == "waiting"
        for item in (3, 1):  # out of order
            await execution.async_continue_with(f"item-{item}", f"answer-{item}")
            assert await execution.async_get_status() == "waiting"
        assert "gathered" not in await execution.async_get_state()
        await execution.async_continue_with("item-2", "answer-2")
        snapshot = await execution.async_close()
    assert snapshot["gathered"] == [
        {"item": 1, "answer": "answer-1"},
        {"item": 2, "answer": "answer-2"},
        {"item": 3, "answer": "answer-3"},
    ]


async def test_a_branch_finishing_while_another_waits_keeps_its_continuation(runtime):
    async with runtime([one_pauses]):
        execution = one_pauses.create_execution(auto_close=False)
        await execution.async_start("x")
        assert list(await execution.async_get_pending_interrupts()) == ["left"]
        await execution.async_continue_with("left", "L")
        snapshot = await execution.async_close()
    assert snapshot["joined"] == {"quick": "quick:x", "left_pause": "L"}


async def test_concurrent_pauses_resume_their_own_branches(runtime):
    async with runtime([both_pause]):
        execution = both_pause.create_execution(auto_close=False)
        await execution.async_start("x")
        pending = await execution.async_get_pending_interrupts()
        assert sorted(pending) == ["left", "right"]
        # Each interrupt remembers the signal of the chunk that paused (deviation 2).
        assert pending["left"]["source_operator_id"] != pending["right"]["source_operator_id"]
        await execution.async_continue_with("right", "R")
        assert await execution.async_get_status() == "waiting"
        await execution.async_continue_with("left", "L")
        snapshot = await execution.async_close()
    assert snapshot["joined"] == {"left_pause": "L", "right_pause": "R"}
