"""The gateway: the authenticated HTTP front door of triggerflow-temporal (gateway side).

``create_app(config, client, flows)`` builds the FastAPI application (OpenAPI at ``/docs``
and ``/openapi.json``); ``serve(...)`` runs it with uvicorn; ``load_config`` reads the YAML
or JSON config file. The contract is ``shared/reference/gateway.md``; docs/gateway.md
describes running it.
"""

from ._app import create_app
from ._auth import Principal
from ._config import GatewayConfig, GatewayConfigError, check_bind, load_config
from ._messages import MailboxRouter, MessageRouter
from ._serve import build_server, serve

__all__ = [
    "GatewayConfig",
    "GatewayConfigError",
    "MailboxRouter",
    "MessageRouter",
    "Principal",
    "build_server",
    "check_bind",
    "create_app",
    "load_config",
    "serve",
]
