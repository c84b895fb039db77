"""Shared attributes of the interpreter workflow's mixins (workflow side, declarations only).

:class:`WorkflowBase` declares what ``TriggerFlowWorkflow.__init__`` sets and the methods
one mixin calls on another, so each mixin type-checks on its own; it is last in the
workflow's method resolution order, so every real method wins over its declaration here.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ApplicationError

from ..spec.flow_spec import FlowSpec
from ..spec.wire import ContinueRequest, ExecutionOptions, FlowRuntime, Semaphore, WorkflowInput
from .event_recorder import EventRecorder
from .interventions import InterventionLedger
from .legacy_engine import Engine
from .scheduler import Scheduler
from .signal_net import SignalNet

# Runtime version (ExecutionOptions.runtime_version) from which fan-outs are bounded: a
# default in-flight cap, for_each items held and carried over continue-as-new, and the start
# update settling across runs. Executions started before it replay the unbounded dispatch.
BOUNDED_FANOUT_VERSION = 2

# False in a chain that an update awaits until it is quiescent (start without auto close,
# emit, set_state, continue_with, loaded): an update cannot outlive its run, so a fan-out
# in such a chain is never held for continue-as-new; it finishes in this run.
CHAIN_MAY_HOLD: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "triggerflow_chain_may_hold", default=True
)


# Runtime version from which the interpreter is the durable-queue Scheduler (no stack growth
# per step, continue-as-new in the middle of a chain). Before it: the nested-await Engine.
SCHEDULER_VERSION = 3

# Runtime version from which a sub-flow's child may pause: its interrupts are projected to
# the parent (interpreter/subflow_frames.py). Before it a child ran to its end in one await.
SUB_FLOW_PAUSE_VERSION = 4

# Runtime version from which payloads are compact (issue 18, finding F6 of
# bench/RESULTS.md): the start input and continue-as-new carry the packed FlowSpec
# (spec/spec_codec.py), chunk activities are sent the compact ChunkInput
# (chunk_io.pack_chunk_input), and search attributes are upserted once per workflow task,
# only the keys whose value changed.
COMPACT_PAYLOAD_VERSION = 4

# Inline (execute_in="workflow") chunks run between two workflow-task yields (version 3).
INLINE_YIELD_EVERY = 200

# Runtime version from which (issue 18, findings L4 and L5 of bench/RESULTS.md):
# - inline chunks yield every INLINE_BATCH chunks with a no-op local activity
#   (YIELD_ACTIVITY, served by the plugin): it ends the activation in milliseconds, at one
#   marker event per batch. Version 3 yields with a 1 ms timer every INLINE_YIELD_EVERY
#   chunks, which fires after ~1 s on a server (the timer queue's granularity): inline loops
#   ran at ~200 steps/s. 50 chunks keep one activation well under Temporal's 2 s deadlock
#   detector on a starved CPU (200 did not, in the soak).
# - a run holds for continue-as-new once it has scheduled MAX_RUN_MARKERS local activities
#   (_markers_at_bound): a chain of local activities keeps one task open until the SDK's
#   heartbeat (~8 s), and the history length Temporal reports only changes when a task
#   starts, so runs went up to a heartbeat's worth of markers past MAX_RUN_EVENTS.
FAST_YIELD_VERSION = 4
INLINE_BATCH = 50
YIELD_ACTIVITY = "triggerflow.yield"


class WorkflowBase:
    """Attributes and cross-mixin methods of :class:`~.workflow.TriggerFlowWorkflow`."""

    # Set by TriggerFlowWorkflow.__init__ (and restored on continue-as-new or load).
    _spec: FlowSpec
    _options: ExecutionOptions
    _runtime: FlowRuntime
    _execution_id: str
    _events: EventRecorder
    _stream: WorkflowStream
    _stream_stopped: bool
    _v3: bool
    _engine: SignalNet
    _status: str
    _lifecycle: str
    _started: bool
    _tick: int
    _interrupts: dict[str, dict[str, Any]]
    _error: dict[str, Any] | None
    _close_snapshot: dict[str, Any] | None
    _close_reason: str | None
    _created_at: float
    _started_at: float | None
    _closed_at: float | None
    _last_activity_at: float
    _permits: Semaphore | None
    _closing: bool
    _sealed_at: float | None = None
    _detached: list[asyncio.Future[None]]
    _deadlines: dict[str, dict[str, Any]]
    _timers: dict[str, asyncio.Future[None]]
    _interventions: InterventionLedger
    _signal_log: list[dict[str, Any]]
    _rejected: list[dict[str, Any]]
    _inflight: dict[str, dict[str, Any]]
    _pending_work: list[dict[str, Any]]
    _steps: int
    _inline_runs: int
    # Local activities this run scheduled (version 4: _note_marker, _markers_at_bound),
    # and whether the task was ended before continue-as-new (_task_ended_for_handover).
    _run_markers: int = 0
    _handover_task_ended: bool = False
    _search_attributes_sent: (
        tuple[str, tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]] | None] | None
    )
    _restore_done: bool
    _drive: asyncio.Future[None] | None = None
    _load_root: str | None = None

    def _user_sealed(self) -> bool:
        """Sealed by ``async_seal()`` (close seals transiently while it drains, not this).

        Never true in a history recorded before sealing existed, so the conditions that
        test it keep those histories' commands.
        """
        return self._lifecycle == "sealed" and not self._closing

    # Defined by the workflow class or one of its mixins.
    async def _apply_state_op(self, op: list[Any]) -> None:
        raise NotImplementedError

    def _apply_stream_op(self, record: list[Any], chunk: dict[str, Any] | None) -> None:
        raise NotImplementedError

    async def _await_root(self, root: str) -> Any:
        raise NotImplementedError

    def _awaited_interrupts(self) -> set[str]:
        raise NotImplementedError

    def _begin(self, value: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def _broken(self) -> bool:
        raise NotImplementedError

    def _check_continue(self, request: ContinueRequest) -> bool:
        raise NotImplementedError

    async def _close(
        self, reason: str, pending_interrupts: str, *, seal: bool = True
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def _continue(self, request: ContinueRequest, *, awaited: bool = True) -> Any:
        raise NotImplementedError

    def _continue_as_new_due(self) -> bool:
        raise NotImplementedError

    def _spec_input(self, spec: FlowSpec | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _wire_input(self, value: WorkflowInput) -> WorkflowInput | dict[str, Any]:
        raise NotImplementedError

    def _markers_at_bound(self) -> bool:
        raise NotImplementedError

    def _learn_channels(self, channels: list[str] | None) -> None:
        raise NotImplementedError

    async def _task_ended_for_handover(self) -> bool:
        raise NotImplementedError

    def _handover_ready(self) -> bool:
        raise NotImplementedError

    def _update_details(self) -> None:
        raise NotImplementedError

    def _emit(
        self,
        event_type: str,
        message: str,
        payload: Any = None,
        *,
        level: str = "INFO",
        error: dict[str, Any] | None = None,
    ) -> None:
        raise NotImplementedError

    def _emit_chunk(
        self,
        event_type: str,
        op: dict[str, Any],
        signal: dict[str, Any],
        run_id: str,
        extra: Callable[[], dict[str, Any]] | dict[str, Any] | None = None,
        *,
        level: str = "INFO",
        error: dict[str, Any] | None = None,
    ) -> None:
        raise NotImplementedError

    def _export_stream(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _external(
        self, signal: dict[str, Any], *, op: dict[str, Any] | None = None, answer: Any = "results"
    ) -> Any:
        raise NotImplementedError

    def _fail(self, details: dict[str, Any]) -> None:
        raise NotImplementedError

    def _fanout_bounded(self) -> bool:
        raise NotImplementedError

    async def _guarded(self, awaitable: Any) -> Any:
        raise NotImplementedError

    @property
    def _legacy(self) -> Engine:
        raise NotImplementedError

    def _log_signal(self, signal: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    def _on_intervention(self, action: str, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def _pending_snapshot_work(self, exclude: str | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _put_stream_item(
        self, item: Any, origin: dict[str, Any] | None = None, *, system: bool = False
    ) -> None:
        raise NotImplementedError

    def _quiescent(self) -> bool:
        raise NotImplementedError

    def _in_own_workflow(self) -> bool:
        raise NotImplementedError

    def _export_notify(self) -> dict[str, Any]:
        raise NotImplementedError

    # Notifications and follow-ups (NotifyMixin).
    def _notify(
        self,
        kind: str,
        record: dict[str, Any] | None = None,
        *,
        link_subjects: list[str] | None = None,
    ) -> None:
        raise NotImplementedError

    def _notify_interrupt_end(self, record: dict[str, Any], kind: str) -> None:
        raise NotImplementedError

    def _start_follow_up(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def _raise_if_broken(self) -> None:
        raise NotImplementedError

    def _record_interrupt(
        self, op: dict[str, Any], signal: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _refresh_status(self) -> None:
        raise NotImplementedError

    def _reject_signal_request(self, request: ContinueRequest, error: ApplicationError) -> None:
        raise NotImplementedError

    async def _resolve_resume_event(self, signal: dict[str, Any]) -> None:
        raise NotImplementedError

    def _resolve_resume_event_now(self, signal: dict[str, Any]) -> None:
        raise NotImplementedError

    def _resume_event_problem(self, event: str, trigger_type: str, value: Any) -> str | None:
        raise NotImplementedError

    def _register_correlation(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def _resume_event_access_problem(self, event: str, trigger_type: str, actor: Any) -> str | None:
        raise NotImplementedError

    async def _run_external(self, signal: dict[str, Any], awaitable: Any) -> Any:
        raise NotImplementedError

    @property
    def _sched(self) -> Scheduler:
        raise NotImplementedError

    async def _set_state_root(self, record: list[Any]) -> Any:
        raise NotImplementedError

    def _settle_marker(self, result: Any) -> Any:
        raise NotImplementedError

    async def _settle_root(self, root: str) -> dict[str, Any]:
        raise NotImplementedError

    def _snapshot(self, pending: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    # Sub-flow frames (subflow_frames.py).
    _frames: dict[str, dict[str, Any]]

    async def _run_sub_flow(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def _continue_projected(
        self, request: ContinueRequest, record: dict[str, Any], *, awaited: bool
    ) -> Any:
        raise NotImplementedError

    def _export_frames(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def _saved_frames(self, *, drop: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def _restore_frames(self, saved: dict[str, Any], *, carried: bool) -> None:
        raise NotImplementedError

    def _mark_resumed(self, record: dict[str, Any], request: ContinueRequest) -> None:
        raise NotImplementedError

    def _answer(self, outcome: dict[str, Any]) -> Any:
        raise NotImplementedError

    def on_failure(self, details: dict[str, Any]) -> None:  # noqa: D102 (scheduler host)
        raise NotImplementedError

    async def _start(self, value: Any) -> Any:
        raise NotImplementedError

    def _stop_runtime_stream(self, reason: str) -> None:
        raise NotImplementedError

    def _touch(self) -> None:
        raise NotImplementedError

    def _trim_stream(self) -> None:
        raise NotImplementedError

    def _write_ledger(self) -> None:
        raise NotImplementedError

    def info_query(self) -> dict[str, Any]:
        """The ``info`` query (a handler of the workflow)."""
        raise NotImplementedError
