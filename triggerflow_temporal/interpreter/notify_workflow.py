"""The delivery of one notification to its channels (workflow side, deterministic).

An execution starts one :data:`~..spec.notifications.NOTIFY_WORKFLOW` child per event,
abandoned, so it never waits for a channel. The child runs one delivery activity per
channel, all at once: each is retried with backoff (1 s, doubling, at most
``DELIVERY_RETRY_MAX_INTERVAL_SECONDS`` apart) until it lands or ``deadline_seconds``
passed, so a channel that is down delays its own delivery and nothing else. The child
reports each channel as ``"delivered"`` or ``"failed: <why>"`` and never fails itself:
one channel's failure is an answer, not an error.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError, RetryState

from ..spec.notifications import (
    DELIVER_ACTIVITY,
    DELIVERY_ATTEMPT_TIMEOUT_SECONDS,
    DELIVERY_RETRY_MAX_INTERVAL_SECONDS,
    NOTIFY_WORKFLOW,
    DeliverOrder,
    NotifyOrder,
)

DELIVERED = "delivered"
FAILED_PREFIX = "failed: "

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=DELIVERY_RETRY_MAX_INTERVAL_SECONDS),
    maximum_attempts=0,  # unlimited: the deadline (schedule-to-close) ends the retries
)


@workflow.defn(name=NOTIFY_WORKFLOW)
class NotifyWorkflow:
    """Deliver one event to each of its channels; ``{channel: outcome}``."""

    @workflow.run
    async def run(self, order: NotifyOrder) -> dict[str, str]:
        """Deliver to every channel concurrently and report each outcome."""
        channels = list(dict.fromkeys(order.channels))  # once each, in the order given
        outcomes = await asyncio.gather(*(self._deliver(order, name) for name in channels))
        return dict(zip(channels, outcomes, strict=True))

    async def _deliver(self, order: NotifyOrder, channel: str) -> str:
        deadline = max(float(order.deadline_seconds), 1.0)
        try:
            await workflow.execute_activity(
                DELIVER_ACTIVITY,
                DeliverOrder(
                    channel=channel,
                    webhook_id=order.webhook_id,
                    event=order.event,
                    link_round=order.link_round,
                    link_subjects=list(order.link_subjects),
                ),
                activity_id=f"deliver:{channel}",
                start_to_close_timeout=timedelta(
                    seconds=min(DELIVERY_ATTEMPT_TIMEOUT_SECONDS, deadline)
                ),
                schedule_to_close_timeout=timedelta(seconds=deadline),
                retry_policy=_RETRY,
                summary=f"{order.event.get('type', 'event')} → {channel}",
            )
        except ActivityError as error:
            return FAILED_PREFIX + _reason(error)
        return DELIVERED


def _reason(error: ActivityError) -> str:
    """Why a delivery failed: the last attempt's message, after the deadline if it passed."""
    parts: list[str] = []
    cause: BaseException | None = error.cause
    while isinstance(cause, FailureError) and len(parts) < 4:
        message = cause.message
        if message and not any(message in part for part in parts):  # wrapped: said once
            parts.append(message)
        cause = cause.cause
    reason = "; ".join(parts) or str(error)
    if error.retry_state == RetryState.TIMEOUT:
        return f"the delivery deadline passed; last attempt: {reason}"
    return reason
