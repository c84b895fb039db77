"""The speed settings of the embedded stack stay on (issue 18).

``start_local_runtime``, ``triggerflow-temporal dev`` and the tests' server share
``start_dev_server``; docs/operations.md ("Speed settings of the embedded stack") says what
each setting does, bench/embedded.py measures it. No timing is asserted here.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from typing import Any

import pytest
import temporalio.worker
from temporalio.client import Client

from triggerflow_temporal import TriggerFlow, testing
from triggerflow_temporal.cli import devserver, run_command
from triggerflow_temporal.cli.config import worker_settings
from triggerflow_temporal.cli.devserver import (
    FAST_DYNAMIC_CONFIG,
    SQLITE_FILE_PRAGMAS,
    dev_server_args,
    start_dev_server,
)
from triggerflow_temporal.cli.serve import serve


async def step(data: Any) -> Any:
    return data.input


flow = TriggerFlow(name="embedded_defaults")
flow.to(step)


def _values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------- server arguments
def test_every_dev_server_lifts_the_history_queue_poll_caps():
    values = _values(dev_server_args(), "--dynamic-config-value")
    assert "history.transferProcessorMaxPollRPS=1000" in values
    assert "history.timerProcessorMaxPollRPS=1000" in values


def test_a_server_on_a_database_file_gets_a_write_ahead_log():
    assert SQLITE_FILE_PRAGMAS == ("journal_mode=wal", "synchronous=normal")
    with_file = dev_server_args(database_file=True)
    assert _values(with_file, "--sqlite-pragma") == ["journal_mode=wal", "synchronous=normal"]
    assert set(FAST_DYNAMIC_CONFIG) <= set(_values(with_file, "--dynamic-config-value"))
    # In memory there is no journal to configure; fast=False is the stock server.
    assert "--sqlite-pragma" not in dev_server_args()
    assert "--sqlite-pragma" not in dev_server_args(fast=False, database_file=True)


class _Captured(Exception):
    pass


@pytest.fixture
def captured_start(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the arguments ``start_dev_server`` hands to the SDK; start nothing."""
    calls: list[dict[str, Any]] = []

    async def start_local(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise _Captured

    monkeypatch.setattr(devserver.WorkflowEnvironment, "start_local", start_local)
    return calls


async def test_start_dev_server_adds_the_pragmas_only_with_a_database_file(
    captured_start, tmp_path
):
    database = str(tmp_path / "temporal.db")
    calls: list[dict[str, Any]] = [{"database_file": database}, {}]
    for kwargs in calls:
        with pytest.raises(_Captured):
            async with start_dev_server(**kwargs):
                pass
    with_file, in_memory = captured_start
    assert with_file["dev_server_database_filename"] == database
    assert _values(with_file["dev_server_extra_args"], "--sqlite-pragma") == list(
        SQLITE_FILE_PRAGMAS
    )
    assert "--sqlite-pragma" not in in_memory["dev_server_extra_args"]
    for call in (with_file, in_memory):
        assert set(FAST_DYNAMIC_CONFIG) <= set(
            _values(call["dev_server_extra_args"], "--dynamic-config-value")
        )


def test_the_dev_command_starts_its_server_with_the_fast_settings(captured_start, tmp_path):
    data = tmp_path / "data"
    argv = ["dev", "--data-dir", str(data)]
    for option in ("--port", "--ui-port", "--workspace-port", "--gateway-port"):
        argv += [option, str(_free_port())]
    assert run_command(argv, {}) == 2  # the captured start "fails"; nothing else started
    (call,) = captured_start
    assert call["dev_server_database_filename"] == str(data / "temporal.db")
    args = call["dev_server_extra_args"]
    assert _values(args, "--sqlite-pragma") == list(SQLITE_FILE_PRAGMAS)
    assert set(FAST_DYNAMIC_CONFIG) <= set(_values(args, "--dynamic-config-value"))


async def test_a_server_on_a_database_file_really_writes_ahead(tmp_path):
    database = tmp_path / "temporal.db"
    async with start_dev_server(database_file=str(database)) as env:
        await env.client.count_workflows()
        with sqlite3.connect(database) as connection:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


# ---------------------------------------------------------------------------- workers
class _RecordingWorker:
    """Stands in for ``temporalio.worker.Worker``: records its options, runs nothing."""

    seen: dict[str, Any] = {}

    def __init__(self, client: Any, **options: Any) -> None:
        type(self).seen = {"client": client, **options}
        self.is_running = True
        self._stopped = asyncio.Event()

    async def __aenter__(self) -> _RecordingWorker:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def run(self) -> None:
        await self._stopped.wait()

    async def shutdown(self) -> None:
        self._stopped.set()


def _keeps_eager_dispatch(options: dict[str, Any]) -> None:
    # Eager activity dispatch (the activity task comes back with the workflow task's
    # completion, skipping matching) is on unless disabled or a task-queue rate is set.
    assert not options.get("disable_eager_activity_execution")
    assert options.get("max_task_queue_activities_per_second") is None
    assert options.get("max_eager_activity_reservations_per_workflow_task", 3) >= 1


async def test_start_local_runtime_worker_keeps_eager_dispatch_on_the_starting_client(
    monkeypatch,
):
    monkeypatch.setattr(testing, "Worker", _RecordingWorker)
    lazy = await Client.connect("127.0.0.1:1", lazy=True)  # never dialled
    async with testing.start_local_runtime([flow], client=lazy) as client:
        # One client for starts and the worker: what eager workflow start needs.
        assert _RecordingWorker.seen["client"] is client
    _keeps_eager_dispatch(_RecordingWorker.seen)


async def test_the_command_worker_keeps_eager_dispatch(monkeypatch):
    monkeypatch.setattr(temporalio.worker, "Worker", _RecordingWorker)
    lazy = await Client.connect("127.0.0.1:1", lazy=True)
    stop = asyncio.Event()
    stop.set()
    settings = worker_settings({}, require_flows=False)
    await serve(lazy, settings, [flow.name], stop)  # the `dev` and `worker` commands' worker
    assert _RecordingWorker.seen["client"] is lazy
    assert _RecordingWorker.seen["task_queue"] == settings.task_queue
    _keeps_eager_dispatch(_RecordingWorker.seen)


async def test_flow_async_start_is_started_eagerly_by_the_local_worker(runtime):
    # Eager workflow start: the worker on the starting client gets the first workflow task
    # with the start reply; the server records that it accepted the eager request.
    async with runtime([flow]) as client:
        execution = flow.create_execution(client=client, hidden=True, auto_close_timeout=0)
        assert await execution.async_start(3) is not None
        history = await client.get_workflow_handle(execution.id).fetch_history()
        assert history.events[
            0
        ].workflow_execution_started_event_attributes.eager_execution_accepted
