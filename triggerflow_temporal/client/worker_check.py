"""Client side: notice a call that waits on a task queue no worker serves.

Temporal never fails a call whose workflow task nobody picks up: a start, update or result
wait on such an execution simply waits, for ever. :func:`watch_for_worker` races the call
against a check that runs only once the call has not answered for :data:`CHECK_AFTER`
seconds, so a call that answers in time costs no extra RPC. The check describes the
workflow; while a workflow task is scheduled and not started (the execution needs a worker
now), it asks the server who polls the execution's task queue (``DescribeTaskQueue``).
When nobody has polled it recently, or the workers polling it do not serve the flow, and
that stays so for :data:`STARTUP_GRACE` seconds (a worker that is starting up polls within
about a second), the call is given up with :class:`NoWorkerError`. Otherwise the check
looks again with a growing interval until the call answers.

Giving up a call changes nothing on the server: the execution stays as the call left it
and goes on when a worker polls its queue; the error says so.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingWorkflowTaskState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import WorkflowExecutionStatus

from .._errors import NoWorkerError
from ..definition.builder import FlowBuilder

if TYPE_CHECKING:
    from temporalio.api.taskqueue.v1 import PollerInfo
    from temporalio.client import Client

    from .flow import TriggerFlow

_T = TypeVar("_T")

#: Seconds a call may take before anyone looks at its task queue.
CHECK_AFTER = 2.5
#: Seconds "no worker" must hold before the call is given up (a worker starting up shows
#: its pollers within about a second).
STARTUP_GRACE = 4.0
#: Seconds "no poller listed" must hold. DescribeTaskQueue misses a live worker's pollers in
#: about half of the calls when the worker has few of them (measured on the dev server: a
#: worker with ``max_cached_workflows=0`` polls with one poller, listed in 10 to 11 of 20
#: describes; one with a cache in 11 to 20 of 20), so a few seconds of misses say nothing
#: while its workflow task waits in a busy worker's queue; about twenty looks in a row do.
NO_POLLER_GRACE = 20.0
#: Seconds after a call of a flow was answered during which a slow call of the same flow,
#: client and task queue is not looked at: a worker serves them. Under load every call is
#: slower than CHECK_AFTER, and describing each execution (plus its task queue) cost every
#: execution server and client CPU (bench/results-payload.md).
ANSWERED_FRESH = 30.0
#: A poller seen this recently is a live worker: a long poll lasts up to a minute, so an
#: idle worker's last poll can be that old (``temporal task-queue describe`` says the same).
POLLER_FRESH_SECONDS = 75.0
#: Longest pause between two looks while a worker seems present.
RECHECK_MAX = 30.0
_RPC_TIMEOUT = timedelta(seconds=5)
# How SDK workers fail a workflow task whose type they do not have (Python, TypeScript,
# .NET, Java: "... is not registered on this worker"; Go: "unable to find workflow type").
_NOT_REGISTERED = ("is not registered on this worker", "unable to find workflow type")

_ACTIONS = {
    "start": (
        "Execution {id!r} was created and stays open: it starts as soon as a worker polls "
        "{queue!r}."
    ),
    "load": (
        "The snapshot was loaded into execution {id!r}, which stays open and resumes as soon "
        "as a worker polls {queue!r}."
    ),
    "result": "Execution {id!r} stays open and goes on as soon as a worker polls {queue!r}.",
}
_UPDATE = (
    "Execution {id!r} stays open and unchanged so far; this {name!r} request was not "
    "accepted and may still be applied once a worker picks the execution up (look with "
    "`triggerflow-temporal show {id}` before sending it again)."
)


@dataclass
class _Verdict:
    kind: str  # "ok", "no_pollers", "not_served"
    task_queue: str | None = None
    flow_name: str | None = None
    last_poll_age: float | None = None  # seconds since the newest poll, None: none listed
    detail: str | None = None


async def recent_pollers(
    client: Client, task_queue: str, *, fresh_seconds: float = POLLER_FRESH_SECONDS
) -> tuple[list[PollerInfo], float | None]:
    """The workflow pollers of ``task_queue`` seen in the last ``fresh_seconds``.

    Returns:
        The fresh pollers, and the age in seconds of the newest poll the server lists
        (None when it lists none: it forgets a poller five minutes after its last poll).
    """
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        retry=True,
        timeout=_RPC_TIMEOUT,
    )
    now = time.time()
    ages = [
        (poller, now - poller.last_access_time.ToNanoseconds() / 1e9) for poller in response.pollers
    ]
    fresh = [poller for poller, age in ages if age <= fresh_seconds]
    newest = min((age for _, age in ages), default=None)
    return fresh, None if newest is None else max(newest, 0.0)


async def _last_task_failure(client: Client, workflow_id: str, run_id: str) -> str | None:
    """The message of the run's latest recorded workflow task failure, if any is recent."""
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            maximum_page_size=20,
        ),
        retry=True,
        timeout=_RPC_TIMEOUT,
    )
    for event in response.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            return event.workflow_task_failed_event_attributes.failure.message
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return None
    return None


