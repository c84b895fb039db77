"""Notifications, reminders and escalation of interrupts (workflow side, a mixin).

Workflow code decides that an event happened and builds its body; delivery is the
:data:`~..spec.notifications.NOTIFY_WORKFLOW` child's (activities, retries, signatures,
approval links), started abandoned so the execution never waits for a slow channel. Which
channels exist is the worker's configuration, so it is asked once per run by a local
activity whose answer is recorded in history: replay does not depend on the worker that
replays. Only executions started with ``ExecutionOptions.notifications`` notify (histories
recorded before it replay unchanged).

Reminders and escalation (``pause_for(remind_every=, escalate_after=, escalate_to=)``) are
durable timers kept in the interrupt record (``follow_up``), so they survive restarts,
continue-as-new and load; escalation widens who may resume and the search attributes
follow.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from ..spec.notifications import (
    EXECUTION_FAILED,
    INTERRUPT_CANCELLED,
    INTERRUPT_CREATED,
    INTERRUPT_ESCALATED,
    INTERRUPT_REMINDED,
    NOTIFY_WORKFLOW,
    PLAN_ACTIVITY,
    NotifyOrder,
    iso_time,
    webhook_id,
)
from .access import ACCESS_KEY
from .interrupt_records import FOLLOW_UP_KEY
from .workflow_base import WorkflowBase

# Events that carry approval links (an approver can still act on them).
_LINKED = (INTERRUPT_CREATED, INTERRUPT_REMINDED, INTERRUPT_ESCALATED)


class NotifyMixin(WorkflowBase):
    """Notification and follow-up bookkeeping of :class:`~.workflow.TriggerFlowWorkflow`."""

    _notify_seq: int
    _notify_plan: asyncio.Future[list[str]] | None
    _notify_sends: list[asyncio.Future[None]]
    _follow_ups: dict[str, asyncio.Future[None]]

    def _init_notify(self, carry: dict[str, Any] | None) -> None:
        self._notify_seq = int((carry or {}).get("seq") or 0)
        self._notify_plan = None  # asked again in every run: workers may have changed
        self._notify_sends = []
        self._follow_ups = {}

    def _export_notify(self) -> dict[str, Any]:
        return {"seq": self._notify_seq}

    # ------------------------------------------------------------ notifications
    def _notify(
        self,
        kind: str,
        record: dict[str, Any] | None = None,
        *,
        link_subjects: list[str] | None = None,
    ) -> None:
        """Tell the channels about ``kind`` (of ``record``, or of the execution)."""
        if not self._options.notifications or not self._in_own_workflow():
            return
        self._notify_seq += 1
        seq = self._notify_seq
        event = self._notification_body(kind, record)
        event["seq"] = seq
        order = NotifyOrder(
            webhook_id=webhook_id(self._execution_id, event["interrupt_id"], kind, seq),
            event=event,
            channels=[],
        )
        if record is not None and kind in _LINKED:
            order.link_round = int(record.get("resume_count") or 0)
            order.link_subjects = (
                list(link_subjects) if link_subjects is not None else event["assignees"]
            )
        channel_id = None
        if record is not None:
            channel_id = (record.get("external_wait_request") or {}).get("channel_id")
        self._notify_sends = [task for task in self._notify_sends if not task.done()]
        self._notify_sends.append(asyncio.ensure_future(self._send(order, channel_id)))

    def _notification_body(self, kind: str, record: dict[str, Any] | None) -> dict[str, Any]:
        """The flat body of gateway.md (``links`` are minted by the delivering activity)."""
        body: dict[str, Any] = {
            "type": kind,
            "execution_id": self._execution_id,
            "flow": self._spec.name,
            "tenant": self._options.tenant,
            "interrupt_id": None,
            "interrupt_type": None,
            "payload": None,
            "assignees": None,
            "candidate_groups": None,
            "deadline": None,
            "links": {},
            "at": iso_time(workflow.now().timestamp()),
            "status": self._status,
        }
        if record is not None:
            assignees, groups = self._who_may_resume(record)
            body.update(
                interrupt_id=record["id"],
                interrupt_type=record["type"],
                payload=copy.deepcopy(record.get("payload")),
                assignees=assignees,
                candidate_groups=groups,
                deadline=iso_time(record.get("deadline")),
            )
        elif kind == EXECUTION_FAILED and self._error is not None:
            body["error"] = {
                "chunk": self._error.get("chunk"),
                "type": self._error.get("type"),
                "message": self._error.get("message"),
            }
        return body

    @staticmethod
    def _who_may_resume(record: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Assignees and groups, with the escalation's once it happened."""
        rules = record.get(ACCESS_KEY) or {}
        assignees = set(rules.get("assignees") or [])
        groups = set(rules.get("candidate_groups") or [])
        plan = record.get(FOLLOW_UP_KEY) or {}
        if plan.get("escalated"):
            target = plan.get("escalate_to") or {}
            assignees |= set(target.get("assignees") or [])
            groups |= set(target.get("candidate_groups") or [])
        return sorted(assignees), sorted(groups)

    async def _send(self, order: NotifyOrder, channel_id: str | None) -> None:
        channels = await self._notification_channels()
        if channel_id is not None:
            # A pause with a channel_id goes to that channel only (gateway.md).
            channels = [name for name in channels if name == channel_id]
        if not channels:
            return
        order.channels = channels
        info = workflow.info()
        try:
            await workflow.start_child_workflow(
                NOTIFY_WORKFLOW,
                order,
                # One event, one child: a replayed or repeated start is refused by the
                # server, so an event is never scheduled twice.
                id=f"{order.webhook_id}:{info.first_execution_run_id[:8]}",
                task_queue=info.task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"{order.event['type']} → {', '.join(channels)}",
            )
        except WorkflowAlreadyStartedError:
            pass

    def _learn_channels(self, channels: list[str] | None) -> None:
        """Take the channel names a pausing chunk's result carries (ChunkOutput.channels).

        Only the first answer of a run counts, as with the local activity: a run that
        asked already keeps what it was told. Results recorded by earlier workers carry
        none, so their histories still ask, and replay as recorded.
        """
        if channels is None or self._notify_plan is not None:
            return
        known: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        known.set_result([str(name) for name in channels])
        self._notify_plan = known

    async def _notification_channels(self) -> list[str]:
        """The worker's channel names, once per run (recorded in history).

        From a pausing chunk's result when one came in this run (:meth:`_learn_channels`),
        else asked with a local activity (a pause from an inline chunk, an interrupt
        carried over from the previous run).
        """
        if self._notify_plan is None:
            self._notify_plan = asyncio.ensure_future(self._ask_plan())
        return list(await self._notify_plan)

    async def _ask_plan(self) -> list[str]:
        try:
            channels = await workflow.execute_local_activity(
                PLAN_ACTIVITY,
                None,
                result_type=list,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary="notification channels",
            )
        except ActivityError as error:
            self._emit(
                "triggerflow.notifications_unavailable",
                f"TriggerFlow execution '{self._execution_id}' could not ask the worker for "
                f"its notification channels ({error.cause or error}); nothing is sent in "
                "this run.",
                level="WARNING",
            )
            return []
        return [str(name) for name in channels or []]

    def _notifications_pending(self) -> bool:
        """Whether a notification is still being handed to its child (must finish first)."""
        return any(not task.done() for task in self._notify_sends)

    def _notify_interrupt_end(self, record: dict[str, Any], kind: str) -> None:
        """An interrupt stopped waiting: no more reminders; tell the channels."""
        task = self._follow_ups.pop(record["id"], None)
        if task is not None and not task.done():
            task.cancel()
        self._notify(kind, record)

    def _notify_cancelled(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self._notify_interrupt_end(record, INTERRUPT_CANCELLED)

    # ---------------------------------------------------- reminders, escalation
    def _start_follow_up(self, record: dict[str, Any]) -> None:
        """Start the reminder / escalation timers of a waiting interrupt (if it has any)."""
        if record["status"] != "waiting" or not record.get(FOLLOW_UP_KEY):
            return
        previous = self._follow_ups.pop(record["id"], None)
        if previous is not None and not previous.done():
            previous.cancel()
        self._follow_ups[record["id"]] = asyncio.ensure_future(self._follow_up(record))

    def _still_waiting(self, record: dict[str, Any]) -> bool:
        return (
            self._interrupts.get(record["id"]) is record
            and record["status"] == "waiting"
            and self._lifecycle != "closed"
        )

    async def _follow_up(self, record: dict[str, Any]) -> None:
        plan = record[FOLLOW_UP_KEY]
        while self._still_waiting(record):
            due = [plan["next_reminder_at"]]
            if not plan["escalated"]:
                due.append(plan["escalate_at"])
            times = [at for at in due if at is not None]
            if not times:
                return
            remaining = min(times) - workflow.now().timestamp()
            if remaining > 0:
                await workflow.sleep(
                    timedelta(seconds=remaining), summary=f"interrupt {record['id']} follow-up"
                )
            if not self._still_waiting(record):
                return
            now = workflow.now().timestamp()
            escalate_at = plan["escalate_at"]
            if not plan["escalated"] and escalate_at is not None and escalate_at <= now:
                self._escalate(record)
            if plan["next_reminder_at"] is not None and plan["next_reminder_at"] <= now:
                plan["reminders_sent"] += 1
                following = plan["next_reminder_at"] + plan["remind_every"]
                if following <= now:
                    # After a long outage: one reminder now, the next an interval later.
                    following = now + plan["remind_every"]
                plan["next_reminder_at"] = following
                self._notify(INTERRUPT_REMINDED, record)

    def _escalate(self, record: dict[str, Any]) -> None:
        """Widen who may resume (when it was limited) and tell the channels."""
        plan = record[FOLLOW_UP_KEY]
        target = plan.get("escalate_to") or {"assignees": [], "candidate_groups": []}
        before, _ = self._who_may_resume(record)
        plan["escalated"] = True
        plan["escalated_at"] = workflow.now().timestamp()
        rules = record.get(ACCESS_KEY)
        if rules and (rules.get("assignees") or rules.get("candidate_groups")):
            rules["assignees"] = sorted(set(rules["assignees"]) | set(target["assignees"]))
            rules["candidate_groups"] = sorted(
                set(rules["candidate_groups"]) | set(target["candidate_groups"])
            )
        # else anyone of the tenant may already resume: escalation only tells more people.
        new_subjects = [s for s in target["assignees"] if s not in before]
        self._emit(
            "triggerflow.interrupt_escalated",
            f"TriggerFlow execution '{self._execution_id}' escalated interrupt '{record['id']}'.",
            lambda: {"interrupt_id": record["id"], "escalate_to": copy.deepcopy(target)},
            level="WARNING",
        )
        self._refresh_status()  # the search attributes follow the wider access
        self._notify(INTERRUPT_ESCALATED, record, link_subjects=new_subjects)
