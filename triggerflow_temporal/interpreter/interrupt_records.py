"""Interrupt records in Agently's shape (pure; used by the workflow)."""

from __future__ import annotations

import copy
from typing import Any

from ..spec.limits import MAX_RESUME_VALUE_BYTES
from ..spec.state import describe_size, json_size
from .access import ACCESS_KEY, access_rules


def new_interrupt_record(
    *,
    interrupt_id: str,
    request: dict[str, Any],
    op: dict[str, Any],
    signal: dict[str, Any],
    execution_id: str,
    flow_name: str,
    created_at: float,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """Build the record of a new (or re-raised, for ``resume_to="self"``) interrupt."""
    resume_to = request["resume_to"]
    continuation = next(
        (s["trigger_event"] for s in op["emit_signals"] if s.get("role") == "continuation"), None
    )
    resume_count = int(previous.get("resume_count") or 0) if previous else 0
    record = {
        "id": interrupt_id,
        "type": request["type"],
        "exchange_kind": request.get("exchange_kind"),
        "payload": copy.deepcopy(request.get("payload")),
        "resume_event": request.get("resume_event"),
        "resume_to": copy.deepcopy(resume_to),
        "status": "waiting",
        "source_execution_id": execution_id,
        "source_flow_name": flow_name,
        "source_operator_id": op["id"],
        "source_signal": copy.deepcopy(signal),
        "continuation_event": continuation,
        "resume_count": resume_count,
        "max_resumes": request.get("max_resumes") if resume_to == "self" else None,
        "created_at": created_at,
        "resumed_at": None,
        "resume_value": None,
        "external_wait_request": {
            "request_id": interrupt_id,
            "interrupt_id": interrupt_id,
            "exchange_kind": request.get("exchange_kind"),
            "exchange_id": None,
            "callback_idempotency_key": None,
            "actor_id": None,
            "channel_id": request.get("channel_id"),
            "provider_id": request.get("provider_id"),
            "wait_mode": request.get("wait_mode") or "disconnected",
            "hot_wait_timeout": request.get("hot_wait_timeout"),
            "cold_persistence_policy": request.get("cold_persistence_policy") or "persist",
            "request_payload_schema": copy.deepcopy(request.get("request_payload_schema")),
            "response_payload_schema": copy.deepcopy(request.get("response_payload_schema")),
            "dispatch_state": "exposed",
            "audit_metadata": copy.deepcopy(request.get("audit_metadata"))
            or {
                "type": request["type"],
                "exchange_kind": request.get("exchange_kind"),
                "payload": copy.deepcopy(request.get("payload")),
            },
            "provider_metadata": {},
        },
    }
    rules = access_rules(request)
    if rules is not None:
        record[ACCESS_KEY] = rules
    follow_up = follow_up_plan(request, created_at)
    if follow_up is not None:
        record[FOLLOW_UP_KEY] = follow_up
    return record


FOLLOW_UP_KEY = "follow_up"
"""The record's key for its reminder and escalation timers (present only when asked for)."""


def follow_up_plan(request: dict[str, Any], created_at: float) -> dict[str, Any] | None:
    """When to remind and escalate (``pause_for(remind_every=, escalate_after=)``)."""
    every = request.get("remind_every")
    after = request.get("escalate_after")
    if every is None and after is None:
        return None
    return {
        "remind_every": every,
        "reminders_sent": 0,
        "next_reminder_at": created_at + every if every is not None else None,
        "escalate_at": created_at + after if after is not None else None,
        "escalate_to": copy.deepcopy(request.get("escalate_to")),
        "escalated": False,
    }


def resume_size_problem(interrupt_id: str, value: Any) -> str | None:
    """Why ``value`` is too big to resume ``interrupt_id`` with, or None.

    A deviation from native Agently, which keeps resume values in memory without a limit:
    here each is held in history and carried over continue-as-new several times.
    """
    try:
        size = json_size(value)
    except (TypeError, ValueError):
        return None  # not JSON: the data converter names the problem
    if size <= MAX_RESUME_VALUE_BYTES:
        return None
    return (
        f"continue_with value for interrupt {interrupt_id!r} is {size:,} bytes of JSON, over "
        f"the {MAX_RESUME_VALUE_BYTES:,} bytes ({describe_size(MAX_RESUME_VALUE_BYTES)}) a "
        "resume value may be (it is kept "
        "in the interrupt record and carried over continue-as-new). Store large answers in "
        "the Workspace and resume with a reference to them."
    )


def check_response(record: dict[str, Any], value: Any) -> str | None:
    """Validate a resume value against the interrupt's ``response_payload_schema``.

    Returns:
        None when valid, else a message naming the interrupt and the violation.
    """
    problem = resume_size_problem(record["id"], value)
    if problem:
        return problem
    schema = (record.get("external_wait_request") or {}).get("response_payload_schema")
    if not schema:
        return None
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as error:
        path = "/".join(str(p) for p in error.absolute_path) or "<root>"
        return (
            f"continue_with value for interrupt {record['id']!r} does not match its "
            f"response_payload_schema at {path}: {error.message}"
        )
    except jsonschema.SchemaError as error:
        return f"interrupt {record['id']!r} has an invalid response_payload_schema: {error.message}"
    return None
