"""Notifications, reminders and escalation from the workflow's side (issue 15).

``pause_for(remind_every=, escalate_after=, escalate_to=)`` are durable timers in the
interrupt record; every interrupt event (created, reminded, escalated, resumed, timed out,
cancelled) and the execution's end reach each configured channel once, under a stable
``webhook-id``, through an abandoned ``triggerflow.notify`` child. Reminders and escalation
run on the time-skipping test server here (hours pass in no time); the search-attribute
and restart cases on the dev server.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from triggerflow_temporal import ApprovalLinks, NotificationChannel, TriggerFlow
from triggerflow_temporal.chunk.pause import validate_pause_request
from triggerflow_temporal.plugin.links import payload_hash
from triggerflow_temporal.testing import start_local_runtime

HOUR = 3600.0
# The time-skipping test server has no custom search attributes (the client says so once).
NO_SEARCH_ATTRIBUTES = pytest.mark.filterwarnings(
    "ignore:Namespace 'default' does not have the TriggerFlow search attributes:RuntimeWarning"
)
LINK_SECRET = b"notify-flows-test-link-secret-0123456789"
LINKS = ApprovalLinks("https://approvals.test", LINK_SECRET)
APPROVAL_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "comment": {"type": "string"}},
    "required": ["approved"],
}


class Recorder(NotificationChannel):
    """A channel that keeps what it was sent (the worker runs in this process)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Any] = []

    async def send(self, notification: Any) -> None:
        self.sent.append(notification)

    def bodies(self) -> list[dict[str, Any]]:
        return [n.body for n in self.sent]

    def types(self) -> list[str]:
        return [n.body["type"] for n in self.sent]


async def ask_refund(data):
    return await data.async_pause_for(
        type="approval",
        interrupt_id="refund",
        payload={"amount": 120, "evidence": "rec_refund_1"},
        response_payload_schema=APPROVAL_SCHEMA,
        assignees=["alice"],
        remind_every=HOUR,
        escalate_after=3.5 * HOUR,
        escalate_to={"assignees": ["boss"], "candidate_groups": ["managers"]},
    )


async def record_decision(data):
    await data.async_set_state("decision", data.input)


reminded = TriggerFlow(name="notify-reminded")
reminded.to(ask_refund).to(record_decision)


async def ask_with_timeout(data):
    return await data.async_pause_for(
        type="approval",
        interrupt_id="quick",
        assignees=["alice"],
        timeout=2 * HOUR,
        timeout_value={"approved": False},
    )


timed = TriggerFlow(name="notify-timed")
timed.to(ask_with_timeout).to(record_decision)


async def ask_ops(data):
    return await data.async_pause_for(
        type="approval",
        interrupt_id="ops-only",
        channel_id="ops",
        assignees=["alice"],
        escalate_after=1,
        escalate_to={"assignees": ["bob"]},
    )


routed = TriggerFlow(name="notify-routed")
routed.to(ask_ops).to(record_decision)


async def ask_paced(data):
    return await data.async_pause_for(
        type="approval", interrupt_id="paced", assignees=["alice"], remind_every=1
    )


paced = TriggerFlow(name="notify-paced")
paced.to(ask_paced).to(record_decision)


async def ask_paced_escalation(data):
    return await data.async_pause_for(
        type="approval",
        interrupt_id="esc",
        assignees=["alice"],
        remind_every=2,
        escalate_after=3,
        escalate_to={"assignees": ["bob"]},
    )


paced_escalation = TriggerFlow(name="notify-paced-escalation")
paced_escalation.to(ask_paced_escalation).to(record_decision)


async def explode(data):
    raise RuntimeError("card declined")


failing = TriggerFlow(name="notify-failing")
failing.to(explode)


