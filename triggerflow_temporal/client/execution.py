"""Client-side execution handle: Agently's execution methods with the ``async_`` prefix."""

from __future__ import annotations

import asyncio
import copy
import importlib
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._errors import (
    ChunkFailedError,
    ExecutionStateError,
    NoWorkerError,
    SnapshotError,
    TriggerFlowError,
)
from ..interpreter.interrupt_records import resume_size_problem
from ..interpreter.interventions import InterventionLedger, check_mode
from ..interpreter.snapshot import parse_snapshot
from ..spec.state import MAX_PAYLOAD_BYTES, describe_size, get_path, json_size
from ..spec.wire import (
    SETTLE_KEY,
    CloseRequest,
    ContinueRequest,
    EmitRequest,
    ExecutionOptions,
    InterveneRequest,
    SetStateRequest,
    WorkflowInput,
    option_problems,
)
from .persistence import (
    execution_history,
    is_closed_error,
    load_execution,
    pick_step,
    query,
    save_execution,
    settle,
    start_options,
)
from .worker_check import watch_for_worker

if TYPE_CHECKING:
    from ..definition.flow import TriggerFlow
    from ..plugin.plugin import TriggerFlowPlugin
    from ..spec.flow_spec import FlowSpec

_T = TypeVar("_T")
_UNSET: Any = object()
# Where `triggerflow-temporal worker` polls by default (TriggerFlowPlugin's default too).
_DEFAULT_TASK_QUEUE = "triggerflow"
_SAVED_OPTION_KEYS = (
    "auto_close",
    "auto_close_timeout",
    "skip_exceptions",
    "concurrency",
    "intervention_mode",
    "tenant",
)
_BUILTIN_ERRORS = {
    name: obj
    for name, obj in vars(__import__("builtins")).items()
    if isinstance(obj, type) and issubclass(obj, Exception)
}


# How long an update refused because the execution has too many updates in flight
# (Temporal's limit.workflowExecution.maxInFlightUpdates, 10 by default) is retried.
BUSY_RETRY_SECONDS = 60.0


