"""``pause_for`` access rules (issue 14; gateway.md "pause_for additions"): assignees,
candidate groups and forbid_initiator are enforced by the ``continue_with`` validator with
the actor the caller passes, so a refused resume never reaches history; an emit of the
interrupt's resume event is held to the same rules; no actor is a trusted client.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType

from triggerflow_temporal import TriggerFlow

ALICE = {"subject": "alice", "tenant": "acme", "groups": ["ops"], "method": "jwt"}
BOB = {"subject": "bob", "tenant": "acme", "groups": ["sales"], "method": "jwt"}
CAROL = {"subject": "carol", "tenant": "acme", "groups": ["finance"], "method": "api_key"}


async def ask(data):
    return await data.async_pause_for(
        type="approval",
        interrupt_id="gate",
        resume_event="decided",
        assignees=["alice"],
        candidate_groups=["finance"],
        forbid_initiator=True,
    )


async def after(data):
    await data.async_set_state("answer", data.input)


flow = TriggerFlow(name="access-rules")
flow.to(ask).to(after)
flow.when("decided").to(after)


async def bad_pause(data):
    return await data.async_pause_for(type="approval", assignees="alice")


bad = TriggerFlow(name="access-bad-pause")
bad.to(bad_pause)


async def open_pause(data):
    return await data.async_pause_for(type="review", interrupt_id="anyone")


anyone = TriggerFlow(name="access-anyone")
anyone.to(open_pause)


async def accepted_updates(execution) -> int:
    history = await execution.handle.fetch_history()
    return sum(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        for e in history.events
    )


async def test_only_assignees_and_candidate_groups_resume(runtime):
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        record = await execution.async_get_interrupt("gate")
        assert record["access"] == {
            "assignees": ["alice"],
            "candidate_groups": ["finance"],
            "forbid_initiator": True,
            "correlation": None,
        }
        accepted = await accepted_updates(execution)
        with pytest.raises(PermissionError, match="'bob' may not resume interrupt 'gate'"):
            await execution.async_continue_with("gate", "yes", actor=BOB)
        with pytest.raises(PermissionError, match="'bob' may not resume"):
            await execution.async_continue_with("gate", "yes", actor="bob")
        # An emit of the resume event is held to the same rules.
        with pytest.raises(PermissionError, match="emit of 'decided' would resume"):
            await execution.async_emit("decided", "yes", actor=BOB)
        # Nothing reached history: no accepted update, the interrupt still waits.
        assert await accepted_updates(execution) == accepted
        assert list(await execution.async_get_pending_interrupts()) == ["gate"]
        # A candidate group admits.
        record = await execution.async_continue_with("gate", "approved", actor=CAROL)
        assert record["status"] == "resumed"
        assert record["resumed_by"] == "carol"
        principal = record["resumed_by_principal"]
        assert principal["subject"] == "carol" and principal["method"] == "api_key"
        assert principal["at"] == record["resumed_at"]
        assert (await execution.async_get_state())["answer"] == "approved"
        await execution.async_close()


async def test_the_initiator_is_refused_even_as_an_assignee(runtime):
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False, started_by=ALICE)
        await execution.async_start(None)
        with pytest.raises(PermissionError, match="forbid_initiator"):
            await execution.async_continue_with("gate", "self-approved", actor=ALICE)
        assert list(await execution.async_get_pending_interrupts()) == ["gate"]
        await execution.async_continue_with("gate", "ok", actor=CAROL)
        await execution.async_close()


async def test_no_actor_is_a_trusted_client_and_is_recorded_as_such(runtime):
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False, started_by=ALICE)
        await execution.async_start(None)
        record = await execution.async_continue_with("gate", "ops")
        assert record["resumed_by_principal"]["method"] == "temporal_client"
        assert record["resumed_by_principal"]["subject"] is None
        await execution.async_close()


async def test_malformed_actors_and_pause_arguments_are_refused(runtime):
    async with runtime([flow, bad]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        with pytest.raises(ValueError, match="actor must be a subject string"):
            await execution.async_continue_with("gate", "x", actor={"groups": ["finance"]})
        assert list(await execution.async_get_pending_interrupts()) == ["gate"]
        await execution.async_close(pending_interrupts="cancel")
        broken = bad.create_execution(auto_close=False)
        with pytest.raises(ValueError, match=r"pause_for\(assignees=...\).*list of strings"):
            await broken.async_start(None)
        await broken.async_close()


async def test_assigned_to_me_is_one_visibility_query(runtime):
    async with runtime([flow]) as client:
        execution = flow.create_execution(auto_close=False, tenant="acme")
        await execution.async_start(None)
        query = (
            f"WorkflowId = '{execution.id}' AND TriggerFlowStatus = 'waiting' AND "
            "(TriggerFlowAssignees = 'alice' OR TriggerFlowCandidateGroups IN ('finance'))"
        )

        async def listed() -> list[str]:
            return [w.id async for w in client.list_workflows(query)]

        for _ in range(100):  # visibility is eventually consistent
            if await listed():
                break
            await asyncio.sleep(0.1)
        assert await listed() == [execution.id]
        description = await execution.handle.describe()
        attributes = {k.name: v for k, v in description.typed_search_attributes}
        assert attributes["TriggerFlowAssignees"] == ["alice"]
        assert attributes["TriggerFlowCandidateGroups"] == ["finance"]
        await execution.async_continue_with("gate", "ok", actor=CAROL)
        for _ in range(100):
            description = await execution.handle.describe()
            attributes = {k.name: v for k, v in description.typed_search_attributes}
            if not attributes.get("TriggerFlowAssignees"):
                break
            await asyncio.sleep(0.1)
        assert not attributes.get("TriggerFlowAssignees")  # nothing waits for alice now
        await execution.async_close()


async def test_an_interrupt_without_rules_is_listed_for_anyone(runtime):
    async with runtime([anyone]):
        execution = anyone.create_execution(auto_close=False, tenant="acme")
        await execution.async_start(None)
        description = await execution.handle.describe()
        attributes = {k.name: v for k, v in description.typed_search_attributes}
        assert attributes["TriggerFlowAssignees"] == ["*"]
        assert not attributes.get("TriggerFlowCandidateGroups")  # an empty list is unset
        await execution.async_close(pending_interrupts="cancel")
