"""Outbound notifications (gateway.md "Notifications"): names and shapes, no I/O.

An execution tells the worker's channels (webhooks, chat, mail) when an interrupt is
created, reminded, escalated, resumed, timed out or cancelled, and when the execution
fails or completes. Workflow code decides *that* an event happened and builds its body
deterministically; it starts one :data:`NOTIFY_WORKFLOW` child per event (abandoned, so the
execution never waits for a slow channel), whose activities deliver it to each channel
with retries. The child's workflow id is derived from the event, so one event is scheduled
once even across continue-as-new; every retry of a delivery carries the same
``webhook-id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

NOTIFY_WORKFLOW = "triggerflow.notify"
"""Workflow type of a notification's delivery (a flow may not use this name)."""
PLAN_ACTIVITY = "triggerflow.notify.plan"
"""Local activity: the channel names this worker delivers to (recorded once per run)."""
DELIVER_ACTIVITY = "triggerflow.notify.deliver"
"""Activity: one event to one channel (retried with backoff under one ``webhook-id``)."""

INTERRUPT_CREATED = "interrupt.created"
INTERRUPT_REMINDED = "interrupt.reminded"
INTERRUPT_ESCALATED = "interrupt.escalated"
INTERRUPT_RESUMED = "interrupt.resumed"
INTERRUPT_TIMED_OUT = "interrupt.timed_out"
INTERRUPT_CANCELLED = "interrupt.cancelled"
EXECUTION_FAILED = "execution.failed"
EXECUTION_COMPLETED = "execution.completed"
EVENT_TYPES = (
    INTERRUPT_CREATED,
    INTERRUPT_REMINDED,
    INTERRUPT_ESCALATED,
    INTERRUPT_RESUMED,
    INTERRUPT_TIMED_OUT,
    INTERRUPT_CANCELLED,
    EXECUTION_FAILED,
    EXECUTION_COMPLETED,
)

# A delivery is retried within 30 s (gateway.md) until it lands or this much time passed
# since the event; then the child records the channel as failed.
DELIVERY_RETRY_MAX_INTERVAL_SECONDS = 30.0
DEFAULT_DELIVERY_DEADLINE_SECONDS = 24 * 3600.0
DELIVERY_ATTEMPT_TIMEOUT_SECONDS = 30.0


def iso_time(epoch: float | None) -> str | None:
    """``epoch`` seconds as RFC 3339 UTC, as the gateway shows times (None for None)."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(float(epoch), tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_id(execution_id: str, interrupt_id: str | None, kind: str, seq: int) -> str:
    """The event's ``webhook-id``: execution, interrupt, kind and sequence number."""
    return f"{execution_id}:{interrupt_id or '-'}:{kind}:{seq}"


@dataclass
class NotifyOrder:
    """One event for the channels (the input of a :data:`NOTIFY_WORKFLOW` child).

    Attributes:
        webhook_id: Stable id of the event (every channel, every retry).
        event: The flat JSON body of gateway.md, ``links`` empty: links are minted by the
            delivering activity, so their secret never reaches workflow history.
        channels: Names of the channels to deliver to (from the plan).
        link_round: The interrupt's ``resume_count`` when the event may carry approval
            links (binds a link to this round of a ``resume_to="self"`` interrupt); None
            for events that carry none.
        link_subjects: Whom to mint a link for (the assignees, or only the new ones of an
            escalation).
        deadline_seconds: How long deliveries are retried before a channel counts as failed.
    """

    webhook_id: str
    event: dict[str, Any]
    channels: list[str]
    link_round: int | None = None
    link_subjects: list[str] = field(default_factory=lambda: [])
    deadline_seconds: float = DEFAULT_DELIVERY_DEADLINE_SECONDS


@dataclass
class DeliverOrder:
    """One event to one channel (the input of :data:`DELIVER_ACTIVITY`)."""

    channel: str
    webhook_id: str
    event: dict[str, Any]
    link_round: int | None = None
    link_subjects: list[str] = field(default_factory=lambda: [])
