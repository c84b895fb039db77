"""Interrupt (pause) requests and records; pure helpers used by chunk and workflow side."""

from __future__ import annotations

import copy
from typing import Any

_KNOWN = {
    "type",
    "payload",
    "interrupt_id",
    "resume_to",
    "resume_event",
    "max_resumes",
    "exchange_kind",
    "request_payload_schema",
    "response_payload_schema",
    "timeout",
    "timeout_value",
    "audit_metadata",
    "channel_id",
    "provider_id",
    "wait_mode",
    "hot_wait_timeout",
    "cold_persistence_policy",
}


# Access rules (gateway.md): in the normalized request only when given, so pauses without
# them keep the request shape recorded in existing histories.
_ACCESS = ("assignees", "candidate_groups", "forbid_initiator", "correlation")
# Reminders and escalation (gateway.md): likewise only when given.
_FOLLOW_UP = ("remind_every", "escalate_after", "escalate_to")


def validate_pause_request(chunk: str, request: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise ``pause_for`` arguments; raise ``ValueError`` naming the culprit."""
    unknown = sorted(set(request) - _KNOWN - set(_ACCESS) - set(_FOLLOW_UP))
    if unknown:
        raise ValueError(f"pause_for() in chunk '{chunk}' got unknown argument(s) {unknown}.")
    out = {key: copy.deepcopy(request.get(key)) for key in _KNOWN}
    out["type"] = out["type"] or "pause"
    if not isinstance(out["type"], str):
        raise ValueError(f"pause_for(type=...) in chunk '{chunk}' must be a string.")
    if out["interrupt_id"] is not None and (
        not isinstance(out["interrupt_id"], str) or not out["interrupt_id"]
    ):
        raise ValueError(
            f"pause_for(interrupt_id=...) in chunk '{chunk}' must be a non-empty string."
        )
    resume_to = out["resume_to"]
    if resume_to is None:
        resume_to = {"event": out["resume_event"]} if out["resume_event"] else "next"
    if resume_to not in ("next", "self") and not (
        isinstance(resume_to, dict) and isinstance(resume_to.get("event"), str)
    ):
        raise ValueError(
            f"pause_for(resume_to={resume_to!r}) in chunk '{chunk}' must be 'next', 'self' or "
            "{'event': name}."
        )
    out["resume_to"] = resume_to
    if "max_resumes" not in request:
        out["max_resumes"] = 1
    max_resumes = out["max_resumes"]
    if max_resumes is not None and (
        isinstance(max_resumes, bool) or not isinstance(max_resumes, int) or max_resumes < 1
    ):
        raise ValueError(
            f"pause_for(max_resumes={max_resumes!r}) in chunk '{chunk}' must be None or an "
            "int >= 1."
        )
    timeout = out["timeout"]
    if timeout is not None:
        if hasattr(timeout, "total_seconds"):
            timeout = timeout.total_seconds()
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(
                f"pause_for(timeout={out['timeout']!r}) in chunk '{chunk}' must be a positive "
                "number of seconds or a timedelta."
            )
        out["timeout"] = float(timeout)
    for key in ("request_payload_schema", "response_payload_schema"):
        if out[key] is not None:
            _check_schema(chunk, key, out[key])
    if out["request_payload_schema"] is not None:
        _check_payload(chunk, out["payload"], out["request_payload_schema"])
    out.update(_access_rules(chunk, request))
    out.update(_follow_up(chunk, request))
    return out


def _seconds(chunk: str, key: str, value: Any) -> float:
    if hasattr(value, "total_seconds"):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
        raise ValueError(
            f"pause_for({key}={value!r}) in chunk '{chunk}' must be a number of seconds >= 1 "
            "or a timedelta."
        )
    return float(value)


def _follow_up(chunk: str, request: dict[str, Any]) -> dict[str, Any]:
    """``remind_every``, ``escalate_after`` and ``escalate_to``, checked (when given)."""
    out: dict[str, Any] = {}
    for key in ("remind_every", "escalate_after"):
        if request.get(key) is not None:
            out[key] = _seconds(chunk, key, request[key])
    target = request.get("escalate_to")
    if target is None:
        return out
    if "escalate_after" not in out:
        raise ValueError(
            f"pause_for(escalate_to=...) in chunk '{chunk}' needs escalate_after=seconds "
            "(when to escalate)."
        )
    if (
        not isinstance(target, dict)
        or not target
        or set(target) - {"assignees", "candidate_groups"}
    ):
        raise ValueError(
            f"pause_for(escalate_to=...) in chunk '{chunk}' must be "
            f"{{'assignees': [str], 'candidate_groups': [str]}} (either or both), got "
            f"{target!r:.80}."
        )
    rules = _access_rules(chunk, {k: v for k, v in target.items()})
    out["escalate_to"] = {
        "assignees": rules.get("assignees", []),
        "candidate_groups": rules.get("candidate_groups", []),
    }
    return out


def _access_rules(chunk: str, request: dict[str, Any]) -> dict[str, Any]:
    """The given access arguments of ``pause_for``, checked."""
    rules: dict[str, Any] = {}
    for key in ("assignees", "candidate_groups"):
        value = request.get(key)
        if value is None:
            continue
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(
                f"pause_for({key}=...) in chunk '{chunk}' must be a list of strings, got "
                f"{value!r:.80}."
            )
        names = list(value)
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError(
                f"pause_for({key}=...) in chunk '{chunk}' must hold non-empty strings."
            )
        rules[key] = sorted(set(names))
    forbid = request.get("forbid_initiator")
    if forbid is not None:
        if not isinstance(forbid, bool):
            raise ValueError(
                f"pause_for(forbid_initiator=...) in chunk '{chunk}' must be True or False."
            )
        if forbid:
            rules["forbid_initiator"] = True
    correlation = request.get("correlation")
    if correlation is not None:
        if not (
            isinstance(correlation, dict)
            and set(correlation) == {"name", "key"}
            and all(isinstance(correlation[k], str) and correlation[k] for k in ("name", "key"))
        ):
            raise ValueError(
                f"pause_for(correlation=...) in chunk '{chunk}' must be "
                f"{{'name': str, 'key': str}}, got {correlation!r:.80}."
            )
        rules["correlation"] = {"name": correlation["name"], "key": correlation["key"]}
    return rules


def _check_schema(chunk: str, key: str, schema: Any) -> None:
    """An invalid schema is caught at pause time, not when a resume value arrives."""
    if not isinstance(schema, dict):
        raise ValueError(f"pause_for({key}=...) in chunk '{chunk}' must be a JSON schema dict.")
    import jsonschema
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        raise ValueError(
            f"pause_for({key}=...) in chunk '{chunk}' is not a valid JSON schema: {error.message}."
        ) from None


def _check_payload(chunk: str, payload: Any, schema: dict[str, Any]) -> None:
    """The chunk's own payload must match the request schema it announces."""
    import jsonschema

    try:
        jsonschema.validate(payload, schema)
    except jsonschema.ValidationError as error:
        path = "/".join(str(p) for p in error.absolute_path) or "<root>"
        raise ValueError(
            f"pause_for(payload=...) in chunk '{chunk}' does not match its "
            f"request_payload_schema at {path}: {error.message}."
        ) from None
