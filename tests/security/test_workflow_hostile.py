"""Hostile input at the workflow's handlers (issue 17): every resume path checks the
interrupt's ``response_payload_schema``, and the ``emit_nowait`` signal is validated like the
``emit`` update. Each case asserts the refusal and that nothing changed in the execution.
"""

from __future__ import annotations

import asyncio

import pytest

from triggerflow_temporal import TriggerFlow

SCHEMA = {
    "type": "object",
    "required": ["approved"],
    "properties": {"approved": {"type": "boolean"}},
}


async def ask(data):
    return await data.async_pause_for(
        type="approval",
        interrupt_id="gate",
        resume_event="decided",
        response_payload_schema=SCHEMA,
    )


async def on_decided(data):
    await data.async_set_state("decided", data.input)


async def forge(data):
    # A chunk emitting the resume event with a value the schema refuses.
    await data.async_emit("decided", {"approved": "yes-string"})


flow = TriggerFlow(name="sec-resume-event")
flow.to(ask)
flow.when("decided").to(on_decided)
flow.when("forge").to(forge)


async def waiting_state(execution) -> tuple[dict, dict]:
    return await execution.async_get_pending_interrupts(), await execution.async_get_state()


async def test_an_emit_of_the_resume_event_checks_the_schema(runtime):
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        before = await waiting_state(execution)
        with pytest.raises(ValueError, match="response_payload_schema"):
            await execution.async_emit("decided", {"approved": "yes-string"})
        assert await waiting_state(execution) == before  # still waiting, no state written
        await execution.async_emit("decided", {"approved": True})
        pending, state = await waiting_state(execution)
        assert pending == {} and state["decided"] == {"approved": True}
        await execution.async_close()


async def test_the_emit_nowait_signal_is_validated_like_the_update(runtime):
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        before = await waiting_state(execution)
        await execution.async_emit_nowait("decided", {"approved": "yes-string"})
        await execution.async_emit_nowait("decided", None, trigger_type="bogus")
        await asyncio.sleep(0.5)  # signals have no answer: give the workflow a task
        assert await waiting_state(execution) == before
        await execution.async_close(pending_interrupts="cancel")


async def test_a_chunk_emit_cannot_resume_with_a_refused_value(runtime):
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_emit("forge", None)
        pending, state = await waiting_state(execution)
        # The event still reaches its listeners (it is the chunk's emit), but the interrupt
        # is not resumed with a value its schema refuses.
        assert list(pending) == ["gate"] and pending["gate"]["status"] == "waiting"
        assert state["decided"] == {"approved": "yes-string"}
        await execution.async_emit("decided", {"approved": False})
        assert await execution.async_get_pending_interrupts() == {}
        await execution.async_close()
