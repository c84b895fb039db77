"""The runtime stream, client side: ``execution.get_async_runtime_stream()``.

The execution's workflow keeps its stream as a ``temporalio.contrib.workflow_streams`` log;
this module subscribes to it with ``WorkflowStreamClient`` (long-poll updates, continue-as-new
followed, the retained items of a finished run read by query). An item's offset in the log is
its sequence number: the same on every read, worker restart and replay.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from ..interpreter.events import STREAM_END_TOPIC, STREAM_SYSTEM_TOPIC, STREAM_TOPIC
from ..spec.limits import MAX_STREAM_BYTES, MAX_STREAM_ITEMS

__all__ = ["RuntimeStreamItem", "iter_runtime_stream"]

# How often to look for the workflow while a lazily started execution is being created.
_EXISTS_POLL_S = 0.05


@dataclass(frozen=True)
class RuntimeStreamItem:
    """One runtime stream item with its sequence number.

    Attributes:
        seq: The item's position in the execution's stream (0, 1, ...). Stable: a consumer
            that reads again, reconnects or resumes with ``from_seq`` sees the same number
            for the same item, so ``seq <= last_seen`` identifies a duplicate.
        item: What the chunk put (``data.async_put_into_stream(item)``), or a system item
            (``{"type": "interrupt" | "intervention", "action": ..., ...}``).
        system: True for the items the runtime puts (interrupts and interventions).
    """

    seq: int
    item: Any
    system: bool = False


async def iter_runtime_stream(
    execution_id: str,
    *,
    client: Callable[[], Client],
    ensure_started: Callable[[], Awaitable[Any] | None],
    from_seq: int = 0,
    timeout: float | None = 10.0,
    poll_interval: float = 0.1,
) -> AsyncGenerator[RuntimeStreamItem, None]:
    """Yield the execution's stream items from ``from_seq`` until the stream ends.

    Starts the execution through ``ensure_started`` when its handle has not started it (as
    natively). Ends after the last item once the stream is stopped (``data.stop_stream()``,
    ``execution.async_stop_stream()``) or the execution closes; raises the start's error if
    the lazily started execution fails to start.

    The reader takes callables, not the execution handle (which imports this module): both
    are called once, when the first item is asked for, so a handle started between
    creating the reader and reading it is not started again.

    Args:
        execution_id: The execution (workflow) id.
        client: Returns the connected client (it raises when the handle has none).
        ensure_started: Returns the start of the execution to run alongside the read, or
            None when the handle already started it.
        from_seq: The first sequence number to read (resume after ``last_seen + 1``).
        timeout: Seconds to wait for each item (and for the workflow to exist); on expiry
            the stream ends with a ``RuntimeWarning``. None waits forever.
        poll_interval: Pause between polls once caught up (the workflow is long-polled, so
            this only bounds how often a busy stream is read).

    Yields:
        :class:`RuntimeStreamItem` in order.
    """
    if isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0:
        raise ValueError(f"from_seq must be an int >= 0, got {from_seq!r}.")
    if poll_interval < 0:
        raise ValueError(f"poll_interval must be seconds >= 0, got {poll_interval!r}.")
    connected = client()
    start_task: asyncio.Future[Any] | None = None
    start = ensure_started()
    if start is not None:
        start_task = asyncio.ensure_future(start)
        start_task.add_done_callback(_retrieve)
    pending: asyncio.Future[Any] | None = None
    subscription: AsyncIterator[Any] | None = None
    expected = from_seq
    finished = False
    try:
        if not await _wait_until_exists(connected, execution_id, start_task, timeout):
            _warn_timeout(execution_id, timeout)
            return
        stream = WorkflowStreamClient.create(connected, execution_id)
        subscription = stream.subscribe(
            [STREAM_TOPIC, STREAM_SYSTEM_TOPIC, STREAM_END_TOPIC],
            from_offset=from_seq,
            poll_cooldown=timedelta(seconds=poll_interval),
        )
        while True:
            failure = _start_failure(start_task)
            if failure is not None:
                raise failure
            if pending is None:
                pending = asyncio.ensure_future(subscription.__anext__())
            waiters: set[asyncio.Future[Any]] = {pending}
            if start_task is not None and not start_task.done():
                waiters.add(start_task)
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                _warn_timeout(execution_id, timeout)
                return
            if pending not in done:
                continue  # the start finished: raise its error, or keep waiting
            try:
                wire = pending.result()
            except StopAsyncIteration:
                finished = True
                return  # the workflow finished and its retained items were read
            pending = None
            if wire.offset > expected:
                # Offsets of one execution's stream are contiguous across its topics: a gap
                # means the items were dropped when the run continued as new.
                raise ValueError(
                    f"Runtime stream items {expected}..{wire.offset - 1} of execution "
                    f"{execution_id!r} are no longer kept: a run carries its newest "
                    f"{MAX_STREAM_ITEMS} items (within {MAX_STREAM_BYTES // 1024} KiB) into "
                    f"the next one. Read from from_seq={wire.offset}, or keep what a "
                    "reader must not miss in the Workspace."
                )
            expected = wire.offset + 1
            if wire.topic == STREAM_END_TOPIC:
                finished = True
                return
            yield RuntimeStreamItem(
                seq=wire.offset, item=wire.data, system=wire.topic == STREAM_SYSTEM_TOPIC
            )
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.wait({pending})  # the generator must stop before it can close
        if subscription is not None:
            aclose = getattr(subscription, "aclose", None)
            if aclose is not None:
                await aclose()
        if finished:
            failure = _start_failure(start_task)
            if failure is not None:
                raise failure


def _start_failure(start_task: asyncio.Future[Any] | None) -> BaseException | None:
    """The error of a finished start made by this read, else None."""
    if start_task is None or not start_task.done() or start_task.cancelled():
        return None
    return start_task.exception()


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Keep an unobserved start failure from being logged as 'never retrieved'."""
    if not task.cancelled():
        task.exception()


def _warn_timeout(execution_id: str, timeout: float | None) -> None:
    warnings.warn(
        f"Runtime stream of execution {execution_id} got no item within {timeout} s and "
        "stopped. Pass timeout=None to wait forever.",
        RuntimeWarning,
        stacklevel=3,
    )


async def _wait_until_exists(
    client: Client,
    execution_id: str,
    start_task: asyncio.Future[Any] | None,
    timeout: float | None,
) -> bool:
    """Wait until the workflow exists (a lazily started one is being created)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    handle = client.get_workflow_handle(execution_id)
    while True:
        try:
            await handle.describe()
            return True
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        failure = _start_failure(start_task)
        if failure is not None:
            raise failure
        if deadline is not None and loop.time() >= deadline:
            return False
        await asyncio.sleep(_EXISTS_POLL_S)
