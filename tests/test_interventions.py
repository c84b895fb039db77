"""Runtime interventions: async_intervene, intervention_point (planned), auto mode,
consumption from chunks, the ledger in state and snapshot, expiry at close."""

from __future__ import annotations

import pytest

from triggerflow_temporal import TriggerFlow


async def prepare(data):
    await data.async_set_state("prepared", data.input)
    return data.input


async def review(data):
    seen = [i["payload"] for i in data.interventions]
    await data.async_set_state("seen", seen)
    for record in data.interventions:
        await data.async_mark_intervention_consumed(record["id"], note="used")
    return data.input


async def wait_here(data):
    return await data.async_pause_for(type="gate", interrupt_id="gate")


planned = TriggerFlow(name="iv-planned")
planned.to(prepare).to(wait_here).intervention_point(name="before-review", target="review").to(
    review
)

auto = TriggerFlow(name="iv-auto")
auto.to(wait_here).to(review)


async def test_planned_interventions_are_inserted_at_the_point_and_consumed(runtime):
    async with runtime([planned]):
        execution = planned.create_execution(auto_close=False)  # planned: the flow has a point
        await execution.async_start("doc")
        kept = await execution.async_intervene(
            {"hint": "be strict"}, author="alice", target="review", note="n"
        )
        other = await execution.async_intervene({"hint": "elsewhere"}, target="nowhere")
        assert kept["status"] == "pending" and kept["version"] == 1 and other["version"] == 2
        assert [i["id"] for i in await execution.async_get_pending_interventions()] == [
            kept["id"],
            other["id"],
        ]
        await execution.async_continue_with("gate", "go")
        state = await execution.async_get_state()
        assert state["seen"] == [{"hint": "be strict"}]
        record = state["$interventions"][kept["id"]]
        assert record["status"] == "inserted"
        assert record["insertion"]["mode"] == "planned"
        assert record["insertion"]["operator_kind"] == "intervention_point"
        assert record["consumers"]["review"]["status"] == "applied"
        assert record["consumers"]["review"]["note"] == "used"
        saved = await execution.async_save()
        assert saved["intervention"]["mode"] == "planned"
        assert saved["intervention"]["version"] == 2
        assert set(saved["intervention"]["ledger"]) == {kept["id"], other["id"]}
        snapshot = await execution.async_close()
    # Close expires what was never inserted; the close snapshot carries the ledger.
    assert snapshot["$interventions"][other["id"]]["status"] == "expired"
    assert snapshot["$interventions"][kept["id"]]["status"] == "inserted"


async def test_auto_mode_inserts_untargeted_interventions_at_the_next_chunk(runtime):
    async with runtime([auto]):
        execution = auto.create_execution(auto_close=False, intervention_mode="auto")
        await execution.async_start("doc")
        record = await execution.async_intervene("tighten the summary")
        await execution.async_continue_with("gate", "go")
        state = await execution.async_get_state()
        assert state["seen"] == ["tighten the summary"]
        inserted = state["$interventions"][record["id"]]
        assert inserted["insertion"]["mode"] == "auto"
        assert inserted["insertion"]["operator_name"] == "review"
        latest = await execution.async_get_latest_intervention(status="inserted")
        assert latest["id"] == record["id"]
        await execution.async_close()


async def test_intervention_errors_match_native(runtime):
    async with runtime([auto, planned]):
        with pytest.raises(ValueError, match="cannot be used with a flow that declares"):
            await planned.create_execution(intervention_mode="auto").async_start("doc")
        disabled = auto.create_execution(auto_close=False)  # no point, no mode: disabled
        await disabled.async_start("doc")
        with pytest.raises(RuntimeError, match="runtime intervention is disabled"):
            await disabled.async_intervene("x")
        await disabled.async_close(pending_interrupts="cancel")
        with pytest.raises(RuntimeError, match="can not accept interventions"):
            await disabled.async_intervene("x")
    with pytest.raises(ValueError, match="intervention_mode must be"):
        auto.create_execution(intervention_mode="sometimes")


async def test_interventions_survive_save_and_load(runtime):
    async with runtime([planned]):
        execution = planned.create_execution(auto_close=False)
        await execution.async_start("doc")
        record = await execution.async_intervene({"hint": "h"}, target="review")
        saved = await execution.async_save()
        copy = planned.create_execution(auto_close=False, execution_id=f"{execution.id}-c")
        await copy.async_load(saved)
        assert [i["id"] for i in await copy.async_get_pending_interventions()] == [record["id"]]
        await copy.async_continue_with("gate", "go")
        assert (await copy.async_get_state())["seen"] == [{"hint": "h"}]
        await copy.async_close()
        await execution.async_close(pending_interrupts="cancel")
