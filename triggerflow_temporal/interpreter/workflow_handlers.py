"""The interpreter workflow's updates, signals and queries (workflow side, deterministic).

Their names are part of the wire contract (recorded histories, the client, the CLI and
the gateway call them); each delegates to the workflow's lifecycle, interrupt and chunk
methods.
"""

from __future__ import annotations

import copy
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from ..spec import wire
from ..spec.chunk_io import pack_continue_result
from ..spec.limits import MAX_BINDINGS, MAX_PENDING_INTERVENTIONS
from ..spec.wire import (
    SETTLE_KEY,
    CloseRequest,
    ContinueRequest,
    EmitRequest,
    InterveneRequest,
    SealRequest,
    SetStateRequest,
)
from .access import actor_problem, normalize_actor
from .workflow_base import (
    CHAIN_MAY_HOLD,
    WorkflowBase,
)


class HandlersMixin(WorkflowBase):
    """Update, signal and query handlers of :class:`~.workflow.TriggerFlowWorkflow`."""

    # ============================================================== handlers
    @workflow.update(name=wire.UPDATE_START)
    async def start_update(self, start: dict[str, Any]) -> Any:
        """Dispatch ``START`` with ``start["value"]``; returns when the chain is quiescent.

        A large for_each in the chain may be held for continue-as-new (an update cannot
        outlive its run): see :meth:`_settling`.
        """
        if not self._options.auto_close:
            self._hold_only_if_bounded()
        for record in start.get("bindings") or []:  # execution.on() before the start
            self._engine.add_binding(record)
        outcome = await self._start(start.get("value"))
        if self._options.auto_close:
            return None
        return self._settling(outcome)

    @workflow.update(name=wire.UPDATE_SETTLE)
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
            CHAIN_MAY_HOLD.set(False)

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

    @workflow.update(name=wire.UPDATE_EMIT)
    async def emit_update(self, request: EmitRequest) -> Any:
        """Dispatch an external event; returns the handlers' return values."""
        if self._lifecycle != "open":
            self._reject_event(request)
            return None
        self._hold_only_if_bounded()
        signal = await self._accept_external_event(request)
        return self._settling(await self._external(signal))

    async def _accept_external_event(self, request: EmitRequest) -> dict[str, Any]:
        """The signal of an external event, after the interrupts it resumes are resolved."""
        signal = self._engine.make_signal(
            request.event,
            request.value,
            trigger_type=request.trigger_type,
            source="runtime",
            # Who emitted it, for the audit (signal_attempts keep the meta).
            meta={"actor": normalize_actor(request.actor)} if request.actor is not None else None,
        )
        self._touch()
        await self._resolve_resume_event(signal)
        return signal

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
        problem = actor_problem(request.actor)
        if problem:
            raise ValueError(problem)
        self._refuse_while_sealed(f"event '{request.event}'")
        if self._lifecycle == "open":
            problem = self._resume_event_problem(request.event, request.trigger_type, request.value)
            if problem:
                raise ValueError(problem)
            problem = self._resume_event_access_problem(
                request.event, request.trigger_type, request.actor
            )
            if problem:
                raise ApplicationError(problem, type="PermissionError", non_retryable=True)

    @workflow.signal(name=wire.SIGNAL_EMIT_NOWAIT)
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
            except ApplicationError as error:
                self._reject_event(request, reason=error.message)
                return
            except ValueError as error:
                self._reject_event(request, reason=str(error))
                return
        signal = await self._accept_external_event(request)
        if self._v3:
            # Nobody waits for a signal: the work is submitted, the handler returns.
            self._log_signal(signal)
            self._sched.submit_signal(signal, answer=None)
            return
        try:
            await self._run_external(signal, self._legacy.dispatch(signal))
        except ApplicationError:
            pass  # recorded as the execution's failure; a signal has no caller to tell

    @workflow.update(name=wire.UPDATE_SET_STATE)
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

    @workflow.update(name=wire.UPDATE_CONTINUE_WITH)
    async def continue_with_update(self, request: ContinueRequest) -> Any:
        """Resume a waiting interrupt; returns the interrupt record once quiescent."""
        if self._lifecycle != "open":
            return None
        self._hold_only_if_bounded()
        result = self._settling(await self._continue(request))
        if request.compact_result:
            return pack_continue_result(
                result, execution_id=self._execution_id, value=request.value
            )
        return result

    def _refuse_while_sealed(self, what: str) -> None:
        """Refuse an external call while sealed by ``async_seal()`` (Agently's text).

        Refused in the validator, so nothing reaches the history; the client turns it into
        the native RuntimeWarning and a None result.
        """
        if self._user_sealed():
            raise ApplicationError(
                f"TriggerFlow execution {self._execution_id} ignored {what} because "
                f"lifecycle state is '{self._lifecycle}'.",
                type=wire.LIFECYCLE_REFUSAL,
                non_retryable=True,
            )

    @continue_with_update.validator
    def _validate_continue_with(self, request: ContinueRequest) -> None:
        self._refuse_while_sealed("continue_with()")
        if self._lifecycle != "open":
            return  # the handler returns None and the client warns, as natively
        self._check_continue(request)

    @workflow.signal(name=wire.SIGNAL_CONTINUE_WITH_NOWAIT)
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

    @workflow.update(name=wire.UPDATE_BIND)
    def bind_update(self, request: dict[str, Any]) -> Any:
        """``execution.async_on`` (the binding id) / ``async_off`` (whether one matched)."""
        self._touch()
        if request.get("action") == "on":
            self._engine.add_binding(request["record"])
            return request["record"]["binding_id"]
        return self._engine.remove_binding(
            request["binding_id"],
            trigger_type=request.get("trigger_type"),
            trigger_event=request.get("trigger_event"),
        )

    @bind_update.validator
    def _validate_bind(self, request: dict[str, Any]) -> None:
        if self._lifecycle == "closed":
            raise ApplicationError(
                f"TriggerFlow execution {self._execution_id} is closed: its event handlers "
                "can no longer change.",
                type="RuntimeError",
                non_retryable=True,
            )
        if request.get("action") not in ("on", "off"):
            raise ApplicationError(
                f"bind update: unknown action {request.get('action')!r}", type="ValueError"
            )
        if request["action"] == "on":
            self._check_binding_room([request["record"]])

    def _check_binding_room(self, records: list[dict[str, Any]]) -> None:
        """Refuse bindings past MAX_BINDINGS (an execution's state stays bounded)."""
        known = {record["binding_id"] for record in self._engine.bindings}
        added = {record["binding_id"] for record in records} - known
        if len(known) + len(added) > MAX_BINDINGS:
            raise ApplicationError(
                f"TriggerFlow execution {self._execution_id} holds at most {MAX_BINDINGS} "
                "execution.on() bindings; remove one with execution.async_off(binding_id) "
                "first.",
                type="ValueError",
                non_retryable=True,
            )

    @workflow.update(name=wire.UPDATE_INTERVENE)
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

    @workflow.update(name=wire.UPDATE_LOADED)
    async def loaded_update(self) -> dict[str, Any]:
        """Wait until work re-run from a loaded snapshot is quiescent; returns ``info``."""
        await workflow.wait_condition(lambda: self._restore_done)
        if self._v3 and self._load_root is not None:
            root, self._load_root = self._load_root, None
            return self._settling(await self._await_root(root))
        return self._settling(self.info_query())

    @workflow.update(name=wire.UPDATE_STOP_STREAM)
    async def stop_stream_update(self) -> None:
        """End the runtime stream (consumers finish); the execution stays open."""
        self._stop_runtime_stream("stop_stream")

    @workflow.update(name=wire.UPDATE_CLOSE)
    async def close_update(self, request: CloseRequest) -> dict[str, Any]:
        """Close the execution and return the close snapshot."""
        return await self._close(request.reason, request.pending_interrupts, seal=request.seal)

    @workflow.update(name=wire.UPDATE_SEAL)
    async def seal_update(self, request: SealRequest) -> dict[str, Any]:
        """Seal (refuse external emits and continues) or unseal; returns ``info``.

        In-flight and internal work goes on. Sealing a sealed execution, or unsealing an
        open one, changes nothing (as natively: no second event).
        """
        if request.sealed and self._lifecycle == "open":
            self._sealed_at = self._now()
            self._lifecycle = "sealed"
            self._emit(
                "triggerflow.execution_sealed",
                f"TriggerFlow execution '{self._execution_id}' sealed.",
                {"reason": request.reason, "sealed_at": self._sealed_at},
            )
            self._update_details()
        elif not request.sealed and self._user_sealed():
            self._lifecycle = "open"
            self._touch()  # natively unseal marks activity: the idle timer starts again
            self._emit(
                "triggerflow.execution_unsealed",
                f"TriggerFlow execution '{self._execution_id}' unsealed.",
                {"reason": request.reason},
            )
            self._update_details()
        return self.info_query()

    @seal_update.validator
    def _validate_seal(self, request: SealRequest) -> None:
        if self._lifecycle == "closed" or self._closing:
            # Sealing a closing execution is a no-op natively; unsealing it warns.
            raise ApplicationError(
                f"TriggerFlow execution {self._execution_id} can not be unsealed because it "
                "is closed."
                if not request.sealed
                else f"TriggerFlow execution {self._execution_id} is closing.",
                type=wire.LIFECYCLE_REFUSAL,
                non_retryable=True,
            )

    @close_update.validator
    def _validate_close(self, request: CloseRequest) -> None:
        if request.pending_interrupts not in ("error", "cancel"):
            raise ValueError(
                "pending_interrupts must be 'error' or 'cancel', got "
                f"{request.pending_interrupts!r}."
            )

    @workflow.query(name=wire.QUERY_STATE)
    def state_query(self) -> dict[str, Any]:
        """The execution state (the close snapshot after close)."""
        if self._close_snapshot is not None:
            return self._close_snapshot
        return self._engine.state

    @workflow.query(name=wire.QUERY_STATUS)
    def status_query(self) -> str:
        """``created``, ``running``, ``waiting``, ``completed``, ``failed`` or ``cancelled``."""
        return self._status

    @workflow.query(name=wire.QUERY_INFO)
    def info_query(self) -> dict[str, Any]:
        """Status, lifecycle, failure and identity of the execution."""
        return {
            "execution_id": self._execution_id,
            "flow_name": self._spec.name,
            "blueprint_hash": self._spec.blueprint_hash,
            "status": self._status,
            "lifecycle_state": self._lifecycle,
            "sealed_at": self._sealed_at,
            "close_reason": self._close_reason,
            "error": self._error,
            "state_version": self._engine.state_version,
            "created_at": self._created_at,
            "started_at": self._started_at,
            "closed_at": self._closed_at,
        }

    @workflow.query(name=wire.QUERY_PENDING_INTERRUPTS)
    def pending_interrupts_query(self) -> dict[str, dict[str, Any]]:
        """Interrupts still waiting, by id."""
        return {k: v for k, v in self._interrupts.items() if v["status"] == "waiting"}

    @workflow.query(name=wire.QUERY_INTERRUPTS)
    def interrupts_query(self) -> dict[str, dict[str, Any]]:
        """Every interrupt record, by id."""
        return self._interrupts

    @workflow.query(name=wire.QUERY_SNAPSHOT)
    def snapshot_query(self) -> dict[str, Any]:
        """The execution snapshot in Agently's schema v2 shape (``async_save``)."""
        return self._snapshot(self._pending_snapshot_work())

    @workflow.query(name=wire.QUERY_INTERVENTIONS)
    def interventions_query(self) -> dict[str, Any]:
        """The intervention ledger section (mode, version, records by id)."""
        return self._interventions.section()

    @workflow.query(name=wire.QUERY_REJECTED_REQUESTS)
    def rejected_requests_query(self) -> list[dict[str, Any]]:
        """``continue_with_nowait`` signals that were rejected, oldest first."""
        return self._rejected

    @workflow.query(name=wire.QUERY_CLOSE_SNAPSHOT)
    def close_snapshot_query(self) -> dict[str, Any] | None:
        """The close snapshot, or None while open."""
        return self._close_snapshot
