"""Client side: the execution handle, Agently's execution methods with the ``async_`` prefix.

:class:`TriggerFlowExecution` decides *what* to send (start, events, state writes, resumes,
interventions, save/load, close) and keeps what this handle knows (started, attached, the
graph it compiled). *How* a call reaches the workflow and how its answer becomes a typed
error is in ``calls``; values are checked in ``checks``; snapshots in ``persistence``; the
runtime stream reader in ``stream``.
"""

from __future__ import annotations

import uuid
import warnings
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from .._errors import ExecutionStateError, NoWorkerError
from ..spec import wire
from ..spec.chunk_io import unpack_continue_result
from ..spec.spec_codec import compact_dataclass
from ..spec.state import get_path
from .binding_methods import BindingMethods
from .calls import ExecutionCalls
from .checks import check_json, check_resume_value
from .errors import rebuild_error
from .intervention_methods import InterventionMethods
from .persistence import execution_history, save_execution
from .setup import ExecutionSetup
from .snapshots import inspect_snapshot, load_snapshot
from .stream_methods import RuntimeStreamMethods

if TYPE_CHECKING:
    from .flow import TriggerFlow

_UNSET: Any = object()


class TriggerFlowExecution(BindingMethods, InterventionMethods, RuntimeStreamMethods):
    """A handle on one execution (a Temporal workflow; execution id = workflow id).

    Created by ``flow.create_execution(...)`` or ``flow.get_execution(...)``; usable from
    any process that can reach the Temporal server.
    """

    def __init__(
        self,
        flow: TriggerFlow,
        *,
        client: Client | None = None,
        execution_id: str | None = None,
        runtime_resources: dict[str, Any] | None = None,
        auto_close: bool = True,
        auto_close_timeout: float | None = 10.0,
        skip_exceptions: bool | None = None,
        concurrency: int | None = None,
        intervention_mode: Any = _UNSET,
        task_queue: str | None = None,
        tenant: str | None = None,
        hidden: bool = False,
        started_by: str | dict[str, Any] | None = None,
        intervention_policy: Any = None,
        **unsupported: Any,
    ) -> None:
        if unsupported:
            raise TypeError(
                f"create_execution() got unsupported argument(s) {sorted(unsupported)}. "
                "On Temporal, snapshots live in workflow history (no record_store/"
                "snapshot_store needed) and live objects go to TriggerFlowPlugin("
                "runtime_resources=...)."
            )
        self._explicit_id = execution_id is not None
        self._id = execution_id or uuid.uuid4().hex
        self._setup = ExecutionSetup.create(
            flow,
            client=client,
            task_queue=task_queue,
            runtime_resources=runtime_resources,
            auto_close=auto_close,
            auto_close_timeout=auto_close_timeout,
            skip_exceptions=skip_exceptions,
            concurrency=concurrency,
            intervention_mode=... if intervention_mode is _UNSET else intervention_mode,
            tenant=tenant,
            hidden=hidden,
            started_by=started_by,
            intervention_policy=intervention_policy,
        )
        self._started = False
        self._attached = False
        self._workflow_created = False
        self._pending_bindings: dict[str, dict[str, Any]] = {}  # on() before the start

    @classmethod
    def attach(
        cls, flow: TriggerFlow, *, client: Client | None = None, execution_id: str
    ) -> TriggerFlowExecution:
        """A handle on an execution that already exists (``flow.get_execution(...)``).

        Args:
            flow: The flow the execution runs.
            client: The client to use; default: the plugin's the flow was handed to.
            execution_id: The execution's id.
        """
        execution = cls(flow, client=client, execution_id=execution_id)
        execution._started = True
        execution._attached = True
        return execution

    # --------------------------------------------------------------- basics
    @property
    def id(self) -> str:
        """The execution id (= the Temporal workflow id)."""
        return self._id

    @property
    def flow(self) -> TriggerFlow:
        """The flow this execution runs."""
        return self._setup.flow

    def _calls(self) -> ExecutionCalls:
        """The calls to this execution's workflow (client and id as they are now)."""
        return ExecutionCalls(
            self._setup.resolve_client(), self._id, self._setup.flow, self._setup.queue()
        )

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        """The Temporal workflow handle of this execution."""
        return self._setup.resolve_client().get_workflow_handle(self._id)

    def _queue(self) -> str:
        """The task queue: ``task_queue=``, else the plugin's queue for this flow name."""
        return self._setup.queue()

    # ---------------------------------------------------------------- start
    async def async_start(self, value: Any = None, *, timeout: float | None = None) -> Any:
        """Dispatch ``START(value)`` and return once every branch finished or paused.

        Returns:
            The close snapshot when ``auto_close=True`` (after the idle auto-close), else
            this execution.
        """
        if self._started:
            # Native: start is idempotent. Answer as the first start did, without a new run.
            if self._setup.options.auto_close and not self._attached:
                return await self.async_result()
            return self
        value = self._checked_start_value(value)
        calls = self._calls()
        spec = self._setup.spec()
        workflow_input = self._setup.workflow_input()
        options = workflow_input.options
        if timeout is not None:
            options.auto_close_timeout = float(timeout)
        try:
            if options.hidden:
                workflow_input.start = {"value": value}
                self._started = True
                kwargs = await self._setup.start_options(spec, options, self._id)
                return await calls.watched(
                    calls.client.execute_workflow(
                        spec.name,
                        compact_dataclass(workflow_input),  # defaults left out (spec_codec)
                        result_type=dict,
                        # A worker on this client gets the first task with the start reply
                        # (no dispatch round trip); the server ignores it otherwise.
                        request_eager_start=True,
                        **kwargs,
                    ),
                    "start",
                )
            started = await self._start_update(calls, workflow_input, value)
            if options.auto_close:
                return await calls.watched(calls.handle.result(), "result")
            await calls.settled(started)
        except (WorkflowUpdateFailedError, WorkflowFailureError) as error:
            self._started = True  # the workflow exists; its start or run failed
            raise rebuild_error(error) from None
        except WorkflowAlreadyStartedError:
            raise calls.already_closed() from None
        return self

    def _checked_start_value(self, value: Any) -> Any:
        """The start value as sent, JSON-ready and checked against the flow's contract.

        A value the ``initial_input`` contract refuses raises ``ValueError`` before anything
        is sent; the validated value (coerced, as JSON data) is what the flow starts with.
        """
        value = self._setup.flow.contract.check("initial_input", value)
        check_json("start value", value)
        return value

    async def _start_update(
        self,
        calls: ExecutionCalls,
        workflow_input: wire.WorkflowInput,
        value: Any,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Create the workflow and run its ``start`` update (update-with-start)."""
        operation = await self._setup.with_start(self._id, workflow_input)
        try:
            started = await calls.start_update(
                wire.UPDATE_START,
                self._start_request(value),
                operation,
                action="start",
                rpc_timeout=rpc_timeout,
            )
        except NoWorkerError:
            # The workflow exists and waits for a worker; a later start reaches it (the
            # workflow's start is idempotent).
            self._workflow_created = True
            raise
        self._started = True
        return started

    async def async_start_settled(
        self, value: Any = None, *, rpc_timeout: timedelta | None = None
    ) -> TriggerFlowExecution:
        """Start and return once the START chain is quiescent, whatever ``auto_close`` is.

        Unlike :meth:`async_start`, this does not wait for the auto close; the
        ``triggerflow-temporal start`` command uses it.

        Raises:
            NoWorkerError: No worker serves the flow's task queue (the execution is created
                and starts when one polls).
        """
        if self._started:
            return self
        value = self._checked_start_value(value)
        calls = self._calls()
        workflow_input = self._setup.workflow_input()
        try:
            started = await self._start_update(calls, workflow_input, value, rpc_timeout)
            await calls.settled(started)
        except WorkflowUpdateFailedError as error:
            self._started = True
            raise rebuild_error(error) from None
        except WorkflowAlreadyStartedError:
            raise calls.already_closed() from None
        return self

    # --------------------------------------------------------------- events
    async def async_emit(
        self,
        event: str,
        value: Any = None,
        *,
        trigger_type: str = "event",
        actor: str | dict[str, Any] | None = None,
    ) -> Any:
        """Dispatch an external event; returns the handlers' return values.

        After close, or while sealed, the event is ignored: returns None with a
        ``RuntimeWarning``.
        ``actor`` (a subject or ``{subject, tenant, groups, method}``) is checked when the
        event resumes an interrupt with access rules (``pause_for(assignees=...)``).
        """
        check_json("emit value", value)
        try:
            result = await self._update(
                wire.UPDATE_EMIT,
                wire.EmitRequest(event=event, value=value, trigger_type=trigger_type, actor=actor),
            )
        except ExecutionStateError as error:
            if not _warn_refused(error):
                raise
            return None
        if result is None:
            _warn_closed(self._id, f"event {event!r}")
        return result

    async def async_emit_nowait(
        self, event: str, value: Any = None, *, trigger_type: str = "event"
    ) -> None:
        """Send an event as a signal (fire and forget)."""
        check_json("emit value", value)
        calls = self._calls()
        request = wire.EmitRequest(event=event, value=value, trigger_type=trigger_type)
        if not await calls.unless_closed(calls.handle.signal(wire.SIGNAL_EMIT_NOWAIT, request)):
            _warn_closed(self._id, f"event {event!r}")

    async def async_set_state(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Write execution state from outside; ``emit=True`` runs watchers."""
        check_json("state value", value)
        await self._update(
            wire.UPDATE_SET_STATE, wire.SetStateRequest(op=["set", key, value, emit])
        )

    async def async_append_state(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Append to a list in execution state from outside."""
        check_json("state value", value)
        await self._update(
            wire.UPDATE_SET_STATE, wire.SetStateRequest(op=["append", key, value, emit])
        )

    async def async_del_state(self, key: str, *, emit: bool = True) -> None:
        """Delete an execution state key from outside."""
        await self._update(wire.UPDATE_SET_STATE, wire.SetStateRequest(op=["del", key, emit]))

    # -------------------------------------------------------------- reading
    async def async_get_state(self, key: str | None = None, default: Any = None) -> Any:
        """The execution state (whole dict, or one dotted key)."""
        state = await self._calls().query(wire.QUERY_STATE)
        if key is None:
            return state
        return get_path(state, key, default)

    async def async_get_status(self) -> str:
        """``created``/``running``/``waiting``/``completed``/``failed``/``cancelled``."""
        return await self._calls().query(wire.QUERY_STATUS)

    async def async_get_lifecycle_state(self) -> str:
        """``open``, ``sealed`` or ``closed``."""
        return (await self._calls().query(wire.QUERY_INFO))["lifecycle_state"]

    async def async_get_info(self) -> dict[str, Any]:
        """Status, lifecycle, close reason, failure and identity."""
        return await self._calls().query(wire.QUERY_INFO)

    async def async_get_pending_interrupts(self) -> dict[str, dict[str, Any]]:
        """Waiting interrupts by id."""
        return await self._calls().query(wire.QUERY_PENDING_INTERRUPTS)

    async def async_get_interrupt(self, interrupt_id: str) -> dict[str, Any] | None:
        """One interrupt record (any status), or None."""
        return (await self._calls().query(wire.QUERY_INTERRUPTS)).get(interrupt_id)

    async def async_is_waiting(self) -> bool:
        """Whether any interrupt is waiting."""
        return (await self.async_get_status()) == "waiting"

    # ----------------------------------------------------------- interrupts
    async def async_continue_with(
        self,
        interrupt_id: str,
        value: Any = None,
        *,
        resume_request_id: str | None = None,
        actor: str | dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Resume a waiting interrupt; returns the interrupt record once quiescent.

        After close, or while sealed, it is ignored: returns None with a ``RuntimeWarning``.
        """
        check_json("continue value", value)
        try:
            result = await self._update(
                wire.UPDATE_CONTINUE_WITH,
                wire.ContinueRequest(
                    interrupt_id=interrupt_id,
                    value=value,
                    resume_request_id=resume_request_id,
                    actor=actor,
                    compact_result=True,
                ),
            )
        except ExecutionStateError as error:
            if not _warn_refused(error):
                raise
            return None
        if result is None:
            _warn_closed(self._id, f"continue_with({interrupt_id!r})")
        return unpack_continue_result(result, execution_id=self._id, value=value)

    async def async_continue_with_nowait(
        self,
        interrupt_id: str,
        value: Any = None,
        *,
        resume_request_id: str | None = None,
        actor: str | dict[str, Any] | None = None,
    ) -> None:
        """``continue_with`` as a signal, for senders that can only signal.

        Nothing is returned and nothing fails here: a request the update would reject is
        kept in :meth:`async_get_rejected_requests`.

        Raises:
            TypeError: ``value`` is not JSON-ready data.
            ValueError: ``value`` is over the size a resume value may be (checked here: the
                signal could not tell).
        """
        check_resume_value(interrupt_id, value)
        await self.handle.signal(
            wire.SIGNAL_CONTINUE_WITH_NOWAIT,
            wire.ContinueRequest(
                interrupt_id=interrupt_id,
                value=value,
                resume_request_id=resume_request_id,
                actor=actor,
            ),
        )

    async def async_get_rejected_requests(self) -> list[dict[str, Any]]:
        """Signal-variant ``continue_with`` requests that were rejected, oldest first."""
        return await self._calls().query(wire.QUERY_REJECTED_REQUESTS)

    # ------------------------------------------------------------ save / load
    async def async_save(self) -> dict[str, Any]:
        """Return a JSON-ready snapshot with Agently's schema v2 top-level keys.

        ``lifecycle_state`` and ``close_reason`` are the public way to read them. The
        snapshot is self-contained (it embeds the graph), so it loads from any process.
        """
        return await save_execution(self._setup.resolve_client(), self._id)

    def inspect_load(
        self, saved: Any, *, runtime_resources: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Report whether ``saved`` can be loaded here, without loading it.

        Returns:
            ``{"status": "ready"|"missing_resources"|"invalid_snapshot", "ready": bool,
            "missing_resource_keys": [...], "diagnostics": [...]}`` as natively.
        """
        return inspect_snapshot(self._setup, saved, runtime_resources)

    async def async_load(
        self,
        saved: Any,
        *,
        execution_id: str | None = None,
        from_step: int | None = None,
        runtime_resources: dict[str, Any] | None = None,
        validate_resources: bool = False,
        allow_blueprint_change: bool = False,
    ) -> TriggerFlowExecution:
        """Start this execution as a new workflow seeded from a snapshot (restore or fork).

        Args:
            saved: A snapshot from :meth:`async_save` (dict or JSON text). With
                ``from_step``: the list from :meth:`async_get_history`, or the id (or
                handle) of the execution whose history to fork.
            execution_id: The id to load under. Defaults to the id given to
                ``create_execution``, else the saved id (possible once that workflow has
                closed); a fork with neither gets a new id.
            from_step: Fork from the state after this step of the history (time travel).
            runtime_resources: Execution resources to re-inject (they are never saved).
            validate_resources: Raise ``RuntimeError`` if a saved resource key is missing.
            allow_blueprint_change: Load a snapshot saved under another blueprint of this
                flow (every operator it refers to must still exist).

        Returns:
            This execution, now attached to the loaded workflow.

        Raises:
            SnapshotError: Malformed, foreign or other-blueprint snapshot, unknown step.
            ExecutionStateError: The id belongs to an execution that is still open.
        """
        if self._started:
            raise ExecutionStateError(
                f"Execution {self._id} already started; load into a new flow.create_execution(...)."
            )
        if from_step is not None and isinstance(saved, TriggerFlowExecution):
            saved = saved.id  # fork that execution's history
        self._id = await load_snapshot(
            self._setup,
            saved,
            handle_id=self._id,
            explicit_id=self._explicit_id,
            execution_id=execution_id,
            from_step=from_step,
            runtime_resources=runtime_resources,
            validate_resources=validate_resources,
            allow_blueprint_change=allow_blueprint_change,
            bindings=self._pending_bindings,
        )
        self._started = True
        return self

    async def async_get_history(self) -> list[dict[str, Any]]:
        """The state after each chunk, from the workflow's event history.

        Each entry has ``step``, ``chunk``, ``run_id``, ``paused``, ``state``,
        ``state_version`` and the ``snapshot`` that ``async_load(..., from_step=step)``
        forks from.
        """
        setup = self._setup
        return await execution_history(setup.resolve_client(), setup.history_flows(), self._id)

    async def async_fork(
        self, from_step: int, *, execution_id: str | None = None
    ) -> TriggerFlowExecution:
        """A new execution forked from the state after ``from_step`` (time travel)."""
        setup = self._setup
        fork = TriggerFlowExecution(
            setup.flow, client=setup.client, execution_id=execution_id, task_queue=setup.task_queue
        )
        return await fork.async_load(await self.async_get_history(), from_step=from_step)

    # ---------------------------------------------------------------- close
    async def async_seal(self, *, reason: str = "manual") -> TriggerFlowExecution:
        """Seal the execution: external emits and continues are ignored with a warning.

        Work in flight and the work it triggers goes on; state writes are accepted. A
        closed execution stays closed (nothing happens). Returns the execution.
        """
        await self._seal(wire.SealRequest(sealed=True, reason=reason))
        return self

    async def async_unseal(self, *, reason: str = "manual") -> TriggerFlowExecution:
        """Open a sealed execution again; after close it warns and changes nothing."""
        if not await self._seal(wire.SealRequest(sealed=False, reason=reason)):
            warnings.warn(
                f"TriggerFlow execution {self._id} can not be unsealed because it is closed.",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    async def _seal(self, request: wire.SealRequest) -> bool:
        """Send the seal update; False when the execution is closed (or closing)."""
        try:
            return await self._update(wire.UPDATE_SEAL, request) is not None
        except ExecutionStateError as error:
            if type(error).__name__ != wire.LIFECYCLE_REFUSAL:
                raise
            return False

    async def async_close(
        self, *, reason: str = "manual", pending_interrupts: str = "error", seal: bool = True
    ) -> dict[str, Any]:
        """Close the execution (drains in-flight work) and return the close snapshot.

        ``seal=False`` keeps accepting external emits while the close drains (unless the
        execution was sealed with :meth:`async_seal`).
        """
        try:
            return await self._update(
                wire.UPDATE_CLOSE,
                wire.CloseRequest(reason=reason, pending_interrupts=pending_interrupts, seal=seal),
            )
        except ExecutionStateError:
            raise
        except RPCError:
            snapshot = await self._calls().query(wire.QUERY_CLOSE_SNAPSHOT)
            if snapshot is None:
                raise
            return snapshot

    async def async_result(self) -> dict[str, Any]:
        """Wait for the workflow to end and return the close snapshot."""
        calls = self._calls()
        try:
            return await calls.watched(calls.handle.result(), "result")
        except WorkflowFailureError as error:
            raise rebuild_error(error) from None

    # --------------------------------------------------------------- helpers
    async def _update(self, name: str, arg: Any) -> Any:
        """Run update ``name``; before the workflow exists, create it with the update."""
        calls = self._calls()
        if self._started or self._workflow_created:
            return await calls.update(name, arg)

        async def create_with_it() -> Any:
            # The workflow does not exist yet: create it with this update (native
            # executions accept state writes and emits before start).
            operation = await self._setup.with_start(self._id, self._setup.workflow_input())
            try:
                result = await calls.start_update(name, arg, operation, action=f"update {name}")
            except NoWorkerError:
                self._workflow_created = True  # it exists and waits for a worker
                raise
            self._workflow_created = True
            return result

        return await calls.update(name, arg, send=create_with_it)

    def __repr__(self) -> str:
        return f"TriggerFlowExecution(flow={self._setup.flow.name!r}, id={self._id!r})"


def _warn_refused(error: ExecutionStateError) -> bool:
    """Warn with Agently's text when the workflow refused a call because it is sealed."""
    if type(error).__name__ != wire.LIFECYCLE_REFUSAL:
        return False
    warnings.warn(str(error), RuntimeWarning, stacklevel=4)
    return True


def _warn_closed(execution_id: str, what: str) -> None:
    """Warn that ``what`` sent to a closed execution was ignored (Agently does not raise)."""
    warnings.warn(
        f"Execution {execution_id} is not open; {what} was ignored.",
        RuntimeWarning,
        stacklevel=3,
    )
