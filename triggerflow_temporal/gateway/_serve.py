"""``serve``: run the gateway with uvicorn (what ``triggerflow-temporal gateway`` calls)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import uvicorn
from temporalio.client import Client

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin

from ._app import create_app
from ._config import GatewayConfig, check_bind, load_config
from ._messages import MailboxRouter, MessageRouter

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


async def connect(flows: Sequence[TriggerFlow], *, env: Mapping[str, str] | None = None) -> Client:
    """A client for the gateway from the ``TEMPORAL_*`` and ``TRIGGERFLOW_TASK_QUEUE`` variables.

    Plain connections only: the CLI passes its own client, which knows TLS and API keys.
    """
    env = os.environ if env is None else env
    plugin = TriggerFlowPlugin(
        flows=list(flows),
        task_queue=env.get("TRIGGERFLOW_TASK_QUEUE", "").strip() or "triggerflow",
    )
    return await Client.connect(
        env.get("TEMPORAL_ADDRESS", "").strip() or "localhost:7233",
        namespace=env.get("TEMPORAL_NAMESPACE", "").strip() or "default",
        plugins=[plugin],
    )


async def build_server(
    config: GatewayConfig | str | os.PathLike[str] | None,
    *,
    flows: Sequence[TriggerFlow],
    client: Client | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    message_router: MessageRouter | None = None,
    **uvicorn_options: Any,
) -> uvicorn.Server:
    """The uvicorn server :func:`serve` runs (``server.should_exit = True`` stops it).

    Raises:
        GatewayConfigError: Bad config, or a non-loopback host without authentication.
    """
    if not isinstance(config, GatewayConfig):
        config = load_config(config)
    check_bind(config, host)
    if client is None:
        client = await connect(flows)
    if message_router is None:
        message_router = MailboxRouter(client)  # the runtime's durable mailbox
    app = create_app(config, client, flows, message_router=message_router)
    options: dict[str, Any] = {"log_level": "info", "proxy_headers": False, **uvicorn_options}
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))


async def serve(
    config: GatewayConfig | str | os.PathLike[str] | None,
    *,
    flows: Sequence[TriggerFlow],
    client: Client | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    message_router: MessageRouter | None = None,
    **uvicorn_options: Any,
) -> None:
    """Serve the gateway until the process is told to stop (SIGINT / SIGTERM).

    Args:
        config: A parsed config, a config file, or None for ``$TRIGGERFLOW_GATEWAY_CONFIG``.
        flows: The flows to serve (the CLI resolves ``TRIGGERFLOW_FLOWS`` paths).
        client: A connected client with the TriggerFlowPlugin; default :func:`connect`.
        host: Interface; a non-loopback one needs authentication configured.
        port: TCP port.
        message_router: What delivers ``/v1/messages`` and webhooks; default the
            runtime's durable mailbox (:class:`MailboxRouter`).
        **uvicorn_options: More ``uvicorn.Config`` options.

    Raises:
        GatewayConfigError: Bad config, or a non-loopback host without authentication.
    """
    server = await build_server(
        config,
        flows=flows,
        client=client,
        host=host,
        port=port,
        message_router=message_router,
        **uvicorn_options,
    )
    await server.serve()