async def _retry_when_busy(call: Callable[[], Awaitable[_T]]) -> _T:
    """Retry ``call`` while the server refuses it for too many updates in flight.

    A burst of concurrent calls on one execution (hundreds of approvers clicking at once)
    is refused past the server's in-flight limit with RESOURCE_EXHAUSTED, or aborted
    before the workflow accepted it (UNAVAILABLE "workflow update was aborted": the
    server says retry); they wait their turn (with backoff) instead of failing with a
    transport error. An update aborted because the execution closed is not retried.
    """
    delay = 0.05
    deadline = time.monotonic() + BUSY_RETRY_SECONDS
    while True:
        try:
            return await call()
        except RPCError as error:
            busy = error.status == RPCStatusCode.RESOURCE_EXHAUSTED or (
                error.status == RPCStatusCode.UNAVAILABLE
                and "update was aborted" in str(error)
                and not is_closed_error(error)
            )
            if not busy or time.monotonic() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def _rebuild_error(error: BaseException) -> BaseException:
    """Turn a Temporal failure carrying a chunk error back into the original type."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__ or getattr(cause, "cause", None)
    if not isinstance(cause, ApplicationError):
        return error
    details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    type_name = cause.type or "Exception"
    message = cause.message
    original = _import_error_type(type_name, details.get("module"))
    if "chunk" not in details:
        # A rejection from the workflow itself (unknown interrupt, close refused, ...).
        base = original if original is not None else RuntimeError
        try:
            err_cls = type(type_name, (ExecutionStateError, base), {})
            return err_cls(message)
        except TypeError:
            return ExecutionStateError(message)
    kwargs = {
        "flow_name": details.get("flow"),
        "chunk_name": details.get("chunk"),
        "error_type": type_name,
        "error_message": details.get("message"),
    }
    if original is not None and issubclass(original, TriggerFlowError):
        return original(message)
    if original is not None:
        try:
            err_cls = type(type_name, (ChunkFailedError, original), {"__module__": __name__})
            return err_cls(message, **kwargs)
        except TypeError:
            pass
    return ChunkFailedError(message, **kwargs)


def _import_error_type(name: str, module: str | None) -> type[BaseException] | None:
    if module in (None, "builtins"):
        found = _BUILTIN_ERRORS.get(name)
        if found is not None or module == "builtins":
            return found
    if module:
        try:
            candidate = getattr(importlib.import_module(module), name, None)
        except Exception:
            return None
        if isinstance(candidate, type) and issubclass(candidate, Exception):
            return candidate
    return None


class TriggerFlowExecution:
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
        **unsupported: Any,
    ) -> None:
        if unsupported:
            raise TypeError(
                f"create_execution() got unsupported argument(s) {sorted(unsupported)}. "
                "On Temporal, snapshots live in workflow history (no record_store/"
                "snapshot_store needed) and live objects go to TriggerFlowPlugin("
                "runtime_resources=...)."
            )
        problems = option_problems(auto_close_timeout, concurrency)
        if problems:
            raise ValueError("; ".join(problems) + ".")
        self._flow = flow
        self._client = client
        self._explicit_id = execution_id is not None
        self._id = execution_id or uuid.uuid4().hex
        self._task_queue = task_queue
        resources = dict(runtime_resources or {})
        _check_json("runtime_resources", resources)
        self._options = ExecutionOptions(
            auto_close=auto_close,
            auto_close_timeout=None if auto_close_timeout is None else float(auto_close_timeout),
            skip_exceptions=flow.skip_exceptions if skip_exceptions is None else skip_exceptions,
            concurrency=concurrency,
            hidden=hidden,
            runtime_resources=resources,
            tenant=tenant,
        )
        self._intervention_mode = ... if intervention_mode is _UNSET else intervention_mode
        if self._intervention_mode is not ...:
            check_mode(self._intervention_mode, has_points=False)
        self._started = False
        self._attached = False
        self._workflow_created = False
        self._compiled: FlowSpec | None = None

    @classmethod
    def _attach(
        cls, flow: TriggerFlow, *, client: Client | None, execution_id: str
    ) -> TriggerFlowExecution:
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
        return self._flow

    def _resolve_client(self) -> Client:
        if self._client is not None:
            return self._client
        from ..plugin.plugin import TriggerFlowPlugin

        plugin = TriggerFlowPlugin.of_flow(self._flow)
        client = plugin.client if plugin is not None else None
        if client is None:
            raise ExecutionStateError(
                f"Flow '{self._flow.name}' has no Temporal client. Pass client= to "
                "create_execution(), or attach TriggerFlowPlugin(flows=[flow]) to a client "
                "(Client.connect(address, plugins=[plugin])). A flow rebuilt from its module "
                "(not the object handed to the plugin) needs client=: the client's plugin "
                "then finds the task queue by flow name."
            )
        return client

    def _runtime_plugin(self) -> TriggerFlowPlugin | None:
        """The plugin that answers for this flow, by name.

        The plugin of the client this execution uses that serves a flow of this name (so a
        rebuilt flow object gets the same task queue and settings as the object the plugin
        was given), else the plugin this flow object was handed to, else the client's.
        """
        from ..plugin.plugin import TriggerFlowPlugin

        own = TriggerFlowPlugin.of_flow(self._flow)
        client = self._client or (own.client if own is not None else None)
        found = TriggerFlowPlugin.of_client(client, self._flow.name) if client else None
        if found is not None and found.serves(self._flow.name):
            return found
        # No plugin of the client serves it: the plugin this object was handed to knows
        # it; else the client's plugin (its default queue).
        return own or found

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        """The Temporal workflow handle of this execution."""
        return self._resolve_client().get_workflow_handle(self._id)

    def _spec(self) -> FlowSpec:
        # Compiled once per handle: an execution is pinned to the graph it starts with.
        if self._compiled is None:
            from ..definition.compile import compile_flow

            self._compiled = compile_flow(self._flow)
        return self._compiled

    def _queue(self) -> str:
        """The task queue: ``task_queue=``, else the plugin's queue for this flow name."""
        if self._task_queue:
            return self._task_queue
        plugin = self._runtime_plugin()
        return plugin.task_queue_for(self._flow.name) if plugin else _DEFAULT_TASK_QUEUE

    def _input_options(self, spec: FlowSpec) -> ExecutionOptions:
        """The workflow's options, with the intervention mode resolved as Agently does."""
        options = copy.copy(self._options)
        has_points = any(op["kind"] == "intervention_point" for op in spec.operators)
        options.intervention_mode = check_mode(self._intervention_mode, has_points)
        return options

    async def _start_options(self, spec: FlowSpec, options: ExecutionOptions) -> dict[str, Any]:
        return await start_options(
            self._resolve_client(),
            spec,
            options,
            execution_id=self._id,
            task_queue=self._queue(),
            search_attributes=self._search_attributes(),
        )

    def _search_attributes(self) -> bool:
        """False when the plugin turned search attributes off."""
        plugin = self._runtime_plugin()
        return plugin.search_attributes if plugin is not None else True

    async def _watched(self, call: Awaitable[_T], action: str) -> _T:
        """Await ``call``; a :class:`NoWorkerError` if no worker will ever answer it."""
        return await watch_for_worker(
            call,
            client=self._resolve_client(),
            workflow_id=self._id,
            action=action,
            flow=self._flow,
        )

    async def _with_start(
        self, spec: FlowSpec, workflow_input: WorkflowInput
    ) -> WithStartWorkflowOperation[Any, Any]:
        """Start-if-absent operation for update-with-start (an existing run is reused)."""
        kwargs = await self._start_options(spec, workflow_input.options)
        return WithStartWorkflowOperation(
            spec.name,
            workflow_input,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A closed execution's id is not reused: a new run under it would become the
            # "current" execution and hide the closed one's state from every handle.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            result_type=dict,
            **kwargs,
        )

    # ---------------------------------------------------------------- start
    async def async_start(self, value: Any = None, *, timeout: float | None = None) -> Any:
        """Dispatch ``START(value)`` and return once every branch finished or paused.

        Returns:
            The close snapshot when ``auto_close=True`` (after the idle auto-close), else
            this execution.
        """
        _check_json("start value", value)
        if self._started:
            # Native: start is idempotent. Answer as the first start did, without a new run.
            if self._options.auto_close and not self._attached:
                return await self.async_result()
            return self
        client = self._resolve_client()
        spec = self._spec()
        options = self._input_options(spec)
        if timeout is not None:
            options.auto_close_timeout = float(timeout)
        workflow_input = WorkflowInput(spec=spec.to_json(), options=options)
        try:
            if options.hidden:
                workflow_input.start = {"value": value}
                self._started = True
                return await self._watched(
                    client.execute_workflow(
                        spec.name,
                        workflow_input,
                        result_type=dict,
                        **await self._start_options(spec, options),
                    ),
                    "start",
                )
            started = await self._start_update(spec, workflow_input, value)
            if options.auto_close:
                return await self._watched(self.handle.result(), "result")
            await self._settled(started)
        except (WorkflowUpdateFailedError, WorkflowFailureError) as error:
            self._started = True  # the workflow exists; its start or run failed
            raise _rebuild_error(error) from None
        except WorkflowAlreadyStartedError:
            raise self._already_closed() from None
        return self

    async def _start_update(
        self,
        spec: FlowSpec,
        workflow_input: WorkflowInput,
        value: Any,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Create the workflow and run its ``start`` update (update-with-start)."""
        operation = await self._with_start(spec, workflow_input)
        try:
            started = await self._watched(
                self._resolve_client().execute_update_with_start_workflow(
                    "start",
                    {"value": value},
                    start_workflow_operation=operation,
                    rpc_timeout=rpc_timeout,
                ),
                "start",
            )
        except NoWorkerError:
            # The workflow exists and waits for a worker; a later start reaches it (the
            # workflow's start is idempotent).
            self._workflow_created = True
            _forget_start_outcome(operation)
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
        _check_json("start value", value)
        if self._started:
            return self
        spec = self._spec()
        workflow_input = WorkflowInput(spec=spec.to_json(), options=self._input_options(spec))
        try:
            started = await self._start_update(spec, workflow_input, value, rpc_timeout)
            await self._settled(started)
        except WorkflowUpdateFailedError as error:
            self._started = True
            raise _rebuild_error(error) from None
        except WorkflowAlreadyStartedError:
            raise self._already_closed() from None
        return self

    # --------------------------------------------------------------- events
    async def async_emit(
        self, event: str, value: Any = None, *, trigger_type: str = "event"
    ) -> Any:
        """Dispatch an external event; returns the handlers' return values.

        After close the event is ignored: returns None with a ``RuntimeWarning``.
        """
        _check_json("emit value", value)
        result = await self._update(
            "emit", EmitRequest(event=event, value=value, trigger_type=trigger_type)
        )
        if result is None:
            warnings.warn(
                f"Execution {self._id} is not open; event {event!r} was ignored.",
                RuntimeWarning,
                stacklevel=2,
            )
        return result

    async def async_emit_nowait(
        self, event: str, value: Any = None, *, trigger_type: str = "event"
    ) -> None:
        """Send an event as a signal (fire and forget)."""
        _check_json("emit value", value)
        try:
            await self.handle.signal(
                "emit_nowait", EmitRequest(event=event, value=value, trigger_type=trigger_type)
            )
        except RPCError as error:
            if not is_closed_error(error):
                raise self._not_found(error) from None
            warnings.warn(
                f"Execution {self._id} is not open; event {event!r} was ignored.",
                RuntimeWarning,
                stacklevel=2,
            )

    async def async_set_state(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Write execution state from outside; ``emit=True`` runs watchers."""
        _check_json("state value", value)
        await self._update("set_state", SetStateRequest(op=["set", key, value, emit]))

    async def async_append_state(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Append to a list in execution state from outside."""
        _check_json("state value", value)
        await self._update("set_state", SetStateRequest(op=["append", key, value, emit]))

    async def async_del_state(self, key: str, *, emit: bool = True) -> None:
        """Delete an execution state key from outside."""
        await self._update("set_state", SetStateRequest(op=["del", key, emit]))

    # -------------------------------------------------------------- reading
    async def async_get_state(self, key: str | None = None, default: Any = None) -> Any:
        """The execution state (whole dict, or one dotted key)."""
        state = await self._query("state")
        if key is None:
            return state
        return get_path(state, key, default)

    async def async_get_status(self) -> str:
        """``created``/``running``/``waiting``/``completed``/``failed``/``cancelled``."""
        return await self._query("status")

    async def async_get_lifecycle_state(self) -> str:
        """``open``, ``sealed`` or ``closed``."""
        return (await self._query("info"))["lifecycle_state"]

    async def async_get_info(self) -> dict[str, Any]:
        """Status, lifecycle, close reason, failure and identity."""
        return await self._query("info")

    async def async_get_pending_interrupts(self) -> dict[str, dict[str, Any]]:
        """Waiting interrupts by id."""
        return await self._query("pending_interrupts")

    async def async_get_interrupt(self, interrupt_id: str) -> dict[str, Any] | None:
        """One interrupt record (any status), or None."""
        return (await self._query("interrupts")).get(interrupt_id)

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
        actor: str | None = None,
    ) -> dict[str, Any] | None:
        """Resume a waiting interrupt; returns the interrupt record once quiescent."""
        _check_json("continue value", value)
        result = await self._update(
            "continue_with",
            ContinueRequest(
                interrupt_id=interrupt_id,
                value=value,
                resume_request_id=resume_request_id,
                actor=actor,
            ),
        )
        if result is None:
            warnings.warn(
                f"Execution {self._id} is not open; continue_with({interrupt_id!r}) was ignored.",
                RuntimeWarning,
                stacklevel=2,
            )
        return result

    async def async_continue_with_nowait(
        self,
        interrupt_id: str,
        value: Any = None,
        *,
        resume_request_id: str | None = None,
        actor: str | None = None,
    ) -> None:
        """``continue_with`` as a signal, for senders that can only signal.

        Nothing is returned and nothing fails here: a request the update would reject is
        kept in :meth:`async_get_rejected_requests`.

        Raises:
            TypeError: ``value`` is not JSON-ready data.
            ValueError: ``value`` is over the size a resume value may be (checked here: the
                signal could not tell).
        """
        _check_json("continue value", value)
        problem = resume_size_problem(interrupt_id, value)
        if problem:
            raise ValueError(problem)
        await self.handle.signal(
            "continue_with_nowait",
            ContinueRequest(
                interrupt_id=interrupt_id,
                value=value,
                resume_request_id=resume_request_id,
                actor=actor,
            ),
        )

    async def async_get_rejected_requests(self) -> list[dict[str, Any]]:
        """Signal-variant ``continue_with`` requests that were rejected, oldest first."""
        return await self._query("rejected_requests")

    # --------------------------------------------------------- interventions
    async def async_intervene(
        self,
        payload: Any,
        *,
        author: str | None = None,
        note: str | None = None,
        target: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append a ``pending`` intervention to the execution's ledger; returns its record.

        Raises:
            RuntimeError: Interventions are disabled (``intervention_mode=None``) or the
                execution is not open (Agently's messages).
        """
        _check_json("intervention payload", payload)
        _check_json("intervention metadata", metadata)
        return await self._update(
            "intervene",
            InterveneRequest(
                payload=payload, author=author, note=note, target=target, metadata=metadata
            ),
        )

    async def async_get_interventions(
        self,
        status: str | None = None,
        target: str | None = None,
        since_version: int | None = None,
    ) -> list[dict[str, Any]]:
        """Intervention records matching the filters, in creation order."""
        ledger = InterventionLedger()
        ledger.restore(await self._query("interventions"))
        return ledger.filtered(status=status, target=target, since_version=since_version)

    async def async_get_pending_interventions(
        self, target: str | None = None
    ) -> list[dict[str, Any]]:
        """Interventions not yet inserted."""
        return await self.async_get_interventions(status="pending", target=target)

    async def async_get_latest_intervention(self, default: Any = None, **filters: Any) -> Any:
        """The newest intervention matching ``filters``, or ``default``."""
        found = await self.async_get_interventions(**filters)
        return found[-1] if found else default

    # ------------------------------------------------------------ save / load
    async def async_save(self) -> dict[str, Any]:
        """Return a JSON-ready snapshot with Agently's schema v2 top-level keys.

        ``lifecycle_state`` and ``close_reason`` are the public way to read them. The
        snapshot is self-contained (it embeds the graph), so it loads from any process.
        """
        return await save_execution(self._resolve_client(), self._id)

    def inspect_load(
        self, saved: Any, *, runtime_resources: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Report whether ``saved`` can be loaded here, without loading it.

        Returns:
            ``{"status": "ready"|"missing_resources"|"invalid_snapshot", "ready": bool,
            "missing_resource_keys": [...], "diagnostics": [...]}`` as natively.
        """
        try:
            parsed = parse_snapshot(saved)
        except TriggerFlowError as error:
            return {
                "status": "invalid_snapshot",
                "ready": False,
                "missing_resource_keys": [],
                "diagnostics": [
                    {"code": "invalid_snapshot", "severity": "error", "message": str(error)}
                ],
            }
        missing = self._missing_resources(parsed, runtime_resources)
        diagnostics = [
            {
                "code": "missing_resource",
                "severity": "error",
                "message": f"runtime resource {key!r} is not available",
                "resource_key": key,
            }
            for key in missing
        ]
        spec = self._spec()
        if spec.blueprint_hash != parsed["flow_definition_fingerprint"].split(":", 1)[-1]:
            diagnostics.append(
                {
                    "code": "fingerprint_mismatch",
                    "severity": "error",
                    "message": f"saved with another blueprint than {spec.short_hash}",
                }
            )
        status = "missing_resources" if missing else "ready"
        if any(d["code"] == "fingerprint_mismatch" for d in diagnostics):
            status = "invalid_snapshot"
        return {
            "status": status,
            "ready": status == "ready",
            "missing_resource_keys": missing,
            "diagnostics": diagnostics,
        }

    def _missing_resources(
        self, parsed: dict[str, Any], runtime_resources: dict[str, Any] | None
    ) -> list[str]:
        given = set(runtime_resources or self._options.runtime_resources)
        plugin = self._runtime_plugin()
        served = plugin is not None and plugin.serves(self._flow.name)
        if plugin is not None and served:
            given |= set(plugin.registry.chunk_resources(self._flow.name, {}))
        needed = [r["key"] for r in parsed.get("resource_requirements") or [] if r.get("required")]
        return sorted(
            key
            for key in needed
            if key not in given
            # Not served here: the flow's own resources are what it would run with.
            and (served or self._flow.get_runtime_resource(key, _UNSET) is _UNSET)
        )

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
        client = self._resolve_client()
        if from_step is not None:
            history = saved
            if isinstance(saved, (str, TriggerFlowExecution)):
                source = saved if isinstance(saved, str) else saved.id
                history = await execution_history(client, [self._flow], source)
            if not isinstance(history, list):
                raise SnapshotError(
                    "async_load(..., from_step=N) takes the list from async_get_history() or "
                    f"an execution id, got {type(saved).__name__}."
                )
            saved = pick_step(history, from_step)
            if execution_id is None and not self._explicit_id:
                execution_id = f"{saved['execution_id']}-fork-{from_step}-{uuid.uuid4().hex[:8]}"
        parsed = parse_snapshot(saved)
        if runtime_resources is not None:
            _check_json("runtime_resources", runtime_resources)
        if validate_resources:
            missing = self._missing_resources(parsed, runtime_resources)
            if missing:
                raise RuntimeError(
                    f"Can not load TriggerFlow execution snapshot into flow "
                    f"'{self._flow.name}'; missing resources: {missing}."
                )
        spec = self._spec()
        saved_options = parsed["temporal"].get("options") or {}
        options = ExecutionOptions(
            **{k: v for k, v in saved_options.items() if k in _SAVED_OPTION_KEYS}
        )
        options.runtime_resources = dict(
            runtime_resources if runtime_resources is not None else self._options.runtime_resources
        )
        if self._intervention_mode is not ...:
            options.intervention_mode = self._intervention_mode
        target_id = execution_id or (self._id if self._explicit_id else parsed["execution_id"])
        self._id = await load_execution(
            client,
            parsed,
            execution_id=target_id,
            task_queue=self._queue(),
            spec=spec,
            options=options,
            allow_blueprint_change=allow_blueprint_change,
            search_attributes=self._search_attributes(),
            flow=self._flow,
        )
        self._started = True
        return self

    async def async_get_history(self) -> list[dict[str, Any]]:
        """The state after each chunk, from the workflow's event history.

        Each entry has ``step``, ``chunk``, ``run_id``, ``paused``, ``state``,
        ``state_version`` and the ``snapshot`` that ``async_load(..., from_step=step)``
        forks from.
        """
        flows = [self._flow]
        plugin = self._runtime_plugin()
        if plugin is not None:
            flows = plugin.flows.get(self._flow.name) or flows
        return await execution_history(self._resolve_client(), flows, self._id)

    async def async_fork(
        self, from_step: int, *, execution_id: str | None = None
    ) -> TriggerFlowExecution:
        """A new execution forked from the state after ``from_step`` (time travel)."""
        fork = TriggerFlowExecution(
            self._flow, client=self._client, execution_id=execution_id, task_queue=self._task_queue
        )
        fork._explicit_id = execution_id is not None
        return await fork.async_load(await self.async_get_history(), from_step=from_step)

    # ---------------------------------------------------------------- close
    async def async_close(
        self, *, reason: str = "manual", pending_interrupts: str = "error"
    ) -> dict[str, Any]:
        """Close the execution (drains in-flight work) and return the close snapshot."""
        try:
            return await self._update(
                "close", CloseRequest(reason=reason, pending_interrupts=pending_interrupts)
            )
        except ExecutionStateError:
            raise
        except RPCError:
            snapshot = await self._query("close_snapshot")
            if snapshot is None:
                raise
            return snapshot

    async def async_result(self) -> dict[str, Any]:
        """Wait for the workflow to end and return the close snapshot."""
        try:
            return await self._watched(self.handle.result(), "result")
        except WorkflowFailureError as error:
            raise _rebuild_error(error) from None

    # --------------------------------------------------------------- helpers
    async def _update(self, name: str, arg: Any) -> Any:
        try:
            if not self._started and not self._workflow_created:
                # The workflow does not exist yet: create it with this update (native
                # executions accept state writes and emits before start).
                spec = self._spec()
                operation = await self._with_start(
                    spec, WorkflowInput(spec=spec.to_json(), options=self._input_options(spec))
                )
                try:
                    result = await self._watched(
                        self._resolve_client().execute_update_with_start_workflow(
                            name, arg, start_workflow_operation=operation
                        ),
                        f"update {name}",
                    )
                except NoWorkerError:
                    self._workflow_created = True  # it exists and waits for a worker
                    _forget_start_outcome(operation)
                    raise
                self._workflow_created = True
                return await self._settled(result)
            return await self._settled(
                await self._watched(
                    _retry_when_busy(lambda: self.handle.execute_update(name, arg)),
                    f"update {name}",
                )
            )
        except WorkflowAlreadyStartedError:
            raise self._already_closed() from None
        except WorkflowUpdateFailedError as error:
            raise _rebuild_error(error) from None
        except RPCError as error:
            if not is_closed_error(error):
                raise self._not_found(error) from None
            if name == "close":
                raise
            if name in ("emit", "continue_with"):
                return None
            raise ExecutionStateError(
                f"TriggerFlow execution {self._id} is closed; {name!r} needs an open execution."
                if name != "intervene"
                else f"TriggerFlow execution {self._id} can not accept interventions while "
                "lifecycle state is 'closed'."
            ) from None

    async def _settled(self, result: Any) -> Any:
        """An update's result, once the chain it started is quiescent in every run."""
        if isinstance(result, dict) and SETTLE_KEY in result:
            root = result[SETTLE_KEY]
            if isinstance(root, str):  # runtime version 3: that root's answer
                return await self._settle(root)
            await self._settle()
            return result.get("result")
        return result

    async def _settle(self, root: str | None = None) -> Any:
        """Wait for an update whose work went on in later runs (continue-as-new)."""
        try:
            return await self._watched(
                settle(self._resolve_client(), self._id, root), "update settle"
            )
        except WorkflowUpdateFailedError as error:
            raise _rebuild_error(error) from None
        except RPCError as error:
            raise self._not_found(error) from None

    def _already_closed(self) -> ExecutionStateError:
        return ExecutionStateError(
            f"TriggerFlow execution {self._id!r} already ran and is closed; an execution id is "
            "used once. Create the execution with a new execution_id, or continue from its "
            "state with create_execution(...).async_load(saved) after async_save()."
        )

    def _not_found(self, error: RPCError) -> Exception:
        """``error`` as a typed ExecutionStateError when no execution has this id."""
        if error.status != RPCStatusCode.NOT_FOUND:
            return error
        return ExecutionStateError(
            f"No execution {self._id!r} in namespace {self._resolve_client().namespace!r}: "
            "check the id (flow.get_execution() attaches to an existing execution; "
            "create_execution() starts a new one)."
        )

    async def _query(self, name: str) -> Any:
        return await query(self._resolve_client(), self._id, name)

    # ---------------------------------------------------------- runtime stream
    async def get_async_runtime_stream(
        self, initial_value: Any = None, *, timeout: float | None = 10.0
    ):  # -> AsyncIterator[Any] (inferred)
        """Yield the runtime stream's items, as natively; ends when the stream closes.

        Items are what chunks put (``data.async_put_into_stream``) plus the system items for
        interrupts (``{"type": "interrupt", "action": "pause" | "resume", ...}``) and
        interventions. Starts the execution with ``initial_value`` if this handle has not
        started it. Every read starts from the first item; use
        :meth:`get_async_runtime_stream_items` for sequence numbers and resuming.

        Args:
            initial_value: The start value, used only when this call starts the execution.
            timeout: Seconds to wait for each item; None waits forever.
        """
        from .stream import iter_runtime_stream

        stream = iter_runtime_stream(self, initial_value, timeout=timeout)
        try:
            async for entry in stream:
                yield entry.item
        finally:
            await stream.aclose()  # also when the consumer stops early

    def get_async_runtime_stream_items(
        self,
        initial_value: Any = None,
        *,
        from_seq: int = 0,
        timeout: float | None = 10.0,
        poll_interval: float = 0.1,
    ):  # -> AsyncGenerator[RuntimeStreamItem, None] (inferred)
        """Yield :class:`RuntimeStreamItem` (``seq``, ``item``, ``system``) from ``from_seq``.

        ``seq`` is stable across reads, reconnects and worker restarts: resume with
        ``from_seq=last_seen + 1``, or drop items with ``seq <= last_seen`` (delivery is
        at least once across reconnects).
        """
        from .stream import iter_runtime_stream

        return iter_runtime_stream(
            self, initial_value, from_seq=from_seq, timeout=timeout, poll_interval=poll_interval
        )

    async def async_stop_stream(self) -> None:
        """End the runtime stream (consumers finish); the execution stays open."""
        try:
            await self.handle.execute_update("stop_stream")
        except RPCError as error:
            if not is_closed_error(error):
                raise self._not_found(error) from None

    def __repr__(self) -> str:
        return f"TriggerFlowExecution(flow={self._flow.name!r}, id={self._id!r})"


def _forget_start_outcome(operation: WithStartWorkflowOperation[Any, Any]) -> None:
    """Look at the start outcome of an update-with-start that was given up.

    The SDK stores the cancelled call's error on the operation; unread, asyncio logs it
    as "Future exception was never retrieved".
    """

    def seen(task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()

    asyncio.ensure_future(operation.workflow_handle()).add_done_callback(seen)


def _check_json(what: str, value: Any) -> None:
    """Refuse a value history cannot hold: not JSON-ready (TypeError) or too big (ValueError)."""
    try:
        size = json_size(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"The {what} must be JSON-ready data (it is stored in Temporal history): {error}. "
            "Keep live objects in TriggerFlowPlugin(runtime_resources=...) and large data in "
            "the Workspace."
        ) from None
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"The {what} is {describe_size(size)} of JSON, over the "
            f"{describe_size(MAX_PAYLOAD_BYTES)} this runtime carries through Temporal history "
            "(Temporal refuses payloads over 2 MiB). Store the content in the Workspace and "
            "pass its ref instead."
        )
