"""``triggerflow-temporal gateway``: serve the authenticated HTTP front door (gateway.md).

Flows, the Temporal address, namespace and task queue come from the same settings as the
worker (arguments, then ``TRIGGERFLOW_FLOWS`` / ``TEMPORAL_*`` / ``TRIGGERFLOW_TASK_QUEUE``);
the gateway imports flow modules only to know their specs and never runs a chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import uvicorn
from temporalio.client import Client

from ..client.flow import TriggerFlow
from ..gateway import GatewayConfigError, build_server, check_bind, load_config
from ..plugin.plugin import TriggerFlowPlugin
from .config import CLIError, connect_with, load_flow, worker_settings

DEFAULT_GATEWAY_PORT = 8090
# The tenant `triggerflow-temporal dev` gives its API key: executions started with
# `start --tenant default` are the ones it sees.
DEV_TENANT = "default"


async def cmd_gateway(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``gateway``: serve the gateway for the flows until interrupted."""
    settings = worker_settings(
        env,
        flows=args.flows,
        address=args.address,
        namespace=args.namespace,
        task_queue=args.task_queue,
    )
    flows = [load_flow(path) for path in settings.flows]
    plugin = TriggerFlowPlugin(list(flows), task_queue=settings.task_queue)
    try:
        config = load_config(args.config, env=env)
        check_bind(config, args.host)  # before anything connects
    except GatewayConfigError as error:
        raise CLIError(str(error)) from None
    options = settings.connect
    client = await connect_with(options, plugins=[plugin])
    server = await _server(config, flows, client, args.host, args.port)
    print(
        f"gateway: http://{args.host}:{args.port} (OpenAPI at /docs) for "
        f"{', '.join(sorted(f.name for f in flows))} on {options['target_host']}",
        flush=True,
    )
    await server.serve()
    return 0


async def _server(
    config: Any, flows: Sequence[TriggerFlow], client: Client, host: str, port: int
) -> uvicorn.Server:
    try:
        return await build_server(config, flows=flows, client=client, host=host, port=port)
    except GatewayConfigError as error:
        raise CLIError(str(error)) from None


def write_dev_config(data_dir: str) -> tuple[str, str]:
    """A loopback gateway config with one fresh API key; (config path, the key).

    The key is printed by ``dev`` and kept in ``<data dir>/gateway-key`` (mode 0600); the
    config holds only its sha256, as a production config would.
    """
    key = "tfk-dev-" + secrets.token_urlsafe(24)
    config = {
        "auth": {
            "api_keys": [
                {
                    "sha256": hashlib.sha256(key.encode()).hexdigest(),
                    "subject": "dev",
                    "tenant": DEV_TENANT,
                    "groups": ["approvers"],
                }
            ]
        }
    }
    path = os.path.join(data_dir, "gateway.json")
    with open(path, "w", encoding="utf-8") as file:
        json.dump(config, file, indent=2)
    key_path = os.path.join(data_dir, "gateway-key")
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    return path, key


async def run_dev_gateway(
    data_dir: str, flows: Sequence[TriggerFlow], client: Client, port: int, stop: asyncio.Event
) -> tuple[asyncio.Task[None], str]:
    """Serve the dev gateway on 127.0.0.1 until ``stop``; (its task, the API key)."""
    path, key = write_dev_config(data_dir)
    server = await _server(load_config(path, env={}), flows, client, "127.0.0.1", port)
    server.config.log_level = "warning"

    async def run() -> None:
        serving = asyncio.ensure_future(server.serve())
        await asyncio.wait(
            [serving, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        server.should_exit = True
        await serving

    return asyncio.ensure_future(run()), key
