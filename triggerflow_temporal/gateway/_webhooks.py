"""Standard Webhooks verification and replay protection (gateway side).

A request is genuine when one of the space-separated ``v1,<base64>`` entries of
``webhook-signature`` equals ``base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"))``
for one of the sender's keys (compared in constant time), and ``webhook-timestamp`` is
within the sender's tolerance (5 minutes by default) of now. A ``webhook-id`` is accepted
once: :class:`ReplayGuard` remembers the ids it delivered for twice the tolerance, which
covers every replay whose timestamp still verifies. It lives in this process: across
gateway replicas the message's ``message_id`` (``webhook:<sender>:<webhook-id>``), which
the mailbox delivers once, is what guarantees a single delivery.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping

from ..plugin.webhook_signing import sign
from ._config_types import WebhookSender
from ._problems import Problem

__all__ = ["ReplayGuard", "sign", "verify", "webhook_unauthorized"]

MAX_REMEMBERED = 100_000


def webhook_unauthorized(sender: str, detail: str) -> Problem:
    """A 401 for a webhook that does not verify."""
    return Problem(
        401,
        detail,
        headers={"WWW-Authenticate": f'Signature realm="webhooks/{sender}"'},
    )


def verify(
    sender: WebhookSender, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> str:
    """Check a webhook's signature and timestamp; return its ``webhook-id``.

    Raises:
        Problem: 401 when a header is missing or malformed, the timestamp is outside the
            tolerance, or no signature matches.
    """
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    name = sender.sender
    if not webhook_id or not timestamp or not signatures:
        raise webhook_unauthorized(
            name, "A webhook needs the webhook-id, webhook-timestamp and webhook-signature headers."
        )
    if len(webhook_id) > 256 or not webhook_id.isprintable():
        raise webhook_unauthorized(name, "webhook-id must be 1-256 printable characters.")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise webhook_unauthorized(name, "webhook-timestamp must be integer seconds since 1970.")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > sender.tolerance_seconds:
        raise webhook_unauthorized(
            name,
            f"webhook-timestamp is more than {sender.tolerance_seconds} s away from now; the "
            "message is stale or the sender's clock is off.",
        )
    expected = [sign(key, webhook_id, timestamp, body).encode() for key in sender.secrets]
    matched = False
    for candidate in signatures.split(" "):
        if not candidate.startswith("v1,"):
            continue  # other schemes (v1a) are not used by this gateway
        for wanted in expected:  # no early exit: timing does not tell which part matched
            if hmac.compare_digest(candidate.encode(), wanted):
                matched = True
    if not matched:
        raise webhook_unauthorized(
            name, f"No webhook-signature verifies with sender {name!r}'s secret."
        )
    return webhook_id


class ReplayGuard:
    """Which webhook ids were delivered (or are being delivered) recently, in this process.

    Args:
        max_entries: Bound on remembered ids (the oldest are forgotten first).
    """

    def __init__(self, max_entries: int = MAX_REMEMBERED) -> None:
        self._max = max_entries
        self._seen: dict[tuple[str, str], tuple[float, bool]] = {}

    def claim(self, sender: str, webhook_id: str, keep_seconds: float) -> str:
        """Claim an id for delivery: ``"new"``, ``"done"`` (delivered) or ``"busy"``."""
        now = time.monotonic()
        self._forget(now)
        key = (sender, webhook_id)
        found = self._seen.get(key)
        if found is not None and found[0] > now:
            return "done" if found[1] else "busy"
        self._seen[key] = (now + keep_seconds, False)
        return "new"

    def delivered(self, sender: str, webhook_id: str, keep_seconds: float) -> None:
        """Mark a claimed id as delivered (a replay is now answered without delivering)."""
        self._seen[(sender, webhook_id)] = (time.monotonic() + keep_seconds, True)

    def release(self, sender: str, webhook_id: str) -> None:
        """Forget a claim whose delivery failed, so the sender's retry is delivered."""
        self._seen.pop((sender, webhook_id), None)

    def _forget(self, now: float) -> None:
        if len(self._seen) < self._max:
            return
        for key in [k for k, (until, _) in self._seen.items() if until <= now]:
            del self._seen[key]
        while len(self._seen) >= self._max:
            del self._seen[next(iter(self._seen))]