async def wait_for(predicate, what: str, *, seconds: float = 60.0) -> None:
    """Poll ``predicate`` (deliveries run in activities, after the workflow task)."""
    for _ in range(int(seconds * 10)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def claims_of(url: str):
    return LINKS.verify(url.rsplit("/a/", 1)[1])


@NO_SEARCH_ATTRIBUTES
async def test_reminders_until_answered_then_escalation_widens_access(time_skipping_env):
    env = time_skipping_env
    ops = Recorder("ops")
    async with start_local_runtime(
        [reminded], client=env.client, notifiers=[ops], approval_links=LINKS
    ):
        execution = reminded.create_execution(auto_close=False)
        await execution.async_start(None)
        await wait_for(lambda: ops.types() == ["interrupt.created"], "interrupt.created")
        created = ops.bodies()[0]
        assert created["interrupt_id"] == "refund"
        assert created["assignees"] == ["alice"] and created["candidate_groups"] == []
        assert created["payload"] == {"amount": 120, "evidence": "rec_refund_1"}
        assert set(created["links"]) == {"alice"}
        claims = claims_of(created["links"]["alice"])
        assert (claims.execution_id, claims.interrupt_id, claims.subject, claims.round) == (
            execution.id,
            "refund",
            "alice",
            0,
        )
        assert claims.payload_hash == payload_hash(created["payload"])
        # The escalation target may not answer before the escalation.
        with pytest.raises(PermissionError, match="'boss' may not resume"):
            await execution.async_continue_with(
                "refund", {"approved": True}, actor={"subject": "boss", "groups": []}
            )

        await env.sleep(timedelta(hours=3.75))
        expected = ["interrupt.created"] + ["interrupt.reminded"] * 3 + ["interrupt.escalated"]
        await wait_for(lambda: len(ops.sent) >= 5, "three reminders and the escalation")
        assert ops.types() == expected
        escalated = ops.bodies()[4]
        assert escalated["assignees"] == ["alice", "boss"]
        assert escalated["candidate_groups"] == ["managers"]
        assert set(escalated["links"]) == {"boss"}  # links for the new assignees only
        assert claims_of(escalated["links"]["boss"]).subject == "boss"
        record = await execution.async_get_interrupt("refund")
        assert record["access"]["assignees"] == ["alice", "boss"]
        assert record["follow_up"]["reminders_sent"] == 3 and record["follow_up"]["escalated"]

        await execution.async_continue_with(
            "refund", {"approved": True}, actor={"subject": "boss", "groups": []}
        )
        await wait_for(lambda: "interrupt.resumed" in ops.types(), "interrupt.resumed")
        await env.sleep(timedelta(hours=5))  # no reminder after the answer
        await execution.async_close()
        await wait_for(lambda: "execution.completed" in ops.types(), "execution.completed")
        assert ops.types() == expected + ["interrupt.resumed", "execution.completed"]
        ids = [n.webhook_id for n in ops.sent]
        assert len(set(ids)) == len(ids)
        assert ids[0] == f"{execution.id}:refund:interrupt.created:1"
        assert ids[-1] == f"{execution.id}:-:execution.completed:7"
        assert ops.bodies()[-1]["interrupt_id"] is None
        assert ops.bodies()[5]["links"] == {}  # a resumed interrupt offers no links


@NO_SEARCH_ATTRIBUTES
async def test_an_assigned_pause_times_out_and_says_so(time_skipping_env):
    """The timeout resumes an interrupt whatever its assignees (it is not an approver)."""
    env = time_skipping_env
    ops = Recorder("ops")
    async with start_local_runtime([timed], client=env.client, notifiers=[ops]):
        execution = timed.create_execution(auto_close=False)
        await execution.async_start(None)
        await env.sleep(timedelta(hours=2.5))
        await wait_for(lambda: "interrupt.timed_out" in ops.types(), "interrupt.timed_out")
        record = await execution.async_get_interrupt("quick")
        assert record["status"] == "resumed"
        assert (await execution.async_get_state())["decision"] == {"approved": False}
        timed_out = ops.bodies()[-1]
        assert timed_out["deadline"] is not None and timed_out["links"] == {}
        await execution.async_close()


async def test_channel_id_routes_and_escalation_updates_search_attributes(runtime):
    ops, sales = Recorder("ops"), Recorder("sales")
    async with runtime([routed], notifiers=[ops, sales]):
        execution = routed.create_execution(auto_close=False)
        await execution.async_start(None)
        await wait_for(lambda: "interrupt.escalated" in ops.types(), "the escalation")
        assert sales.sent == []  # the pause named its channel
        description = await execution.handle.describe()
        attributes = {k.name: v for k, v in description.typed_search_attributes}
        assert "bob" in attributes.get("TriggerFlowAssignees", [])
        await execution.async_continue_with("ops-only", "ok", actor={"subject": "bob"})
        await execution.async_close()
        await wait_for(lambda: "execution.completed" in sales.types(), "completed to all")
        assert ops.types() == [
            "interrupt.created",
            "interrupt.escalated",
            "interrupt.resumed",
            "execution.completed",
        ]
        assert sales.types() == ["execution.completed"]  # execution events go everywhere


async def test_failure_and_cancellation_are_told(runtime):
    ops = Recorder("ops")
    async with runtime([failing, routed], notifiers=[ops]):
        execution = failing.create_execution(auto_close=False)
        with pytest.raises(Exception, match="card declined"):
            await execution.async_start(None)
        await wait_for(lambda: "execution.failed" in ops.types(), "execution.failed")
        failed = ops.bodies()[-1]
        assert failed["error"]["message"].endswith("card declined")
        assert failed["status"] == "failed"

        ops.sent.clear()
        paused = routed.create_execution(auto_close=False)
        await paused.async_start(None)
        await paused.async_close(pending_interrupts="cancel")
        await wait_for(lambda: "interrupt.cancelled" in ops.types(), "interrupt.cancelled")
        assert "execution.completed" not in ops.types()


def pausing_results(history: Any) -> list[dict[str, Any]]:
    """The decoded results of the chunk activities that paused, in history order."""
    results = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            continue
        payloads = event.activity_task_completed_event_attributes.result.payloads
        result = json.loads(payloads[0].data) if payloads else None
        if isinstance(result, dict) and result.get("pause") is not None:
            results.append(result)
    return results


async def test_no_channels_no_children(runtime):
    """A worker without channels says so with the pause; nothing is started."""
    async with runtime([routed]):
        execution = routed.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_close(pending_interrupts="cancel")
        history = await execution.handle.fetch_history()
        names = [e.event_type for e in history.events]
        assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED not in names
        # The pausing chunk's result named the (no) channels: no plan local activity,
        # neither for the pause nor for the cancellation and the close after it.
        assert [r["channels"] for r in pausing_results(history)] == [[]]
        assert EventType.EVENT_TYPE_MARKER_RECORDED not in names


async def test_the_pausing_chunk_brings_the_channels_and_they_are_used(runtime):
    """The worker's channel names come with the pause request: every event of the run
    reaches them without a local activity (one marker event less per paused execution;
    a run that must pin a local activity in the worker's cache no longer does)."""
    ops, sales = Recorder("ops"), Recorder("sales")
    async with runtime([routed], notifiers=[sales, ops]):
        execution = routed.create_execution(auto_close=False)
        await execution.async_start(None)
        await wait_for(lambda: "interrupt.created" in ops.types(), "interrupt.created")
        await execution.async_continue_with("ops-only", "ok", actor={"subject": "alice"})
        await execution.async_close()
        await wait_for(lambda: "execution.completed" in sales.types(), "completed to all")
        history = await execution.handle.fetch_history()
    assert [r["channels"] for r in pausing_results(history)] == [["ops", "sales"]]
    assert EventType.EVENT_TYPE_MARKER_RECORDED not in [e.event_type for e in history.events]
    assert ops.types() == ["interrupt.created", "interrupt.resumed", "execution.completed"]
    assert sales.types() == ["execution.completed"]


async def test_reminders_go_on_after_a_worker_restart(temporal_env):
    """The follow-up timer lives in history: a new worker picks the reminders up (it replays
    the run first), and the event sequence goes on without repeating a webhook-id."""
    ops = Recorder("ops")
    queue = f"notify-restart-{uuid.uuid4().hex[:8]}"
    client = temporal_env.client
    kw: dict[str, Any] = {"client": client, "task_queue": queue, "notifiers": [ops]}
    async with start_local_runtime([paced], **kw):
        execution = paced.create_execution(auto_close=False)
        await execution.async_start(None)
        execution_id = execution.id
        await wait_for(lambda: "interrupt.reminded" in ops.types(), "a first reminder")
    before = ops.types().count("interrupt.reminded")
    await asyncio.sleep(2.5)  # no worker: the timer fires on the server meanwhile
    async with start_local_runtime([paced], **kw) as connected:
        await wait_for(
            lambda: ops.types().count("interrupt.reminded") >= before + 2, "more reminders"
        )
        again = paced.get_execution(connected, execution_id)
        await again.async_continue_with("paced", "ok", actor="alice")
        await again.async_close()
        await wait_for(lambda: "execution.completed" in ops.types(), "execution.completed")
    ids = [n.webhook_id for n in ops.sent]
    assert len(set(ids)) == len(ids)
    seqs = [int(i.rsplit(":", 1)[1]) for i in ids]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))  # one sequence across workers


