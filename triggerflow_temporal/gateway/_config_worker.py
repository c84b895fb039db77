"""The worker's part of the shared config file: ``notifications`` and ``links``.

``triggerflow-temporal worker --config FILE`` reads the gateway's file (one file serves
both, gateway.md) but only these two sections; ``auth``, ``webhooks``, ``limits`` and the
rest are the gateway's and are not checked here, so a worker needs none of the gateway's
secrets. Errors raise :class:`GatewayConfigError` naming the key and the fix, as the
gateway's do; secrets come from the environment variables the file names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._config_fields import (
    check_document,
    decode_webhook_secret,
    env_secret,
    list_field,
    name_field,
    only_keys,
    parse_links,
    read_document,
    require_mapping,
    text_field,
)
from ._config_types import GatewayConfigError, LinksConfig

__all__ = ["NotificationTarget", "WorkerConfig", "load_worker_config", "parse_worker_config"]

DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10.0
# One attempt of a delivery may take this long (DELIVERY_ATTEMPT_TIMEOUT_SECONDS).
MAX_WEBHOOK_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class NotificationTarget:
    """One webhook channel of the worker (``notifications[]``).

    Attributes:
        channel: The channel's name (``pause_for(channel_id=...)`` picks it).
        webhook_url: Where each event is POSTed.
        secret: The ``whsec_<base64>`` signing secret (from ``secret_env``).
        timeout_seconds: How long one attempt may take.
    """

    channel: str
    webhook_url: str
    secret: str = field(repr=False, default="")
    timeout_seconds: float = DEFAULT_WEBHOOK_TIMEOUT_SECONDS


@dataclass(frozen=True)
class WorkerConfig:
    """The worker's sections of the config file (empty without a file).

    Attributes:
        notifications: The webhook channels, in file order.
        links: Approval links to mint into notifications, when configured.
        source: The file it was read from, for messages.
    """

    notifications: tuple[NotificationTarget, ...] = ()
    links: LinksConfig | None = None
    source: str | None = None


def load_worker_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> WorkerConfig:
    """Read the worker's sections of the config file.

    Args:
        path: The file; defaults to ``$TRIGGERFLOW_GATEWAY_CONFIG``; neither gives the empty
            config (no channels, no links).
        env: Where ``*_env`` secrets are read (default ``os.environ``).

    Raises:
        GatewayConfigError: Unreadable file, bad YAML/JSON, a malformed ``notifications``
            or ``links`` entry, an unset secret variable, a secret left at a documented
            example value.
    """
    env = os.environ if env is None else env
    data, source = read_document(path, env=env)
    if source is None:
        return WorkerConfig()
    return parse_worker_config(data, env=env, source=source)


def parse_worker_config(
    data: Any, *, env: Mapping[str, str] | None = None, source: str | None = None
) -> WorkerConfig:
    """Check the worker's sections of an already parsed document; see :func:`load_worker_config`."""
    env = os.environ if env is None else env
    data = check_document(data, "config file")
    links = parse_links(data["links"], env) if data.get("links") is not None else None
    return WorkerConfig(
        notifications=_notifications(data.get("notifications"), env), links=links, source=source
    )


def _notifications(value: Any, env: Mapping[str, str]) -> tuple[NotificationTarget, ...]:
    targets: list[NotificationTarget] = []
    for i, entry in enumerate(list_field(value, "notifications")):
        where = f"notifications[{i}]"
        require_mapping(entry, where)
        only_keys(entry, {"channel", "webhook_url", "secret_env", "timeout_seconds"}, where)
        channel = name_field(entry.get("channel"), f"{where}.channel")
        if any(target.channel == channel for target in targets):
            raise GatewayConfigError(
                f"{where}.channel {channel!r} appears twice; give each channel its own name."
            )
        url = text_field(entry.get("webhook_url"), f"{where}.webhook_url")
        if not url.startswith(("https://", "http://")):
            raise GatewayConfigError(
                f"{where}.webhook_url must be an absolute http(s) URL, got {url!r}."
            )
        variable = text_field(entry.get("secret_env"), f"{where}.secret_env")
        secret = env_secret(env, variable, f"{where}.secret_env")
        if len(secret.split()) != 1:
            raise GatewayConfigError(
                f"{where}.secret_env: ${variable} holds several secrets; a channel signs with "
                "one 'whsec_<base64>' secret."
            )
        decode_webhook_secret(secret, f"{where}.secret_env (${variable})")
        timeout = entry.get("timeout_seconds", DEFAULT_WEBHOOK_TIMEOUT_SECONDS)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= MAX_WEBHOOK_TIMEOUT_SECONDS
        ):
            raise GatewayConfigError(
                f"{where}.timeout_seconds must be a number of seconds in (0, "
                f"{MAX_WEBHOOK_TIMEOUT_SECONDS:g}], got {timeout!r}."
            )
        targets.append(
            NotificationTarget(
                channel=channel, webhook_url=url, secret=secret, timeout_seconds=float(timeout)
            )
        )
    return tuple(targets)
