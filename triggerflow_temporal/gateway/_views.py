"""What the gateway answers: execution and interrupt views, list rows (gateway side, pure).

Views are built from what the runtime records (the ``info`` and ``pending_interrupts``
queries, interrupt records with their ``access`` rules) plus the gateway's memo (who started
the execution, ``task_id``, ``session_id``). ``deadline`` of an interrupt is read from its
record when present; ``links`` holds only what the caller passes (the requesting
principal's own approval link), never anything stored on the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

_NO_SCHEMA: dict[str, Any] = {}
# Where an interrupt record keeps its access rules (the runtime's ``pause_for`` additions).
ACCESS_KEY = "access"


def iso(value: Any) -> str | None:
    """An epoch number or datetime as RFC 3339 UTC (``2025-01-02T03:04:05.678Z``)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        text = value.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    return None


def interrupt_view(
    record: Mapping[str, Any], links: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The API's shape of one interrupt record (``links``: the caller's own link, if any)."""
    wait = record.get("external_wait_request") or _NO_SCHEMA
    access = record.get(ACCESS_KEY) or record  # pause_for(assignees=, candidate_groups=)
    view: dict[str, Any] = {
        "id": record.get("id"),
        "type": record.get("type"),
        "status": record.get("status"),
        "payload": record.get("payload"),
        "request_payload_schema": wait.get("request_payload_schema"),
        "response_payload_schema": wait.get("response_payload_schema"),
        "assignees": list(access.get("assignees") or []),
        "candidate_groups": list(access.get("candidate_groups") or []),
        "forbid_initiator": bool(access.get("forbid_initiator")),
        "deadline": iso(record.get("deadline")),
        "links": dict(links or {}),
        "created_at": iso(record.get("created_at")),
    }
    if record.get("status") != "waiting":
        view["resumed_at"] = iso(record.get("resumed_at"))
        view["resumed_by"] = record.get("resumed_by")
        view["resumed_by_principal"] = record.get("resumed_by_principal")
        view["resume_value"] = record.get("resume_value")
    return view


def execution_view(
    *,
    execution_id: str,
    tenant: str,
    memo: Mapping[str, Any] | None,
    info: Mapping[str, Any],
    pending: Mapping[str, Mapping[str, Any]],
    started_at: Any = None,
    state: Any = None,
    include_state: bool = False,
    links_for: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The execution view of the contract.

    Args:
        execution_id: The id (= Temporal workflow id).
        tenant: The owning tenant.
        memo: The gateway's start record, when the gateway started it.
        info: The runtime's ``info`` query.
        pending: The runtime's ``pending_interrupts`` query.
        started_at: Fallback start time (the workflow's) when ``info`` has none.
        state: The state, shown with ``include_state``.
        include_state: Whether ``state`` is part of the view.
        links_for: The approval links to show for a pending interrupt's record.
    """
    memo = memo or {}
    view: dict[str, Any] = {
        "id": execution_id,
        "flow": info.get("flow_name"),
        "blueprint": info.get("blueprint_hash"),
        "status": info.get("status"),
        "lifecycle": info.get("lifecycle_state"),
        "tenant": tenant,
        "started_by": memo.get("started_by"),
        "started_at": iso(info.get("started_at") or info.get("created_at") or started_at),
        "closed_at": iso(info.get("closed_at")),
        "close_reason": info.get("close_reason"),
        "task_id": memo.get("task_id"),
        "session_id": memo.get("session_id"),
        "pending_interrupts": [
            interrupt_view(r, links_for(r) if links_for else None) for r in pending.values()
        ],
    }
    if info.get("error"):
        view["error"] = info["error"]
    if include_state:
        view["state"] = state
    return view


def list_row(
    *,
    execution_id: str,
    flow: str | None,
    status: str | None,
    tenant: str | None,
    pending_types: list[str],
    memo: Mapping[str, Any] | None,
    started_at: Any,
    closed_at: Any,
) -> dict[str, Any]:
    """One row of ``GET /v1/executions`` (from visibility: no query per row)."""
    memo = memo or {}
    return {
        "id": execution_id,
        "flow": flow,
        "status": status,
        "tenant": tenant,
        "pending_interrupt_types": pending_types,
        "started_by": memo.get("started_by"),
        "task_id": memo.get("task_id"),
        "session_id": memo.get("session_id"),
        "started_at": iso(started_at),
        "closed_at": iso(closed_at),
    }
