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

# The local activity that runs an execution's intervention policy on the worker
# (plugin/intervention_policies.py): ``{"policy": name, "context": ...}`` -> ``{"ids": [...]}``
# or ``{"ids": [], "error": {"type", "message", "module"}}`` when the policy raised.
POLICY_ACTIVITY = "triggerflow.intervention_policy"
# The ApplicationError type of that activity when the worker has no policy of that name.
POLICY_NOT_REGISTERED = "InterventionPolicyNotRegistered"
# The name auto mode's own selection goes by in snapshots and insertions, as natively.
BUILTIN_POLICY = "builtin"


def policy_label(key: str) -> str:
    """The name a registered policy shows in snapshots and insertions: its ``__name__``.

    Natively that is ``fn.__name__``; here the key is ``module.qualname``, whose last
    part is the function's name.
    """
    return key.rsplit(".", 1)[-1]


class InterventionLedger:
    """Intervention records by id, in creation order, with Agently's record shape."""

    def __init__(self, mode: str | None = None, policy: str | None = None) -> None:
        self.mode = mode
        # The registered name of the execution's intervention_policy (None: auto mode
        # selects by target).
        self.policy = policy
        # The policy name a loaded snapshot showed; kept when no policy is given, as
        # natively (Agently keeps the saved name and selects with its builtin).
        self._shown_policy: str | None = None
        self.version = 0
        self.records: dict[str, dict[str, Any]] = {}

    def policy_name(self) -> str | None:
        """The ``policy`` of the snapshot section and of auto insertions, as natively."""
        if self.policy is not None:
            return policy_label(self.policy)
        if self._shown_policy is not None:
            return self._shown_policy
        return BUILTIN_POLICY if self.mode == "auto" else None

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

    def needs_policy(self) -> bool:
        """Whether the execution's intervention policy must choose before an operator.

        Only in auto mode, with a policy, and while some record is pending: executions
        with nothing pending never call it (as natively).
        """
        return (
            self.mode == "auto"
            and self.policy is not None
            and any(r["status"] == "pending" for r in self.records.values())
        )

    def insert_chosen(
        self, ids: list[str], op: dict[str, Any], signal: dict[str, Any], now: float
    ) -> list[dict[str, Any]]:
        """Insert what the intervention policy chose before ``op``, in the order given.

        As natively, ids that are unknown or no longer pending are skipped (a repeated id
        too), and the policy's choice is not checked against the records' targets.
        """
        if self.mode != "auto":
            return []
        chosen = []
        for intervention_id in dict.fromkeys(str(i) for i in ids):
            record = self.records.get(intervention_id)
            if record is not None and record["status"] == "pending":
                chosen.append(intervention_id)
        return self._insert(chosen, "auto", op, signal, now)

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
        if mode == "auto":
            # Natively auto insertions name the policy that chose them ("builtin": targets).
            insertion["policy"] = self.policy_name()
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
            "policy": self.policy_name(),
            "version": self.version,
            "ledger": copy.deepcopy(self.records),
        }

    def restore(self, section: dict[str, Any]) -> None:
        """Inverse of :meth:`section` (the policy itself comes with the execution options)."""
        self.mode = section.get("mode")
        shown = section.get("policy")
        self._shown_policy = shown if isinstance(shown, str) else None
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


def policy_context(
    ledger: InterventionLedger,
    *,
    execution_id: str,
    flow_name: str,
    op: dict[str, Any],
    signal: dict[str, Any],
    state: dict[str, Any],
) -> dict[str, Any]:
    """What the intervention policy is handed before ``op`` runs: Agently's keys.

    ``execution_id``, ``flow_name``, ``signal`` (id, trigger_event, trigger_type, value,
    layer_marks, source, meta), ``operator`` (the operator record: id, kind, name,
    listen/emit signals, options, group ids and kinds, handler and condition refs), its
    ``operator_id`` / ``operator_name`` / ``operator_kind`` / ``group_id`` /
    ``group_kind``, ``pending_interventions`` (the pending records, oldest first),
    ``state`` (the execution's state, ``$interventions`` included) and
    ``latest_inserted_version`` (the highest version of an inserted record, 0 if none).
    JSON data (copies): the policy runs on a worker, not in the workflow.
    """
    pending = [r for r in ledger.records.values() if r["status"] == "pending"]
    pending.sort(key=lambda r: int(r.get("version") or 0))
    inserted = [
        int(r.get("version") or 0) for r in ledger.records.values() if r["status"] == "inserted"
    ]
    return copy.deepcopy(
        {
            "execution_id": execution_id,
            "flow_name": flow_name,
            "signal": {k: signal.get(k) for k in _SIGNAL_KEYS},
            "operator": op,
            "operator_id": op.get("id"),
            "operator_name": op.get("name"),
            "operator_kind": op.get("kind"),
            "group_id": op.get("group_id"),
            "group_kind": op.get("group_kind"),
            "pending_interventions": pending,
            "state": state,
            "latest_inserted_version": max(inserted, default=0),
        }
    )


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
