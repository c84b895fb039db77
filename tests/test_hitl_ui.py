"""What the Temporal UI and other systems see: search attributes, details, signal variant."""

from __future__ import annotations

import asyncio

import pytest

from triggerflow_temporal import TriggerFlow


async def ask(data):
    return await data.async_pause_for(
        type="approval",
        interrupt_id="approve",
        payload={"amount": 42},
        response_payload_schema={"type": "object", "required": ["approved"]},
    )


async def done(data):
    await data.async_set_state("decision", data.input)


flow = TriggerFlow(name="ui-approval")
flow.to(ask).to(done)


async def _visible(client, query: str, expected: set[str]) -> set[str]:
    found: set[str] = set()
    for _ in range(100):  # visibility is eventually consistent: bounded poll (10 s)
        found = {wf.id async for wf in client.list_workflows(query)}
        if expected <= found:
            return found
        await asyncio.sleep(0.1)
    return found


async def test_waiting_executions_are_one_visibility_query(runtime):
    async with runtime([flow]) as client:
        waiting = flow.create_execution(auto_close=False, tenant="acme")
        await waiting.async_start(None)
        query = (
            "TriggerFlowStatus = 'waiting' AND TriggerFlowName = 'ui-approval' "
            "AND TriggerFlowPendingInterruptTypes = 'approval' AND TriggerFlowTenant = 'acme'"
        )
        assert waiting.id in await _visible(client, query, {waiting.id})
        description = await waiting.handle.describe()
        attrs = {k.name: v for k, v in description.typed_search_attributes}  # type: ignore[attr-defined]
        assert attrs["TriggerFlowBlueprint"] == flow.compile().blueprint_hash
        assert attrs["TriggerFlowPendingInterruptTypes"] == ["approval"]
        # Static summary/details and current details (Markdown) for the UI.
        assert await description.static_summary() == f"ui-approval @ {flow.compile().short_hash}"
        assert "```mermaid" in (await description.static_details() or "")
        details = await waiting.handle.query("__temporal_workflow_metadata")
        assert "`approve` (approval)" in details.current_details
        await waiting.async_continue_with("approve", {"approved": True})
        await waiting.async_close()
        closed = "TriggerFlowStatus = 'completed' AND TriggerFlowName = 'ui-approval'"
        assert waiting.id in await _visible(client, closed, {waiting.id})


async def test_search_attributes_can_be_turned_off_per_plugin(runtime):
    # High-throughput flows may skip them: no upsert per status change, nothing listed.
    async with runtime([flow], search_attributes=False) as client:
        execution = flow.create_execution(auto_close=False, tenant="acme")
        await execution.async_start(None)
        description = await execution.handle.describe()
        names = {k.name for k, _ in description.typed_search_attributes}  # type: ignore[attr-defined]
        assert not {n for n in names if n.startswith("TriggerFlow")}
        await execution.async_continue_with("approve", {"approved": True})
        await execution.async_close()
        history = await execution.handle.fetch_history()
        kinds = {event.WhichOneof("attributes") for event in history.events}
        assert "upsert_workflow_search_attributes_event_attributes" not in kinds
        assert "workflow_execution_completed_event_attributes" in kinds
        saved = await execution.async_save()
        copy = flow.create_execution(client=client)
        await copy.async_load(saved, execution_id=f"{execution.id}-copy")
        names = {k.name for k, _ in (await copy.handle.describe()).typed_search_attributes}  # type: ignore[attr-defined]
        assert not {n for n in names if n.startswith("TriggerFlow")}
        await copy.async_close()


async def test_signal_variant_records_rejections_and_resumes_once(runtime):
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_continue_with_nowait("nope", {"approved": True})
        await execution.async_continue_with_nowait("approve", {"missing": "approved"})
        await execution.async_continue_with_nowait(
            "approve", {"approved": 1}, resume_request_id="r"
        )
        await execution.async_continue_with_nowait(
            "approve", {"approved": 2}, resume_request_id="r"
        )
        for _ in range(100):
            if await execution.async_get_status() != "waiting":
                break
            await asyncio.sleep(0.05)
        rejected = await execution.async_get_rejected_requests()
        assert [(r["interrupt_id"], r["error_type"]) for r in rejected] == [
            ("nope", "KeyError"),
            ("approve", "ValueError"),
            ("approve", "ValueError"),
        ]
        assert "response_payload_schema" in rejected[1]["error"]
        assert "conflicting resume_request_id" in rejected[2]["error"]
        assert (await execution.async_get_state())["decision"] == {"approved": 1}
        saved = await execution.async_save()
        assert len(saved["durable_system_state"]["temporal"]["rejected_requests"]) == 3
        entry = saved["resume_ledger"]["approve"]["r"]  # Agently's {interrupt: {request}}
        assert entry["value"] == {"approved": 1} and entry["status"] == "completed"
        await execution.async_close()


async def test_update_rejections_leave_history_untouched(runtime):
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        before = len((await execution.handle.fetch_history()).events)
        with pytest.raises(KeyError):
            await execution.async_continue_with("nope", {})
        with pytest.raises(ValueError, match="response_payload_schema"):
            await execution.async_continue_with("approve", {"x": 1})
        assert len((await execution.handle.fetch_history()).events) == before
        await execution.async_close(pending_interrupts="cancel")
