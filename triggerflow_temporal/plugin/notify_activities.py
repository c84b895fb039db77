"""The notification activities (worker side): which channels exist, deliver one event.

Every worker the plugin builds registers both, channels or not: the plan answers with the
names of this worker's channels (``[]`` without any), which the execution records once per
run; the delivery activity hands one event to one channel. Approval links are minted here,
never in workflow code, so their secret stays out of history.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ..spec.notifications import DELIVER_ACTIVITY, PLAN_ACTIVITY, DeliverOrder
from .links import ApprovalLinks
from .notifications import Notification, NotificationChannel, PermanentDeliveryError

UNKNOWN_CHANNEL = "UnknownNotificationChannel"
"""Failure type of a delivery to a channel this worker does not have (not retried)."""
PERMANENT_FAILURE = "PermanentDeliveryError"
"""Failure type of a channel that gave up on an event (not retried)."""
LINK_FAILURE = "ApprovalLinkError"
"""Failure type of an event approval links cannot be minted for (not retried)."""


def check_channels(notifiers: Any) -> dict[str, NotificationChannel]:
    """``{name: channel}`` of ``TriggerFlowPlugin(notifiers=...)``.

    A channel is any object with a non-empty string ``name`` and a callable ``send``
    (subclassing :class:`NotificationChannel` is the easy way).

    Raises:
        TypeError: Not a list of channels, or an entry without ``name`` or ``send``.
        ValueError: Two channels share a name.
    """
    if notifiers is None:
        return {}
    if isinstance(notifiers, (str, bytes, Mapping)) or not isinstance(notifiers, Sequence):
        raise TypeError(
            "TriggerFlowPlugin(notifiers=...) takes a list of notification channels, e.g. "
            "notifiers=[WebhookChannel('ops', url, secret)]."
        )
    channels: dict[str, NotificationChannel] = {}
    for index, channel in enumerate(notifiers):
        name = getattr(channel, "name", None)
        if not isinstance(name, str) or not name.strip():
            raise TypeError(
                f"TriggerFlowPlugin(notifiers=...)[{index}] ({type(channel).__name__}) needs a "
                "non-empty string `name`."
            )
        if not callable(getattr(channel, "send", None)):
            raise TypeError(
                f"Notification channel {name!r} ({type(channel).__name__}) needs an "
                "`async def send(self, notification)` method."
            )
        if name in channels:
            raise ValueError(
                f"Two notification channels are named {name!r}; give each channel of a "
                "worker its own name (pause_for(channel_id=...) and the delivery results "
                "refer to channels by name)."
            )
        channels[name] = channel
    return channels


def make_notify_activities(
    channels: Mapping[str, NotificationChannel], links: ApprovalLinks | None
) -> list[Callable[..., Any]]:
    """The plan (local) activity and the delivery activity over this worker's channels."""

    @activity.defn(name=PLAN_ACTIVITY)
    async def notification_plan(_unused: Any = None) -> list[str]:
        """The names of this worker's channels, sorted (``[]`` without any)."""
        return sorted(channels)

    @activity.defn(name=DELIVER_ACTIVITY)
    async def deliver_notification(order: DeliverOrder) -> None:
        """Hand one event to one channel; raise to have Temporal retry it."""
        info = activity.info()
        channel = channels.get(order.channel)
        if channel is None:
            raise ApplicationError(
                f"This worker has no notification channel {order.channel!r} (it has "
                f"{sorted(channels) or 'none'}). Configure the same channels on every worker "
                f"of task queue {info.task_queue!r}: TriggerFlowPlugin(notifiers=[...]) or "
                "the `notifications` section of `triggerflow-temporal worker --config FILE`.",
                type=UNKNOWN_CHANNEL,
                non_retryable=True,
            )
        body = copy.deepcopy(order.event)
        body_links = dict(body.get("links") or {})
        if order.link_round is not None and links is not None and order.link_subjects:
            body_links.update(_mint(links, order, body, info))
        body["links"] = body_links
        notification = Notification(
            channel=order.channel, webhook_id=order.webhook_id, body=body, attempt=info.attempt
        )
        try:
            await channel.send(notification)
        except ApplicationError:
            raise  # the channel chose its own failure (type, non_retryable)
        except PermanentDeliveryError as error:
            raise ApplicationError(
                f"channel {order.channel!r} gave up on the event: {error}",
                type=PERMANENT_FAILURE,
                non_retryable=True,
            ) from None
        except Exception as error:
            # Temporal retries it; the message names the channel in the UI and the result.
            raise ApplicationError(
                f"channel {order.channel!r}: {error or type(error).__name__}",
                type=type(error).__name__,
            ) from error

    return [notification_plan, deliver_notification]


def _mint(
    links: ApprovalLinks, order: DeliverOrder, body: dict[str, Any], info: activity.Info
) -> dict[str, str]:
    """``{subject: url}``, the same on every attempt of this delivery.

    The token ids are keyed hashes of the ``webhook-id`` and the issue time is when the
    delivery was first scheduled (never later than this worker's clock, so a link is never
    "not yet valid"), so a retry sends the same bytes.
    """
    issued = min(info.scheduled_time.timestamp(), time.time())
    try:
        return links.links_for(
            body,
            round=order.link_round or 0,
            subjects=list(order.link_subjects),
            now=issued,
            token_seed=order.webhook_id,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ApplicationError(
            f"Cannot mint approval links for event {order.webhook_id!r}: {error!r} (the "
            "event needs execution_id, interrupt_id and an RFC 3339 or numeric deadline).",
            type=LINK_FAILURE,
            non_retryable=True,
        ) from None
