"""The runtime intervention ledger (pure data; used by the workflow).

Agently's model: ``execution.async_intervene(payload, target=...)`` appends a ``pending``
record; in ``planned`` mode an ``intervention_point(target=T)`` inserts the pending records
addressed to ``T``; in ``auto`` mode every operator about to run inserts the pending
records whose target names it (or, for chunks, the untargeted ones). Chunks read
``data.interventions`` and mark them consumed; close expires what is still pending.
Interventions never change a chunk's input and never pause.
"""

from __future__ import annotations

import copy
from typing import Any

MODES = (None, "planned", "auto")
STATE_KEY = "$interventions"


class InterventionLedger:
    """Intervention records by id, in creation order, with Agently's record shape."""

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode
        self.version = 0
        self.records: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------ changes
    def append(
        self,
        *,
        intervention_id: str,
        payload: Any,
        author: str | None,
        note: str | None,
        target: str | None,
        metadata: dict[str, Any] | None,
        now: float,
    ) -> dict[str, Any]:
        """Record a new ``pending`` intervention and return it."""
        self.version += 1
        record = {
            "id": intervention_id,
            "version": self.version,
            "status": "pending",
            "payload": copy.deepcopy(payload),
            "target": None if target is None else str(target),
            "author": None if author is None else str(author),
            "note": None if note is None else str(note),
            "metadata": copy.deepcopy(metadata or {}),
            "created_at": now,
            "inserted_at": None,
            "insertion": None,
            "rejected_at": None,
            "reject_reason": None,
            "expired_at": None,
            "consumers": {},
        }
        self.records[intervention_id] = record
        return record

    def insert_planned(
        self, target: str | None, op: dict[str, Any], signal: dict[str, Any], now: float
    ) -> list[dict[str, Any]]:
        """An ``intervention_point`` hit: insert pending records addressed to ``target``."""
        if self.mode != "planned":
            return []
        ids = [
            r["id"]
            for r in self.records.values()
            if r["status"] == "pending" and r.get("target") == target
        ]
        return self._insert(ids, "planned", op, signal, now)

    def insert_auto(
        self, op: dict[str, Any], signal: dict[str, Any], now: float
    ) -> list[dict[str, Any]]:
        """Before ``op`` runs in auto mode: insert the pending records meant for it."""
        if self.mode != "auto":
            return []
        names = {str(op.get(key) or "") for key in ("id", "name", "kind", "group_id", "group_kind")}
        ids = []
        for record in self.records.values():
            if record["status"] != "pending":
                continue
            target = record.get("target")
            if (target is not None and target in names) or (
                target is None and op.get("kind") == "chunk"
            ):
                ids.append(record["id"])
        return self._insert(ids, "auto", op, signal, now)

    def _insert(
        self,
        ids: list[str],
        mode: str,
        op: dict[str, Any],
        signal: dict[str, Any],
        now: float,
    ) -> list[dict[str, Any]]:
        insertion = {
            "mode": mode,
            "operator_id": op.get("id"),
            "operator_name": op.get("name"),
            "operator_kind": op.get("kind"),
            "group_id": op.get("group_id"),
            "group_kind": op.get("group_kind"),
            "signal": {k: copy.deepcopy(signal.get(k)) for k in _SIGNAL_KEYS},
            "inserted_at": now,
        }
        inserted = []
        for intervention_id in ids:
            record = self.records[intervention_id]
            record["status"] = "inserted"
            record["inserted_at"] = now
            record["insertion"] = copy.deepcopy(insertion)
            inserted.append(record)
        return inserted

    def consume(self, intervention_id: str, info: dict[str, Any], now: float) -> dict[str, Any]:
        """A chunk marked ``intervention_id`` consumed (``applied`` or ``ignored``).

        Raises:
            KeyError: With Agently's text when the id is unknown.
        """
        record = self.records.get(intervention_id)
        if record is None:
            raise KeyError(f"TriggerFlow intervention '{intervention_id}' not found.")
        consumer = str(info.get("consumer") or "")
        record["consumers"][consumer] = {
            "status": info.get("status", "applied"),
            "note": info.get("note"),
            "metadata": copy.deepcopy(info.get("metadata") or {}),
            "consumed_at": now,
        }
        return record

    def expire_pending(self, now: float) -> list[dict[str, Any]]:
        """Close: every record still ``pending`` becomes ``expired``."""
        expired = []
        for record in self.records.values():
            if record["status"] == "pending":
                record["status"] = "expired"
                record["expired_at"] = now
                expired.append(record)
        return expired

    # ------------------------------------------------------------- reading
    def section(self) -> dict[str, Any]:
        """The snapshot's ``intervention`` section (Agently's shape)."""
        return {
            "mode": self.mode,
            "policy": None,
            "version": self.version,
            "ledger": copy.deepcopy(self.records),
        }

    def restore(self, section: dict[str, Any]) -> None:
        """Inverse of :meth:`section`."""
        self.mode = section.get("mode")
        self.version = int(section.get("version") or 0)
        ledger = section.get("ledger") or {}
        if not isinstance(ledger, dict):
            raise TypeError("intervention.ledger must be a dict of records by id")
        self.records = copy.deepcopy(ledger)

    def filtered(
        self,
        status: str | None = None,
        target: str | None = None,
        since_version: int | None = None,
    ) -> list[dict[str, Any]]:
        """Records matching the filters, in creation order."""
        out = []
        for record in self.records.values():
            if status is not None and record.get("status") != status:
                continue
            if target is not None and record.get("target") != target:
                continue
            if since_version is not None and int(record.get("version") or 0) <= since_version:
                continue
            out.append(copy.deepcopy(record))
        return out


_SIGNAL_KEYS = ("id", "trigger_event", "trigger_type", "value", "layer_marks", "source", "meta")


def check_mode(mode: Any, has_points: bool) -> str | None:
    """Resolve ``create_execution(intervention_mode=...)`` as Agently does.

    Args:
        mode: The requested mode; ``...`` means "not given".
        has_points: Whether the flow has an ``intervention_point``.

    Raises:
        ValueError: For an unknown mode, or ``"auto"`` on a flow with intervention points.
    """
    if mode is ...:
        return "planned" if has_points else None
    if mode not in MODES:
        raise ValueError(f"intervention_mode must be None, 'planned' or 'auto', got {mode!r}.")
    if mode == "auto" and has_points:
        raise ValueError(
            "intervention_mode='auto' cannot be used with a flow that declares "
            "intervention_point(); use 'planned' (the points decide where interventions "
            "are inserted) or remove the points."
        )
    return mode
