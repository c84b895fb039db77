"""The refusal audit contract: what the gateway refused, kept beside the execution.

A refused resume never reaches the execution's history (the update validator rejects it
before anything is written), so the gateway records each refusal in a small audit-log
workflow of its own per execution (``triggerflow.audit:<execution id>``); the audit endpoint
reads it back with the execution's own records.
"""

from __future__ import annotations

AUDIT_WORKFLOW = "triggerflow.audit"
"""Workflow type of audit logs (a flow may not use this name)."""
RECORD_SIGNAL = "record"
ENTRIES_QUERY = "entries"
# Entries an audit log keeps (the oldest dropped first), and how long it lives idle.
MAX_AUDIT_ENTRIES = 1000
AUDIT_IDLE_SECONDS = 30 * 24 * 3600.0


def audit_id(execution_id: str) -> str:
    """The workflow id of an execution's refusal audit log."""
    return f"{AUDIT_WORKFLOW}:{execution_id}"
