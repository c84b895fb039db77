"""Approval links: signed, single-use tokens that let one approver answer one interrupt.

The worker mints them (in the notification activity, so the secret never reaches workflow
history) and the gateway checks them at ``GET/POST /a/{token}``. A token is a JWT (HS256,
PyJWT) bound to the execution, the interrupt and its round (``resume_count``, so a link of
an earlier round of a ``resume_to="self"`` interrupt does not answer the next), a SHA-256
of the interrupt's payload, the approver's subject and tenant, and an expiry no later than
the pause's deadline. Single use comes from the interrupt: the POST resumes it with
``resume_request_id="link:<jti>"``, after which it is no longer waiting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jwt

if TYPE_CHECKING:
    from jwt.types import Options

LINK_AUDIENCE = "triggerflow-approval-link"
LINK_ISSUER = "triggerflow-temporal"
MIN_LINK_SECRET_BYTES = 32
DEFAULT_LINK_TTL_SECONDS = 7 * 24 * 3600.0
_ALGORITHM = "HS256"


class LinkError(ValueError):
    """A token that does not verify.

    Attributes:
        reason: ``"expired"`` (signature good, too late) or ``"invalid"`` (tampered,
            malformed, signed with another key or for another purpose).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def payload_hash(payload: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of an interrupt's payload."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class LinkClaims:
    """What a verified token grants: ``subject`` may answer this interrupt once."""

    execution_id: str
    interrupt_id: str
    round: int
    payload_hash: str
    subject: str
    tenant: str | None
    expires_at: float
    token_id: str

    @property
    def resume_request_id(self) -> str:
        """The ``resume_request_id`` the link's POST resumes with (one use per token)."""
        return f"link:{self.token_id}"


class ApprovalLinks:
    """Mints and verifies approval links (``links.base_url`` + ``links.secret_env``).

    Args:
        base_url: The gateway's public URL; links are ``{base_url}/a/{token}``.
        secret: The HS256 key (at least 32 bytes), shared by workers and gateways.
        ttl_seconds: Lifetime of a link when the pause has no earlier deadline.
    """

    def __init__(
        self, base_url: str, secret: bytes, *, ttl_seconds: float = DEFAULT_LINK_TTL_SECONDS
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"links base_url must be an absolute http(s) URL, got {base_url!r}.")
        if len(secret) < MIN_LINK_SECRET_BYTES:
            raise ValueError(
                f"the approval link secret is {len(secret)} bytes; use at least "
                f"{MIN_LINK_SECRET_BYTES} random bytes."
            )
        if ttl_seconds <= 0:
            raise ValueError(f"links ttl_seconds must be > 0, got {ttl_seconds!r}.")
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def token(
        self,
        *,
        execution_id: str,
        interrupt_id: str,
        round: int,
        payload: Any,
        subject: str,
        tenant: str | None,
        deadline: float | str | None = None,
        now: float | None = None,
        token_id: str | None = None,
    ) -> str:
        """A signed token for ``subject`` to answer this round of the interrupt.

        Args:
            execution_id: The execution.
            interrupt_id: The interrupt.
            round: The interrupt's ``resume_count``.
            payload: The interrupt's payload (the token holds its hash).
            subject: The approver.
            tenant: The execution's tenant.
            deadline: The pause's deadline: seconds since 1970 or RFC 3339 (as notification
                bodies carry it); the link expires no later.
            now: Issue time (default: the wall clock).
            token_id: The ``jti`` (default: random).
        """
        now = time.time() if now is None else now
        expires = now + self.ttl_seconds
        if deadline is not None:
            expires = min(expires, _epoch(deadline))
        claims = {
            "iss": LINK_ISSUER,
            "aud": LINK_AUDIENCE,
            "sub": subject,
            "ten": tenant,
            "exe": execution_id,
            "int": interrupt_id,
            "rnd": int(round),
            "ph": payload_hash(payload),
            "iat": int(now),
            "exp": int(expires),
            "jti": token_id or secrets.token_urlsafe(16),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def url(self, token: str) -> str:
        """The absolute link of ``token``."""
        return f"{self.base_url}/a/{quote(token, safe='')}"

    def links_for(
        self,
        event: dict[str, Any],
        *,
        round: int,
        subjects: list[str],
        now: float | None = None,
        token_seed: str | None = None,
    ) -> dict[str, str]:
        """``{subject: url}`` for a notification ``event`` (gateway.md body fields).

        Args:
            event: The notification body (``execution_id``, ``interrupt_id``, ``payload``,
                ``tenant``, ``deadline``).
            round: The interrupt's ``resume_count``.
            subjects: Whom to mint a link for.
            now: Issue time (default: the wall clock).
            token_seed: Makes each subject's token id a keyed hash of the seed (the event's
                ``webhook-id``) instead of random: with the same ``now``, every retry of a
                delivery then carries byte-identical links.
        """
        return {
            subject: self.url(
                self.token(
                    execution_id=event["execution_id"],
                    interrupt_id=event["interrupt_id"],
                    round=round,
                    payload=event.get("payload"),
                    subject=subject,
                    tenant=event.get("tenant"),
                    deadline=event.get("deadline"),
                    now=now,
                    token_id=None if token_seed is None else self._token_id(token_seed, subject),
                )
            )
            for subject in subjects
        }

    def _token_id(self, seed: str, subject: str) -> str:
        # Keyed, so a token id says nothing about the event to whoever lacks the secret.
        digest = hmac.new(self._secret, f"jti|{seed}|{subject}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()[:16]).decode().rstrip("=")

    def verify(self, token: str, *, now: float | None = None) -> LinkClaims:
        """The claims of a genuine, unexpired token.

        Raises:
            LinkError: ``reason="expired"`` or ``reason="invalid"``.
        """
        required = ["exp", "iat", "sub", "jti", "aud", "iss"]
        options: Options = {"require": required}
        relaxed: Options = {"require": required, "verify_exp": False}
        try:
            # PyJWT checks exp against the wall clock; with a given "now" (tests) it is
            # checked here instead.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=LINK_AUDIENCE,
                issuer=LINK_ISSUER,
                options=options if now is None else relaxed,
            )
            if now is not None and float(claims["exp"]) <= now:
                raise jwt.ExpiredSignatureError("Signature has expired")
        except jwt.ExpiredSignatureError:
            raise LinkError(
                "expired", "This approval link has expired; ask for a new one."
            ) from None
        except jwt.PyJWTError as error:
            raise LinkError("invalid", f"This approval link is not valid ({error}).") from None
        try:
            return LinkClaims(
                execution_id=_text(claims, "exe"),
                interrupt_id=_text(claims, "int"),
                round=int(claims["rnd"]),
                payload_hash=_text(claims, "ph"),
                subject=_text(claims, "sub"),
                tenant=claims.get("ten") if isinstance(claims.get("ten"), str) else None,
                expires_at=float(claims["exp"]),
                token_id=_text(claims, "jti"),
            )
        except (KeyError, TypeError, ValueError):
            raise LinkError("invalid", "This approval link is missing a claim.") from None


def _epoch(moment: float | str) -> float:
    """Seconds since 1970 of a number or an RFC 3339 time (``...Z`` or with an offset)."""
    if isinstance(moment, str):
        parsed = datetime.fromisoformat(moment.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return float(moment)


def _text(claims: dict[str, Any], key: str) -> str:
    value = claims[key]
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value
