"""Client side: the update, query and signal plumbing of one execution.

What every call to an execution's workflow shares: waiting for a worker
(:func:`~.worker_check.watch_for_worker`), queueing a burst of updates on one execution
(:func:`update_slot`) and retrying one the server refuses while the execution has too many
in flight, following an update whose work went on in later runs
(``settle``), and turning server answers into the package's typed errors (closed
execution, unknown id, rebuilt chunk and workflow errors). The execution handle, the
persistence functions and the CLI build on these.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._errors import ExecutionStateError, NoWorkerError
from ..spec.wire import (
    SETTLE_KEY,
    UPDATE_CLOSE,
    UPDATE_CONTINUE_WITH,
    UPDATE_EMIT,
    UPDATE_INTERVENE,
    UPDATE_SEAL,
    UPDATE_SETTLE,
)
from .errors import rebuild_error
from .worker_check import watch_for_worker

if TYPE_CHECKING:
    from .flow import TriggerFlow

__all__ = [
    "BUSY_RETRY_SECONDS",
    "MAX_UPDATES_IN_FLIGHT",
    "ExecutionCalls",
    "forget_start_outcome",
    "is_closed_error",
    "query",
    "retry_when_busy",
    "settle",
    "settle_root",
    "update_slot",
]

_T = TypeVar("_T")

# How long an update refused because the execution has too many updates in flight
# (Temporal's limit.workflowExecution.maxInFlightUpdates, 10 by default) is retried.
BUSY_RETRY_SECONDS = 60.0
# Updates one client sends one execution at a time; the others wait their turn here, in
# order (below the server's 10, so other clients still get in).
MAX_UPDATES_IN_FLIGHT = 8


class _Slots:
    """The update slots of one (client, execution): a semaphore and who holds or waits."""

    def __init__(self) -> None:
        self.semaphore = asyncio.Semaphore(MAX_UPDATES_IN_FLIGHT)
        self.users = 0


_SLOTS: dict[tuple[int, str], _Slots] = {}


@asynccontextmanager
async def update_slot(client: Client, workflow_id: str) -> AsyncIterator[None]:
    """Hold one of the :data:`MAX_UPDATES_IN_FLIGHT` update slots of ``workflow_id``.

    A burst of calls on one execution (hundreds of approvers clicking at once through the
    gateway) would otherwise all hit the server's in-flight limit, be refused and retry in
    waves; under load some lost every wave until :data:`BUSY_RETRY_SECONDS` ran out. Here
    they queue first come, first served. An entry lives while someone holds or waits.

    Raises:
        RPCError: RESOURCE_EXHAUSTED, as the server's own refusal, when no slot freed
            within :data:`BUSY_RETRY_SECONDS` (the updates holding them run that long).
    """
    key = (id(client), workflow_id)
    slots = _SLOTS.get(key)
    if slots is None:
        slots = _SLOTS[key] = _Slots()
    slots.users += 1
    try:
        try:
            await asyncio.wait_for(slots.semaphore.acquire(), BUSY_RETRY_SECONDS)
        except asyncio.TimeoutError:
            raise RPCError(
                f"limit on number of concurrent in-flight updates of this client on "
                f"{workflow_id} ({MAX_UPDATES_IN_FLIGHT}) held for {BUSY_RETRY_SECONDS:.0f} s",
                RPCStatusCode.RESOURCE_EXHAUSTED,
                b"",
            ) from None
        try:
            yield
        finally:
            slots.semaphore.release()
    finally:
        slots.users -= 1
        if slots.users == 0 and _SLOTS.get(key) is slots:
            del _SLOTS[key]


def is_closed_error(error: RPCError) -> bool:
    """The server refused a call because the workflow has finished (closed execution).

    Also when the workflow finished while the update was in flight ("aborted by closing
    workflow"): close drains every running handler first, so an aborted update is one that
    had not reached its handler (e.g. a close sent to a loaded copy of a closed execution,
    whose first workflow task completes it).
    """
    text = str(error).lower()
    return (
        "workflow execution already completed" in text
        or "update was aborted by closing workflow" in text
    )


async def retry_when_busy(call: Callable[[], Awaitable[_T]]) -> _T:
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
        # Jittered, so calls refused together do not come back together.
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        delay = min(delay * 2, 1.0)


async def settle(client: Client, workflow_id: str, root: str | None = None) -> Any:
    """Wait until an execution whose update chain went on in later runs is quiescent.

    The ``settle`` update returns when the execution is quiescent, or when the run it
    reached hands its held for_each items to the next run; then it is sent again, to the
    latest run. A run that continued as new between the two is no error: the next call
    reaches its successor. With ``root`` (runtime version 3: the update answered
    ``{SETTLE_KEY: root}``) it waits for that root's work only and returns what the update
    would have returned; a failure of that work raises like the update would have.

    Raises:
        RPCError: Anything but the execution having closed meanwhile.
        WorkflowUpdateFailedError: The root's work failed.
    """
    handle = client.get_workflow_handle(workflow_id)
    while True:
        try:
            if root is None:
                result = await handle.execute_update(UPDATE_SETTLE, result_type=dict)
            else:
                result = await handle.execute_update(
                    UPDATE_SETTLE, {"root": root}, result_type=dict
                )
        except RPCError as error:
            if not is_closed_error(error):
                raise
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return None  # closed meanwhile: nothing left to wait for
            continue
        if result.get("settled"):
            return result.get("result")


def settle_root(result: Any) -> tuple[bool, str | None]:
    """Whether an update's ``result`` asks the caller to settle, and for which root.

    Returns:
        ``(False, None)`` for a plain result; ``(True, root)`` when the update's work went
        on in a later run (``root`` is None before runtime version 3: settle everything).
    """
    if isinstance(result, dict) and SETTLE_KEY in result:
        root = result[SETTLE_KEY]
        return True, root if isinstance(root, str) else None
    return False, None


async def query(client: Client, execution_id: str, name: str) -> Any:
    """Run a query, turning "no such execution" and query failures into clear errors."""
    try:
        return await client.get_workflow_handle(execution_id).query(name)
    except WorkflowQueryFailedError as error:
        raise ExecutionStateError(
            f"Query {name!r} on execution {execution_id} failed: {error}"
        ) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ExecutionStateError(
                f"No execution {execution_id!r} in namespace {client.namespace!r}."
            ) from None
        raise


def forget_start_outcome(operation: WithStartWorkflowOperation[Any, Any]) -> None:
    """Look at the start outcome of an update-with-start that was given up.

    The SDK stores the cancelled call's error on the operation; unread, asyncio logs it
    as "Future exception was never retrieved".
    """

    def seen(task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()

    asyncio.ensure_future(operation.workflow_handle()).add_done_callback(seen)


@dataclass(frozen=True)
class ExecutionCalls:
    """Calls to one execution's workflow, answered with the package's typed errors.

    Cheap to build: the execution handle makes one per call, with the client and id it
    has at that moment (``async_load`` changes the id).

    Attributes:
        client: The connected client.
        execution_id: The execution (workflow) id.
        flow: The flow object, to name its import path when no worker serves it.
        task_queue: The queue its executions start on (``watch_for_worker``).
    """

    client: Client
    execution_id: str
    flow: TriggerFlow | None = None
    task_queue: str | None = None

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        """The workflow handle of the execution (its latest run)."""
        return self.client.get_workflow_handle(self.execution_id)

    async def watched(self, call: Awaitable[_T], action: str) -> _T:
        """Await ``call``; a :class:`NoWorkerError` if no worker will ever answer it."""
        return await watch_for_worker(
            call,
            client=self.client,
            workflow_id=self.execution_id,
            action=action,
            flow=self.flow,
            task_queue=self.task_queue,
        )

    async def start_update(
        self,
        name: str,
        arg: Any,
        operation: WithStartWorkflowOperation[Any, Any],
        *,
        action: str,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Create the workflow if absent and run update ``name`` on it (update-with-start).

        Returns:
            The update's raw result (not settled).

        Raises:
            NoWorkerError: No worker serves the workflow (it exists and waits for one).
        """
        try:
            return await self.watched(
                self.client.execute_update_with_start_workflow(
                    name, arg, start_workflow_operation=operation, rpc_timeout=rpc_timeout
                ),
                action,
            )
        except NoWorkerError:
            forget_start_outcome(operation)
            raise

    async def update(
        self, name: str, arg: Any, *, send: Callable[[], Awaitable[Any]] | None = None
    ) -> Any:
        """Run update ``name`` and return its result once the work it started is quiescent.

        Args:
            name: The update (one of the ``UPDATE_*`` names of ``spec.wire``).
            arg: Its argument.
            send: Sends the update another way (update-with-start) and returns its raw
                result; by default it goes to the running workflow, retried while busy.

        Returns:
            The update's result; None for an event, resume or (un)seal sent to a closed
            execution.

        Raises:
            ExecutionStateError: The execution is closed (an id is used once) or unknown.
            RPCError: ``close`` of an execution that has closed; other transport errors.
        """
        try:
            if send is None:
                async with update_slot(self.client, self.execution_id):
                    result = await self.watched(
                        retry_when_busy(lambda: self.handle.execute_update(name, arg)),
                        f"update {name}",
                    )
            else:
                result = await send()
            return await self.settled(result)
        except WorkflowAlreadyStartedError:
            raise self.already_closed() from None
        except WorkflowUpdateFailedError as error:
            raise rebuild_error(error) from None
        except RPCError as error:
            if not is_closed_error(error):
                raise self.not_found(error) from None
            if name == UPDATE_CLOSE:
                raise
            if name in (UPDATE_EMIT, UPDATE_CONTINUE_WITH, UPDATE_SEAL):
                return None
            raise ExecutionStateError(
                f"TriggerFlow execution {self.execution_id} is closed; {name!r} needs an open "
                "execution."
                if name != UPDATE_INTERVENE
                else f"TriggerFlow execution {self.execution_id} can not accept interventions "
                "while lifecycle state is 'closed'."
            ) from None

    async def settled(self, result: Any) -> Any:
        """An update's result, once the chain it started is quiescent in every run."""
        wait, root = settle_root(result)
        if not wait:
            return result
        if root is not None:  # runtime version 3: that root's answer
            return await self.settle(root)
        await self.settle()
        return result.get("result")

    async def settle(self, root: str | None = None) -> Any:
        """Wait for an update whose work went on in later runs (continue-as-new)."""
        try:
            return await self.watched(
                settle(self.client, self.execution_id, root), f"update {UPDATE_SETTLE}"
            )
        except WorkflowUpdateFailedError as error:
            raise rebuild_error(error) from None
        except RPCError as error:
            raise self.not_found(error) from None

    async def query(self, name: str) -> Any:
        """Run query ``name`` (one of the ``QUERY_*`` names of ``spec.wire``)."""
        return await query(self.client, self.execution_id, name)

    async def unless_closed(self, call: Awaitable[Any]) -> bool:
        """Await a signal or update ``call``; False when the execution has closed.

        Raises:
            ExecutionStateError: No execution has this id.
        """
        try:
            await call
        except RPCError as error:
            if not is_closed_error(error):
                raise self.not_found(error) from None
            return False
        return True

    def already_closed(self) -> ExecutionStateError:
        """The error for a start or update-with-start on an id whose execution closed."""
        return ExecutionStateError(
            f"TriggerFlow execution {self.execution_id!r} already ran and is closed; an "
            "execution id is used once. Create the execution with a new execution_id, or "
            "continue from its state with create_execution(...).async_load(saved) after "
            "async_save()."
        )

    def not_found(self, error: RPCError) -> Exception:
        """``error`` as a typed ExecutionStateError when no execution has this id."""
        if error.status != RPCStatusCode.NOT_FOUND:
            return error
        return ExecutionStateError(
            f"No execution {self.execution_id!r} in namespace {self.client.namespace!r}: "
            "check the id (flow.get_execution() attaches to an existing execution; "
            "create_execution() starts a new one)."
        )
