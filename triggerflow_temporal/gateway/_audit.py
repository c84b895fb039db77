"""``GET /v1/executions/{id}/audit``: who did what, when, how authenticated (gateway side).

Built from what an execution records today: the gateway's start memo (who started it and
how), the snapshot's interrupt records (creation, each accepted resume request with its
actor, timeouts, cancellations), the rejected signal-variant resumes, the external events
in ``signal_attempts`` (the last ones kept) and the close reason the gateway writes
(``closed via gateway by=<subject> method=<method>``). ``gaps`` in the answer lists what is
not recorded yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._views import iso

_CLOSED_BY = re.compile(r"closed via gateway by=(?P<subject>\S+) method=(?P<method>\S+)")

GAPS = (
    "signal_attempts keeps the most recent attempts only",
    "a resume without a resume_request_id records no actor",
)


def _actor(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        actor = {k: v for k, v in value.items() if k != "at" and v is not None}
        return actor if actor.get("subject") else None
    return {"subject": str(value)}


def build_audit(
    execution_id: str,
    memo: Mapping[str, Any] | None,
    snapshot: Mapping[str, Any],
    refusals: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The audit of one execution, oldest entry first.

    Args:
        execution_id: The execution.
        memo: The gateway's start record (None when the gateway did not start it).
        snapshot: ``execution.async_save()``.
        refusals: What the gateway refused (its audit log; never in the execution's history).

    Returns:
        ``{"execution_id", "entries": [{"at", "action", "by", "interrupt_id"?, "detail"}],
        "gaps": [...]}``; ``by`` is ``{subject, tenant?, groups?, method?}`` or None.
    """
    entries: list[dict[str, Any]] = []

    def add(at: Any, action: str, by: Any = None, **detail: Any) -> None:
        entry: dict[str, Any] = {"at": iso(at), "action": action, "by": _actor(by)}
        interrupt_id = detail.pop("interrupt_id", None)
        if interrupt_id is not None:
            entry["interrupt_id"] = interrupt_id
        entry["detail"] = {k: v for k, v in detail.items() if v is not None}
        entries.append(entry)

    if memo:
        add(
            memo.get("started_at") or snapshot.get("started_at"),
            "started",
            memo.get("started_by"),
            flow=memo.get("flow"),
            task_id=memo.get("task_id"),
            session_id=memo.get("session_id"),
            idempotency_key=memo.get("idempotency_key"),
        )
    else:
        add(snapshot.get("started_at"), "started", None, flow=snapshot.get("flow_name"))
    for record in (snapshot.get("interrupts") or {}).values():
        interrupt_id = record.get("id")
        add(
            record.get("created_at"),
            "interrupt_created",
            None,
            interrupt_id=interrupt_id,
            type=record.get("type"),
        )
        requests = record.get("resume_requests") or {}
        for request_id, entry in requests.items():
            add(
                entry.get("accepted_at"),
                "resumed",
                entry.get("actor"),
                interrupt_id=interrupt_id,
                request_id=request_id,
                value=entry.get("value"),
            )
        if (
            record.get("status") in ("resumed", "waiting")
            and not requests
            and record.get("resumed_at")
        ):
            add(
                record.get("resumed_at"),
                "resumed",
                record.get("resumed_by_principal") or record.get("resumed_by"),
                interrupt_id=interrupt_id,
                value=record.get("resume_value"),
            )
        if record.get("status") == "cancelled":
            add(snapshot.get("closed_at"), "interrupt_cancelled", None, interrupt_id=interrupt_id)
    temporal = (snapshot.get("durable_system_state") or {}).get("temporal") or {}
    for rejected in temporal.get("rejected_requests") or []:
        add(
            rejected.get("rejected_at"),
            "rejected",
            rejected.get("actor"),
            interrupt_id=rejected.get("interrupt_id"),
            request_id=rejected.get("resume_request_id"),
            reason=rejected.get("error"),
        )
    attempts = (snapshot.get("signal_net") or {}).get("signal_attempts") or []
    for attempt in attempts:
        if attempt.get("source") == "runtime" and attempt.get("trigger_type") == "event":
            add(
                attempt.get("created_at"),
                "emitted",
                (attempt.get("meta") or {}).get("actor"),
                event=attempt.get("trigger_event"),
                outcome=attempt.get("status"),
            )
    for refusal in refusals:
        detail = dict(refusal.get("detail") or {})
        add(refusal.get("at"), "refused", refusal.get("by"), **detail)
    if snapshot.get("lifecycle_state") == "closed":
        reason = snapshot.get("close_reason")
        match = _CLOSED_BY.search(reason or "")
        by = match.groupdict() if match else None
        add(snapshot.get("closed_at"), "closed", by, reason=reason, status=snapshot.get("status"))
    entries.sort(key=lambda e: (e["at"] is None, e["at"] or ""))
    return {"execution_id": execution_id, "entries": entries, "gaps": list(GAPS)}
