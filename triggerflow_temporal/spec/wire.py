"""Types shared by the interpreter workflow and its clients (inputs, requests, helpers).

Workflow-safe: no I/O. The execution handle, the CLI and the workflow all import these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from .._errors import chunk_failure_details


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
    # Upsert the TriggerFlow* search attributes (only when the namespace has them).
    search_attributes: bool = False
    # Also upsert TriggerFlowAssignees / TriggerFlowCandidateGroups (namespace has them).
    access_search_attributes: bool = False
    # Interpreter behaviour version, set by the client that starts the execution (see
    # RUNTIME_VERSION). Inputs recorded before the field existed decode as 1, so their
    # histories replay with the behaviour they were recorded with: versioning by input
    # costs no patch marker and no TemporalChangeVersion upsert per execution.
    runtime_version: int = 1
    # Who started the execution ({subject, tenant, groups, method}; the gateway's verified
    # principal), for pause_for(forbid_initiator=True) and the audit. None: not recorded.
    started_by: dict[str, Any] | None = None
    # Tell the worker's notification channels about interrupts and the execution's end
    # (gateway.md "Notifications"). Set by clients from this field's introduction on, so
    # histories recorded before it replay without the notification plan and children.
    notifications: bool = False
    # The starting client traces (OpenTelemetry): from runtime version 4 chunk inputs carry
    # the blueprint hash only then, for the activity spans' triggerflow.blueprint_hash.
    traced: bool = False
    # Set on a sub-flow's child workflow from runtime version 4: ``{"workflow_id": the
    # parent's execution id, "frame_id": the frame's id}``. The child reports its
    # interrupts and its end to that parent (interpreter/subflow_frames.py), which
    # projects them as its own interrupts.
    sub_flow_parent: dict[str, Any] | None = None
    # The registered name (module.qualname) of the execution's intervention_policy: in
    # auto mode the worker's function of that name (TriggerFlowPlugin(
    # intervention_policies=[...])) chooses, as a local activity, which pending
    # interventions an operator gets. Inputs recorded before the field decode None (auto
    # mode selects by target) and replay unchanged.
    intervention_policy: str | None = None


def option_problems(auto_close_timeout: Any, concurrency: Any) -> list[str]:
    """What is wrong with these execution options (empty when they are valid).

    One rule for ``create_execution`` and for the options a loaded snapshot carries.
    """
    problems: list[str] = []
    if auto_close_timeout is not None and (
        isinstance(auto_close_timeout, bool)
        or not isinstance(auto_close_timeout, (int, float))
        or auto_close_timeout < 0
    ):
        problems.append(
            f"auto_close_timeout must be None or seconds >= 0, got {auto_close_timeout!r}"
        )
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        problems.append(f"concurrency must be None or an int >= 1, got {concurrency!r}")
    return problems


# The task queue executions start on and ``triggerflow-temporal worker`` polls by default.
DEFAULT_TASK_QUEUE = "triggerflow"

# 2: bounded fan-out (default in-flight cap, for_each items carried over continue-as-new,
# the start update settling across runs). 3: the durable-queue scheduler. 4: sub-flow
# pauses projected to the parent (and the changes of issue 18 gated on it).
RUNTIME_VERSION = 4

# Key of an update result whose chain handed for_each items to the next run: the client
# waits with the ``settle`` update, then returns the wrapped ``result``.
SETTLE_KEY = "__triggerflow_settle__"


@dataclass
class WorkflowInput:
    """The interpreter's single input: the graph, the options and optional seeds.

    ``start`` dispatches START on the first workflow task; ``restore`` is a parsed
    execution snapshot (``async_load``); ``carry`` is the runtime handed over by
    continue-as-new.
    """

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
    # Who emits (a subject or {subject, tenant, groups, method}); checked when the event
    # resumes an interrupt with access rules. None: a trusted client.
    actor: str | dict[str, Any] | None = None


@dataclass
class SetStateRequest:
    """An execution-level state write (``execution.async_set_state``)."""

    op: list[Any]


@dataclass
class CloseRequest:
    """``execution.async_close(...)`` arguments."""

    reason: str = "manual"
    pending_interrupts: str = "error"
    # Seal before draining (native default). False: external emits are still accepted
    # while close drains. Requests recorded before the field decode as True.
    seal: bool = True


@dataclass
class SealRequest:
    """``execution.async_seal()`` (``sealed=True``) or ``async_unseal()`` arguments."""

    sealed: bool = True
    reason: str = "manual"


# ApplicationError type of an external emit / continue_with refused while the execution is
# sealed, and of an unseal refused while it closes: the client turns it into Agently's
# RuntimeWarning and returns None, as natively.
LIFECYCLE_REFUSAL = "TriggerFlowLifecycleRefusal"


@dataclass
class ContinueRequest:
    """``execution.async_continue_with(...)`` arguments."""

    interrupt_id: str
    value: Any = None
    resume_request_id: str | None = None
    # A subject or {subject, tenant, groups, method} (the gateway's verified principal).
    actor: str | dict[str, Any] | None = None
    # The caller rebuilds the record from spec.chunk_io.pack_continue_result's form.
    compact_result: bool = False


@dataclass
class InterveneRequest:
    """``execution.async_intervene(...)`` arguments."""

    payload: Any = None
    author: str | None = None
    note: str | None = None
    target: str | None = None
    metadata: dict[str, Any] | None = None


class FlowRuntime(Protocol):
    """What the workflow needs from the worker-side registry (``plugin.FlowRegistry``)."""

    # Set only by a client-side history replay: called after each chunk.
    step_recorder: Callable[[str, dict[str, Any]], None] | None

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


def failure_from_activity(error: BaseException, flow: str, chunk: str) -> dict[str, Any]:
    """The failure details of an activity or child workflow error (one shape everywhere)."""
    cause = error.cause if isinstance(error, (ActivityError, ChildWorkflowError)) else error
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        return chunk_failure_details(
            flow_name=details.get("flow", flow),
            chunk_name=details.get("chunk", chunk),
            error_type=cause.type or "Exception",
            error_module=details.get("module"),
            message=details.get("message", cause.message),
        )
    return chunk_failure_details(
        flow_name=flow,
        chunk_name=chunk,
        error_type=type(cause).__name__ if cause is not None else "ActivityError",
        error_module=None,
        message=str(cause or error),
    )


def chunk_failed_error(details: dict[str, Any]) -> ApplicationError:
    """The non-retryable ApplicationError that carries chunk failure ``details``."""
    return ApplicationError(
        f"Chunk '{details.get('chunk')}' of flow '{details.get('flow')}' failed: "
        f"{details.get('type')}: {details.get('message')}",
        details,
        type=details.get("type") or "Exception",
        non_retryable=True,
    )


class Semaphore:
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


def summarize(value: Any, limit: int = 120) -> str:
    """A short one-line reading of ``value`` (at most ``limit`` characters)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------- handler names
