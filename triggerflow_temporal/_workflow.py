"""The interpreter workflow: one Temporal workflow type per flow, one generic class.

Deterministic by construction: no I/O, no wall clock, no randomness, no threads. Chunks
run as activities (or local activities, or inline for ``execute_in="workflow"``); their
recorded state operations, emits and pause requests are applied here, in order.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from ._data import ChunkData, ChunkInput, ChunkOutput
from ._engine import ChunkFailure, Engine, PausedBranch
from ._spec import FlowSpec, deserialize_activity_config
from ._state import apply_state_op

EXECUTION_SNAPSHOT_KIND = "triggerflow.execution_snapshot"


@dataclass
class ExecutionOptions:
    """Per-execution settings carried in the workflow input."""

    auto_close: bool = True
    auto_close_timeout: float | None = 10.0
    skip_exceptions: bool = False
    concurrency: int | None = None
    hidden: bool = False
    intervention_mode: str | None = None
    runtime_resources: dict[str, Any] = field(default_factory=lambda: {})
    tenant: str | None = None


@dataclass
class WorkflowInput:
    """The interpreter's single input: the graph, the options and optional seeds."""

    spec: dict[str, Any]
    options: ExecutionOptions = field(default_factory=ExecutionOptions)
    start: dict[str, Any] | None = None
    restore: dict[str, Any] | None = None
    carry: dict[str, Any] | None = None


@dataclass
class EmitRequest:
    """An external event: ``execution.async_emit(event, value)``."""

    event: str
    value: Any = None
    trigger_type: str = "event"


@dataclass
class SetStateRequest:
    """An execution-level state write (``execution.async_set_state``)."""

    op: list[Any]


@dataclass
class CloseRequest:
    """``execution.async_close(...)`` arguments."""

    reason: str = "manual"
    pending_interrupts: str = "error"


@dataclass
class ContinueRequest:
    """``execution.async_continue_with(...)`` arguments."""

    interrupt_id: str
    value: Any = None
    resume_request_id: str | None = None
    actor: str | None = None


class FlowRuntime(Protocol):
    """What the workflow needs from the worker-side registry (see ``_plugin``)."""

    default_activity_config: dict[str, Any]

    def condition(self, flow: str, name: str) -> Any:
        """Return a condition callable or None."""
        ...

    def inline_handler(self, flow: str, chunk: str) -> Any:
        """Return a chunk handler for inline execution or None."""
        ...

    def chunk_resources(self, flow: str, execution_resources: dict[str, Any]) -> dict[str, Any]:
        """Return the live resources for an inline chunk."""
        ...

    def flow_data(self, flow: str) -> dict[str, Any]:
        """Return the worker-local flow data dict."""
        ...


def _failure_from_activity(error: BaseException, flow: str, chunk: str) -> dict[str, Any]:
    cause = error.cause if isinstance(error, (ActivityError, ChildWorkflowError)) else error
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        return {
            "flow": details.get("flow", flow),
            "chunk": details.get("chunk", chunk),
            "type": cause.type or "Exception",
            "module": details.get("module"),
            "message": details.get("message", cause.message),
        }
    return {
        "flow": flow,
        "chunk": chunk,
        "type": type(cause).__name__ if cause is not None else "ActivityError",
        "module": None,
        "message": str(cause or error),
    }


def _chunk_failed_error(details: dict[str, Any]) -> ApplicationError:
    return ApplicationError(
        f"Chunk '{details.get('chunk')}' of flow '{details.get('flow')}' failed: "
        f"{details.get('type')}: {details.get('message')}",
        details,
        type=details.get("type") or "Exception",
        non_retryable=True,
    )


