"""pause_for / continue_with on a real dev server (native scripts 10, 11, 12 + rejections)."""

from __future__ import annotations

import asyncio

import pytest

from triggerflow_temporal import TriggerFlow


async def ask(data):
    await data.async_set_state("asked", data.input)
    signal = await data.async_pause_for(type="approval", payload={"ticket": data.input})
    await data.async_set_state("pause_returned_type", type(signal).__name__)
    return signal


async def commit(data):
    await data.async_set_state("decision", data.input)
    await data.async_set_state("commit_is_resume", data.is_resume)


approval = TriggerFlow(name="approval")
approval.to(ask).to(commit)

INTERRUPT_KEYS = [
    "continuation_event",
    "created_at",
    "exchange_kind",
    "external_wait_request",
    "id",
    "max_resumes",
    "payload",
    "resume_count",
    "resume_event",
    "resume_to",
    "resume_value",
    "resumed_at",
    "source_execution_id",
    "source_flow_name",
    "source_operator_id",
    "source_signal",
    "status",
    "type",
]


async def test_script_10_resume_next(runtime):
    async with runtime([approval]):
        execution = approval.create_execution(auto_close=False)
        await execution.async_start("T-1")
        pending = await execution.async_get_pending_interrupts()
        interrupt_id, interrupt = next(iter(pending.items()))
        assert await execution.async_get_status() == "waiting"
        assert await execution.async_is_waiting() is True
        assert len(pending) == 1
        assert sorted(interrupt) == INTERRUPT_KEYS
        assert interrupt["type"] == "approval" and interrupt["payload"] == {"ticket": "T-1"}
        assert interrupt["resume_to"] == "next" and interrupt["status"] == "waiting"
        assert interrupt["source_signal"]["trigger_event"] == "START"
        assert interrupt["continuation_event"].startswith("Chunk[ask]-")
        assert interrupt["external_wait_request"]["dispatch_state"] == "exposed"
        assert await execution.async_get_state() == {
            "asked": "T-1",
            "pause_returned_type": "TriggerFlowPauseSignal",
        }
        returned = await execution.async_continue_with(interrupt_id, {"approved": True})
        assert returned["status"] == "resumed"
        assert await execution.async_get_status() == "running"
        assert await execution.async_get_pending_interrupts() == {}
        record = await execution.async_get_interrupt(interrupt_id)
        assert record["status"] == "resumed" and record["resume_value"] == {"approved": True}
        snapshot = await execution.async_close()
    assert snapshot == {
        "asked": "T-1",
        "commit_is_resume": True,
        "decision": {"approved": True},
        "pause_returned_type": "TriggerFlowPauseSignal",
    }


async def gate(data):
    await data.async_append_state(
        "calls",
        {"input": data.input, "is_resume": data.is_resume, "resume_value": data.resume.value},
    )
    if data.is_resume:
        return {"decision": data.resume.value}
    return await data.async_pause_for(type="approval", interrupt_id="gate-1", resume_to="self")


async def after(data):
    await data.async_set_state("after", data.input)


async def always_pause(data):
    return await data.async_pause_for(type="approval", interrupt_id="loop", resume_to="self")


