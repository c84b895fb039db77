"""Resume requests (``continue_with(..., resume_request_id=)``) in Agently's shape.

Pure functions, used by the workflow (deterministic: no I/O, no clock of their own) and by
the client when it reads a snapshot.

An interrupt record keeps its requests under ``resume_requests`` (``{request_id: entry}``),
as natively. The workflow accepts and dispatches a request in one step (the update's
validator has already checked it), and the request is completed when the chain it resumed
is done: :func:`note_resume` marks the root of work a resume starts, and
:func:`finish_resume` records the outcome when that root is done (runtime version 3;
executions of versions 1-2 show their requests as dispatched).

Natively (agently 4.1.4.10, ``ExecutionInterrupts.async_continue_with``) an entry goes
``accepted`` -> ``dispatched`` (``dispatched_at``, ``dispatch_attempts``) -> ``completed``
(``completed_at``) or ``dispatch_failed`` (``dispatch_failed_at``, ``error``), and the
interrupt's ``external_wait_request`` follows (``dispatch_state``,
``callback_idempotency_key`` = the request id, ``actor_id``). A snapshot's top-level
``resume_ledger`` is ``{interrupt_id: {request_id: entry}}``
(``ExecutionPersistence._collect_resume_ledger``). Snapshots saved before this module
existed have ``{request_id: {"interrupt_id": ..., **entry}}`` there; :func:`merge_ledger`
reads both.
"""

from __future__ import annotations

import copy
from typing import Any

from .._errors import SnapshotError

# Key on a scheduler root record: [interrupt id, resume request id] of the resume it runs.
ROOT_KEY = "resume"

_DISPATCHED = ("dispatched", "completed", "dispatch_failed")


def note_resume(root: dict[str, Any], signal: dict[str, Any]) -> None:
    """Mark ``root`` (a scheduler root record) as the work of a resume with a request id."""
    if signal.get("source") != "interrupt":
        return
    context = (signal.get("meta") or {}).get("resume")
    if not isinstance(context, dict):
        return
    interrupt = context.get("interrupt")
    request_id = interrupt.get("resume_request_id") if isinstance(interrupt, dict) else None
    interrupt_id = context.get("interrupt_id")
    if isinstance(interrupt_id, str) and isinstance(request_id, str):
        root[ROOT_KEY] = [interrupt_id, request_id]


def finish_resume(interrupts: dict[str, dict[str, Any]], root: dict[str, Any], now: float) -> None:
    """Record the outcome of a finished root on the resume request it ran (if any)."""
    mark = root.get(ROOT_KEY)
    if not isinstance(mark, list) or len(mark) != 2:
        return
    record = interrupts.get(mark[0])
    requests = record.get("resume_requests") if isinstance(record, dict) else None
    entry = requests.get(mark[1]) if isinstance(requests, dict) else None
    if not isinstance(entry, dict) or entry.get("status") not in ("accepted", "dispatched"):
        return
    entry.setdefault("dispatched_at", entry.get("accepted_at"))
    entry.setdefault("dispatch_attempts", 1)
    error = root.get("error")
    if error is None:
        entry["status"] = "completed"
        entry["completed_at"] = now
    else:
        entry["status"] = "dispatch_failed"
        entry["dispatch_failed_at"] = now
        entry["error"] = str(error.get("message") if isinstance(error, dict) else error)


def _subject(actor: Any) -> Any:
    """The subject of an actor (a subject string or a principal dict)."""
    if isinstance(actor, dict):
        return actor.get("subject")
    return actor


