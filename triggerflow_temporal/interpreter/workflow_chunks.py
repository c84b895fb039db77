"""Chunk runs of the interpreter workflow (workflow side, deterministic).

Building a chunk's input, running it as an activity, a local activity or inline, applying
the operations it recorded (state, emits, stream items), payload size checks, the hooks
interventions use before an operator, and sub-flows as child workflows.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from .._errors import ChunkOutputError, chunk_failure_details
from ..chunk.data import ChunkData
from ..spec.chunk_io import (
    OWN_RETRY_POLICY,
    ChunkInput,
    ChunkOutput,
    pack_chunk_input,
    pack_resume,
)
from ..spec.flow_spec import FlowSpec, deserialize_activity_config
from ..spec.limits import MAX_PAYLOAD_BYTES, MAX_RUN_MARKERS
from ..spec.spec_codec import compact_dataclass
from ..spec.state import apply_state_op, declared_reads, describe_size, json_size, select_paths
from ..spec.wire import (
    WorkflowInput,
    failure_from_activity,
)
from .events import error_info
from .interventions import POLICY_ACTIVITY, POLICY_NOT_REGISTERED, policy_context, policy_label
from .interventions import STATE_KEY as INTERVENTIONS_KEY
from .legacy_engine import (
    ChunkFailure,
    PausedBranch,
)
from .signal_net import failure_details
from .workflow_base import (
    COMPACT_PAYLOAD_VERSION,
    FAST_YIELD_VERSION,
    INLINE_BATCH,
    INLINE_YIELD_EVERY,
    YIELD_ACTIVITY,
    WorkflowBase,
)

# How long an intervention_policy may take (a local activity; natively it has no limit).
POLICY_TIMEOUT = timedelta(seconds=60)


class ChunkRunMixin(WorkflowBase):
    """Running chunks and sub-flows for :class:`~.workflow.TriggerFlowWorkflow`."""

    # ================================================================ chunks
    def _chunk_input(self, op: dict[str, Any], signal: dict[str, Any], run_id: str) -> ChunkInput:
        name = op["name"]
        state = self._engine.state
        reads = declared_reads(self._spec.chunks.get(name))
        if reads is not None:
            # The chunk declared the state it reads (issue 18): only that is sent, from the
            # spec this execution started with (pure, so replay sends the same).
            state = select_paths(state, reads)
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
            state=state,
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

    def _chunk_wire(
        self, chunk_input: ChunkInput, options: dict[str, Any]
    ) -> ChunkInput | dict[str, Any]:
        """What a chunk activity is sent: the compact form from runtime version 4.

        The blueprint hash goes along only when the execution is traced (activity spans);
        ``own_retry_policy`` tells the activity that the chunk's retry policy is its own
        (with its own non-retryable error types; see :meth:`_activity_config`).
        """
        if self._options.runtime_version < COMPACT_PAYLOAD_VERSION:
            return chunk_input
        wire = pack_chunk_input(chunk_input, blueprint_hash=self._options.traced)
        if "retry_policy" in (options.get("activity") or {}):
            wire[OWN_RETRY_POLICY] = True
        return wire

    def _activity_config(self, options: dict[str, Any]) -> dict[str, Any]:
        """A chunk's activity options: the worker's defaults, then the chunk's own.

        From runtime version 4 the default retry policy is sent without its non-retryable
        error types (~165 B in every ActivityTaskScheduled event): the chunk activity
        refuses to retry those itself, from its worker's defaults (chunk/activity.py). A
        chunk's own retry policy is sent whole.
        """
        own = deserialize_activity_config(options.get("activity") or {})
        config = {**self._runtime.default_activity_config, **own}
        policy = config.get("retry_policy")
        if (
            self._options.runtime_version >= COMPACT_PAYLOAD_VERSION
            and "retry_policy" not in own
            and isinstance(policy, RetryPolicy)
            and policy.non_retryable_error_types
        ):
            config["retry_policy"] = dataclasses.replace(policy, non_retryable_error_types=None)
        return config

    def _spec_input(self, spec: FlowSpec | None = None) -> dict[str, Any]:
        """The spec a continue-as-new (or a sub-flow's child start) carries.

        From runtime version 4 the packed form, as this run received it (the recorded
        text, re-sent unchanged; spec_codec); before it the full form, as recorded.
        """
        spec = spec or self._spec
        if self._options.runtime_version < COMPACT_PAYLOAD_VERSION:
            return spec.to_json()
        return spec.to_packed()

    def _wire_input(self, value: WorkflowInput) -> WorkflowInput | dict[str, Any]:
        """A workflow input as sent: without its default fields from runtime version 4."""
        if self._options.runtime_version < COMPACT_PAYLOAD_VERSION:
            return value
        return compact_dataclass(value)

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

    def before_operator(
        self, op: dict[str, Any], signal: dict[str, Any]
    ) -> Callable[[], Awaitable[None]] | None:
        """Scheduler host: interventions before an operator (a policy's choice to await)."""
        return self._before_operator(op, signal)

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
            chunk_failure_details(
                flow_name=self._spec.name,
                chunk_name=chunk,
                error_type=ChunkOutputError.__name__,
                error_module=ChunkOutputError.__module__,
                message=message,
            )
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
        recorder = self._runtime.step_recorder
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
                # A loop of inline chunks never leaves the workflow activation; Temporal's
                # deadlock detector fails one that runs over 2 s. Every INLINE_BATCH
                # inline chunks a no-op local activity ends it (version 4; version 3: a
                # short timer every INLINE_YIELD_EVERY, which took ~1 s to fire).
                self._inline_runs += 1
                if self._fast_yield():
                    if self._inline_runs % INLINE_BATCH == 0:
                        await self._yield_activation()
                elif self._inline_runs % INLINE_YIELD_EVERY == 0:
                    await workflow.sleep(0.001, summary="inline chunks: yield")
            return await self._run_inline(name, chunk_input)
        config = self._activity_config(options)
        config.setdefault("summary", name)
        activity_name = f"{self._spec.name}.{name}"
        try:
            if execute_in == "local_activity":
                config.pop("task_queue", None)
                config.pop("heartbeat_timeout", None)
                config.pop("priority", None)
                if self._fast_yield():
                    self._note_marker()
                try:
                    output = await workflow.execute_local_activity(
                        activity_name,
                        self._chunk_wire(chunk_input, options),
                        result_type=ChunkOutput,
                        **config,
                    )
                except FailureError as error:
                    # A local activity's failure arrives as its cause (an ApplicationError,
                    # a TimeoutError), not wrapped in an ActivityError.
                    raise ChunkFailure(
                        failure_from_activity(error, self._spec.name, name)
                    ) from None
            else:
                output = await workflow.execute_activity(
                    activity_name,
                    self._chunk_wire(chunk_input, options),
                    result_type=ChunkOutput,
                    **config,
                )
        except ActivityError as error:
            raise ChunkFailure(failure_from_activity(error, self._spec.name, name)) from None
        # A pausing chunk's result names the worker's notification channels (recorded with
        # it, so a replay learns the same); results recorded by earlier workers do not.
        self._learn_channels(output.channels)
        return output

    # ================================================ yields and run length (v4)
    def _fast_yield(self) -> bool:
        """Whether this execution yields with a local activity and counts its markers."""
        return self._options.runtime_version >= FAST_YIELD_VERSION

    def _note_marker(self) -> None:
        """Count a local activity scheduled in this run (one marker event)."""
        self._run_markers += 1

    def _markers_at_bound(self) -> bool:
        """Version 4: this run scheduled MAX_RUN_MARKERS local activities (it holds).

        Counted by the workflow, not read from the history length: Temporal reports that
        when a workflow task starts, and a chain of local activities keeps one task open
        until the SDK's heartbeat; which local activity first sees a new task's length also
        differs between the live run and a replay, so no decision may hang on it.
        """
        return self._fast_yield() and self._run_markers >= MAX_RUN_MARKERS

    def _handover_ready(self) -> bool:
        """Callers may be handed over to the next run (not while the task is being ended)."""
        return self._handover_task_ended or not self._markers_at_bound()

    async def _task_ended_for_handover(self) -> bool:
        """Whether continue-as-new may happen now; ends the task first after MAX_RUN_MARKERS.

        That hold comes in the middle of a workflow task of local activities. A query that
        came in meanwhile waits for the task to end, and would find the run closed: a
        worker replays the whole run to answer it (~20 s of CPU for 8,000 markers here)
        and the caller times out. A 1 ms timer ends the task first (once per run, ~1 s on
        a server), so the open run answers it; the run loop then checks again. Callers
        waiting in updates are handed over after it (_handover_ready), not during it
        (their clients would ask this run to settle again and again).
        """
        if self._handover_ready():
            return True
        self._handover_task_ended = True
        await workflow.sleep(0.001, summary="end the task before continue-as-new")
        return False

    async def _yield_activation(self) -> None:
        """End the workflow activation with a no-op local activity (one marker event)."""
        self._note_marker()
        try:
            await workflow.execute_local_activity(
                YIELD_ACTIVITY,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary="inline chunks: yield",
            )
        except FailureError:
            pass  # the activation ended all the same (a worker without the activity)

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
            reads_state=declared_reads(self._spec.chunks.get(name)),
        )
        try:
            result = handler(data)
            if hasattr(result, "__await__"):
                result = await result
        except Exception as error:
            raise ChunkFailure(failure_details(self._spec.name, name, error)) from None
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
    def _before_operator(
        self, op: dict[str, Any], signal: dict[str, Any]
    ) -> Callable[[], Awaitable[None]] | None:
        """Insert interventions: at an ``intervention_point`` (planned) or any operator (auto).

        With an ``intervention_policy`` (auto mode; the scheduler of runtime version 3+)
        and records pending, what the scheduler awaits before ``op`` runs: the policy.
        """
        ledger = self._interventions
        if ledger.mode == "planned" and op["kind"] == "intervention_point":
            target = (op.get("options") or {}).get("target")
            self._record_inserted(ledger.insert_planned(target, op, signal, self._now()))
        elif ledger.mode == "auto" and ledger.policy is not None and self._v3:
            if ledger.needs_policy():
                return functools.partial(self._choose_interventions, op, signal)
        elif ledger.mode == "auto":
            self._record_inserted(ledger.insert_auto(op, signal, self._now()))
        return None

    def _record_inserted(self, inserted: list[dict[str, Any]]) -> None:
        if inserted:
            self._write_ledger()
            for record in inserted:
                self._on_intervention("insert", record)

    async def _choose_interventions(self, op: dict[str, Any], signal: dict[str, Any]) -> None:
        """Run the execution's intervention policy as a local activity; insert its choice.

        The answer is a marker in history (a replay reads it, never runs the policy). A
        policy that fails is a WARNING ``triggerflow.intervention_rejected`` and nothing is
        inserted, as natively; one this worker does not have fails the workflow task, so
        the execution waits (retried) until a worker that has it runs it.
        """
        ledger = self._interventions
        if ledger.policy is None or not ledger.needs_policy():
            return
        # A snapshot taken meanwhile re-runs the operator (and so the policy) on load.
        key = f"policy:{signal['id']}:{op['id']}"
        self._inflight[key] = {"kind": "operator", "op": op["id"], "signal": signal}
        context = policy_context(
            ledger,
            execution_id=self._execution_id,
            flow_name=self._spec.name,
            op=op,
            signal=signal,
            state=self._engine.state,
        )
        if self._fast_yield():
            self._note_marker()
        answer: dict[str, Any]
        try:
            answer = await workflow.execute_local_activity(
                POLICY_ACTIVITY,
                {"policy": ledger.policy, "context": context},
                result_type=dict,
                start_to_close_timeout=POLICY_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=1),  # natively called once
                summary=f"intervention policy {policy_label(ledger.policy)}",
            )
        except FailureError as error:
            cause = error.cause if isinstance(error, ActivityError) else error
            if isinstance(cause, ApplicationError) and cause.type == POLICY_NOT_REGISTERED:
                raise RuntimeError(cause.message) from None
            failed = cause if isinstance(cause, FailureError) else error
            answer = {"error": {"type": type(failed).__name__, "message": failed.message}}
        finally:
            self._inflight.pop(key, None)
        if answer.get("error"):
            self._emit(
                "triggerflow.intervention_rejected",
                f"TriggerFlow execution '{self._execution_id}' intervention policy failed.",
                {"operator_id": op.get("id")},
                level="WARNING",
                error=answer["error"],
            )
            return
        self._record_inserted(
            ledger.insert_chosen(list(answer.get("ids") or []), op, signal, self._now())
        )

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
