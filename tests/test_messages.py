"""Message correlation (issue 14, gateway.md ``POST /v1/messages``): a message resumes the
waiting interrupts of its tenant whose ``pause_for(correlation=...)`` matches, without an
execution id; one that arrives before its pause is buffered and delivered once when the
pause starts; one ``message_id`` is one delivery; other tenants are never reached.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.worker import Replayer

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin, send_message
from triggerflow_temporal.spec.mailbox import (
    MAILBOX_WORKFLOW,
    REGISTER_UPDATE,
    WAITERS_QUERY,
    MailboxInput,
    Waiter,
    mailbox_id,
)


async def wait_invoice(data):
    return await data.async_pause_for(
        type="payment",
        interrupt_id="paid",
        correlation={"name": "invoice.paid", "key": data.input},
    )


async def book(data):
    await data.async_set_state("booked", data.input)


flow = TriggerFlow(name="msg-invoice")
flow.to(wait_invoice).to(book)


async def until(predicate, timeout: float = 30.0) -> None:
    """Poll ``predicate`` (async) until true; the pause registers by an activity."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.1)


async def booked(execution) -> bool:
    return "booked" in await execution.async_get_state()


def key() -> str:
    return f"inv-{uuid.uuid4().hex[:8]}"


async def test_a_message_resumes_the_matching_pause_without_an_execution_id(runtime):
    async with runtime([flow]) as client:
        invoice = key()
        execution = flow.create_execution(auto_close=False, tenant="acme")
        await execution.async_start(invoice)
        other = flow.create_execution(auto_close=False, tenant="acme")
        await other.async_start(key())  # another key: not resumed
        await asyncio.sleep(1.0)  # let the pauses register at their mailboxes

        async def deliver() -> dict:
            return await send_message(
                client, "invoice.paid", invoice, {"amount": 12}, message_id="m1", tenant="acme"
            )

        answer = await deliver()
        if answer["buffered"]:  # the registration had not landed yet: it takes it
            await until(lambda: booked(execution))
        else:
            assert answer["delivered_to"] == [
                {"execution_id": execution.id, "interrupt_id": "paid"}
            ]
        await until(lambda: booked(execution))
        assert (await execution.async_get_state())["booked"] == {"amount": 12}
        record = await execution.async_get_interrupt("paid")
        assert record["resume_request_id"] == "message:m1"
        # The same message id again: the first answer, no second delivery.
        again = await deliver()
        assert again["buffered"] is False and again["delivered_to"]
        assert list(await other.async_get_pending_interrupts()) == ["paid"]
        await execution.async_close()
        await other.async_close(pending_interrupts="cancel")


async def test_a_message_before_its_pause_is_buffered_and_delivered_once(runtime):
    async with runtime([flow]) as client:
        invoice = key()
        answer = await send_message(
            client, "invoice.paid", invoice, "early", message_id="early-1", tenant="acme"
        )
        assert answer == {"delivered_to": [], "buffered": True}
        first = flow.create_execution(auto_close=False, tenant="acme")
        await first.async_start(invoice)
        await until(lambda: booked(first))
        assert (await first.async_get_state())["booked"] == "early"
        # A second pause on the same key finds nothing: the message was delivered once.
        second = flow.create_execution(auto_close=False, tenant="acme")
        await second.async_start(invoice)
        await asyncio.sleep(2.0)
        assert list(await second.async_get_pending_interrupts()) == ["paid"]
        await first.async_close()
        await second.async_close(pending_interrupts="cancel")
        # The mailbox's history replays (its code is workflow code too).
        mailbox = client.get_workflow_handle(mailbox_id("acme", "invoice.paid", invoice))
        history = await mailbox.fetch_history()
        replayer = Replayer(workflows=[], plugins=[TriggerFlowPlugin([flow])])
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


async def test_other_tenants_are_not_reached_and_bad_messages_are_refused(runtime):
    async with runtime([flow]) as client:
        invoice = key()
        execution = flow.create_execution(auto_close=False, tenant="acme")
        await execution.async_start(invoice)
        await asyncio.sleep(1.0)
        answer = await send_message(
            client, "invoice.paid", invoice, "x", message_id="t1", tenant="globex"
        )
        assert answer["buffered"] is True
        await asyncio.sleep(1.0)
        assert list(await execution.async_get_pending_interrupts()) == ["paid"]
        with pytest.raises(ValueError, match="ttl_seconds must be a positive number"):
            await send_message(
                client,
                "invoice.paid",
                invoice,
                "x",
                message_id="t2",
                tenant="acme",
                ttl_seconds=0,
            )
        with pytest.raises(ValueError, match="non-empty correlation_key"):
            await send_message(client, "invoice.paid", "", "x", message_id="t3")
        assert list(await execution.async_get_pending_interrupts()) == ["paid"]
        await execution.async_close(pending_interrupts="cancel")


async def test_a_buffered_message_expires_after_its_ttl(runtime):
    async with runtime([flow]) as client:
        invoice = key()
        await send_message(
            client,
            "invoice.paid",
            invoice,
            "late",
            message_id="ttl-1",
            tenant="acme",
            ttl_seconds=1,
        )
        await asyncio.sleep(2.5)
        execution = flow.create_execution(auto_close=False, tenant="acme")
        await execution.async_start(invoice)
        await asyncio.sleep(2.0)
        assert list(await execution.async_get_pending_interrupts()) == ["paid"]
        await execution.async_close(pending_interrupts="cancel")


async def test_a_mailbox_keeps_at_most_its_bound_of_waiters(runtime):
    """Past ``max_waiters`` the oldest registration is dropped (MAX_WAITERS in production;
    the bound travels in the mailbox's input, so its history replays as it ran)."""
    async with runtime([flow]) as client:
        name = f"bound-{uuid.uuid4().hex[:8]}"
        plugin = TriggerFlowPlugin.of_client(client)
        assert plugin is not None
        handle = await client.start_workflow(
            MAILBOX_WORKFLOW,
            MailboxInput(tenant="acme", name=name, key="k", max_waiters=2),
            id=mailbox_id("acme", name, "k"),
            task_queue=plugin.task_queue_for(flow.name),
        )
        for n in range(3):
            await handle.execute_update(REGISTER_UPDATE, Waiter(f"exe-{n}", "paid"))
        waiters = await handle.query(WAITERS_QUERY)
        assert [w["execution_id"] for w in waiters] == ["exe-1", "exe-2"]
        await handle.terminate("test done")
