"""What the scheduler needs from the workflow that hosts it (workflow side, a Protocol).

:class:`~.scheduler.Scheduler` calls these; ``TriggerFlowWorkflow`` implements them
(``scheduler_host`` and the chunk-run mixin). Keeping them in a Protocol lets the scheduler
run under tests without Temporal's workflow class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class SchedulerHost(Protocol):
    """What the workflow does for the scheduler (Temporal calls, records, events)."""

    def run_chunk(self, op: dict[str, Any], signal: dict[str, Any], run_id: str) -> Awaitable[Any]:
        """Run a chunk (activity, local activity or inline); its ChunkOutput."""
        ...

    def run_sub_flow(self, op: dict[str, Any], signal: dict[str, Any]) -> Awaitable[Any]:
        """Run a sub-flow as a child workflow; its written-back result."""
        ...

    def apply_op(
        self, record: list[Any], signal: dict[str, Any], op: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Apply one recorded chunk operation; a signal to dispatch and wait for, or None."""
        ...

    def record_pause(
        self, op: dict[str, Any], signal: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        """Record the interrupt a chunk asked for; its record."""
        ...

    def chunk_done(
        self,
        op: dict[str, Any],
        signal: dict[str, Any],
        run_id: str,
        value: Any,
        interrupt: dict[str, Any] | None,
    ) -> None:
        """A chunk finished (steps, ``chunk.completed``)."""
        ...

    def chunk_failed(
        self, op: dict[str, Any], signal: dict[str, Any], run_id: str, details: dict[str, Any]
    ) -> None:
        """A chunk failed (``chunk.failed``)."""
        ...

    def before_operator(
        self, op: dict[str, Any], signal: dict[str, Any]
    ) -> Callable[[], Awaitable[None]] | None:
        """Interventions inserted before an operator runs.

        Or, when the execution's intervention policy must choose first, what to await
        before ``op`` runs (nothing else runs meanwhile).
        """
        ...

    def on_activity(self) -> None:
        """Something happened (the auto-close idle timer starts over)."""
        ...

    def on_failure(self, details: dict[str, Any]) -> None:
        """A root failed: the execution is failed."""
        ...

    def on_root_done(self, root: dict[str, Any]) -> None:
        """A root finished (its signal-log entry)."""
        ...

    def hold(self) -> bool:
        """True while no new work may start (continue-as-new is due)."""
        ...
