"""Sending a correlated message (caller side): ``send_message`` and the gateway's router.

A message resumes the waiting interrupts of its tenant whose ``pause_for(correlation=
{"name", "key"})`` matches, without any execution id; one that arrives before its pause is
buffered by the mailbox (:mod:`..interpreter.mailbox`) until ``ttl_seconds`` and delivered
once when a matching pause starts. The same ``message_id`` is one delivery.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from .._errors import ExecutionStateError
from ..plugin.plugin import TriggerFlowPlugin
from ..spec.mailbox import (
    DEFAULT_MESSAGE_TTL,
    DELIVER_UPDATE,
    MAILBOX_WORKFLOW,
    MailboxInput,
    Message,
    mailbox_id,
)
from ..spec.wire import DEFAULT_TASK_QUEUE


async def send_message(
    client: Client,
    name: str,
    correlation_key: str,
    value: Any = None,
    *,
    message_id: str,
    ttl_seconds: float = DEFAULT_MESSAGE_TTL,
    tenant: str | None = None,
    actor: dict[str, Any] | None = None,
    task_queue: str | None = None,
) -> dict[str, Any]:
    """Deliver a correlated message; ``{"delivered_to": [...], "buffered": bool}``.

    Args:
        client: A client of the namespace the executions run in.
        name: The message name a pause names in ``correlation={"name": ...}``.
        correlation_key: The key it names in ``correlation={"key": ...}``.
        value: The resume value (checked by each interrupt's response schema).
        message_id: The sender's id; a second send with it returns the first answer.
        ttl_seconds: How long an undelivered message waits for its pause.
        tenant: The tenant whose executions it may resume (None: ``"default"``).
        actor: Who sends it (``{subject, tenant, groups, method}``); checked against each
            interrupt's access rules. None: a trusted client.
        task_queue: Where the mailbox runs (a TriggerFlow worker's queue); defaults to the
            client's TriggerFlowPlugin queue.

    Raises:
        ValueError: A bad ``message_id`` or ``ttl_seconds`` (nothing is sent).
        ExecutionStateError: The mailbox holds too many undelivered messages.
    """
    for label, text in (("name", name), ("correlation_key", correlation_key)):
        if not isinstance(text, str) or not text:
            raise ValueError(f"send_message needs a non-empty {label}, got {text!r}.")
    plugin = TriggerFlowPlugin.of_client(client)
    queue = task_queue or (plugin.task_queue if plugin is not None else DEFAULT_TASK_QUEUE)
    operation = WithStartWorkflowOperation(
        MAILBOX_WORKFLOW,
        MailboxInput(tenant=tenant, name=name, key=correlation_key),
        id=mailbox_id(tenant, name, correlation_key),
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        task_timeout=timedelta(seconds=10),
    )
    try:
        return await client.execute_update_with_start_workflow(
            DELIVER_UPDATE,
            Message(message_id=message_id, value=value, ttl_seconds=ttl_seconds, actor=actor),
            start_workflow_operation=operation,
            result_type=dict,
        )
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        message = getattr(cause, "message", None) or str(cause or error)
        if getattr(cause, "type", None) == "MailboxFullError":
            raise ExecutionStateError(message) from None
        raise ValueError(message) from None