async def _verdict(client: Client, workflow_id: str) -> _Verdict:
    """Whether the execution waits for a worker that is not there."""
    described = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=_RPC_TIMEOUT)
    queue, flow_name = described.task_queue, described.workflow_type
    raw = described.raw_description
    running = described.status == WorkflowExecutionStatus.RUNNING
    if not running or not raw.HasField("pending_workflow_task"):
        return _Verdict("ok", queue, flow_name)  # nothing waits for a worker now
    task = raw.pending_workflow_task
    newest: float | None = None
    if task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED:
        fresh, newest = await recent_pollers(client, queue)
        if not fresh:
            return _Verdict("no_pollers", queue, flow_name, newest)
    if task.attempt >= 2:  # a worker took it and failed it: does it have this flow?
        message = await _last_task_failure(client, workflow_id, described.run_id or "")
        if message and any(marker in message.lower() for marker in _NOT_REGISTERED):
            return _Verdict("not_served", queue, flow_name, newest, message)
    return _Verdict("ok", queue, flow_name, newest)


def flow_import_path(flow: TriggerFlow) -> str | None:
    """``"package.module:variable"`` of ``flow`` when a module its handlers live in has it."""
    modules = [getattr(chunk.handler, "__module__", None) for chunk in flow.chunks.values()]
    for name in dict.fromkeys(m for m in modules if m and m != "__main__"):
        module = sys.modules.get(name)
        if module is None:
            continue
        attributes = dict(vars(module))
        for attribute, value in attributes.items():
            if value is flow:
                return f"{name}:{attribute}"
        for attribute, value in attributes.items():
            if isinstance(value, FlowBuilder) and value.name == flow.name:
                return f"{name}:{attribute}"
    return None


def worker_command(
    client: Client,
    task_queue: str,
    *,
    flow: TriggerFlow | None = None,
    flow_path: str | None = None,
) -> str:
    """The ``triggerflow-temporal worker`` command that serves the flow on ``task_queue``."""
    path = flow_path or (flow_import_path(flow) if flow is not None else None)
    parts = ["triggerflow-temporal", "worker", path or "package.module:flow"]
    parts += ["--task-queue", task_queue]
    return " ".join(parts + _connection_flags(client))


def _connection_flags(client: Client) -> list[str]:
    """``--address`` / ``--namespace`` when they are not the defaults."""
    flags: list[str] = []
    target = client.service_client.config.target_host
    if target != "localhost:7233":
        flags += ["--address", target]
    if client.namespace != "default":
        flags += ["--namespace", client.namespace]
    return flags


