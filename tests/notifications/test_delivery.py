"""The notify child on the dev server, started directly from a client: concurrent channels,
retries under one webhook-id, failures reported (never raised), approval links, the plan."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from triggerflow_temporal import (
    ApprovalLinks,
    Notification,
    NotificationChannel,
    PermanentDeliveryError,
    TriggerFlowPlugin,
    WebhookChannel,
)
from triggerflow_temporal.examples.approval import refund_flow
from triggerflow_temporal.spec.notifications import (
    NOTIFY_WORKFLOW,
    PLAN_ACTIVITY,
    NotifyOrder,
    iso_time,
)
from triggerflow_temporal.testing import start_local_runtime, worker_options

from ..reliability._support import bounded, wait_until
from ._probe import PlanProbe
from ._receiver import DedupConsumer, Receiver, new_secret

LINK_SECRET = b"notification-delivery-test-link-secret-0123"


def event(kind: str = "interrupt.created", execution_id: str = "exe-1") -> dict[str, Any]:
    return {
        "type": kind,
        "execution_id": execution_id,
        "flow": "refund_approval",
        "tenant": "acme",
        "interrupt_id": "approve-R-1",
        "interrupt_type": "approval",
        "payload": {"refund_id": "R-1", "amount": 42.5},
        "assignees": ["alice", "bob"],
        "candidate_groups": ["managers"],
        "deadline": iso_time(4102444800.0),  # 2100-01-01
        "links": {},
        "at": iso_time(1767225600.0),
    }


def order_for(channels: list[str], **kw: Any) -> NotifyOrder:
    webhook_id = f"exe-{uuid.uuid4().hex[:8]}:approve-R-1:interrupt.created:1"
    return NotifyOrder(webhook_id=webhook_id, event=event(), channels=channels, **kw)


async def notify(client: Client, order: NotifyOrder) -> Any:
    plugin = TriggerFlowPlugin.of_client(client)
    assert plugin is not None
    return await client.start_workflow(
        NOTIFY_WORKFLOW,
        order,
        id=f"notify-test-{uuid.uuid4().hex[:10]}",
        task_queue=plugin.task_queue,
        result_type=dict,
    )


@asynccontextmanager
async def receivers(*answers: Any) -> AsyncIterator[list[Receiver]]:
    started = [Receiver(answer=answer) for answer in answers]
    for receiver in started:
        await receiver.start()
    try:
        yield started
    finally:
        for receiver in started:
            await receiver.stop()


class Recorder(NotificationChannel):
    """A channel of a few lines: keeps what it was handed."""

    def __init__(self, name: str, fail_first: int = 0, permanent: bool = False) -> None:
        self.name = name
        self.fail_first = fail_first
        self.permanent = permanent
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)
        if self.permanent:
            raise PermanentDeliveryError("the chat room was archived")
        if len(self.sent) <= self.fail_first:
            raise ConnectionError("chat service unavailable")


@pytest.mark.timeout(120)
async def test_a_down_channel_delays_only_itself_under_one_webhook_id(runtime):
    ok_secret, ok_key = new_secret()
    down_secret, down_key = new_secret()
    healthy = asyncio.Event()
    ok_consumer, down_consumer = DedupConsumer(ok_key), DedupConsumer(down_key)

    async def down_answer(request: Any) -> int:
        if not healthy.is_set():
            return 503
        return await down_consumer(request)

    async with receivers(ok_consumer, down_answer) as (ok, down):
        channels = [
            WebhookChannel("ok", ok.url, ok_secret),
            WebhookChannel("down", down.url, down_secret),
        ]
        async with runtime([refund_flow], notifiers=channels) as client:
            # The down channel first: delivering one channel after the other would hold
            # the healthy one back until the down one recovers (it never would here).
            order = order_for(["down", "ok"])
            handle = await notify(client, order)
            await wait_until(
                lambda: ok_consumer.processed and len(down.requests) >= 3,
                timeout=60,
                what="the healthy delivery and two retries of the down one",
            )
            # The healthy channel was served while the other was still refusing.
            assert [r.status for r in ok.requests] == [200]
            assert all(r.status == 503 for r in down.requests)
            healthy.set()
            result = await bounded(handle.result(), 60, "the notify child")
    assert result == {"down": "delivered", "ok": "delivered"}
    assert ok.requests[0].seq < down.requests[-1].seq
    assert [r.status for r in down.requests][-1] == 200
    # Every attempt: the same webhook-id and byte-identical body; each verified.
    for request in [*ok.requests, *down.requests]:
        assert request.headers["webhook-id"] == order.webhook_id
        assert request.body == down.requests[0].body
    assert ok_consumer.processed == down_consumer.processed == [order.event]
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


@pytest.mark.timeout(120)
async def test_failed_channels_are_reported_and_the_child_completes(runtime):
    refusing, flaky = Recorder("refusing", permanent=True), Recorder("flaky", fail_first=2)
    async with receivers(lambda request: 503) as (always_down,):
        late = WebhookChannel("late", always_down.url, new_secret()[0])
        async with runtime([refund_flow], notifiers=[refusing, flaky, late]) as client:
            order = order_for(["refusing", "flaky", "late", "nowhere"], deadline_seconds=4)
            handle = await notify(client, order)
            result = await bounded(handle.result(), 60, "the notify child")
            status = (await handle.describe()).status
    assert status == WorkflowExecutionStatus.COMPLETED
    assert result["flaky"] == "delivered"
    assert [n.attempt for n in flaky.sent] == [1, 2, 3]
    assert {n.webhook_id for n in flaky.sent} == {order.webhook_id}
    assert all(n.channel == "flaky" and n.body == order.event for n in flaky.sent)
    # PermanentDeliveryError: one attempt, its message in the result.
    assert len(refusing.sent) == 1
    assert result["refusing"].startswith("failed: ")
    assert "the chat room was archived" in result["refusing"]
    # Retried until the deadline, then failed (the last answer named).
    assert len(always_down.requests) >= 2
    assert result["late"].startswith("failed: the delivery deadline passed; last attempt: ")
    assert "answered 503" in result["late"]
    # A channel this worker lacks: a clear failure naming it and the fix, not retried.
    assert result["nowhere"].startswith("failed: ")
    assert "no notification channel 'nowhere'" in result["nowhere"]
    assert "notifiers=" in result["nowhere"] and "--config" in result["nowhere"]


@pytest.mark.timeout(120)
async def test_approval_links_are_minted_per_subject_and_stable_across_retries(runtime):
    links = ApprovalLinks("https://approvals.example.test", LINK_SECRET)
    flaky = Recorder("chat", fail_first=1)
    async with runtime([refund_flow], notifiers=[flaky], approval_links=links) as client:
        linked = order_for(["chat"], link_round=2, link_subjects=["alice", "bob"])
        plain = order_for(["chat"])
        results = [
            await bounded((await notify(client, order)).result(), 60, "the notify child")
            for order in (linked, plain)
        ]
    assert results == [{"chat": "delivered"}, {"chat": "delivered"}]
    first, retry, unlinked = flaky.sent
    assert first.attempt == 1 and retry.attempt == 2
    assert first.to_json() == retry.to_json()  # a retry sends the same bytes
    assert set(first.links) == {"alice", "bob"}
    for subject, url in first.links.items():
        assert url.startswith("https://approvals.example.test/a/")
        claims = links.verify(url.rsplit("/a/", 1)[1])
        assert claims.subject == subject and claims.round == 2
        assert (claims.execution_id, claims.interrupt_id) == ("exe-1", "approve-R-1")
        assert claims.tenant == "acme" and claims.expires_at <= 4102444800.0
    assert first.links["alice"] != first.links["bob"]
    # The workflow never saw a link (history holds none) and unlinked events carry {}.
    assert linked.event["links"] == {}
    assert unlinked.links == {} and unlinked.body["links"] == {}


async def test_without_links_configured_links_stay_empty(runtime):
    chat = Recorder("chat")
    async with runtime([refund_flow], notifiers=[chat]) as client:
        order = order_for(["chat"], link_round=0, link_subjects=["alice"])
        result = await bounded((await notify(client, order)).result(), 60, "the notify child")
    assert result == {"chat": "delivered"}
    assert chat.sent[0].links == {}


@pytest.mark.parametrize(
    ("notifiers", "expected"),
    [([], []), ([Recorder("sales"), Recorder("ops")], ["ops", "sales"])],
)
async def test_the_plan_answers_with_this_workers_channels(temporal_env, notifiers, expected):
    plugin = TriggerFlowPlugin([refund_flow], notifiers=notifiers)
    queue = f"notify-plan-{uuid.uuid4().hex[:8]}"
    client = Client(**{**temporal_env.client.config(), "plugins": [plugin]})
    async with Worker(client, task_queue=queue, workflows=[PlanProbe], **worker_options()):
        answer = await bounded(
            client.execute_workflow(
                PlanProbe.run,
                id=f"notify-plan-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
                run_timeout=timedelta(seconds=60),
            ),
            60,
            "the plan probe",
        )
    assert answer == expected
    assert PLAN_ACTIVITY  # the probe asks for it by this name, as executions do


async def test_every_worker_serves_the_notify_workflow_and_activities(temporal_env):
    plugin = TriggerFlowPlugin([refund_flow])
    assert NOTIFY_WORKFLOW in {
        getattr(cls, "__temporal_workflow_definition").name for cls in plugin.workflow_classes
    }
    names = {getattr(fn, "__temporal_activity_definition").name for fn in plugin.activities or []}
    assert {"triggerflow.notify.plan", "triggerflow.notify.deliver"} <= names
    async with start_local_runtime([refund_flow], client=temporal_env.client) as client:
        order = order_for(["ops"])
        result = await bounded((await notify(client, order)).result(), 60, "the notify child")
    assert result["ops"].startswith("failed: ") and "it has none" in result["ops"]


def test_channels_are_checked_when_the_plugin_is_built():
    with pytest.raises(ValueError, match="Two notification channels are named 'ops'"):
        TriggerFlowPlugin([refund_flow], notifiers=[Recorder("ops"), Recorder("ops")])
    with pytest.raises(TypeError, match="list of notification channels"):
        TriggerFlowPlugin([refund_flow], notifiers=Recorder("ops"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty string `name`"):
        TriggerFlowPlugin([refund_flow], notifiers=[object()])  # type: ignore[list-item]

    class NoSend:
        name = "mute"

    with pytest.raises(TypeError, match="async def send"):
        TriggerFlowPlugin([refund_flow], notifiers=[NoSend()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="ApprovalLinks"):
        TriggerFlowPlugin([refund_flow], approval_links="https://x")  # type: ignore[arg-type]
