"""Standard Webhooks signatures, shared by the worker's sender and the gateway's verifier.

A message is signed with ``base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"))``
under the ``v1`` scheme; the key is the base64 part of a ``whsec_<base64>`` secret
(https://www.standardwebhooks.com, "Signature scheme"). The gateway verifies third-party
webhooks with :func:`sign`; the worker's :class:`~.notifications.WebhookChannel` sends its
notifications with :func:`signature_headers`, so a receiver can check them with any
Standard Webhooks library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

SECRET_PREFIX = "whsec_"
"""Prefix of a Standard Webhooks secret (the rest is standard base64 of the key)."""


def sign(key: bytes, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``v1,<base64>`` signature of a message (what a sender puts in the header).

    Args:
        key: The decoded signing key (:func:`decode_secret`).
        webhook_id: The message's ``webhook-id``.
        timestamp: The message's ``webhook-timestamp`` (integer seconds since 1970).
        body: The exact bytes of the request body.
    """
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def decode_secret(secret: str, *, min_bytes: int = 0) -> bytes:
    """The signing key of a Standard Webhooks secret ``whsec_<base64>``.

    Args:
        secret: ``"whsec_"`` followed by standard base64.
        min_bytes: Refuse keys shorter than this.

    Raises:
        ValueError: Wrong prefix, not base64, or shorter than ``min_bytes``; the message
            says which.
    """
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret must be {SECRET_PREFIX!r} followed by base64.")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX!r} is not base64.") from None
    if len(key) < max(min_bytes, 1):
        raise ValueError(
            f"the webhook secret decodes to {len(key)} bytes; use at least {max(min_bytes, 1)} "
            '(python -c \'import base64,secrets; print("whsec_" + '
            "base64.b64encode(secrets.token_bytes(32)).decode())')."
        )
    return key


def signature_headers(
    secret_key: bytes, webhook_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt.

    Args:
        secret_key: The decoded signing key.
        webhook_id: The event's id: the same on every attempt, so receivers can dedup.
        body: The exact bytes that will be sent.
        now: Seconds since 1970 (default: the wall clock); receivers refuse timestamps
            more than their tolerance (usually 5 minutes) away from their own clock, so
            each attempt signs with its own time.
    """
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret_key, webhook_id, timestamp, body),
    }