async def test_script_11_resume_self_and_guard(runtime):
    flow = TriggerFlow(name="self")
    flow.to(gate).to(after)
    guard_flow = TriggerFlow(name="guard")
    guard_flow.to(always_pause)
    async with runtime([flow, guard_flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("doc")
        interrupt = await execution.async_get_interrupt("gate-1")
        assert (interrupt["resume_to"], interrupt["max_resumes"], interrupt["resume_count"]) == (
            "self",
            1,
            0,
        )
        returned = await execution.async_continue_with("gate-1", {"ok": True})
        assert returned["resume_count"] == 1
        snapshot = await execution.async_close()
        assert snapshot == {
            "after": {"decision": {"ok": True}},
            "calls": [
                {"input": "doc", "is_resume": False, "resume_value": None},
                {"input": "doc", "is_resume": True, "resume_value": {"ok": True}},
            ],
        }
        guard = guard_flow.create_execution(auto_close=False)
        await guard.async_start(None)
        with pytest.raises(RuntimeError) as info:
            await guard.async_continue_with("loop", 1)
        assert str(info.value).endswith(
            "TriggerFlow self resume limit reached for interrupt 'loop': resume_count=1, "
            "max_resumes=1."
        )
        assert await guard.async_get_status() == "failed"
        assert await guard.async_get_pending_interrupts() == {}
        assert (await guard.async_get_interrupt("loop"))["status"] == "resumed"
        await guard.async_close()


async def ask_event(data):
    return await data.async_pause_for(type="t", interrupt_id="i1", resume_to={"event": "Approved"})


async def successor(data):
    await data.async_set_state("successor_ran", True)


async def on_approved(data):
    await data.async_set_state("approved", data.input)
    await data.async_set_state("is_resume", data.is_resume)
    await data.async_set_state("resume_interrupt_id", data.resume.interrupt_id)


async def ask_reply(data):
    return await data.async_pause_for(type="t", interrupt_id="i2", resume_event="Reply")


async def on_reply(data):
    await data.async_set_state("reply", data.input)


async def test_script_12_resume_to_event_and_resume_event(runtime):
    flow = TriggerFlow(name="event")
    flow.to(ask_event).to(successor)
    flow.when("Approved").to(on_approved)
    reply_flow = TriggerFlow(name="reply")
    reply_flow.to(ask_reply)
    reply_flow.when("Reply").to(on_reply)
    async with runtime([flow, reply_flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_continue_with("i1", "yes")
        assert await execution.async_close() == {
            "approved": "yes",
            "is_resume": True,
            "resume_interrupt_id": "i1",
        }
        e2 = reply_flow.create_execution(auto_close=False)
        await e2.async_start(None)
        assert await e2.async_get_status() == "waiting"
        assert (await e2.async_get_interrupt("i2"))["resume_to"] == {"event": "Reply"}
        await e2.async_emit("Reply", "hello")
        assert await e2.async_get_status() == "running"
        record = await e2.async_get_interrupt("i2")
        assert (record["status"], record["resume_value"]) == ("resumed", "hello")
        assert await e2.async_close() == {"reply": "hello"}


async def ask_schema(data):
    return await data.async_pause_for(
        type="approval",
        interrupt_id="approve",
        response_payload_schema={
            "type": "object",
            "properties": {"approved": {"type": "boolean"}},
            "required": ["approved"],
        },
    )


async def record_decision(data):
    await data.async_append_state("decisions", data.input)


async def test_continue_rejections_are_not_written_to_history(runtime):
    flow = TriggerFlow(name="reject")
    flow.to(ask_schema).to(record_decision)
    async with runtime([flow]) as client:
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        before = len((await client.get_workflow_handle(execution.id).fetch_history()).events)
        with pytest.raises(KeyError, match="unknown interrupt id"):
            await execution.async_continue_with("nope", {"approved": True})
        with pytest.raises(ValueError, match=r"response_payload_schema at approved"):
            await execution.async_continue_with("approve", {"approved": "yes"})
        with pytest.raises(ValueError, match="response_payload_schema"):
            await execution.async_continue_with("approve", {})
        after_rejects = len((await client.get_workflow_handle(execution.id).fetch_history()).events)
        assert after_rejects == before  # validator rejections never reach history
        first = await execution.async_continue_with(
            "approve", {"approved": True}, resume_request_id="req-1", actor="alice"
        )
        again = await execution.async_continue_with(
            "approve", {"approved": True}, resume_request_id="req-1", actor="alice"
        )
        assert first["status"] == again["status"] == "resumed"
        with pytest.raises(ValueError, match="conflicting resume_request_id"):
            await execution.async_continue_with(
                "approve", {"approved": False}, resume_request_id="req-1"
            )
        with pytest.raises(ValueError, match="is not waiting"):
            await execution.async_continue_with("approve", {"approved": True})
        snapshot = await execution.async_close()
    assert snapshot == {"decisions": [{"approved": True}]}


async def test_concurrent_continues_resume_exactly_once(runtime):
    flow = TriggerFlow(name="race")
    flow.to(ask_schema).to(record_decision)
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)

        async def attempt(i: int):
            try:
                return await execution.async_continue_with("approve", {"approved": True})
            except ValueError:
                return None

        results = await asyncio.gather(*(attempt(i) for i in range(100)))
        snapshot = await execution.async_close()
    assert sum(1 for r in results if r is not None) >= 1
    assert snapshot == {"decisions": [{"approved": True}]}


async def test_one_clients_updates_on_an_execution_queue_in_order_below_the_server_limit():
    # A burst on one execution waits its turn in the client (first come, first served)
    # instead of hitting the server's in-flight limit and retrying in waves: under load
    # some callers lost every wave until the retry deadline (the gateway's burst test).
    from triggerflow_temporal.client import calls

    client, held, peak, order = object(), 0, 0, []

    async def call(i: int) -> None:
        nonlocal held, peak
        async with calls.update_slot(client, "wf-1"):  # type: ignore[arg-type]
            order.append(i)
            held += 1
            peak = max(peak, held)
            await asyncio.sleep(0.01)
            held -= 1

    await asyncio.gather(*(call(i) for i in range(40)))
    assert peak == calls.MAX_UPDATES_IN_FLIGHT < 10
    assert order == list(range(40))
    assert not calls._SLOTS  # nothing kept once nobody holds or waits


async def test_a_slot_not_freed_in_time_is_refused_as_the_server_would(monkeypatch):
    from temporalio.service import RPCError, RPCStatusCode

    from triggerflow_temporal.client import calls

    monkeypatch.setattr(calls, "BUSY_RETRY_SECONDS", 0.05)
    client, release = object(), asyncio.Event()

    async def hold() -> None:
        async with calls.update_slot(client, "wf-2"):  # type: ignore[arg-type]
            await release.wait()

    holders = [asyncio.ensure_future(hold()) for _ in range(calls.MAX_UPDATES_IN_FLIGHT)]
    await asyncio.sleep(0.01)
    with pytest.raises(RPCError) as refused:
        async with calls.update_slot(client, "wf-2"):  # type: ignore[arg-type]
            pass
    assert refused.value.status == RPCStatusCode.RESOURCE_EXHAUSTED
    assert "wf-2" in str(refused.value)
    release.set()
    await asyncio.gather(*holders)
    async with calls.update_slot(client, "wf-2"):  # type: ignore[arg-type]
        pass  # the slots are free again
    assert not calls._SLOTS


async def ask_with_timeout(data):
    return await data.async_pause_for(
        type="approval", interrupt_id="t", timeout=0.5, timeout_value={"approved": False}
    )


async def test_pause_timeout_resolves_on_a_durable_timer(runtime):
    flow = TriggerFlow(name="timeout")
    flow.to(ask_with_timeout).to(record_decision)
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        assert await execution.async_get_status() == "waiting"
        for _ in range(100):
            if await execution.async_get_status() != "waiting":
                break
            await asyncio.sleep(0.1)
        record = await execution.async_get_interrupt("t")
        snapshot = await execution.async_close()
    assert record["status"] == "resumed"
    assert snapshot == {"decisions": [{"approved": False}]}


async def test_close_with_pending_interrupt_errors_or_cancels(runtime):
    async with runtime([approval]):
        execution = approval.create_execution(auto_close=False)
        await execution.async_start("T-9")
        with pytest.raises(RuntimeError, match="still waiting"):
            await execution.async_close()
        assert await execution.async_get_lifecycle_state() == "open"
        snapshot = await execution.async_close(pending_interrupts="cancel")
        assert await execution.async_get_status() == "cancelled"
    assert snapshot["asked"] == "T-9"


async def test_pause_resume_history_replays(runtime):
    from temporalio.worker import Replayer

    from triggerflow_temporal import TriggerFlowPlugin

    flow = TriggerFlow(name="replay-approval")
    flow.to(ask_schema).to(record_decision)
    plugin = TriggerFlowPlugin([flow])
    async with runtime([flow], plugin=plugin) as client:
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_continue_with("approve", {"approved": True}, resume_request_id="r")
        await execution.async_continue_with("approve", {"approved": True}, resume_request_id="r")
        await execution.async_close()
        history = await client.get_workflow_handle(execution.id).fetch_history()
    result = await Replayer(workflows=[], plugins=[plugin]).replay_workflow(history)
    assert result.replay_failure is None


async def read_resume(data):
    await data.async_set_state(
        "seen",
        {
            "keys": sorted(data.resume.to_dict()),
            "source_event": data.resume.interrupt["source_signal"]["trigger_event"],
            "origin_event": data.resume.origin_signal["trigger_event"],
            "meta_resume_id": data.signal_meta["resume"]["interrupt_id"],
            "meta_has_source": "source_signal" in data.signal_meta["resume"]["interrupt"],
        },
    )


async def test_resumed_chunk_gets_the_whole_context_sent_once(runtime):
    import json

    flow = TriggerFlow(name="resume-context")
    flow.to(ask).to(read_resume)
    async with runtime([flow]) as client:
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("T-2")
        interrupt_id = next(iter(await execution.async_get_pending_interrupts()))
        await execution.async_continue_with(interrupt_id, {"approved": True})
        snapshot = await execution.async_close()
        history = await client.get_workflow_handle(execution.id).fetch_history()
    # The chunk sees what it saw before the context was packed (data.resume, signal_meta).
    assert snapshot["seen"] == {
        "keys": ["interrupt", "interrupt_id", "origin_signal", "value"],
        "source_event": "START",
        "origin_event": "START",
        "meta_resume_id": interrupt_id,
        "meta_has_source": True,
    }
    # ...while its activity input carries the context once, without the repeated signal.
    [scheduled] = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name.endswith("read_resume")
    ]
    chunk_input = json.loads(scheduled.input.payloads[0].data)
    assert "resume" not in (chunk_input["signal"].get("meta") or {})  # compact: no empty meta
    assert "source_signal" not in chunk_input["resume"]["interrupt"]
    assert chunk_input["resume"]["origin_signal"]["trigger_event"] == "START"
