"""The interpreter workflow: one Temporal workflow type per flow, one generic class.

Deterministic by construction: no I/O, no wall clock, no randomness, no threads. Chunks
run as activities (or local activities, or inline for ``execute_in="workflow"``); their
recorded state operations, emits and pause requests are applied here, in order.
Interrupt handling lives in ``_workflow_interrupts``; inputs and requests in
``_workflow_types`` (re-exported here).
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from datetime import timedelta
from typing import Any, ClassVar, cast

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, FailureError

from .._errors import ChunkOutputError
from ..chunk.data import ChunkData
from ..spec.chunk_io import ChunkInput, ChunkOutput, pack_resume
from ..spec.flow_spec import FlowSpec, deserialize_activity_config
from ..spec.search_attributes import search_attribute_updates
from ..spec.state import MAX_PAYLOAD_BYTES, apply_state_op, describe_size, json_size
from ..spec.wire import (
    SETTLE_KEY,
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
    failure_from_activity,
    summarize,
)
from .carry_bounds import (
    MAX_ERRORS,
    MAX_FINISHED_INTERVENTION_BYTES,
    MAX_FINISHED_INTERVENTIONS,
    MAX_PENDING_INTERVENTIONS,
    MAX_REJECTED_BYTES,
    MAX_RESOLVED_INTERRUPT_BYTES,
    MAX_RESOLVED_INTERRUPTS,
    keep_newest,
    keep_window,
)
from .event_recorder import EventRecorder
from .events import error_info, stream_state_from_carry
from .interrupts import MAX_REJECTED_REQUESTS, InterruptsMixin
from .interventions import STATE_KEY as INTERVENTIONS_KEY
from .interventions import InterventionLedger
from .legacy_engine import (
    DEFAULT_FANOUT_CONCURRENCY,
    JOIN_KINDS,
    ChunkFailure,
    Engine,
    PausedBranch,
    gather_cancel_on_error,
)
from .scheduler import Scheduler
from .scheduler_host import SchedulerHostMixin
from .signal_net import SignalNet
from .snapshot import build_snapshot
from .subflow import capture_input, write_back_value

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

# Bounded logs kept in workflow memory (and carried over continue-as-new).
MAX_SIGNAL_ATTEMPTS = 100

# Runtime version (ExecutionOptions.runtime_version) from which fan-outs are bounded: a
# default in-flight cap, for_each items held and carried over continue-as-new, and the start
# update settling across runs. Executions started before it replay the unbounded dispatch.
BOUNDED_FANOUT_VERSION = 2

# False in a chain that an update awaits until it is quiescent (start without auto close,
# emit, set_state, continue_with, loaded): an update cannot outlive its run, so a fan-out
# in such a chain is never held for continue-as-new; it finishes in this run.
_CHAIN_MAY_HOLD: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "triggerflow_chain_may_hold", default=True
)


# Runtime version from which the interpreter is the durable-queue Scheduler (no stack growth
# per step, continue-as-new in the middle of a chain). Before it: the nested-await Engine.
SCHEDULER_VERSION = 3

# Inline (execute_in="workflow") chunks run between two workflow-task yields (version 3).
INLINE_YIELD_EVERY = 200


class TriggerFlowWorkflow(InterruptsMixin, SchedulerHostMixin):
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
        self._interventions = InterventionLedger(input.options.intervention_mode)
        self._signal_log: list[dict[str, Any]] = []
        self._rejected: list[dict[str, Any]] = []
        # Chunk runs in flight by run id: what a snapshot taken now must re-run on load.
        self._inflight: dict[str, dict[str, Any]] = {}
        self._pending_work: list[dict[str, Any]] = []
        self._steps = 0
        self._inline_runs = 0
        self._search_attributes_sent: tuple[str, tuple[str, ...]] | None = None
        if input.carry is not None:
            self._restore_runtime(input.carry)
        elif input.restore is not None:
            self._restore_snapshot(input.restore)
        self._restore_done = not self._pending_work

    # =============================================================== run loop
    async def _run(self, input: WorkflowInput) -> dict[str, Any]:
        if self._v3:
            self._drive = asyncio.ensure_future(self._sched.drive())
        for interrupt_id in list(self._deadlines):
            self._start_timeout_timer(interrupt_id)  # timers restored after CAN or load
        if self._v3:
            if self._pending_work:
                self._submit_pending_work()
            if input.start is not None and not self._started:
                self._submit_start(input.start.get("value"))
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
                await self._release_stream_pollers()
                if self._should_continue_as_new():
                    carry = self._export_runtime()
                    self._check_carry(carry)
                    workflow.continue_as_new(
                        WorkflowInput(spec=self._spec.to_json(), options=self._options, carry=carry)
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
        await workflow.wait_condition(workflow.all_handlers_finished)
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
        )

    def _continue_as_new_due(self) -> bool:
        if self._v3:
            # Pending work is carried; only chunks and sub-flows in flight must finish.
            return self._hold() and self._sched.in_flight() == 0
        return (
            workflow.info().is_continue_as_new_suggested()
            and self._lifecycle == "open"
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
        if self._error is None:
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
        types = tuple(
            sorted({i["type"] for i in self._interrupts.values() if i["status"] == "waiting"})
        )
        current = (self._status, types)
        if current == self._search_attributes_sent:
            return
        self._search_attributes_sent = current
        workflow.upsert_search_attributes(search_attribute_updates(self._status, types))

    async def _close(self, reason: str, pending_interrupts: str) -> dict[str, Any]:
        if self._close_snapshot is not None:
            return copy.deepcopy(self._close_snapshot)
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
        for timer in self._timers.values():
            if not timer.done():
                timer.cancel()
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

    # ================================================================ chunks
    def _chunk_input(self, op: dict[str, Any], signal: dict[str, Any], run_id: str) -> ChunkInput:
        name = op["name"]
        return ChunkInput(
            flow=self._spec.name,
            chunk=name,
            execution_id=self._execution_id,
            run_id=run_id,
            value=signal["value"],
            trigger_event=signal["trigger_event"],
            trigger_type=signal["trigger_type"],
            signal={
                "id": signal["id"],
                "source": signal["source"],
                # The resume context travels once, in ``resume`` (pack_resume).
                "meta": {k: v for k, v in signal["meta"].items() if k != "resume"},
                "layer_marks": signal["layer_marks"],
            },
            state=self._engine.state,
            resources=self._options.runtime_resources,
            resume=pack_resume(signal["meta"].get("resume")),
            blueprint_hash=self._spec.blueprint_hash,
            tenant=self._options.tenant,
            interventions=list(self._interventions.records.values()),
        )

    async def _launch_chunk(
        self, op: dict[str, Any], signal: dict[str, Any], run_id: str
    ) -> ChunkOutput:
        """Run the chunk's handler where its ``execute_in`` says (permits, size check)."""
        name = op["name"]
        options = self._spec.chunks.get(name) or {"execute_in": "activity", "activity": {}}
        chunk_input = self._chunk_input(op, signal, run_id)
        if options.get("execute_in") != "workflow":
            self._check_chunk_input(name, chunk_input)
        if self._permits is not None:
            async with self._permits:
                self._emit_chunk("chunk.started", op, signal, run_id, {"status": "running"})
                return await self._execute_chunk(name, options, chunk_input)
        self._emit_chunk("chunk.started", op, signal, run_id, {"status": "running"})
        return await self._execute_chunk(name, options, chunk_input)

    async def _run_chunk(self, op: dict[str, Any], signal: dict[str, Any], run_id: str) -> Any:
        """Runtime versions 1-2: run a chunk and apply its operations (nested awaits)."""
        self._inflight[run_id] = {"kind": "chunk", "op": op["id"], "signal": signal}
        try:
            output = await self._launch_chunk(op, signal, run_id)
            await self._apply_ops(output.ops, signal, op)
            paused = None
            if output.pause is not None:
                paused = PausedBranch(self._record_interrupt(op, signal, output.pause))
            self.chunk_done(op, signal, run_id, output.value, paused and paused.interrupt)
        except ChunkFailure as failure:
            self.chunk_failed(op, signal, run_id, failure.details)
            raise
        finally:
            self._inflight.pop(run_id, None)
        return paused if paused is not None else output.value

    async def run_chunk(self, op: dict[str, Any], signal: dict[str, Any], run_id: str) -> Any:
        """Scheduler host: run a chunk; its output (operations applied by the scheduler)."""
        self._inflight[run_id] = {"kind": "chunk", "op": op["id"], "signal": signal}
        try:
            return await self._launch_chunk(op, signal, run_id)
        finally:
            self._inflight.pop(run_id, None)

    def chunk_done(
        self,
        op: dict[str, Any],
        signal: dict[str, Any],
        run_id: str,
        value: Any,
        interrupt: dict[str, Any] | None,
    ) -> None:
        """A chunk finished: count the step, emit ``chunk.completed``."""
        paused = interrupt is not None
        self._record_step(op, signal, run_id, value, paused)
        self._emit_chunk(
            "chunk.completed",
            op,
            signal,
            run_id,
            lambda: {
                "status": "waiting" if paused else "completed",
                "returned_pause_signal": paused,
                "output": None if paused else value,
            },
        )

    def chunk_failed(
        self, op: dict[str, Any], signal: dict[str, Any], run_id: str, details: dict[str, Any]
    ) -> None:
        """A chunk failed: emit ``chunk.failed``."""
        self._emit_chunk(
            "chunk.failed",
            op,
            signal,
            run_id,
            {"status": "failed"},
            level="ERROR",
            error=error_info(details),
        )

    def record_pause(
        self, op: dict[str, Any], signal: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        """Scheduler host: record the interrupt a chunk asked for."""
        return self._record_interrupt(op, signal, request)

    def run_sub_flow(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        """Scheduler host: run a sub-flow as a child workflow."""
        return self._run_sub_flow(op, signal)

    def before_operator(self, op: dict[str, Any], signal: dict[str, Any]) -> None:
        """Scheduler host: interventions before an operator."""
        self._before_operator(op, signal)

    # ========================================================= payload size
    # The activity checks what a chunk returns and writes (_plugin.check_output); what the
    # workflow assembles itself (a join's collected list, the continue-as-new carry) is
    # checked here. Over Temporal's 2 MiB a command's payload is refused and the workflow
    # task fails forever, so the execution fails instead, naming the cause. From the
    # bounded-fan-out runtime version on: histories recorded before replay unchanged.
    def _check_chunk_input(self, chunk: str, chunk_input: ChunkInput) -> None:
        if not self._fanout_bounded():
            return
        size = json_size([chunk_input.value, chunk_input.state])
        if size <= MAX_PAYLOAD_BYTES:
            return
        message = (
            f"The input of chunk '{chunk}' (its value plus the execution state) is "
            f"{describe_size(size)} of JSON, over the {describe_size(MAX_PAYLOAD_BYTES)} this "
            "runtime carries through Temporal history (Temporal refuses payloads over 2 MiB). "
            "A join (for_each, batch, collect) gathered more than fits: store each item's "
            "output in the Workspace (data.workspace.ingest(...)) and return its ref."
        )
        raise ChunkFailure(
            {
                "flow": self._spec.name,
                "chunk": chunk,
                "type": ChunkOutputError.__name__,
                "module": ChunkOutputError.__module__,
                "message": message,
            }
        )

    def _check_carry(self, carry: dict[str, Any]) -> None:
        if not self._fanout_bounded():
            return
        size = json_size(carry)
        if size <= MAX_PAYLOAD_BYTES:
            return
        message = (
            f"TriggerFlow execution '{self._execution_id}' cannot continue as new: its "
            f"state, join progress and logs are {describe_size(size)} of JSON, over the "
            f"{describe_size(MAX_PAYLOAD_BYTES)} this runtime carries between runs (Temporal "
            "refuses payloads over 2 MiB). Keep large outputs in the Workspace and their refs "
            "in state."
        )
        raise ApplicationError(
            message,
            {
                "type": ChunkOutputError.__name__,
                "module": ChunkOutputError.__module__,
                "message": message,
            },
            type=ChunkOutputError.__name__,
            non_retryable=True,
        )

    def _record_step(
        self, op: dict[str, Any], signal: dict[str, Any], run_id: str, value: Any, paused: bool
    ) -> None:
        """Count a finished chunk; when a history recorder is attached, snapshot the step.

        The recorder is only set on the replayer that ``async_get_history`` runs over the
        event history, so live executions pay for a counter increment only. A step's
        snapshot re-runs, on load, the chunk runs in flight at that moment plus this
        chunk's continuation: that is what "fork from after chunk N" means.
        """
        self._steps += 1
        recorder = getattr(self._runtime, "step_recorder", None)
        if recorder is None:
            return
        pending = self._pending_snapshot_work(exclude=run_id)
        if not paused:
            pending.append({"kind": "continue", "op": op["id"], "signal": signal, "result": value})
        recorder(
            self._execution_id,
            {
                "step": self._steps,
                "chunk": op["name"],
                "run_id": run_id,
                "paused": paused,
                "state": copy.deepcopy(self._engine.state),
                "state_version": self._engine.state_version,
                "snapshot": self._snapshot(pending),
            },
        )

    async def _execute_chunk(
        self, name: str, options: dict[str, Any], chunk_input: ChunkInput
    ) -> ChunkOutput:
        execute_in = options.get("execute_in", "activity")
        if execute_in == "workflow":
            if self._v3:
                self._inline_runs += 1
                if self._inline_runs % INLINE_YIELD_EVERY == 0:
                    # A loop of inline chunks never leaves the workflow task; Temporal's
                    # deadlock detector fails a task that runs over 2 s. A short timer
                    # ends the task every INLINE_YIELD_EVERY inline chunks.
                    await workflow.sleep(0.001, summary="inline chunks: yield")
            return await self._run_inline(name, chunk_input)
        config = {**self._runtime.default_activity_config}
        config.update(deserialize_activity_config(options.get("activity") or {}))
        config.setdefault("summary", name)
        activity_name = f"{self._spec.name}.{name}"
        try:
            if execute_in == "local_activity":
                config.pop("task_queue", None)
                config.pop("heartbeat_timeout", None)
                config.pop("priority", None)
                try:
                    return await workflow.execute_local_activity(
                        activity_name, chunk_input, result_type=ChunkOutput, **config
                    )
                except FailureError as error:
                    # A local activity's failure arrives as its cause (an ApplicationError,
                    # a TimeoutError), not wrapped in an ActivityError.
                    raise ChunkFailure(
                        failure_from_activity(error, self._spec.name, name)
                    ) from None
            return await workflow.execute_activity(
                activity_name, chunk_input, result_type=ChunkOutput, **config
            )
        except ActivityError as error:
            raise ChunkFailure(failure_from_activity(error, self._spec.name, name)) from None

    async def _run_inline(self, name: str, chunk_input: ChunkInput) -> ChunkOutput:
        handler = self._runtime.inline_handler(self._spec.name, name)
        if handler is None:
            raise RuntimeError(
                f"Chunk handler '{name}' of flow '{self._spec.name}' is not registered on this "
                "worker."
            )
        data = ChunkData(
            chunk_input,
            resources=self._runtime.chunk_resources(self._spec.name, chunk_input.resources),
            flow_data=self._runtime.flow_data(self._spec.name),
        )
        try:
            result = handler(data)
            if hasattr(result, "__await__"):
                result = await result
        except Exception as error:
            raise ChunkFailure(
                {
                    "flow": self._spec.name,
                    "chunk": name,
                    "type": type(error).__name__,
                    "module": type(error).__module__,
                    "message": str(error),
                }
            ) from None
        return data.to_output(result)

    async def _apply_ops(
        self, ops: list[list[Any]], signal: dict[str, Any], chunk: dict[str, Any] | None = None
    ) -> None:
        """Apply a chunk's recorded operations in order; watchers and emits are awaited."""
        for op in ops:
            kind = op[0]
            if kind in ("set", "append", "del"):
                await self._apply_state_op(op)
            elif kind == "emit":
                await self._emit_internal(signal, op[1], op[2], op[3])
            elif kind == "emit_nowait":
                self._detached.append(
                    asyncio.ensure_future(self._emit_detached(signal, op[1], op[2], op[3]))
                )
            else:
                self._apply_stream_op(op, chunk)

    def _apply_stream_op(self, record: list[Any], chunk: dict[str, Any] | None) -> None:
        """Apply a recorded operation that neither writes state nor emits."""
        kind = record[0]
        if kind == "stream":
            self._put_stream_item(record[1], chunk)
        elif kind == "stop_stream":
            self._stop_runtime_stream("stop_stream")
        elif kind == "intervention_consumed":
            self._on_intervention_consumed(record[1], record[2])

    async def _apply_state_op(self, op: list[Any]) -> None:
        changed, value = apply_state_op(self._engine.state, op)
        if not changed:
            return
        self._engine.state_version += 1
        self._touch()
        key, emit = op[1], op[-1]
        if emit and self._engine.has_listener("runtime_data", key):
            signal = self._engine.make_signal(
                key, value, trigger_type="runtime_data", source="runtime_data"
            )
            await self._legacy.dispatch(signal)

    async def _emit_internal(
        self, parent: dict[str, Any], event: str, value: Any, trigger_type: str
    ) -> list[Any]:
        signal = self._engine.make_signal(
            event,
            value,
            trigger_type=trigger_type,
            layer_marks=parent["layer_marks"],
            source="chunk",
            meta=self._engine.child_meta(parent),
        )
        await self._resolve_resume_event(signal)
        return await self._legacy.dispatch(signal)

    async def _emit_detached(
        self, parent: dict[str, Any], event: str, value: Any, trigger_type: str
    ) -> None:
        try:
            await self._guarded(self._emit_internal(parent, event, value, trigger_type))
        except ApplicationError:
            pass  # recorded as the execution's failure; nobody awaits detached work
        finally:
            self._touch()

    # ========================================================= interventions
    def _before_operator(self, op: dict[str, Any], signal: dict[str, Any]) -> None:
        """Insert interventions: at an ``intervention_point`` (planned) or any operator (auto)."""
        mode = self._interventions.mode
        if mode == "planned" and op["kind"] == "intervention_point":
            target = (op.get("options") or {}).get("target")
            inserted = self._interventions.insert_planned(target, op, signal, self._now())
        elif mode == "auto":
            inserted = self._interventions.insert_auto(op, signal, self._now())
        else:
            return
        if inserted:
            self._write_ledger()
            for record in inserted:
                self._on_intervention("insert", record)

    def _on_intervention_consumed(self, intervention_id: str, info: dict[str, Any]) -> None:
        try:
            record = self._interventions.consume(intervention_id, info, self._now())
        except KeyError:
            return  # checked by the chunk against the records it was given
        self._write_ledger()
        self._on_intervention("consume", record)

    def _write_ledger(self) -> None:
        """Mirror the ledger into state under ``$interventions``, as natively."""
        self._engine.state[INTERVENTIONS_KEY] = copy.deepcopy(self._interventions.records)
        self._engine.state_version += 1
        self._touch()

    # ============================================================= sub-flows
    async def _run_sub_flow(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        options = op["options"]
        child = self._spec.sub_flows.get(options["sub_flow_name"])
        if child is None:
            raise RuntimeError(f"sub-flow {options['sub_flow_name']!r} missing from the spec")
        child_input = capture_input(options.get("capture") or {}, signal, self._engine.state)
        child_id = f"{self._execution_id}:{op['id']}:{self._engine.next_id('child-')}"
        frame = {
            "child_execution_id": child_id,
            "operator_id": op["id"],
            "sub_flow_name": child.name,
        }
        self._emit(
            "triggerflow.sub_flow_started",
            f"TriggerFlow execution '{self._execution_id}' started sub-flow '{child.name}'.",
            lambda: {**frame, "input": child_input},
        )
        try:
            result = await workflow.execute_child_workflow(
                child.name,
                WorkflowInput(
                    spec=child.to_json(),
                    options=ExecutionOptions(
                        auto_close=True,
                        auto_close_timeout=0.0,
                        hidden=True,
                        runtime_resources=self._options.runtime_resources,
                        tenant=self._options.tenant,
                        runtime_version=self._options.runtime_version,
                    ),
                    start={"value": child_input},
                ),
                id=child_id,
                result_type=dict,
                static_summary=f"{child.name} (sub-flow of {self._spec.name})",
            )
        except ChildWorkflowError as error:
            details = failure_from_activity(error, child.name, op["name"])
            self._emit(
                "triggerflow.sub_flow_failed",
                f"TriggerFlow execution '{self._execution_id}' sub-flow '{child.name}' failed.",
                frame,
                level="ERROR",
                error=error_info(details),
            )
            raise ChunkFailure(details) from None
        self._emit(
            "triggerflow.sub_flow_completed",
            f"TriggerFlow execution '{self._execution_id}' sub-flow '{child.name}' completed.",
            lambda: {**frame, "result": result},
        )
        return write_back_value(options.get("write_back") or {}, result, signal, self._engine.state)

    # ============================================================== fan-outs
    def _fanout_bounded(self) -> bool:
        """Whether this execution caps fan-outs by default and holds them for CAN."""
        return self._options.runtime_version >= BOUNDED_FANOUT_VERSION

    def _fanout_limit(self) -> int | None:
        """In-flight cap of a fan-out that has no ``concurrency`` (None: unbounded)."""
        return DEFAULT_FANOUT_CONCURRENCY if self._fanout_bounded() else None

    def _hold_fanout(self) -> bool:
        """Dispatch no new for_each item: continue-as-new is suggested and may happen.

        In-flight items finish, the rest is carried to the next run. Never while closing
        (close drains everything in this run) nor in a chain an update awaits.
        """
        return (
            _CHAIN_MAY_HOLD.get()
            and self._lifecycle == "open"
            and not self._closing
            and workflow.info().is_continue_as_new_suggested()
            and self._fanout_bounded()
        )

    def _resume_held_fanouts(self) -> bool:
        """Dispatch the rest of every held for_each in the background; True if there was any.

        Called when a run starts from a carry, and by close when it overtook the
        continue-as-new the items were held for.
        """
        held = [instance for instance, record in self._legacy.fanouts.items() if record["held"]]
        for instance in held:
            self._legacy.fanouts[instance]["held"] = False
            self._legacy.active += 1  # counted from now: no continue-as-new before it runs
            self._detached.append(asyncio.ensure_future(self._run_held_fanout(instance)))
        return bool(held)

    async def _run_held_fanout(self, instance: str) -> None:
        _CHAIN_MAY_HOLD.set(True)  # nobody awaits this chain: it may be held again
        try:
            await self._guarded(self._legacy.resume_fanout(instance))
        except ApplicationError:
            pass  # recorded as the execution's failure; nobody awaits this work
        finally:
            self._legacy.active -= 1
            self._touch()

    async def _drain_for_close(self) -> None:
        """Wait until in-flight work is done, dispatching held for_each items in this run."""
        if self._v3:
            # Closing lifts the hold: the drive loop runs everything pending in this run.
            await workflow.wait_condition(lambda: not self._sched.busy() or self._broken())
            self._raise_if_broken()
            return
        while True:
            await workflow.wait_condition(
                lambda: self._legacy.active == 0 and all(t.done() for t in self._detached)
            )
            if not self._resume_held_fanouts():
                return

    def _pending_snapshot_work(self, exclude: str | None = None) -> list[dict[str, Any]]:
        """What a snapshot taken now runs on load.

        Chunk runs in flight (but ``exclude``) and work not started (queued, suspended,
        for_each items not dispatched).
        """
        if self._v3:
            return self._sched.pending_work([v for k, v in self._inflight.items() if k != exclude])
        inflight = [copy.deepcopy(v) for k, v in self._inflight.items() if k != exclude]
        return inflight + self._pending_fanouts()

    def _pending_fanouts(self) -> list[dict[str, Any]]:
        """Undispatched for_each items, as snapshot pending work (re-dispatched on load)."""
        return [
            {"kind": "fanout", "instance": instance, **copy.deepcopy(record)}
            for instance, record in self._legacy.fanouts.items()
        ]

    # ======================================================= continue-as-new
    def _export_runtime(self) -> dict[str, Any]:
        if self._v3:
            self._trim_for_carry()
        return {
            "engine": self._engine.export(),
            "status": self._status,
            "lifecycle": self._lifecycle,
            "started": self._started,
            "interrupts": copy.deepcopy(self._interrupts),
            "error": copy.deepcopy(self._error),
            "created_at": self._created_at,
            "started_at": self._started_at,
            "last_activity_at": self._last_activity_at,
            "deadlines": copy.deepcopy(self._deadlines),
            "intervention": self._interventions.section(),
            "signal_log": copy.deepcopy(self._signal_log),
            "rejected": copy.deepcopy(self._rejected),
            "steps": self._steps,
            "observe": self._export_stream(),
        }

    def _trim_for_carry(self) -> None:
        """Keep only a window of finished records: the carry must not grow with age."""
        awaited = self._awaited_interrupts()
        self._interrupts = keep_window(
            self._interrupts,
            live=lambda record: record["status"] == "waiting" or record["id"] in awaited,
            max_count=MAX_RESOLVED_INTERRUPTS,
            max_bytes=MAX_RESOLVED_INTERRUPT_BYTES,
        )
        ledger = self._interventions.records
        kept = keep_window(
            ledger,
            live=lambda record: record["status"] == "pending",
            max_count=MAX_FINISHED_INTERVENTIONS,
            max_bytes=MAX_FINISHED_INTERVENTION_BYTES,
        )
        if len(kept) != len(ledger):
            self._interventions.records = kept
            self._engine.state[INTERVENTIONS_KEY] = copy.deepcopy(kept)
        self._rejected = keep_newest(
            self._rejected, max_count=MAX_REJECTED_REQUESTS, max_bytes=MAX_REJECTED_BYTES
        )
        del self._engine.errors[:-MAX_ERRORS]
        self._trim_stream()

    def _restore_runtime(self, carry: dict[str, Any]) -> None:
        self._engine.restore(carry.get("engine") or {})
        self._status = carry.get("status", self._status)
        self._lifecycle = carry.get("lifecycle", self._lifecycle)
        self._started = bool(carry.get("started"))
        self._interrupts = copy.deepcopy(carry.get("interrupts") or {})
        self._error = copy.deepcopy(carry.get("error"))
        self._created_at = carry.get("created_at", self._created_at)
        self._started_at = carry.get("started_at")
        self._last_activity_at = carry.get("last_activity_at", self._last_activity_at)
        self._deadlines = copy.deepcopy(carry.get("deadlines") or {})
        if carry.get("intervention"):
            self._interventions.restore(carry["intervention"])
        self._signal_log = copy.deepcopy(carry.get("signal_log") or [])
        self._rejected = copy.deepcopy(carry.get("rejected") or [])
        self._steps = int(carry.get("steps") or 0)

    # ============================================================ snapshots
    def _snapshot(self, pending: list[dict[str, Any]]) -> dict[str, Any]:
        """The execution in Agently's schema v2 shape (``async_save``)."""
        resource_keys = {key: "flow" for key in self._runtime.chunk_resources(self._spec.name, {})}
        resource_keys.update({key: "execution" for key in self._options.runtime_resources})
        engine = self._engine.export_net()
        options = {
            "auto_close": self._options.auto_close,
            "auto_close_timeout": self._options.auto_close_timeout,
            "skip_exceptions": self._options.skip_exceptions,
            "concurrency": self._options.concurrency,
            "intervention_mode": self._interventions.mode,
            "tenant": self._options.tenant,
        }
        return build_snapshot(
            execution_id=self._execution_id,
            run_id=workflow.info().run_id,
            flow_name=self._spec.name,
            blueprint_hash=self._spec.blueprint_hash,
            spec=self._spec.to_json(),
            options=options,
            task_queue=workflow.info().task_queue,
            status=self._status,
            lifecycle=self._lifecycle,
            started=self._started,
            state=self._engine.state,
            state_version=self._engine.state_version,
            flow_data=self._runtime.flow_data(self._spec.name),
            interrupts=self._interrupts,
            intervention=self._interventions.section(),
            last_signal=self._engine.last_signal,
            signal_attempts=self._signal_log,
            joins=engine["joins"],
            engine={"seq": engine["seq"], "errors": engine["errors"]},
            pending=pending,
            deadlines=self._deadlines,
            rejected_requests=self._rejected,
            error=self._error,
            close_snapshot=self._close_snapshot,
            close_reason=self._close_reason,
            resource_keys=resource_keys,
            created_at=self._created_at,
            started_at=self._started_at,
            last_activity_at=self._last_activity_at,
            closed_at=self._closed_at,
            now=self._now(),
        )

    def _restore_snapshot(self, saved: dict[str, Any]) -> None:
        """Seed this new workflow from a parsed snapshot (``async_load``)."""
        system = saved["durable_system_state"]
        extra = system.get("temporal") or {}
        engine = extra.get("engine") or {}
        self._engine.restore(
            {
                "state": saved["runtime_data"],
                "state_version": saved.get("state_version") or 0,
                "joins": {kind: system.get(kind) or {} for kind in JOIN_KINDS},
                "seq": engine.get("seq") or 0,
                "last_signal": saved.get("last_signal") or None,
                "errors": engine.get("errors") or [],
            }
        )
        self._status = saved["status"]
        self._lifecycle = saved["lifecycle_state"]
        if self._lifecycle == "sealed":
            self._lifecycle = "open"  # saved mid-close: the copy drains and closes itself
        self._started = bool(extra.get("started"))
        self._interrupts = copy.deepcopy(saved["interrupts"])
        mode = self._interventions.mode
        self._interventions.restore(saved["intervention"])
        if mode is not None:
            self._interventions.mode = mode  # the loading caller's choice wins
        self._engine.state[INTERVENTIONS_KEY] = copy.deepcopy(self._interventions.records)
        self._deadlines = copy.deepcopy(extra.get("deadlines") or {})
        self._rejected = copy.deepcopy(extra.get("rejected_requests") or [])
        self._error = copy.deepcopy(extra.get("error"))
        self._signal_log = copy.deepcopy(
            (saved.get("signal_net") or {}).get("signal_attempts") or []
        )
        self._pending_work = copy.deepcopy(extra.get("pending") or [])
        self._started_at = saved.get("started_at")
        if self._lifecycle == "closed":
            self._close_snapshot = copy.deepcopy(self._engine.state)
            self._close_reason = saved.get("close_reason")
            self._closed_at = saved.get("closed_at")
            self._pending_work = []
        if not workflow.unsafe.is_replaying():
            # flow_data is worker-local and not durable (as natively); load replaces it.
            flow_data = self._runtime.flow_data(self._spec.name)
            flow_data.clear()
            flow_data.update(copy.deepcopy(saved.get("flow_data") or {}))

    async def _resume_pending_work(self) -> None:
        """Re-run what was in flight when the snapshot was taken (at least once)."""
        work, self._pending_work = self._pending_work, []
        coros = []
        for item in work:
            op = self._engine.ops.get(item.get("op", ""))
            if op is None:
                continue  # checked by the client before the load
            if item.get("kind") == "fanout":
                # for_each items not dispatched when the snapshot was taken.
                instance = item["instance"]
                self._legacy.fanouts[instance] = {
                    key: copy.deepcopy(item[key])
                    for key in ("op", "signal", "items", "concurrency")
                }
                self._legacy.fanouts[instance]["held"] = True
                coros.append(self._legacy.resume_fanout(instance))
                continue
            signal = item["signal"]
            if item.get("kind") == "continue":
                coros.append(self._legacy.continue_after_chunk(op, signal, item.get("result")))
            else:
                coros.append(self._legacy.run_operator(op, signal))
        if self._status in ("created", "waiting"):
            self._status = "running"
        self._legacy.active += 1
        # The ``loaded`` update waits for this work to be quiescent: before the bounded
        # fan-out it finished in this run; from it, the client settles across runs.
        token = _CHAIN_MAY_HOLD.set(self._fanout_bounded())
        try:
            await self._guarded(gather_cancel_on_error(coros))
        except ApplicationError:
            pass  # recorded as the execution's failure
        finally:
            _CHAIN_MAY_HOLD.reset(token)
            self._legacy.active -= 1
            self._restore_done = True
            self._touch()

    # ============================================================== handlers
    @workflow.update(name="start")
    async def start_update(self, start: dict[str, Any]) -> Any:
        """Dispatch ``START`` with ``start["value"]``; returns when the chain is quiescent.

        A large for_each in the chain may be held for continue-as-new (an update cannot
        outlive its run): see :meth:`_settling`.
        """
        if not self._options.auto_close:
            self._hold_only_if_bounded()
        outcome = await self._start(start.get("value"))
        if self._options.auto_close:
            return None
        return self._settling(outcome)

    @workflow.update(name="settle")
    async def settle_update(self, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Wait until the execution is quiescent or this run hands its items on.

        Returns ``{"settled": True}`` when no chunk runs and no for_each item waits, and
        ``{"settled": False}`` when this run is about to continue as new with held items.
        With ``{"root": id}`` (runtime version 3) it waits for that root only and answers
        ``{"settled": True, "result": ...}`` with what its caller would have got.
        """
        if self._v3 and request and request.get("root"):
            return await self._settle_root(str(request["root"]))
        await workflow.wait_condition(lambda: self._settled() or self._held_for_next_run())
        return {"settled": self._settled()}

    def _settled(self) -> bool:
        """What ``settle`` waits for (paused branches may still wait)."""
        return self._lifecycle == "closed" or self._quiescent()

    def _held_for_next_run(self) -> bool:
        return self._continue_as_new_due() and self._holding()

    def _holding(self) -> bool:
        return any(record["held"] for record in self._legacy.fanouts.values())

    def _hold_only_if_bounded(self) -> None:
        """Let this update's chain hold its fan-out only from the bounded-fan-out version.

        Before it, the fan-out finished in the update's run, and histories replay that way.
        """
        if not self._fanout_bounded():
            _CHAIN_MAY_HOLD.set(False)

    def _settling(self, result: Any) -> Any:
        """The update's result, wrapped when its fan-out was held for the next run.

        ``{SETTLE_KEY: False, "result": result}``: the client then waits with the ``settle``
        update (which follows the continue-as-new chain) before it returns ``result``.
        """
        if self._v3:
            return self._settle_marker(result)
        if self._fanout_bounded() and self._holding():
            return {SETTLE_KEY: False, "result": result}
        return result

    @workflow.update(name="emit")
    async def emit_update(self, request: EmitRequest) -> Any:
        """Dispatch an external event; returns the handlers' return values."""
        if self._lifecycle != "open":
            self._reject_event(request)
            return None
        self._hold_only_if_bounded()
        signal = self._engine.make_signal(
            request.event, request.value, trigger_type=request.trigger_type, source="runtime"
        )
        self._touch()
        await self._resolve_resume_event(signal)
        return self._settling(await self._external(signal))

    def _reject_event(self, request: EmitRequest, reason: str | None = None) -> None:
        self._emit(
            "triggerflow.event_rejected",
            f"TriggerFlow execution '{self._execution_id}' ignored event '{request.event}': "
            f"{reason}"
            if reason
            else f"TriggerFlow execution '{self._execution_id}' ignored event "
            f"'{request.event}' because it is {self._lifecycle}.",
            lambda: {
                "event": request.event,
                "value": request.value,
                "trigger_type": request.trigger_type,
                "lifecycle_state": self._lifecycle,
                "reason": reason,
            },
            level="WARNING",
        )

    @emit_update.validator
    def _validate_emit(self, request: EmitRequest) -> None:
        if not isinstance(request.event, str) or not request.event:
            raise ValueError(f"emit needs a non-empty event name, got {request.event!r}.")
        if request.trigger_type not in ("event", "runtime_data", "flow_data"):
            raise ValueError(
                f"emit trigger_type must be 'event', 'runtime_data' or 'flow_data', got "
                f"{request.trigger_type!r}."
            )
        if self._lifecycle == "open":
            problem = self._resume_event_problem(request.event, request.trigger_type, request.value)
            if problem:
                raise ValueError(problem)

    @workflow.signal(name="emit_nowait")
    async def emit_signal(self, request: EmitRequest) -> None:
        """Fire-and-forget external event (for senders that can only signal).

        From runtime version 3 a request the ``emit`` update's validator would refuse is
        refused here too (a ``triggerflow.event_rejected`` event; nothing changes).
        """
        if self._lifecycle != "open":
            self._reject_event(request)
            return
        if self._v3:
            try:
                self._validate_emit(request)
            except ValueError as error:
                self._reject_event(request, reason=str(error))
                return
        signal = self._engine.make_signal(
            request.event, request.value, trigger_type=request.trigger_type, source="runtime"
        )
        self._touch()
        await self._resolve_resume_event(signal)
        if self._v3:
            # Nobody waits for a signal: the work is submitted, the handler returns.
            self._log_signal(signal)
            self._sched.submit_signal(signal, answer=None)
            return
        try:
            await self._run_external(signal, self._legacy.dispatch(signal))
        except ApplicationError:
            pass  # recorded as the execution's failure; a signal has no caller to tell

    @workflow.update(name="set_state")
    async def set_state_update(self, request: SetStateRequest) -> Any:
        """Write execution state from outside (watchers run)."""
        if self._lifecycle == "closed":
            raise ApplicationError(
                f"Execution {self._execution_id} is closed; its state is frozen.",
                type="RuntimeError",
                non_retryable=True,
            )
        self._hold_only_if_bounded()
        if self._v3:
            return self._settling(await self._set_state_root(request.op))
        await self._guarded(self._apply_state_op(request.op))
        return self._settling(None)

    @workflow.update(name="continue_with")
    async def continue_with_update(self, request: ContinueRequest) -> Any:
        """Resume a waiting interrupt; returns the interrupt record once quiescent."""
        if self._lifecycle != "open":
            return None
        self._hold_only_if_bounded()
        return self._settling(await self._continue(request))

    @continue_with_update.validator
    def _validate_continue_with(self, request: ContinueRequest) -> None:
        if self._lifecycle != "open":
            return  # the handler returns None and the client warns, as natively
        self._check_continue(request)

    @workflow.signal(name="continue_with_nowait")
    async def continue_with_signal(self, request: ContinueRequest) -> None:
        """``continue_with`` for senders that can only signal.

        A request that the update's validator would reject is kept in the
        ``rejected_requests`` query (and the snapshot) instead of failing anything.
        """
        if self._lifecycle != "open":
            self._reject_signal_request(
                request,
                ApplicationError(
                    f"Execution {self._execution_id} is {self._lifecycle}.", type="RuntimeError"
                ),
            )
            return
        try:
            if not self._check_continue(request):
                return
        except ApplicationError as error:
            self._reject_signal_request(request, error)
            return
        try:
            await self._continue(request, awaited=False)
        except ApplicationError:
            pass  # the resumed chain failed: recorded as the execution's failure

    @workflow.update(name="intervene")
    async def intervene_update(self, request: InterveneRequest) -> dict[str, Any]:
        """Append a ``pending`` intervention to the ledger; returns its record."""
        record = self._interventions.append(
            intervention_id=workflow.uuid4().hex,
            payload=request.payload,
            author=request.author,
            note=request.note,
            target=request.target,
            metadata=request.metadata,
            now=self._now(),
        )
        self._write_ledger()
        self._on_intervention("append", record)
        return copy.deepcopy(record)

    @intervene_update.validator
    def _validate_intervene(self, request: InterveneRequest) -> None:
        if self._interventions.mode is None:
            raise RuntimeError(
                "TriggerFlow runtime intervention is disabled for this execution. "
                "Create the execution with intervention_mode='planned' or "
                "intervention_mode='auto'."
            )
        if self._v3 and len(self._interventions.filtered(status="pending")) >= (
            MAX_PENDING_INTERVENTIONS
        ):
            raise RuntimeError(
                f"TriggerFlow execution {self._execution_id} already has "
                f"{MAX_PENDING_INTERVENTIONS} pending interventions; wait until chunks consume "
                "them (or close the execution) before adding more."
            )
        if self._lifecycle != "open":
            raise RuntimeError(
                f"TriggerFlow execution {self._execution_id} can not accept interventions "
                f"while lifecycle state is '{self._lifecycle}'."
            )
        if request.metadata is not None and not isinstance(request.metadata, dict):
            raise TypeError(
                "TriggerFlow intervention metadata must be a dictionary, got: "
                f"{type(request.metadata)}."
            )

    @workflow.update(name="loaded")
    async def loaded_update(self) -> dict[str, Any]:
        """Wait until work re-run from a loaded snapshot is quiescent; returns ``info``."""
        await workflow.wait_condition(lambda: self._restore_done)
        if self._v3 and self._load_root is not None:
            root, self._load_root = self._load_root, None
            return self._settling(await self._await_root(root))
        return self._settling(self.info_query())

    @workflow.update(name="stop_stream")
    async def stop_stream_update(self) -> None:
        """End the runtime stream (consumers finish); the execution stays open."""
        self._stop_runtime_stream("stop_stream")

    @workflow.update(name="close")
    async def close_update(self, request: CloseRequest) -> dict[str, Any]:
        """Close the execution and return the close snapshot."""
        return await self._close(request.reason, request.pending_interrupts)

    @close_update.validator
    def _validate_close(self, request: CloseRequest) -> None:
        if request.pending_interrupts not in ("error", "cancel"):
            raise ValueError(
                "pending_interrupts must be 'error' or 'cancel', got "
                f"{request.pending_interrupts!r}."
            )

    @workflow.query(name="state")
    def state_query(self) -> dict[str, Any]:
        """The execution state (the close snapshot after close)."""
        if self._close_snapshot is not None:
            return self._close_snapshot
        return self._engine.state

    @workflow.query(name="status")
    def status_query(self) -> str:
        """``created``, ``running``, ``waiting``, ``completed``, ``failed`` or ``cancelled``."""
        return self._status

    @workflow.query(name="info")
    def info_query(self) -> dict[str, Any]:
        """Status, lifecycle, failure and identity of the execution."""
        return {
            "execution_id": self._execution_id,
            "flow_name": self._spec.name,
            "blueprint_hash": self._spec.blueprint_hash,
            "status": self._status,
            "lifecycle_state": self._lifecycle,
            "close_reason": self._close_reason,
            "error": self._error,
            "state_version": self._engine.state_version,
            "created_at": self._created_at,
            "started_at": self._started_at,
            "closed_at": self._closed_at,
        }

    @workflow.query(name="pending_interrupts")
    def pending_interrupts_query(self) -> dict[str, dict[str, Any]]:
        """Interrupts still waiting, by id."""
        return {k: v for k, v in self._interrupts.items() if v["status"] == "waiting"}

    @workflow.query(name="interrupts")
    def interrupts_query(self) -> dict[str, dict[str, Any]]:
        """Every interrupt record, by id."""
        return self._interrupts

    @workflow.query(name="snapshot")
    def snapshot_query(self) -> dict[str, Any]:
        """The execution snapshot in Agently's schema v2 shape (``async_save``)."""
        return self._snapshot(self._pending_snapshot_work())

    @workflow.query(name="interventions")
    def interventions_query(self) -> dict[str, Any]:
        """The intervention ledger section (mode, version, records by id)."""
        return self._interventions.section()

    @workflow.query(name="rejected_requests")
    def rejected_requests_query(self) -> list[dict[str, Any]]:
        """``continue_with_nowait`` signals that were rejected, oldest first."""
        return self._rejected

    @workflow.query(name="close_snapshot")
    def close_snapshot_query(self) -> dict[str, Any] | None:
        """The close snapshot, or None while open."""
        return self._close_snapshot