def no_worker_error(
    verdict: _Verdict,
    *,
    client: Client,
    execution_id: str,
    action: str,
    flow: TriggerFlow | None = None,
    flow_path: str | None = None,
) -> NoWorkerError:
    """The :class:`NoWorkerError` for ``verdict`` on a call ``action`` (start, load, ...)."""
    queue = verdict.task_queue or "?"
    name = verdict.flow_name or (flow.name if flow is not None else "?")
    request = action.split(" ", 1)[1] if action.startswith("update ") else None
    call = f"{request!r} request" if request else {"result": "wait"}.get(action, action)
    command = worker_command(client, queue, flow=flow, flow_path=flow_path)
    if verdict.kind == "not_served":
        problem = (
            f"Flow {name!r} is not served on task queue {queue!r}: the workers polling it do "
            f"not have this flow ({verdict.detail}), so this {call} would wait forever."
        )
    else:
        seen = (
            f"its last poll was {verdict.last_poll_age:.0f} s ago"
            if verdict.last_poll_age is not None
            else "DescribeTaskQueue lists no poller"
        )
        problem = (
            f"No worker serves flow {name!r}: nobody has polled task queue {queue!r} in the "
            f"last {POLLER_FRESH_SECONDS:.0f} s ({seen}), so this {call} would wait forever."
        )
    if request:
        left = _UPDATE.format(id=execution_id, name=request)
    else:
        left = _ACTIONS.get(action, _ACTIONS["result"]).format(id=execution_id, queue=queue)
    terminate = " ".join(
        ["temporal", "workflow", "terminate", "--workflow-id", execution_id]
        + _connection_flags(client)
    )
    path_hint = "" if "package.module:flow" not in command else f" (the import path of {name!r})"
    message = (
        f"{problem} {left} Start a worker for it: `{command}`{path_hint}, or send the flow's "
        f"executions to the queue your worker polls (TriggerFlowPlugin(task_queue=...) on the "
        f"client, create_execution(task_queue=...), or --task-queue). To drop the execution "
        f"instead: `{terminate}`."
    )
    return NoWorkerError(
        message,
        flow_name=name,
        task_queue=queue,
        execution_id=execution_id,
        worker_command=command,
        reason=verdict.kind,
    )


# (client, flow name, task queue) -> when a watched call of that flow was last answered.
_ANSWERED: dict[tuple[int, str, str], float] = {}


def _answered_recently(key: tuple[int, str, str] | None) -> bool:
    return key is not None and time.monotonic() - _ANSWERED.get(key, -ANSWERED_FRESH) < (
        ANSWERED_FRESH
    )


def _note_answered(key: tuple[int, str, str] | None, task: asyncio.Future[Any]) -> None:
    if key is not None and not task.cancelled() and task.exception() is None:
        if len(_ANSWERED) > 10_000:  # many clients over a process's life: start over
            _ANSWERED.clear()
        _ANSWERED[key] = time.monotonic()


# (client, flow name, task queue) -> the look in progress for one of its calls.
_LOOKS: dict[tuple[int, str, str], asyncio.Future[_Verdict]] = {}


async def _look(client: Client, workflow_id: str, key: tuple[int, str, str] | None) -> _Verdict:
    """:func:`_verdict` of the execution, sharing what a burst of calls finds out.

    Calls of one flow, client and task queue wait on a look another of them has in
    progress and take its verdict when it found nothing wrong (a verdict that did is
    confirmed by the call's own look); a look that saw a worker polling the queue (for a
    workflow task that waited) counts as an answer for all of them
    (:data:`ANSWERED_FRESH`). A burst of slow calls (a busy server) then costs one describe
    at a time, not a few per call.
    """
    if key is None:
        return await _verdict(client, workflow_id)
    shared = _LOOKS.get(key)
    if shared is not None and not shared.done():
        try:
            verdict = await asyncio.shield(shared)
        except Exception:
            verdict = None
        if verdict is not None and verdict.kind == "ok":
            # What it found holds for this call too: a missing worker or an unserved flow
            # is a matter of the flow and its queue, not of one execution.
            return verdict
    own = asyncio.ensure_future(_verdict(client, workflow_id))
    own.add_done_callback(_retrieve)
    _LOOKS[key] = own
    try:
        verdict = await asyncio.shield(own)
    finally:
        if _LOOKS.get(key) is own and own.done():
            del _LOOKS[key]
    if _healthy(verdict):
        _ANSWERED[key] = time.monotonic()
    return verdict