# The names the interpreter workflow registers its updates, signals and queries under.
# They are the contract between the workflow and every caller (execution handle, CLI,
# gateway): defined once here so one side cannot be renamed without the other.
UPDATE_START = "start"
UPDATE_SETTLE = "settle"
UPDATE_EMIT = "emit"
UPDATE_SET_STATE = "set_state"
UPDATE_CONTINUE_WITH = "continue_with"
UPDATE_INTERVENE = "intervene"
UPDATE_LOADED = "loaded"
UPDATE_STOP_STREAM = "stop_stream"
UPDATE_CLOSE = "close"
UPDATE_SEAL = "seal"
UPDATE_BIND = "bind"  # execution.async_on / async_off
SIGNAL_EMIT_NOWAIT = "emit_nowait"
SIGNAL_CONTINUE_WITH_NOWAIT = "continue_with_nowait"
# Between a sub-flow's child workflow and its parent (runtime version 4).
SIGNAL_SUB_FLOW_REPORT = "sub_flow_report"
SIGNAL_SUB_FLOW_CANCEL = "sub_flow_cancel"
QUERY_STATE = "state"
QUERY_STATUS = "status"
QUERY_INFO = "info"
QUERY_PENDING_INTERRUPTS = "pending_interrupts"
QUERY_INTERRUPTS = "interrupts"
QUERY_SNAPSHOT = "snapshot"
QUERY_INTERVENTIONS = "interventions"
QUERY_REJECTED_REQUESTS = "rejected_requests"
QUERY_CLOSE_SNAPSHOT = "close_snapshot"
