"""``triggerflow-temporal worker --config FILE``: the worker's notification channels and links.

The worker reads the gateway's config file (``--config``, else ``TRIGGERFLOW_GATEWAY_CONFIG``)
for its ``notifications`` (webhook channels) and ``links`` (approval links minted into
them); the gateway's own sections are not its business. See docs/notifications.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..gateway import GatewayConfigError
from ..gateway._config_worker import WorkerConfig, load_worker_config
from ..plugin.links import ApprovalLinks
from ..plugin.notifications import NotificationChannel, WebhookChannel
from .config import CLIError


@dataclass
class WorkerNotifications:
    """What ``TriggerFlowPlugin(notifiers=..., approval_links=...)`` gets from the file."""

    channels: list[NotificationChannel] = field(default_factory=lambda: [])
    approval_links: ApprovalLinks | None = None
    source: str | None = None


def worker_notifications(
    path: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> WorkerNotifications:
    """The channels and approval links the config file gives a worker.

    Raises:
        CLIError: The file cannot be read, or a ``notifications`` / ``links`` entry is
            wrong (the message names the key and the fix).
    """
    try:
        config = load_worker_config(path, env=env)
        return _build(config)
    except GatewayConfigError as error:
        raise CLIError(str(error)) from None


def _build(config: WorkerConfig) -> WorkerNotifications:
    channels: list[NotificationChannel] = []
    for i, target in enumerate(config.notifications):
        try:
            channels.append(
                WebhookChannel(
                    target.channel,
                    target.webhook_url,
                    target.secret,
                    timeout=target.timeout_seconds,
                )
            )
        except ValueError as error:  # checked by the config already; named here if not
            raise GatewayConfigError(f"notifications[{i}]: {error}") from None
    links = None
    if config.links is not None:
        try:
            links = ApprovalLinks(
                config.links.base_url, config.links.secret, ttl_seconds=config.links.ttl_seconds
            )
        except ValueError as error:
            raise GatewayConfigError(f"links: {error}") from None
    return WorkerNotifications(channels=channels, approval_links=links, source=config.source)