def _healthy(verdict: _Verdict) -> bool:
    """A worker was seen polling the queue for a workflow task that waited."""
    return (
        verdict.kind == "ok"
        and verdict.last_poll_age is not None
        and verdict.last_poll_age <= POLLER_FRESH_SECONDS
    )


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # looked at, so asyncio does not log it


async def _watch(
    task: asyncio.Future[Any],
    client: Client,
    workflow_id: str,
    key: tuple[int, str, str] | None = None,
) -> _Verdict | None:
    """Look at the execution until ``task`` is done (None) or no worker is there.

    While calls of the same flow, client and task queue (``key``) are being answered, it
    does not look: a worker serves them.
    """
    interval = 2.0
    suspect_since: float | None = None
    while not task.done():
        if _answered_recently(key):
            suspect_since = None
            await asyncio.wait({task}, timeout=interval)
            continue
        look = asyncio.ensure_future(_look(client, workflow_id, key))
        look.add_done_callback(_retrieve)
        await asyncio.wait({task, look}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            look.cancel()
            return None
        try:
            verdict: _Verdict | None = look.result()
        except Exception:  # no such workflow yet, server busy: look again later
            verdict = None
        now = time.monotonic()
        if verdict is not None and verdict.kind != "ok":
            grace = NO_POLLER_GRACE if verdict.kind == "no_pollers" else STARTUP_GRACE
            if suspect_since is None:
                suspect_since = now
            elif now - suspect_since >= grace:
                return verdict
            pause = 1.0
        else:
            suspect_since = None
            pause, interval = interval, min(interval * 2, RECHECK_MAX)
        await asyncio.wait({task}, timeout=pause)
    return None


async def watch_for_worker(
    call: Awaitable[_T],
    *,
    client: Client,
    workflow_id: str,
    action: str,
    flow: TriggerFlow | None = None,
    flow_path: str | None = None,
    task_queue: str | None = None,
) -> _T:
    """Await ``call``; raise :class:`NoWorkerError` if no worker will ever answer it.

    Args:
        call: A start, update or result wait on execution ``workflow_id``.
        client: The client the call uses.
        workflow_id: The execution the call waits on.
        action: ``"start"``, ``"load"``, ``"result"`` or ``"update <name>"``: what the
            error says became of the execution.
        flow: The flow object, to name its import path in the worker command.
        flow_path: Its import path, when known.
        task_queue: The queue the execution was started on, when known: with ``flow``,
            calls answered recently on it spare the slow ones the look.
    """
    key = (id(client), flow.name, task_queue) if flow is not None and task_queue else None
    task = asyncio.ensure_future(call)
    task.add_done_callback(lambda done: _note_answered(key, done))
    try:
        done, _ = await asyncio.wait({task}, timeout=CHECK_AFTER)
        if done:
            return task.result()
        verdict = await _watch(task, client, workflow_id, key)
        if verdict is None or task.done():
            return await task
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is None:
            return task.result()  # it answered after all
        raise no_worker_error(
            verdict,
            client=client,
            execution_id=workflow_id,
            action=action,
            flow=flow,
            flow_path=flow_path,
        )
    finally:
        if not task.done():
            task.cancel()
        # Looked at once it is done: a cancelled call's error must not be logged by the
        # garbage collector ("Task exception was never retrieved"), at whatever moment it
        # runs (CPython 3.11 can then fail an ast.parse in progress with SystemError).
        task.add_done_callback(_retrieve)
