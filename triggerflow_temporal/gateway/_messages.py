"""Correlated messages: the router protocol behind ``POST /v1/messages`` (gateway side).

A message (``name`` + ``correlation_key``) resumes the waiting interrupts of one tenant whose
``pause_for(correlation=...)`` matches, without the sender knowing any execution id; one
that arrives before its pause is kept for ``ttl_seconds``; the same ``message_id`` twice is
one delivery. The gateway only authenticates, checks and forwards: the durable mailbox
behind :class:`MessageRouter` does the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from temporalio.client import Client

from triggerflow_temporal import send_message

DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 30 * 24 * 3600


@runtime_checkable
class MessageRouter(Protocol):
    """Delivers correlated messages (implemented by the runtime's durable mailbox)."""

    async def deliver(
        self,
        tenant: str,
        name: str,
        key: str,
        value: Any,
        message_id: str,
        ttl_seconds: int,
        principal: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        """Deliver one message, exactly once per ``(tenant, message_id)``.

        Args:
            tenant: The tenant whose interrupts the message may resume.
            name: The message name (``pause_for(correlation={"name": ...})``).
            key: The correlation key (``pause_for(correlation={"key": ...})``).
            value: The resume value.
            message_id: The sender's id for this message; a repeat is one delivery.
            ttl_seconds: How long to keep it when no pause matches yet.
            principal: Who sent it, ``{subject, tenant, groups, method}`` (the actor of the
                resumes it causes).

        Returns:
            ``{"delivered_to": [{"execution_id", "interrupt_id"}, ...], "buffered": bool}``.
        """
        ...


class MailboxRouter:
    """The runtime's durable mailbox behind ``/v1/messages`` (:func:`send_message`).

    One mailbox workflow per (tenant, name, key) serializes messages and the pauses that
    wait for them, so a message before its pause is delivered once when the pause starts.
    """

    def __init__(self, client: Client, *, task_queue: str | None = None) -> None:
        self._client = client
        self._task_queue = task_queue

    async def deliver(
        self,
        tenant: str,
        name: str,
        key: str,
        value: Any,
        message_id: str,
        ttl_seconds: int,
        principal: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        """See :meth:`MessageRouter.deliver`."""
        return await send_message(
            self._client,
            name,
            key,
            value,
            message_id=message_id,
            ttl_seconds=ttl_seconds,
            tenant=tenant,
            actor=dict(principal),
            task_queue=self._task_queue,
        )