def native_request(entry: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``entry`` as Agently writes it (status and dispatch fields)."""
    out = copy.deepcopy(entry)
    status = out.get("status")
    if status == "accepted" and record.get("status") != "waiting":
        # Accepted and dispatched in one workflow step; its chain has not finished yet.
        status = "dispatched"
    if status in _DISPATCHED:
        out.setdefault("dispatched_at", out.get("accepted_at"))
        out.setdefault("dispatch_attempts", 1)
    out["status"] = status
    return out


def native_interrupt(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of an interrupt record as Agently saves it (resume requests, claim, wait state)."""
    out = copy.deepcopy(record)
    requests = out.get("resume_requests")
    if isinstance(requests, dict):
        out["resume_requests"] = {
            request_id: native_request(entry, record) if isinstance(entry, dict) else entry
            for request_id, entry in requests.items()
        }
        current = out["resume_requests"].get(out.get("resume_request_id"))
        wait = out.get("external_wait_request")
        if isinstance(current, dict) and isinstance(wait, dict):
            wait["dispatch_state"] = current.get("status")
            wait["callback_idempotency_key"] = out["resume_request_id"]
            if current.get("actor") is not None:
                wait["actor_id"] = _subject(current["actor"])
    if "response" in out:
        out.setdefault("resume_claim", None)  # continue_with claimed it, then let go
    return out


def native_interrupts(interrupts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every interrupt record as Agently saves it (copies)."""
    return {interrupt_id: native_interrupt(record) for interrupt_id, record in interrupts.items()}


def collect_ledger(interrupts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The snapshot's ``resume_ledger``: ``{interrupt_id: {request_id: entry}}`` (copies).

    As natively: an interrupt's ``resume_requests``, or, when it has none but names a
    ``resume_request_id``, one accepted entry for it.
    """
    ledger: dict[str, Any] = {}
    for interrupt_id, record in interrupts.items():
        if not isinstance(record, dict):
            continue
        requests = record.get("resume_requests")
        if requests:
            ledger[str(interrupt_id)] = copy.deepcopy(requests)
        elif record.get("resume_request_id"):
            ledger[str(interrupt_id)] = {
                str(record["resume_request_id"]): {
                    "status": "accepted",
                    "accepted_at": record.get("resumed_at"),
                }
            }
    return ledger


def _ledger_entries(ledger: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """``(interrupt id, request id, entry)`` of a saved ledger, in either shape.

    Raises:
        SnapshotError: The ledger is neither shape.
    """
    if not isinstance(ledger, dict):
        raise SnapshotError(
            f"Snapshot section 'resume_ledger' must be a dict, got {type(ledger).__name__}."
        )
    found: list[tuple[str, str, dict[str, Any]]] = []
    for key, value in ledger.items():
        if not isinstance(value, dict):
            raise SnapshotError(
                f"Snapshot resume_ledger[{key!r}] must be a dict, got {type(value).__name__}."
            )
        if isinstance(value.get("interrupt_id"), str) and "status" in value:
            # Saved before the native shape: {request_id: {"interrupt_id": ..., **entry}}.
            entry = {k: v for k, v in value.items() if k != "interrupt_id"}
            entry.setdefault("request_id", key)
            found.append((value["interrupt_id"], key, entry))
            continue
        for request_id, entry in value.items():
            if not isinstance(entry, dict):
                raise SnapshotError(
                    f"Snapshot resume_ledger[{key!r}][{request_id!r}] must be a dict, got "
                    f"{type(entry).__name__}."
                )
            found.append((key, request_id, {"request_id": request_id, **entry}))
    return found


def merge_ledger(saved: dict[str, Any]) -> None:
    """Read a saved ``resume_ledger`` (either shape) into its interrupts' ``resume_requests``.

    An interrupt's own entries win; the ledger fills what an interrupt lacks (a snapshot
    whose records were trimmed or edited by hand). Entries whose interrupt is not in the
    snapshot are ignored, as natively. Every entry gets a ``value`` (None when it has
    none, as natively compared), which a repeated ``continue_with`` is checked against.

    Raises:
        SnapshotError: The ledger or an interrupt's ``resume_requests`` is malformed.
    """
    interrupts = saved.get("interrupts") or {}
    for interrupt_id, record in interrupts.items():
        requests = record.get("resume_requests") if isinstance(record, dict) else None
        if requests is None:
            continue
        if not isinstance(requests, dict) or not all(
            isinstance(entry, dict) for entry in requests.values()
        ):
            raise SnapshotError(
                f"Snapshot interrupt {interrupt_id!r} has malformed resume_requests: it must "
                "map request ids to dicts."
            )
        for entry in requests.values():
            entry.setdefault("value", None)
    ledger = saved.get("resume_ledger")
    for interrupt_id, request_id, entry in _ledger_entries({} if ledger is None else ledger):
        record = interrupts.get(interrupt_id)
        if not isinstance(record, dict):
            continue
        entry.setdefault("value", None)
        if record.get("resume_requests") is None:
            record["resume_requests"] = {}
        record["resume_requests"].setdefault(request_id, copy.deepcopy(entry))