@NO_SEARCH_ATTRIBUTES
async def test_a_timeout_falls_due_while_sealed(time_skipping_env):
    """Sealing refuses external calls only: the interrupt's own timer still resumes it."""
    env = time_skipping_env
    async with start_local_runtime([timed], client=env.client):
        execution = timed.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_seal()
        await env.sleep(timedelta(hours=2.5))
        record = await execution.async_get_interrupt("quick")
        assert record["status"] == "resumed" and record["resumed_by_principal"]["at"]
        assert (await execution.async_get_state())["decision"] == {"approved": False}
        await execution.async_unseal()
        await execution.async_close()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"remind_every": 0}, r"remind_every=0\) in chunk 'ask' must be a number of seconds >= 1"),
        ({"remind_every": "daily"}, "remind_every='daily'"),
        ({"escalate_after": True}, "escalate_after=True"),
        ({"escalate_to": {"assignees": ["bob"]}}, "needs escalate_after=seconds"),
        ({"escalate_after": 60, "escalate_to": {"boss": ["bob"]}}, "escalate_to=...\\) in chunk"),
        ({"escalate_after": 60, "escalate_to": {"assignees": "bob"}}, "must be a list of strings"),
    ],
)
def test_follow_up_arguments_are_checked_when_the_pause_is_made(arguments, message):
    with pytest.raises(ValueError, match=message):
        validate_pause_request("ask", {"type": "approval", **arguments})
    plan = validate_pause_request(
        "ask", {"type": "approval", "remind_every": timedelta(hours=1), "escalate_after": 7200}
    )
    assert (plan["remind_every"], plan["escalate_after"]) == (3600.0, 7200.0)
