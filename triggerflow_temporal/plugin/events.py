"""RuntimeEvents: Agently's observability events, produced by the workflow, delivered on the worker.

Two halves:

- ``interpreter.event_recorder.EventRecorder`` runs in workflow code. It numbers every
  event occurrence from a counter (carried over continue-as-new), stamps it with
  ``workflow.now()``, and builds the event only when a hook wants that type and the
  workflow is not replaying. No I/O, no randomness: the same history always yields the
  same event ids.
- :class:`EventHub` lives on the worker (``plugin.events``). The recorder hands it events
  from the workflow thread; the hub moves them onto the worker's event loop, drops an
  occurrence it has already delivered (a retried workflow task regenerates the same ids),
  and feeds each hook from its own queue, in order, so a slow or failing hook never holds up
  the workflow or the other hooks.

Guarantee: an event is delivered at most once per worker process (by ``event_id``) and never
while a history is replayed. A worker crash can lose events still queued for hooks, and a
workflow task that a crashed worker had not completed re-runs on another worker, which
delivers its events again with the same ``event_id``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from ..spec.events import EVENT_TYPES, RuntimeEvent, normalize_event_types
from .workspace_binding import TenantBackends

__all__ = [
    "EVENT_TYPES",
    "EventHub",
    "RuntimeEvent",
    "workspace_event_sink",
]

logger = logging.getLogger("triggerflow_temporal.events")

# Per-hook queue bound: a hook that falls this far behind loses the newest events (logged).
HOOK_QUEUE_SIZE = 10_000
# Runs whose last delivered sequence number the hub remembers (least recently used dropped).
DEDUP_RUNS = 10_000


# ================================================================ worker side
class _Hook:
    def __init__(
        self, name: str, callback: Callable[[RuntimeEvent], Any], types: frozenset[str] | None
    ) -> None:
        self.name = name
        self.callback = callback
        self.types = types
        self.queue: asyncio.Queue[RuntimeEvent] | None = None
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0

    def matches(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types

    async def run(self) -> None:
        assert self.queue is not None
        while True:
            event = await self.queue.get()
            try:
                result = self.callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception(
                    "RuntimeEvent hook %r failed on %s (%s)",
                    self.name,
                    event.event_type,
                    event.event_id,
                )
            finally:
                self.queue.task_done()


class EventHub:
    """Hooks registered with ``plugin.on_event`` and their delivery on the worker's loop.

    The plugin starts the hub around each worker (and replayer) it runs; events produced
    while no worker runs in this process are dropped.
    """

    def __init__(self) -> None:
        self._hooks: dict[str, _Hook] = {}
        self._wanted: frozenset[str] | None = frozenset()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._users = 0
        self._delivered: OrderedDict[str, int] = OrderedDict()
        self._counter = 0
        self._warned_no_loop = False

    # ------------------------------------------------------------ registry
    def register(
        self,
        callback: Callable[[RuntimeEvent], Any],
        *,
        event_types: str | Iterable[str] | None = None,
        name: str | None = None,
    ) -> str:
        """Add a hook; returns its name (for :meth:`unregister`).

        Raises:
            TypeError: ``callback`` is not callable, or ``event_types`` has a bad type.
            ValueError: Unknown event type, or a hook with this name already exists.
        """
        if not callable(callback):
            raise TypeError(
                f"on_event() needs a callable taking a RuntimeEvent, got {type(callback).__name__}."
            )
        types = normalize_event_types(event_types)
        if name is None:
            self._counter += 1
            name = f"{getattr(callback, '__qualname__', 'hook')}#{self._counter}"
        if name in self._hooks:
            raise ValueError(f"An event hook named {name!r} is already registered.")
        hook = _Hook(name, callback, types)
        self._hooks[name] = hook
        self._recompute()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_hook, hook)
        return name

    def unregister(self, name: str) -> None:
        """Remove a hook (events already queued for it are dropped).

        Raises:
            KeyError: No hook has this name.
        """
        hook = self._hooks.pop(name, None)
        if hook is None:
            raise KeyError(f"No event hook named {name!r}; registered: {sorted(self._hooks)}.")
        self._recompute()
        if hook.task is not None:
            hook.task.cancel()

    def _recompute(self) -> None:
        wanted: set[str] = set()
        for hook in self._hooks.values():
            if hook.types is None:
                self._wanted = None
                return
            wanted |= hook.types
        self._wanted = frozenset(wanted)

    def wants(self, event_type: str) -> bool:
        """Whether any hook takes ``event_type`` (safe from any thread)."""
        wanted = self._wanted
        return wanted is None or event_type in wanted

    # ------------------------------------------------------------ delivery
    def publish(self, event: RuntimeEvent) -> None:
        """Hand an event over from workflow code (any thread); returns immediately."""
        loop = self._loop
        if loop is None or loop.is_closed():
            if not self._warned_no_loop:
                self._warned_no_loop = True
                logger.warning("RuntimeEvents dropped: no worker of this plugin is running.")
            return
        loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: RuntimeEvent) -> None:
        run_id = str(event.meta.get("run_id"))
        seq = event.seq
        last = self._delivered.get(run_id, 0)
        if seq <= last:
            return  # a retried workflow task regenerated an occurrence already delivered
        self._delivered[run_id] = seq
        self._delivered.move_to_end(run_id)
        while len(self._delivered) > DEDUP_RUNS:
            self._delivered.popitem(last=False)
        for hook in list(self._hooks.values()):
            if not hook.matches(event.event_type):
                continue
            if hook.queue is None:
                self._start_hook(hook)
            assert hook.queue is not None
            try:
                hook.queue.put_nowait(event)
            except asyncio.QueueFull:
                hook.dropped += 1
                if hook.dropped == 1 or hook.dropped % 1000 == 0:
                    logger.warning(
                        "RuntimeEvent hook %r is too slow: %d events dropped",
                        hook.name,
                        hook.dropped,
                    )

    def _start_hook(self, hook: _Hook) -> None:
        if hook.task is not None or self._hooks.get(hook.name) is not hook:
            return
        hook.queue = asyncio.Queue(HOOK_QUEUE_SIZE)
        hook.task = asyncio.get_running_loop().create_task(
            hook.run(), name=f"triggerflow-event-hook:{hook.name}"
        )

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event handed over so far has been processed by its hooks.

        Call it on the worker's event loop (where tests and ``start_local_runtime`` run).

        Raises:
            TimeoutError: Hooks did not catch up within ``timeout`` seconds.
        """
        await asyncio.sleep(0)  # run deliveries already scheduled from workflow threads
        queues = [h.queue for h in self._hooks.values() if h.queue is not None]
        await asyncio.wait_for(asyncio.gather(*(q.join() for q in queues)), timeout)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Deliver on the current loop while a worker runs (the plugin's ``run_context``)."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._warned_no_loop = False
            for hook in self._hooks.values():
                self._start_hook(hook)
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0 and self._loop is loop:
                try:
                    await self.flush(timeout=5.0)
                except (TimeoutError, asyncio.TimeoutError):
                    logger.warning("RuntimeEvent hooks did not finish within 5 s of shutdown")
                for hook in self._hooks.values():
                    if hook.task is not None:
                        hook.task.cancel()
                    hook.task = None
                    hook.queue = None
                self._loop = None


# ====================================================================== sinks
def workspace_event_sink(
    workspace: Any,
    *,
    collection: str = "observations",
    kind: str = "runtime_event",
) -> Callable[[RuntimeEvent], Awaitable[None]]:
    """A hook that appends each event to the Workspace, next to the execution's evidence.

    Records go to ``collection``/``kind`` with the scope chunks use for ``data.workspace``
    (``execution_id``, ``flow``) in the execution's tenant, so one search on
    ``scope.execution_id`` returns an execution's evidence and its events. Content is
    :meth:`RuntimeEvent.to_dict`; ``meta`` carries ``event_type``, ``event_id``, ``seq`` and
    ``level`` for filtering. Register it with ``plugin.on_event(workspace_event_sink(ws))``;
    it runs on the worker's event loop, never in workflow code.

    Args:
        workspace: A ``workspace.BaseWorkspace``, a URL or a path (as ``TriggerFlowPlugin``'s
            ``workspace=`` option).
        collection: The Workspace collection.
        kind: The record kind.

    Returns:
        An async callable taking a :class:`RuntimeEvent`.
    """
    backends = TenantBackends(workspace)

    async def sink(event: RuntimeEvent) -> None:
        backend = await backends.get(event.meta.get("tenant") or "default")
        view = backend.bound(execution_id=event.execution_id, flow=event.meta.get("flow_name"))
        await view.ingest(
            event.to_dict(),
            collection,
            kind,
            summary=f"{event.event_type}: {event.message}" if event.message else event.event_type,
            source="triggerflow-temporal",
            meta={
                "event_type": event.event_type,
                "event_id": event.event_id,
                "seq": event.seq,
                "level": event.level,
                "timestamp": event.timestamp,
            },
        )

    sink.__qualname__ = "workspace_event_sink"
    return sink
