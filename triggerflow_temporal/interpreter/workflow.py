"""The interpreter workflow: one Temporal workflow type per flow, one generic class.

Deterministic by construction: no I/O, no wall clock, no randomness, no threads. This
module holds the run loop and the lifecycle; the class is assembled from mixins by concern:
chunk runs (``workflow_chunks``), the carry and snapshots (``workflow_carry``), handlers
(``workflow_handlers``), interrupts (``interrupts``), events (``events``) and the
runtime-version-3 scheduler host (``scheduler_host``). Their shared attributes are declared
in ``workflow_base``.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any, ClassVar, cast

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ApplicationError

from ..spec.flow_spec import FlowSpec
from ..spec.limits import MAX_SIGNAL_ATTEMPTS
from ..spec.notifications import EXECUTION_COMPLETED, EXECUTION_FAILED, INTERRUPT_CANCELLED
from ..spec.search_attributes import (
    changed_search_attribute_updates,
    initial_visible_values,
    search_attribute_updates,
)
from ..spec.wire import (
    CloseRequest,
    ContinueRequest,
    EmitRequest,
    ExecutionOptions,
    FlowRuntime,
    InterveneRequest,
    Semaphore,
    SetStateRequest,
    WorkflowInput,
    chunk_failed_error,
    summarize,
)
from .access import ACCESS_KEY, ANYONE
from .event_recorder import EventRecorder
from .events import error_info, stream_state_from_carry
from .interrupts import InterruptsMixin
from .interventions import InterventionLedger
from .legacy_engine import (
    ChunkFailure,
    Engine,
)
from .notifying import NotifyMixin
from .scheduler import Scheduler
from .scheduler_host import SchedulerHostMixin
from .signal_net import SignalNet
from .subflow_frames import SubFlowFramesMixin
from .workflow_base import (
    COMPACT_PAYLOAD_VERSION,
    SCHEDULER_VERSION,
)
from .workflow_carry import CarryMixin
from .workflow_chunks import ChunkRunMixin
from .workflow_handlers import HandlersMixin

__all__ = [
    "CloseRequest",
    "ContinueRequest",
    "EmitRequest",
    "ExecutionOptions",
    "InterveneRequest",
    "SetStateRequest",
    "TriggerFlowWorkflow",
    "WorkflowInput",
]


class TriggerFlowWorkflow(
    HandlersMixin,
    CarryMixin,
    ChunkRunMixin,
    SubFlowFramesMixin,
    InterruptsMixin,
    NotifyMixin,
    SchedulerHostMixin,
):
    """Generic interpreter; the plugin derives one ``@workflow.defn`` class per flow name."""

    _tf_runtime: ClassVar[Any] = None

    @workflow.init
    def __init__(self, input: WorkflowInput) -> None:
        self._spec = FlowSpec.from_json(input.spec)
        self._options = input.options
        self._runtime: FlowRuntime = type(self)._tf_runtime
        self._execution_id = workflow.info().workflow_id
        observe = (input.carry or {}).get("observe") or {}
        self._events = EventRecorder(
            getattr(self._runtime, "events", None),
            execution_id=self._execution_id,
            run_id=workflow.info().run_id,
            flow_name=self._spec.name,
            tenant=input.options.tenant,
            seq=int(observe.get("event_seq") or 0),
        )
        # The runtime stream; WorkflowStream registers its handlers from @workflow.init only.
        self._stream = WorkflowStream(prior_state=stream_state_from_carry(observe))
        self._stream_stopped = bool(observe.get("stream_stopped"))
        self._v3 = input.options.runtime_version >= SCHEDULER_VERSION
        self._engine: SignalNet
        if self._v3:
            self._engine = Scheduler(
                self._spec,
                execution_id=self._execution_id,
                condition=lambda name: self._runtime.condition(self._spec.name, name),
                host=self,
            )
        else:
            self._engine = Engine(
                self._spec,
                execution_id=self._execution_id,
                run_chunk=self._run_chunk,
                run_sub_flow=self._run_sub_flow,
                condition=lambda name: self._runtime.condition(self._spec.name, name),
                on_activity=self._touch,
                before_operator=self._before_operator,
                fanout_limit=self._fanout_limit,
                hold_fanout=self._hold_fanout,
            )
        self._engine.skip_exceptions = input.options.skip_exceptions
        self._status = "created"
        self._lifecycle = "open"
        self._started = False
        self._tick = 0
        self._interrupts: dict[str, dict[str, Any]] = {}
        self._error: dict[str, Any] | None = None
        self._close_snapshot: dict[str, Any] | None = None
        self._close_reason: str | None = None
        now = workflow.now().timestamp()
        self._created_at = now
        self._started_at: float | None = None
        self._closed_at: float | None = None
        self._last_activity_at = now
        self._permits = Semaphore(input.options.concurrency) if input.options.concurrency else None
        self._closing = False
        self._detached: list[asyncio.Future[None]] = []
        self._deadlines: dict[str, dict[str, Any]] = {}
        self._timers: dict[str, asyncio.Future[None]] = {}
        self._interventions = InterventionLedger(
            input.options.intervention_mode, input.options.intervention_policy
        )
        self._signal_log: list[dict[str, Any]] = []
        self._rejected: list[dict[str, Any]] = []
        # Chunk runs in flight by run id: what a snapshot taken now must re-run on load.
        self._inflight: dict[str, dict[str, Any]] = {}
        self._pending_work: list[dict[str, Any]] = []
        self._steps = 0
        self._inline_runs = 0
        self._search_attributes_sent = None
        self._frames = {}
        self._report_chain = None
        self._frame_signals = []
        self._init_notify((input.carry or {}).get("notify"))
        if input.carry is not None:
            self._restore_runtime(input.carry)
        elif input.restore is not None:
            self._restore_snapshot(input.restore)
        self._restore_done = not self._pending_work

    # =============================================================== run loop
    async def run_flow(self, input: WorkflowInput) -> dict[str, Any]:
        """The run of the execution (the generated ``@workflow.run`` method calls it)."""
        try:
            return await self._run(input)
        except ApplicationError:
            if self._options.sub_flow_parent:
                await self._report_end()  # a paused sub-flow's failure reaches its parent
            raise

    async def _run(self, input: WorkflowInput) -> dict[str, Any]:
        if self._v3:
            self._drive = asyncio.ensure_future(self._sched.drive())
        for interrupt_id in list(self._deadlines):
            self._start_timeout_timer(interrupt_id)  # timers restored after CAN or load
        for record in list(self._interrupts.values()):
            self._register_correlation(record)  # mailboxes, after CAN or load
            self._start_follow_up(record)  # reminders and escalation, likewise
        if self._v3:
            if self._pending_work:
                self._submit_pending_work()
            if input.start is not None and not self._started:
                self._submit_start(input.start.get("value"))
            await self._restart_loaded_frames()
        else:
            self._resume_held_fanouts()  # for_each items carried over continue-as-new
            if self._pending_work:
                await self._resume_pending_work()
            if input.start is not None and not self._started:
                try:
                    await self._start(input.start.get("value"))
                except ApplicationError:
                    if self._options.hidden:
                        raise
        while self._lifecycle != "closed":
            self._raise_if_broken()
            if self._continue_as_new_due():
                if not await self._task_ended_for_handover():
                    continue  # version 4, held by MAX_RUN_MARKERS: the task ended first
                await self._release_stream_pollers()
                await self._flush_frame_signals()
                if self._should_continue_as_new():
                    carry = self._export_runtime()
                    self._check_carry(carry)
                    workflow.continue_as_new(
                        self._wire_input(
                            WorkflowInput(
                                spec=self._spec_input(), options=self._options, carry=carry
                            )
                        )
                    )
            timeout = self._options.auto_close_timeout
            if not self._options.auto_close or timeout is None:
                await workflow.wait_condition(
                    lambda: (
                        self._lifecycle == "closed" or self._continue_as_new_due() or self._broken()
                    )
                )
                continue
            await workflow.wait_condition(
                lambda: (
                    self._lifecycle == "closed"
                    or self._idle()
                    or self._continue_as_new_due()
                    or self._broken()
                )
            )
            if self._lifecycle == "closed" or not self._idle():
                continue
            tick = self._tick
            if timeout > 0:
                try:
                    await workflow.wait_condition(
                        lambda tick=tick: (
                            self._lifecycle == "closed"
                            or self._tick != tick
                            or not self._idle()
                            or self._broken()
                        ),
                        timeout=timedelta(seconds=timeout),
                        timeout_summary="auto close idle timer",
                    )
                    continue
                except TimeoutError:
                    pass
            if self._lifecycle != "closed" and self._idle():
                await self._close("auto_close_idle_timeout", "error")
        self._stream.detach_pollers()  # also when the run starts closed (a loaded snapshot)
        # The last notifications (completed, failed, cancelled) are handed to their children.
        await workflow.wait_condition(lambda: not self._notifications_pending())
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._report_end()
        if self._status == "failed" and self._error is not None:
            raise chunk_failed_error(self._error)
        return copy.deepcopy(self._close_snapshot or {})

    def _quiescent(self) -> bool:
        """No chunk runs, no detached work is pending and no for_each item waits."""
        if self._v3:
            return not self._sched.busy()
        return (
            self._legacy.active == 0
            and not self._legacy.fanouts  # held items go on in the next run
            and all(task.done() for task in self._detached)
        )

    def _idle(self) -> bool:
        """Quiescent with nothing waiting either: the auto-close timer may run."""
        return (
            self._quiescent()
            and not self._closing
            and not any(i["status"] == "waiting" for i in self._interrupts.values())
            # A paused sub-flow (waiting, or resumed and not yet ended) is not idle either.
            and not self._frames
            # Natively the auto-close monitor skips a sealed execution.
            and not self._user_sealed()
        )

    def _continue_as_new_due(self) -> bool:
        if self._v3:
            # Pending work is carried; only chunks and sub-flows in flight must finish (and
            # notifications being handed to their children).
            return (
                self._hold() and self._sched.in_flight() == 0 and not self._notifications_pending()
            )
        return (
            workflow.info().is_continue_as_new_suggested()
            # Not "open": a sealed execution continues as new too (before sealing existed
            # "sealed" only meant closing, so older histories keep their commands).
            and self._lifecycle != "closed"
            and self._legacy.active == 0
            and not self._closing
        )

    def _should_continue_as_new(self) -> bool:
        return self._continue_as_new_due() and workflow.all_handlers_finished()

    async def _release_stream_pollers(self) -> None:
        """Runtime stream subscribers hold a poll update open; release them before CAN.

        Their clients follow the continue-as-new chain and go on reading from the same
        offsets in the next run, which carries the stream log over.
        """
        if workflow.all_handlers_finished():
            return
        self._stream.detach_pollers()
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() or not self._continue_as_new_due()
        )
        if not self._should_continue_as_new():
            # Continue-as-new deferred (new work arrived): serve subscribers again.
            self._stream._detaching = False  # pyright: ignore[reportPrivateUsage]

    def _touch(self) -> None:
        self._tick += 1
        self._last_activity_at = workflow.now().timestamp()

    def _now(self) -> float:
        return workflow.now().timestamp()

    # ============================================================= lifecycle
    def _begin(self, value: Any) -> dict[str, Any] | None:
        """Mark the execution started; its START signal (None when it had started)."""
        if self._started:
            return None
        self._started = True
        self._status = "running"
        self._started_at = workflow.now().timestamp()
        self._emit(
            "triggerflow.execution_started",
            f"TriggerFlow execution '{self._execution_id}' started.",
            lambda: {"initial_value": value},
        )
        return self._engine.make_signal("START", value, source="start")

    async def _start(self, value: Any) -> Any:
        signal = self._begin(value)
        if signal is None:
            return None
        return await self._external(signal, answer=None)

    @property
    def _legacy(self) -> Engine:
        return cast(Engine, self._engine)

    async def _external(
        self, signal: dict[str, Any], *, op: dict[str, Any] | None = None, answer: Any = "results"
    ) -> Any:
        """Run work from outside (start, emit, resume) and log the attempt.

        ``op``: run that chunk operator on ``signal`` (a self resume) instead of dispatching.
        From runtime version 3 the answer may be :class:`Held` (settled in a later run).
        """
        if self._v3:
            return await self._external_root(signal, op=op, answer=answer)
        if op is None:
            return await self._run_external(signal, self._legacy.dispatch(signal))
        return await self._run_external(signal, self._legacy.run_chunk_operator(op, signal))

    def _log_signal(self, signal: dict[str, Any]) -> dict[str, Any]:
        """A ``signal_attempts`` entry for ``signal`` (the last MAX_SIGNAL_ATTEMPTS kept)."""
        now = self._now()
        meta = {k: v for k, v in signal["meta"].items() if k != "resume"}
        entry = {
            "signal_id": signal["id"],
            "trigger_type": signal["trigger_type"],
            "trigger_event": signal["trigger_event"],
            "source": signal["source"],
            "meta": copy.deepcopy(meta),
            "status": "running",
            "created_at": now,
            "updated_at": now,
        }
        self._signal_log.append(entry)
        del self._signal_log[:-MAX_SIGNAL_ATTEMPTS]
        return entry

    async def _run_external(self, signal: dict[str, Any], awaitable: Any) -> Any:
        """Await engine work started from outside (runtime versions 1-2)."""
        entry = self._log_signal(signal)
        try:
            result = await self._guarded(awaitable)
            entry["status"] = "completed"
            return result
        except BaseException:
            entry["status"] = "failed"
            raise
        finally:
            entry["updated_at"] = self._now()

    async def _guarded(self, awaitable: Any) -> Any:
        """Await engine work; turn a chunk failure into ``failed`` + an ApplicationError.

        The ``finally`` also runs when Python finalizes this coroutine (GeneratorExit) in an
        instance nobody runs any more: :meth:`_update_details` then sends nothing.
        """
        try:
            return await awaitable
        except ChunkFailure as failure:
            self._fail(failure.details)
            raise chunk_failed_error(failure.details) from None
        finally:
            self._refresh_status()

    def _fail(self, details: dict[str, Any]) -> None:
        first = self._error is None
        if first:
            self._error = details
            self._emit(
                "triggerflow.execution_failed",
                f"TriggerFlow execution '{self._execution_id}' failed in chunk "
                f"'{details.get('chunk')}'.",
                lambda: {"chunk": details.get("chunk"), "flow": details.get("flow")},
                level="ERROR",
                error=error_info(details),
            )
        self._status = "failed"
        self._update_details()
        if first:
            self._notify(EXECUTION_FAILED)

    def _refresh_status(self) -> None:
        if self._status in ("failed", "completed", "cancelled") or not self._started:
            self._update_details()
            return
        waiting = any(i["status"] == "waiting" for i in self._interrupts.values())
        self._status = "waiting" if waiting else "running"
        self._update_details()

    def _in_own_workflow(self) -> bool:
        """Whether the workflow event loop running this code is this instance's own.

        It is on every workflow path. It is not when the garbage collector finalizes the
        suspended coroutines of an instance nobody runs any more (a worker stopped while a
        chain waited on a chunk: the SDK leaves cached runs in memory at shutdown): their
        ``finally`` blocks run on whatever thread the collection happens on, and a
        ``workflow.*`` call there acts on the workflow that thread is running. An upsert
        from here would be recorded in another execution's history, or issued by another
        history's replay (nondeterminism: issue 12, item 3).
        """
        try:
            return workflow.instance() is self
        except Exception:  # no workflow event loop on this thread
            return False

    def _update_details(self) -> None:
        if not self._in_own_workflow():
            return
        lines = [
            f"**{self._spec.name}** · status `{self._status}` · lifecycle `{self._lifecycle}`",
        ]
        pending = [i for i in self._interrupts.values() if i["status"] == "waiting"]
        if pending:
            lines.append("")
            lines.append("Pending interrupts:")
            for record in pending:
                payload = summarize(record.get("payload"))
                lines.append(f"- `{record['id']}` ({record['type']}): {payload}")
        if self._error is not None:
            lines.append("")
            lines.append(
                f"Failed in chunk `{self._error.get('chunk')}`: "
                f"{self._error.get('type')}: {summarize(self._error.get('message'))}"
            )
        workflow.set_current_details("\n".join(lines))
        self._upsert_search_attributes()

    def _upsert_search_attributes(self) -> None:
        if not self._options.search_attributes:
            return
        waiting = [i for i in self._interrupts.values() if i["status"] == "waiting"]
        types = tuple(sorted({i["type"] for i in waiting}))
        access = None
        if self._options.access_search_attributes:
            rules = [i.get(ACCESS_KEY) or {} for i in waiting]
            assignees = {s for r in rules for s in r.get("assignees") or []}
            if any(not r.get("assignees") and not r.get("candidate_groups") for r in rules):
                assignees.add(ANYONE)  # anyone of the tenant may resume one of them
            access = (
                tuple(sorted(assignees)),
                tuple(sorted({g for r in rules for g in r.get("candidate_groups") or []})),
            )
        current = (self._status, types, access)
        previous = self._search_attributes_sent
        if current == previous:
            return
        self._search_attributes_sent = current
        if self._options.runtime_version < COMPACT_PAYLOAD_VERSION:
            workflow.upsert_search_attributes(search_attribute_updates(self._status, types, access))
            return
        # Version 4: only the attributes whose value changed. A first run starts with the
        # client's initial attributes (status "created", no lists); a continued run does not
        # know what its previous run upserted last, so it sets them all once.
        if previous is None and workflow.info().continued_run_id is None:
            previous = initial_visible_values(access=access is not None)
        updates = changed_search_attribute_updates(previous, current)
        if updates:
            workflow.upsert_search_attributes(updates)

    async def _close(
        self, reason: str, pending_interrupts: str, *, seal: bool = True
    ) -> dict[str, Any]:
        if self._close_snapshot is not None:
            return copy.deepcopy(self._close_snapshot)
        # Sealed by async_seal(): close does not seal (nor tell it) a second time.
        already_sealed = self._user_sealed()
        waiting = [i for i in self._interrupts.values() if i["status"] == "waiting"]
        if waiting and pending_interrupts != "cancel":
            self._emit(
                "triggerflow.pending_interrupts_close_rejected",
                f"TriggerFlow execution '{self._execution_id}' can not close while interrupts "
                "are waiting.",
                {"interrupt_ids": [i["id"] for i in waiting], "reason": reason},
                level="WARNING",
            )
            raise ApplicationError(
                f"Cannot close execution {self._execution_id}: interrupts "
                f"{[i['id'] for i in waiting]} are still waiting. Continue them first, or "
                "close with pending_interrupts='cancel'.",
                type="RuntimeError",
                non_retryable=True,
            )
        self._closing = True
        for record in waiting:
            record["status"] = "cancelled"
        self._cancel_frames()
        for timer in self._timers.values():
            if not timer.done():
                timer.cancel()
        for record in waiting:
            self._notify_interrupt_end(record, INTERRUPT_CANCELLED)
        if waiting:
            self._emit(
                "triggerflow.pending_interrupts_cancelled",
                f"TriggerFlow execution '{self._execution_id}' cancelled its pending interrupts.",
                lambda: {"interrupt_ids": [i["id"] for i in waiting], "interrupts": waiting},
                level="WARNING",
            )
            if self._status != "failed":
                self._emit(
                    "triggerflow.execution_cancelled",
                    f"TriggerFlow execution '{self._execution_id}' cancelled.",
                    {"reason": reason},
                    level="WARNING",
                )
            self._status = "cancelled"
        if seal and not already_sealed:
            self._lifecycle = "sealed"
            self._emit(
                "triggerflow.execution_sealed",
                f"TriggerFlow execution '{self._execution_id}' sealed.",
                {"reason": reason},
            )
        await self._drain_for_close()
        self._detached = []
        expired = self._interventions.expire_pending(self._now())
        if expired:
            self._write_ledger()
            for record in expired:
                self._on_intervention("expire", record)
        for kind in self._engine.joins:
            self._engine.joins[kind] = {}
        if self._status not in ("failed", "cancelled"):
            self._status = "completed"
        self._close_snapshot = copy.deepcopy(self._engine.state)
        self._close_reason = reason
        self._closed_at = workflow.now().timestamp()
        if self._status == "completed":
            self._emit(
                "triggerflow.execution_completed",
                f"TriggerFlow execution '{self._execution_id}' completed.",
                lambda: {"result": self._close_snapshot},
            )
            self._notify(EXECUTION_COMPLETED)
        self._stop_runtime_stream("close")
        self._lifecycle = "closed"
        self._closing = False
        self._emit(
            "triggerflow.execution_closed",
            f"TriggerFlow execution '{self._execution_id}' closed.",
            {
                "reason": reason,
                "closed_at": self._closed_at,
                "execution_id": self._execution_id,
                "retention_status": "not_configured",
            },
        )
        # Waiting stream polls return now and new ones are refused, so the run can finish.
        self._stream.detach_pollers()
        self._update_details()
        return copy.deepcopy(self._close_snapshot)
