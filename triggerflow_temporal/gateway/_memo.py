"""The gateway's record on an execution: a Temporal memo written when the gateway starts it.

The runtime's public API has no place for who started an execution, the playbook's
``task_id`` / ``session_id``, the ``Idempotency-Key`` of the start or its trace context. The
gateway keeps them in the workflow's memo (key ``TriggerFlowGateway``), set at creation by a
client interceptor while the gateway's own start call runs, and read back with
``describe()``. Memos survive continue-as-new and are visible in the Temporal UI.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)

MEMO_KEY = "TriggerFlowGateway"
"""The memo field the gateway writes (a JSON object; see :func:`start_record`)."""

_PENDING: contextvars.ContextVar[tuple[str, dict[str, Any]] | None] = contextvars.ContextVar(
    "triggerflow_gateway_start_memo", default=None
)


@contextmanager
def recording_start(execution_id: str, record: dict[str, Any]) -> Iterator[None]:
    """While inside, a start of workflow ``execution_id`` by this task carries ``record``."""
    token = _PENDING.set((execution_id, record))
    try:
        yield
    finally:
        _PENDING.reset(token)


def _memo_for(workflow_id: str, memo: Any) -> Any:
    pending = _PENDING.get()
    if pending is None or pending[0] != workflow_id:
        return memo
    return {**(memo or {}), MEMO_KEY: pending[1]}


class _Outbound(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        input.memo = _memo_for(input.id, input.memo)
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        start = input.start_workflow_input
        start.memo = _memo_for(start.id, start.memo)
        return await super().start_update_with_start_workflow(input)


class StartMemoInterceptor(Interceptor):
    """Adds the gateway's record to the memo of workflows the gateway starts."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        """See base class."""
        return _Outbound(next)


def with_start_memo(client: Client) -> Client:
    """``client`` with :class:`StartMemoInterceptor` (the same connection and plugins)."""
    config = client.config()
    if any(isinstance(i, StartMemoInterceptor) for i in config.get("interceptors") or ()):
        return client
    config["interceptors"] = [*(config.get("interceptors") or ()), StartMemoInterceptor()]
    return Client(**config)


def start_record(
    *,
    principal: dict[str, Any],
    flow: str,
    task_id: str,
    session_id: str,
    idempotency_key: str | None,
    request_sha256: str,
    nonce: str,
    traceparent: str | None,
    at: str,
) -> dict[str, Any]:
    """The memo the gateway writes on an execution it starts (format version 1)."""
    return {
        "v": 1,
        "tenant": principal["tenant"],
        "started_by": principal,
        "flow": flow,
        "task_id": task_id,
        "session_id": session_id,
        "idempotency_key": idempotency_key,
        "request_sha256": request_sha256,
        "nonce": nonce,
        "traceparent": traceparent,
        "started_at": at,
    }