class TriggerFlowWorkflow:
    """Generic interpreter; the plugin derives one ``@workflow.defn`` class per flow name."""

    _tf_runtime: ClassVar[Any] = None

    @workflow.init
    def __init__(self, input: WorkflowInput) -> None:
        self._spec = FlowSpec.from_json(input.spec)
        self._options = input.options
        self._runtime: FlowRuntime = type(self)._tf_runtime
        self._execution_id = workflow.info().workflow_id
        self._engine = Engine(
            self._spec,
            execution_id=self._execution_id,
            run_chunk=self._run_chunk,
            run_sub_flow=self._run_sub_flow,
            condition=lambda name: self._runtime.condition(self._spec.name, name),
            on_activity=self._touch,
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
        self._permits = _Semaphore(input.options.concurrency) if input.options.concurrency else None
        self._closing = False
        self._detached: list[asyncio.Future[None]] = []
        self._deadlines: dict[str, dict[str, Any]] = {}
        self._timers: dict[str, asyncio.Future[None]] = {}
        if input.carry is not None:
            self._restore_runtime(input.carry)

    # =============================================================== run loop
    async def _run(self, input: WorkflowInput) -> dict[str, Any]:
        for interrupt_id in list(self._deadlines):
            self._start_timeout_timer(interrupt_id)  # timers restored after continue-as-new
        if input.start is not None and not self._started:
            try:
                await self._start(input.start.get("value"))
            except ApplicationError:
                if self._options.hidden:
                    raise
        while self._lifecycle != "closed":
            if self._should_continue_as_new():
                workflow.continue_as_new(
                    WorkflowInput(
                        spec=self._spec.to_json(),
                        options=self._options,
                        carry=self._export_runtime(),
                    )
                )
            timeout = self._options.auto_close_timeout
            if not self._options.auto_close or timeout is None:
                await workflow.wait_condition(
                    lambda: self._lifecycle == "closed" or self._should_continue_as_new()
                )
                continue
            await workflow.wait_condition(
                lambda: (
                    self._lifecycle == "closed" or self._idle() or self._should_continue_as_new()
                )
            )
            if self._lifecycle == "closed" or not self._idle():
                continue
            tick = self._tick
            if timeout > 0:
                try:
                    await workflow.wait_condition(
                        lambda tick=tick: (
                            self._lifecycle == "closed" or self._tick != tick or not self._idle()
                        ),
                        timeout=timedelta(seconds=timeout),
                        timeout_summary="auto close idle timer",
                    )
                    continue
                except TimeoutError:
                    pass
            if self._lifecycle != "closed" and self._idle():
                await self._close("auto_close_idle_timeout", "error")
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._status == "failed" and self._error is not None:
            raise _chunk_failed_error(self._error)
        return copy.deepcopy(self._close_snapshot or {})

    def _idle(self) -> bool:
        return (
            self._engine.active == 0
            and all(task.done() for task in self._detached)
            and not self._closing
            and not any(i["status"] == "waiting" for i in self._interrupts.values())
        )

    def _should_continue_as_new(self) -> bool:
        return (
            workflow.info().is_continue_as_new_suggested()
            and self._lifecycle == "open"
            and self._engine.active == 0
            and not self._closing
            and workflow.all_handlers_finished()
        )

    def _touch(self) -> None:
        self._tick += 1
        self._last_activity_at = workflow.now().timestamp()

    # ============================================================= lifecycle
    async def _start(self, value: Any) -> None:
        if self._started:
            return
        self._started = True
        self._status = "running"
        self._started_at = workflow.now().timestamp()
        signal = self._engine.make_signal("START", value, source="start")
        await self._guarded(self._engine.dispatch(signal))

    async def _guarded(self, awaitable: Any) -> Any:
        """Await engine work; turn a chunk failure into ``failed`` + an ApplicationError."""
        try:
            return await awaitable
        except ChunkFailure as failure:
            self._fail(failure.details)
            raise _chunk_failed_error(failure.details) from None
        finally:
            self._refresh_status()

    def _fail(self, details: dict[str, Any]) -> None:
        if self._error is None:
            self._error = details
        self._status = "failed"
        self._update_details()

    def _refresh_status(self) -> None:
        if self._status in ("failed", "completed", "cancelled") or not self._started:
            self._update_details()
            return
        waiting = any(i["status"] == "waiting" for i in self._interrupts.values())
        self._status = "waiting" if waiting else "running"
        self._update_details()

    def _update_details(self) -> None:
        lines = [
            f"**{self._spec.name}** · status `{self._status}` · lifecycle `{self._lifecycle}`",
        ]
        pending = [i for i in self._interrupts.values() if i["status"] == "waiting"]
        if pending:
            lines.append("")
            lines.append("Pending interrupts:")
            for record in pending:
                payload = _summarize(record.get("payload"))
                lines.append(f"- `{record['id']}` ({record['type']}): {payload}")
        if self._error is not None:
            lines.append("")
            lines.append(
                f"Failed in chunk `{self._error.get('chunk')}`: "
                f"{self._error.get('type')}: {_summarize(self._error.get('message'))}"
            )
        workflow.set_current_details("\n".join(lines))

    async def _close(self, reason: str, pending_interrupts: str) -> dict[str, Any]:
        if self._close_snapshot is not None:
            return copy.deepcopy(self._close_snapshot)
        waiting = [i for i in self._interrupts.values() if i["status"] == "waiting"]
        if waiting and pending_interrupts != "cancel":
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
            self._status = "cancelled"
        self._lifecycle = "sealed"
        await workflow.wait_condition(
            lambda: self._engine.active == 0 and all(t.done() for t in self._detached)
        )
        self._detached = []
        for kind in self._engine.joins:
            self._engine.joins[kind] = {}
        if self._status not in ("failed", "cancelled"):
            self._status = "completed"
        self._close_snapshot = copy.deepcopy(self._engine.state)
        self._close_reason = reason
        self._closed_at = workflow.now().timestamp()
        self._lifecycle = "closed"
        self._closing = False
        self._update_details()
        return copy.deepcopy(self._close_snapshot)

    # ================================================================ chunks
    async def _run_chunk(self, op: dict[str, Any], signal: dict[str, Any], run_id: str) -> Any:
        name = op["name"]
        options = self._spec.chunks.get(name) or {"execute_in": "activity", "activity": {}}
        chunk_input = ChunkInput(
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
                "meta": signal["meta"],
                "layer_marks": signal["layer_marks"],
            },
            state=self._engine.state,
            resources=self._options.runtime_resources,
            resume=signal["meta"].get("resume"),
            blueprint_hash=self._spec.blueprint_hash,
            tenant=self._options.tenant,
        )
        if self._permits is not None:
            async with self._permits:
                output = await self._execute_chunk(name, options, chunk_input)
        else:
            output = await self._execute_chunk(name, options, chunk_input)
        await self._apply_ops(output.ops, signal)
        if output.pause is not None:
            return PausedBranch(self._record_interrupt(op, signal, output.pause))
        return output.value

    async def _execute_chunk(
        self, name: str, options: dict[str, Any], chunk_input: ChunkInput
    ) -> ChunkOutput:
        execute_in = options.get("execute_in", "activity")
        if execute_in == "workflow":
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
                return await workflow.execute_local_activity(
                    activity_name, chunk_input, result_type=ChunkOutput, **config
                )
            return await workflow.execute_activity(
                activity_name, chunk_input, result_type=ChunkOutput, **config
            )
        except ActivityError as error:
            raise ChunkFailure(_failure_from_activity(error, self._spec.name, name)) from None

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

    async def _apply_ops(self, ops: list[list[Any]], signal: dict[str, Any]) -> None:
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
            elif kind == "stream":
                self._on_stream_item(op[1])
            elif kind == "intervention_consumed":
                self._on_intervention_consumed(op[1], op[2])

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
            await self._engine.dispatch(signal)

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
        return await self._engine.dispatch(signal)

    async def _emit_detached(
        self, parent: dict[str, Any], event: str, value: Any, trigger_type: str
    ) -> None:
        try:
            await self._guarded(self._emit_internal(parent, event, value, trigger_type))
        except ApplicationError:
            pass  # recorded as the execution's failure; nobody awaits detached work
        finally:
            self._touch()

    def _on_stream_item(self, item: Any) -> None:
        """Runtime stream items (issue: observability); recorded for now."""

    def _on_intervention_consumed(self, intervention_id: str, info: dict[str, Any]) -> None:
        """Intervention ledger updates (issue: human-in-the-loop)."""

    # ============================================================= sub-flows
    async def _run_sub_flow(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        from ._subflow import capture_input, write_back_value

        options = op["options"]
        child = self._spec.sub_flows.get(options["sub_flow_name"])
        if child is None:
            raise RuntimeError(f"sub-flow {options['sub_flow_name']!r} missing from the spec")
        child_input = capture_input(options.get("capture") or {}, signal, self._engine.state)
        child_id = f"{self._execution_id}:{op['id']}:{self._engine.next_id('child-')}"
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
                    ),
                    start={"value": child_input},
                ),
                id=child_id,
                result_type=dict,
                static_summary=f"{child.name} (sub-flow of {self._spec.name})",
            )
        except ChildWorkflowError as error:
            raise ChunkFailure(_failure_from_activity(error, child.name, op["name"])) from None
        return write_back_value(options.get("write_back") or {}, result, signal, self._engine.state)

    # ============================================================ interrupts
    def _record_interrupt(
        self, op: dict[str, Any], signal: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        from ._interrupt_records import new_interrupt_record

        interrupt_id = request.get("interrupt_id") or workflow.uuid4().hex
        existing = self._interrupts.get(interrupt_id)
        if (
            existing is not None
            and existing.get("resume_to") == "self"
            and existing.get("max_resumes") is not None
            and int(existing.get("resume_count") or 0) >= int(existing["max_resumes"])
        ):
            raise ChunkFailure(
                {
                    "flow": self._spec.name,
                    "chunk": op["name"],
                    "type": "RuntimeError",
                    "module": "builtins",
                    "message": (
                        f"TriggerFlow self resume limit reached for interrupt '{interrupt_id}': "
                        f"resume_count={existing['resume_count']}, "
                        f"max_resumes={existing['max_resumes']}."
                    ),
                }
            )
        if existing is not None and existing["status"] == "waiting":
            raise ChunkFailure(
                {
                    "flow": self._spec.name,
                    "chunk": op["name"],
                    "type": "ValueError",
                    "module": "builtins",
                    "message": f"Interrupt id {interrupt_id!r} is already waiting; use unique ids.",
                }
            )
        record = new_interrupt_record(
            interrupt_id=interrupt_id,
            request=request,
            op=op,
            signal=signal,
            execution_id=self._execution_id,
            flow_name=self._spec.name,
            created_at=workflow.now().timestamp(),
            previous=existing,
        )
        self._interrupts[interrupt_id] = record
        if request.get("timeout"):
            deadline = workflow.now().timestamp() + float(request["timeout"])
            self._deadlines[interrupt_id] = {"at": deadline, "value": request.get("timeout_value")}
            self._start_timeout_timer(interrupt_id)
        self._touch()
        return copy.deepcopy(record)

    def _start_timeout_timer(self, interrupt_id: str) -> None:
        deadline = self._deadlines[interrupt_id]

        async def expire() -> None:
            remaining = deadline["at"] - workflow.now().timestamp()
            if remaining > 0:
                await workflow.sleep(
                    timedelta(seconds=remaining), summary=f"interrupt {interrupt_id} timeout"
                )
            record = self._interrupts.get(interrupt_id)
            if record is None or record["status"] != "waiting" or self._lifecycle != "open":
                return
            try:
                await self._continue(
                    ContinueRequest(
                        interrupt_id=interrupt_id, value=deadline["value"], actor="timeout"
                    )
                )
            except ApplicationError:
                pass  # the resumed chain failed; recorded as the execution's failure

        self._timers[interrupt_id] = asyncio.ensure_future(expire())

    async def _resolve_resume_event(self, signal: dict[str, Any]) -> None:
        """An ordinary emit of a waiting interrupt's ``resume_event`` resolves it."""
        for record in self._interrupts.values():
            if record["status"] != "waiting":
                continue
            target = record.get("resume_event")
            resume_to = record.get("resume_to")
            if isinstance(resume_to, dict):
                target = target or resume_to.get("event")
            if target == signal["trigger_event"] and signal["trigger_type"] == "event":
                record["status"] = "resumed"
                record["resumed_at"] = workflow.now().timestamp()
                record["resume_value"] = signal["value"]

    def _check_continue(self, request: ContinueRequest) -> bool:
        """Raise why ``request`` cannot resume; False for an idempotent duplicate."""
        from ._interrupt_records import check_response

        record = self._interrupts.get(request.interrupt_id)
        if record is None:
            raise ApplicationError(
                f"{request.interrupt_id!r}: unknown interrupt id for execution "
                f"{self._execution_id}; pending: {sorted(self.pending_interrupts_query())}.",
                type="KeyError",
                non_retryable=True,
            )
        ledger = record.get("resume_requests") or {}
        if request.resume_request_id is not None and request.resume_request_id in ledger:
            if ledger[request.resume_request_id]["value"] != request.value:
                raise ApplicationError(
                    f"TriggerFlow interrupt {request.interrupt_id!r} got a conflicting "
                    f"resume_request_id {request.resume_request_id!r}: it was used with a "
                    "different value.",
                    type="ValueError",
                    non_retryable=True,
                )
            return False
        if record["status"] != "waiting":
            raise ApplicationError(
                f"TriggerFlow interrupt {request.interrupt_id!r} is not waiting "
                f"(status {record['status']!r}).",
                type="ValueError",
                non_retryable=True,
            )
        problem = check_response(record, request.value)
        if problem:
            raise ApplicationError(problem, type="ValueError", non_retryable=True)
        return True

    async def _continue(self, request: ContinueRequest) -> dict[str, Any]:
        if not self._check_continue(request):
            return copy.deepcopy(self._interrupts[request.interrupt_id])
        record = self._interrupts[request.interrupt_id]
        if request.resume_request_id is not None:
            record.setdefault("resume_requests", {})[request.resume_request_id] = {
                "request_id": request.resume_request_id,
                "status": "accepted",
                "value": copy.deepcopy(request.value),
                "actor": request.actor,
                "accepted_at": workflow.now().timestamp(),
            }
            record["resume_request_id"] = request.resume_request_id
            record["resumed_by"] = request.actor
        timer = self._timers.pop(request.interrupt_id, None)
        if timer is not None and not timer.done() and request.actor != "timeout":
            timer.cancel()
        self._deadlines.pop(request.interrupt_id, None)
        origin = record["source_signal"]
        resume_to = record["resume_to"]
        record["status"] = "resumed"
        record["resumed_at"] = workflow.now().timestamp()
        record["resume_value"] = request.value
        record["response"] = request.value
        resume_context = {
            "interrupt_id": record["id"],
            "value": request.value,
            "interrupt": copy.deepcopy(record),
            "origin_signal": copy.deepcopy(origin),
        }
        meta = {**origin["meta"], "resume": resume_context}
        if resume_to == "self":
            record["resume_count"] = int(record.get("resume_count") or 0) + 1
            op = self._engine.ops[record["source_operator_id"]]
            signal = self._engine.make_signal(
                origin["trigger_event"],
                origin["value"],
                trigger_type=origin["trigger_type"],
                layer_marks=origin["layer_marks"],
                source="interrupt",
                meta=meta,
            )
            self._refresh_status()
            await self._guarded(self._engine._op_chunk(op, signal))
        else:
            event = (
                resume_to["event"] if isinstance(resume_to, dict) else record["continuation_event"]
            )
            signal = self._engine.make_signal(
                event,
                request.value,
                layer_marks=origin["layer_marks"] if resume_to == "next" else [],
                source="interrupt",
                meta={**self._engine.child_meta(origin), "resume": resume_context},
            )
            self._refresh_status()
            await self._guarded(self._engine.dispatch(signal))
        return copy.deepcopy(self._interrupts[request.interrupt_id])

    # ======================================================= continue-as-new
    def _export_runtime(self) -> dict[str, Any]:
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
        }

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

    # ============================================================== handlers
    @workflow.update(name="start")
    async def start_update(self, start: dict[str, Any]) -> None:
        """Dispatch ``START`` with ``start["value"]``; returns when the chain is quiescent."""
        await self._start(start.get("value"))

    @workflow.update(name="emit")
    async def emit_update(self, request: EmitRequest) -> list[Any] | None:
        """Dispatch an external event; returns the handlers' return values."""
        if self._lifecycle != "open":
            return None
        signal = self._engine.make_signal(
            request.event, request.value, trigger_type=request.trigger_type, source="runtime"
        )
        self._touch()
        await self._resolve_resume_event(signal)
        results = await self._guarded(self._engine.dispatch(signal))
        return results

    @emit_update.validator
    def _validate_emit(self, request: EmitRequest) -> None:
        if not isinstance(request.event, str) or not request.event:
            raise ValueError(f"emit needs a non-empty event name, got {request.event!r}.")
        if request.trigger_type not in ("event", "runtime_data", "flow_data"):
            raise ValueError(
                f"emit trigger_type must be 'event', 'runtime_data' or 'flow_data', got "
                f"{request.trigger_type!r}."
            )

    @workflow.signal(name="emit_nowait")
    async def emit_signal(self, request: EmitRequest) -> None:
        """Fire-and-forget external event (for senders that can only signal)."""
        if self._lifecycle != "open":
            return
        signal = self._engine.make_signal(
            request.event, request.value, trigger_type=request.trigger_type, source="runtime"
        )
        self._touch()
        await self._resolve_resume_event(signal)
        try:
            await self._guarded(self._engine.dispatch(signal))
        except ApplicationError:
            pass  # recorded as the execution's failure; a signal has no caller to tell

    @workflow.update(name="set_state")
    async def set_state_update(self, request: SetStateRequest) -> None:
        """Write execution state from outside (watchers run)."""
        if self._lifecycle == "closed":
            raise ApplicationError(
                f"Execution {self._execution_id} is closed; its state is frozen.",
                type="RuntimeError",
                non_retryable=True,
            )
        await self._guarded(self._apply_state_op(request.op))

    @workflow.update(name="continue_with")
    async def continue_with_update(self, request: ContinueRequest) -> dict[str, Any] | None:
        """Resume a waiting interrupt; returns the interrupt record once quiescent."""
        if self._lifecycle != "open":
            return None
        return await self._continue(request)

    @continue_with_update.validator
    def _validate_continue_with(self, request: ContinueRequest) -> None:
        if self._lifecycle != "open":
            return  # the handler returns None and the client warns, as natively
        self._check_continue(request)

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

    @workflow.query(name="close_snapshot")
    def close_snapshot_query(self) -> dict[str, Any] | None:
        """The close snapshot, or None while open."""
        return self._close_snapshot


class _Semaphore:
    """An asyncio semaphore created lazily inside the workflow's event loop."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._inner: Any = None

    async def __aenter__(self) -> None:
        if self._inner is None:
            self._inner = asyncio.Semaphore(self._limit)
        await self._inner.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._inner.release()


def _summarize(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
