"""The runtime-stream methods of :class:`~.execution.TriggerFlowExecution` (caller side).

A mixin so the execution handle stays one concern per module; the reading itself is
:func:`~.stream.iter_runtime_stream`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any

from ..spec import wire
from .calls import ExecutionCalls
from .setup import ExecutionSetup
from .stream import RuntimeStreamItem, iter_runtime_stream


class RuntimeStreamMethods:
    """``get_async_runtime_stream``, its items with sequence numbers, and stopping it."""

    # Set by TriggerFlowExecution.__init__.
    _id: str
    _started: bool
    _setup: ExecutionSetup

    # Defined by TriggerFlowExecution.
    async def async_start(self, value: Any = None, *, timeout: float | None = None) -> Any:
        """See :meth:`~.execution.TriggerFlowExecution.async_start`."""
        raise NotImplementedError

    def _calls(self) -> ExecutionCalls:
        raise NotImplementedError

    async def get_async_runtime_stream(
        self, initial_value: Any = None, *, timeout: float | None = 10.0
    ) -> AsyncIterator[Any]:
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
        stream = self.get_async_runtime_stream_items(initial_value, timeout=timeout)
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
    ) -> AsyncGenerator[RuntimeStreamItem, None]:
        """Yield :class:`RuntimeStreamItem` (``seq``, ``item``, ``system``) from ``from_seq``.

        ``seq`` is stable across reads, reconnects and worker restarts: resume with
        ``from_seq=last_seen + 1``, or drop items with ``seq <= last_seen`` (delivery is
        at least once across reconnects).
        """

        def ensure_started() -> Awaitable[Any] | None:
            # Asked when the first item is read, as natively: a handle started meanwhile
            # is not started again.
            return None if self._started else self.async_start(initial_value)

        return iter_runtime_stream(
            self._id,
            client=self._setup.resolve_client,
            ensure_started=ensure_started,
            from_seq=from_seq,
            timeout=timeout,
            poll_interval=poll_interval,
        )

    async def async_stop_stream(self) -> None:
        """End the runtime stream (consumers finish); the execution stays open."""
        calls = self._calls()
        await calls.unless_closed(calls.handle.execute_update(wire.UPDATE_STOP_STREAM))
