"""``create_app``: the gateway's FastAPI application (gateway side).

Layers, outermost first: trace context (``traceparent`` on every answer), the body size
cap (413 before anything is parsed), problem documents for every error, then the routes.
Authentication is a dependency of each ``/v1`` route; ``/healthz``, ``/readyz``,
``/docs`` and ``/openapi.json`` need none. The approver pages (``/a/{token}``, ``/inbox``)
answer HTML, errors included: the link's token is its credential, and the inbox takes the
API's bearer credentials or its own login cookie.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from temporalio.client import Client

from triggerflow_temporal import TriggerFlow

from ._auth import Authenticator
from ._config_types import GatewayConfig
from ._executions import ExecutionService, flows_by_name
from ._http import BodyLimitMiddleware, TraceMiddleware
from ._inbox import inbox_router
from ._inbox_auth import InboxAuth
from ._ingress import health_router, ingress_router
from ._links_pages import approval_links, install_log_redaction, links_router
from ._messages import MessageRouter
from ._problems import install_problem_handlers
from ._routes import executions_router
from ._workspace_refs import WorkspaceRecords

logger = logging.getLogger("triggerflow_temporal.gateway")

_DESCRIPTION = """\
The authenticated front door of triggerflow-temporal: start executions, resume their
interrupts, send events and correlated messages, and receive third-party webhooks.
Every `/v1` request carries `Authorization: Bearer <JWT or API key>`; every error is
`application/problem+json` (RFC 9457). See docs/gateway.md.
"""


def create_app(
    config: GatewayConfig,
    client: Client,
    flows: Sequence[TriggerFlow] | Mapping[str, TriggerFlow],
    *,
    message_router: MessageRouter | None = None,
) -> FastAPI:
    """Build the gateway application.

    Args:
        config: From :func:`~triggerflow_temporal.gateway.load_config`.
        client: A Temporal client with the ``TriggerFlowPlugin`` (its data converter and
            the task queue of each flow). The gateway uses a copy of it that records the
            gateway's start memo.
        flows: The flows the gateway starts and acts on (it never runs their chunks).
        message_router: Delivers ``POST /v1/messages`` and webhooks (the runtime's
            mailbox); without one those answer 501.

    Returns:
        The ASGI application (serve it with uvicorn; :func:`serve` does).
    """
    authenticator = Authenticator(config)
    if not authenticator.required:
        logger.warning(
            "The gateway has no authentication configured: every request acts as tenant "
            "'default' (loopback only; configure auth.jwt or auth.api_keys)."
        )
    service = ExecutionService(client, flows_by_name(flows))
    app = FastAPI(
        title="triggerflow-temporal gateway",
        version="1",
        description=_DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    install_problem_handlers(app)
    links = approval_links(config)
    install_log_redaction()
    app.include_router(executions_router(service, links))
    app.include_router(ingress_router(config, message_router))
    app.include_router(health_router(service.client))
    app.include_router(links_router(service, links))
    app.include_router(
        inbox_router(service, InboxAuth(authenticator), WorkspaceRecords(config.workspace))
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(TraceMiddleware)  # added last: outermost
    app.state.authenticator = authenticator
    app.state.gateway = _State(config=config, service=service, router=message_router)
    return app


class _State:
    """What the application holds (for the CLI and tests to inspect)."""

    def __init__(self, *, config: GatewayConfig, service: ExecutionService, router: Any) -> None:
        self.config = config
        self.service = service
        self.router = router
