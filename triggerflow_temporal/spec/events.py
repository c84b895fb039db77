"""Runtime events: the event types this runtime emits and the event's shape (Agently's).

A contract shared by the workflow side (which builds events: ``interpreter.event_recorder``)
and the worker side (which delivers them to hooks: ``plugin.events``).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

EVENT_SOURCE = "TriggerFlowExecution"

# Every event type this runtime emits (Agently's names, section 5 of the semantics).
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "triggerflow.execution_started",
        "triggerflow.execution_sealed",
        "triggerflow.execution_completed",
        "triggerflow.execution_failed",
        "triggerflow.execution_cancelled",
        "triggerflow.execution_closed",
        "triggerflow.event_rejected",
        "chunk.started",
        "chunk.completed",
        "chunk.failed",
        "triggerflow.interrupt_raised",
        "triggerflow.execution_resumed",
        "triggerflow.continue_rejected",
        "triggerflow.self_resume_limit_reached",
        "triggerflow.pending_interrupts_cancelled",
        "triggerflow.pending_interrupts_close_rejected",
        "triggerflow.stream_item_emitted",
        "triggerflow.stream_item_rejected",
        "triggerflow.stream_closed",
        "triggerflow.intervention_received",
        "triggerflow.intervention_inserted",
        "triggerflow.intervention_consumed",
        "triggerflow.intervention_expired",
        "triggerflow.intervention_rejected",  # an intervention_policy failed (WARNING)
        "triggerflow.sub_flow_started",
        "triggerflow.sub_flow_completed",
        "triggerflow.sub_flow_failed",
    }
)

# Agently's aliases: ``workflow.<x>`` names ``triggerflow.<x>`` for these suffixes.
WORKFLOW_ALIASES = frozenset(
    {
        "execution_started",
        "execution_completed",
        "execution_failed",
        "execution_resumed",
        "interrupt_raised",
        "stream_item_emitted",
    }
)

# Event ids are uuid5(namespace, "<workflow run id>:<seq>"): deterministic, and unique across
# runs (continue-as-new, load) of one execution id.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c9a52-6b1e-4d3a-9a35-3f7d2b0c8e41")


@dataclass(frozen=True)
class RuntimeEvent:
    """One observability event (Agently's ``RuntimeEvent`` shape).

    Attributes:
        event_id: Deterministic id of this occurrence (the same on every replay).
        event_type: E.g. ``"chunk.completed"`` or ``"triggerflow.execution_started"``.
        source: Always ``"TriggerFlowExecution"``.
        level: ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL``.
        message: A human-readable sentence.
        payload: Event facts (JSON data).
        error: ``{"type", "message", "module"}`` for failures, else None.
        run: The run context: the execution's (``run_kind="workflow_execution"``) or, for
            chunk events, the chunk run's (``run_kind="chunk_execution"``).
        meta: ``execution_id``, ``flow_name``, ``run_id`` (Temporal run), ``seq``, ``tenant``.
        timestamp: Milliseconds since the epoch, from the workflow clock.
    """

    event_id: str
    event_type: str
    source: str
    level: str
    message: str | None
    payload: Any
    error: dict[str, Any] | None
    run: dict[str, Any]
    meta: dict[str, Any]
    timestamp: int

    @property
    def execution_id(self) -> str:
        """The execution (workflow) id."""
        return str(self.meta.get("execution_id"))

    @property
    def seq(self) -> int:
        """Position of the event in its workflow run (1, 2, ...; continues over CAN)."""
        return int(self.meta.get("seq") or 0)

    def to_dict(self) -> dict[str, Any]:
        """Return the event as JSON-ready data."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "source": self.source,
            "level": self.level,
            "message": self.message,
            "payload": copy.deepcopy(self.payload),
            "error": copy.deepcopy(self.error),
            "run": copy.deepcopy(self.run),
            "meta": copy.deepcopy(self.meta),
            "timestamp": self.timestamp,
        }


def normalize_event_types(event_types: str | Iterable[str] | None) -> frozenset[str] | None:
    """Validate a hook's ``event_types`` filter; ``workflow.<x>`` aliases are accepted.

    Raises:
        TypeError: ``event_types`` is not a string, an iterable of strings or None.
        ValueError: A name is not an event type this runtime emits.
    """
    if event_types is None:
        return None
    names = [event_types] if isinstance(event_types, str) else list(event_types)
    normalized: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"event_types must hold strings, got {name!r}.")
        if name.startswith("workflow.") and name[len("workflow.") :] in WORKFLOW_ALIASES:
            name = "triggerflow." + name[len("workflow.") :]
        if name not in EVENT_TYPES:
            raise ValueError(
                f"Unknown event type {name!r}: triggerflow-temporal emits {sorted(EVENT_TYPES)}."
            )
        normalized.add(name)
    if not normalized:
        raise ValueError("event_types is empty; pass None to receive every event type.")
    return frozenset(normalized)
