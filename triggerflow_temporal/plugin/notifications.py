"""Notification channels (worker side): what a channel is handed and the built-in webhook.

A channel is an object with a ``name`` and an ``async send(notification)``; the worker's
delivery activity calls it once per attempt. Returning means delivered; raising asks for a
retry (with backoff, under the same ``webhook-id``), and :class:`PermanentDeliveryError`
gives up on this event for this channel at once. Delivery is at least once: a channel may
be called again for an event it already delivered (the worker died before Temporal heard
back), so receivers dedup by ``notification.webhook_id``.

A chat channel in a few lines::

    class ChatChannel(NotificationChannel):
        def __init__(self, name: str, url: str) -> None:
            self.name, self.url = name, url

        async def send(self, notification: Notification) -> None:
            text = f"{notification.type}: {notification.body['interrupt_id']}"
            async with httpx.AsyncClient(timeout=10) as http:
                (await http.post(self.url, json={"text": text})).raise_for_status()
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import httpx

from .webhook_signing import decode_secret, signature_headers

MIN_WEBHOOK_SECRET_BYTES = 16
"""Shortest signing key a :class:`WebhookChannel` accepts (as the gateway's verifier)."""


class PermanentDeliveryError(Exception):
    """Raised by a channel to give up on this event for this channel (no more retries).

    For answers that no retry changes: the receiver refused the request as malformed, the
    channel's account is gone. The notify workflow records the channel as
    ``"failed: <message>"``.
    """


@dataclass(frozen=True)
class Notification:
    """One event handed to one channel.

    Attributes:
        channel: The channel's name.
        webhook_id: The event's id: the same for every channel and every retry; receivers
            dedup by it.
        body: The flat JSON body of docs/notifications.md (``type``, ``execution_id``,
            ``flow``, ``tenant``, ``interrupt_id``, ``interrupt_type``, ``payload``,
            ``assignees``, ``candidate_groups``, ``deadline``, ``links``, ``at``), with
            ``links`` filled when approval links are configured.
        attempt: 1 for the first delivery attempt, then 2, 3, ... (a retry after a worker
            died counts too).
    """

    channel: str
    webhook_id: str
    body: dict[str, Any] = field(default_factory=lambda: {})
    attempt: int = 1

    @property
    def type(self) -> str:
        """The event type (``interrupt.created``, ..., ``execution.completed``)."""
        return str(self.body.get("type", ""))

    @property
    def links(self) -> dict[str, str]:
        """``{subject: approval link URL}`` (empty when the event offers none)."""
        return dict(self.body.get("links") or {})

    def to_json(self) -> bytes:
        """The body as compact UTF-8 JSON: the same bytes on every attempt."""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


class NotificationChannel(ABC):
    """Base class of a notification channel (subclass it and implement :meth:`send`).

    Attributes:
        name: The channel's name, unique on the worker: pauses name it in
            ``pause_for(channel_id=...)``, the delivery results report by it.
    """

    name: str

    @abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver ``notification``; raise to have it retried.

        Raises:
            PermanentDeliveryError: Do not retry this event on this channel.
            Exception: Anything else is retried with backoff (at most 30 s apart) until
                the delivery deadline.
        """


class WebhookChannel(NotificationChannel):
    """POST each event as JSON, signed by the Standard Webhooks scheme.

    Headers ``webhook-id`` (the event's id, every attempt), ``webhook-timestamp`` (integer
    seconds of this attempt) and ``webhook-signature`` (``v1,<base64>``). A 2xx answer is a
    delivery; anything else, or no answer within ``timeout``, is retried.

    Args:
        name: The channel's name.
        url: Where to POST (http or https).
        secret: ``"whsec_"`` + standard base64 of at least 16 random bytes.
        timeout: Seconds one attempt may take.

    Raises:
        ValueError: A malformed URL, secret or timeout.
    """

    def __init__(self, name: str, url: str, secret: str, *, timeout: float = 10.0) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"WebhookChannel needs a non-empty name, got {name!r}.")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(
                f"WebhookChannel {name!r}: url must be an absolute http(s) URL, got {url!r}."
            )
        try:
            self._key = decode_secret(secret, min_bytes=MIN_WEBHOOK_SECRET_BYTES)
        except ValueError as error:
            raise ValueError(f"WebhookChannel {name!r}: {error}") from None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"WebhookChannel {name!r}: timeout must be > 0 s, got {timeout!r}.")
        self.name = name
        self.url = url
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return f"WebhookChannel({self.name!r}, {self.url!r})"  # never the secret

    async def send(self, notification: Notification) -> None:
        """POST the body; a non-2xx answer raises (and is retried)."""
        body = notification.to_json()
        headers = {
            "content-type": "application/json",
            "user-agent": "triggerflow-temporal",
            **signature_headers(self._key, notification.webhook_id, body, time.time()),
        }
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            response = await http.post(self.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise WebhookDeliveryError(
                f"{self.url} answered {response.status_code}"
                + (f": {response.text[:200]}" if response.text else "")
            )


class WebhookDeliveryError(Exception):
    """A webhook receiver answered with a non-2xx status (retried)."""
