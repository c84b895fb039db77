"""Request and response shapes of the gateway API (pydantic; gateway side, no I/O).

Request models validate bodies the routes parse themselves (so every refusal is a problem
document); response models document the answers in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:@|+/-]{0,127}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(_Body):
    """``POST /v1/flows/{flow}/executions``."""

    input: Any = Field(None, description="The START value (JSON).")
    execution_id: str | None = Field(
        None, pattern=_ID, description="Execution id; generated when absent."
    )
    task_id: str | None = Field(None, max_length=200, description="Playbook task id.")
    session_id: str | None = Field(None, max_length=200, description="Playbook session id.")


class ContinueBody(_Body):
    """``POST /v1/executions/{id}/interrupts/{interrupt_id}/continue``."""

    value: Any = Field(None, description="The response; checked against response_payload_schema.")


class EmitBody(_Body):
    """``POST /v1/executions/{id}/events``."""

    event: str = Field(min_length=1, max_length=200, description="Event name.")
    value: Any = Field(None, description="Event value (JSON).")


class CloseBody(_Body):
    """``POST /v1/executions/{id}/close`` (optional body)."""

    pending_interrupts: Literal["error", "cancel"] = Field(
        "error", description="'cancel' cancels waiting interrupts; 'error' refuses (409)."
    )


class MessageBody(_Body):
    """``POST /v1/messages``."""

    name: str = Field(pattern=_NAME, description="Message name of pause_for(correlation=...).")
    correlation_key: str | int = Field(description="Correlation key (string or integer).")
    value: Any = Field(None, description="The resume value.")
    message_id: str = Field(
        min_length=1, max_length=200, description="Sender's id; the same id twice is one delivery."
    )
    ttl_seconds: int | None = Field(
        None, ge=1, le=30 * 24 * 3600, description="Keep an early message this long (3600)."
    )


class InterruptView(BaseModel):
    """An interrupt as the API shows it."""

    id: str
    type: str | None = None
    status: str | None = None
    payload: Any = None
    request_payload_schema: dict[str, Any] | None = None
    response_payload_schema: dict[str, Any] | None = None
    assignees: list[str] = []
    candidate_groups: list[str] = []
    deadline: str | None = None
    links: dict[str, str] = {}
    created_at: str | None = None


class ExecutionView(BaseModel):
    """An execution as the API shows it (``state`` only with ``?include=state``)."""

    id: str
    flow: str | None = None
    blueprint: str | None = None
    status: str | None = Field(None, description="running, waiting, completed, failed, cancelled")
    lifecycle: str | None = Field(None, description="open, sealed or closed")
    tenant: str
    started_by: dict[str, Any] | None = None
    started_at: str | None = None
    closed_at: str | None = None
    task_id: str | None = None
    session_id: str | None = None
    pending_interrupts: list[InterruptView] = []
    state: Any = None


class ExecutionPage(BaseModel):
    """One page of ``GET /v1/executions``."""

    executions: list[dict[str, Any]]
    next_page_token: str | None = None


class ContinueAnswer(BaseModel):
    """The resumed interrupt and the execution's status after its chain ran."""

    execution_id: str
    status: str | None
    interrupt: InterruptView


class EmitAnswer(BaseModel):
    """The handlers' results and the execution's status."""

    execution_id: str
    event: str
    results: Any = None
    status: str | None = None


class MessageAnswer(BaseModel):
    """Where a message went."""

    delivered_to: list[Any]
    buffered: bool
    duplicate: bool = False


class ProblemDoc(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` documentation of the problem answers a route can give."""
    return {
        status: {
            "model": ProblemDoc,
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }
