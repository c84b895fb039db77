"""The gateway config's parsed form: settings dataclasses, limits, documented examples.

Gateway side, no I/O. :mod:`._config` reads and checks the file into these.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..plugin.links import DEFAULT_LINK_TTL_SECONDS
from ._jsonpath import JSONPath

CONFIG_ENV = "TRIGGERFLOW_GATEWAY_CONFIG"
"""Environment variable naming the config file when none is passed."""

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
"""Temporal's own payload cap; larger request bodies are refused with 413."""

DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300
MIN_HS256_SECRET_BYTES = 32
MIN_WEBHOOK_SECRET_BYTES = 16
MIN_LINK_SECRET_BYTES = 32

# Values that appear as examples in docs/gateway.md, the contract and the Standard Webhooks
# documentation. A deployment that copied one is refused at start (tests keep this list and
# the docs in step).
EXAMPLE_SECRETS = frozenset(
    {
        "change-me",
        "changeme",
        "secret",
        "example",
        "replace-me",
        "gateway-jwt-secret-change-me-0123456789abcdef",
        "gateway-link-secret-change-me-0123456789abcdef",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_Y2hhbmdlLW1lLWNoYW5nZS1tZS1jaGFuZ2UtbWU=",
    }
)
EXAMPLE_API_KEY = "tfk_example_key_do_not_use"
EXAMPLE_API_KEY_SHA256 = hashlib.sha256(EXAMPLE_API_KEY.encode()).hexdigest()

# Names the gateway puts into visibility queries and ids: no quotes, spaces or controls.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@|+/-]{0,127}$")


class GatewayConfigError(ValueError):
    """The gateway config is unusable; the message names the key and the fix."""


@dataclass(frozen=True)
class JWTIssuer:
    """One trusted token issuer (``auth.jwt[]``).

    Attributes:
        issuer: The ``iss`` claim tokens must carry.
        audience: The ``aud`` value tokens must carry (one of them).
        algorithms: Accepted ``alg`` values: ``HS256`` with a secret, asymmetric ones with
            JWKS; ``none`` is never accepted.
        hs256_secret: The shared secret (from ``hs256_secret_env``).
        jwks_file: Path of a JWKS document (read at start).
        jwks_url: URL of a JWKS document (fetched and cached on use).
        jwks: The parsed ``jwks_file``.
        tenant_claim: Claim that names the tenant.
        groups_claim: Claim that lists the groups (absent means none).
        leeway_seconds: Clock skew allowed on ``exp`` and ``nbf``.
        where: ``auth.jwt[i]``, for messages.
    """

    issuer: str
    audience: tuple[str, ...]
    algorithms: tuple[str, ...]
    hs256_secret: bytes | None = None
    jwks_file: str | None = None
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    tenant_claim: str = "tenant"
    groups_claim: str = "groups"
    leeway_seconds: float = 30.0
    where: str = "auth.jwt[0]"


@dataclass(frozen=True)
class APIKey:
    """A machine credential (``auth.api_keys[]``): only the key's sha256 is stored."""

    sha256: str
    subject: str
    tenant: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebhookSender:
    """A third party that posts Standard Webhooks to ``/v1/webhooks/{sender}``.

    Attributes:
        sender: The path segment.
        secrets: Decoded signing keys (several during a rotation).
        tenant: Tenant the resulting messages belong to.
        message_name: The message name (``message.name``).
        correlation_key: Where the correlation key is in the payload.
        ttl_seconds: How long an undelivered message is kept (None: the router's default).
        tolerance_seconds: Accepted distance between ``webhook-timestamp`` and now.
    """

    sender: str
    secrets: tuple[bytes, ...]
    tenant: str
    message_name: str
    correlation_key: JSONPath
    ttl_seconds: int | None = None
    tolerance_seconds: int = DEFAULT_WEBHOOK_TOLERANCE_SECONDS


@dataclass(frozen=True)
class LinksConfig:
    """Approval links (``links``): minted by the worker, checked by the gateway.

    Attributes:
        base_url: The gateway's public URL (links are ``{base_url}/a/{token}``).
        secret: The HS256 key shared by workers and gateways.
        ttl_seconds: Lifetime of a link the worker mints (no later than the pause's
            deadline either way).
    """

    base_url: str
    secret: bytes = field(repr=False, default=b"")
    ttl_seconds: float = DEFAULT_LINK_TTL_SECONDS


@dataclass(frozen=True)
class WorkspaceConfig:
    """The Workspace service the inbox reads referenced records from (``workspace``).

    Attributes:
        url: The service's base URL.
        token: The gateway's Workspace bearer token (from ``token_env``; None: no auth).
    """

    url: str
    token: str | None = field(repr=False, default=None)


@dataclass(frozen=True)
class GatewayConfig:
    """The parsed config. ``GatewayConfig()`` is the empty config (loopback only).

    Attributes:
        jwt: Trusted token issuers.
        api_keys: Machine credentials.
        webhooks: Senders by name.
        links: Approval links, when configured.
        workspace: The Workspace service for the inbox's record view, when configured.
        max_body_bytes: Larger request bodies get 413.
        source: The file it was read from, for messages.
    """

    jwt: tuple[JWTIssuer, ...] = ()
    api_keys: tuple[APIKey, ...] = ()
    webhooks: Mapping[str, WebhookSender] = field(default_factory=lambda: {})
    links: LinksConfig | None = None
    workspace: WorkspaceConfig | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    source: str | None = None

    @property
    def has_auth(self) -> bool:
        """Whether any authentication method is configured."""
        return bool(self.jwt or self.api_keys)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(config: GatewayConfig, host: str) -> None:
    """Refuse to listen on ``host`` without authentication unless it is loopback.

    Raises:
        GatewayConfigError: ``host`` is reachable from other machines and ``config`` has
            no ``auth.jwt`` or ``auth.api_keys`` entry.
    """
    if not config.has_auth and not is_loopback(host):
        raise GatewayConfigError(
            f"The gateway would listen on {host!r} without authentication. Configure "
            "auth.jwt or auth.api_keys in the config file (docs/gateway.md), or bind to "
            "127.0.0.1."
        )
