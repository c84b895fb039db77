"""Who is using the inbox: the API's bearer credentials, or a login cookie (gateway side).

The inbox takes ``Authorization: Bearer <JWT or API key>`` exactly as the API does
(deployments put an authenticating proxy such as oauth2-proxy in front, which passes it).
For a browser without such a proxy, ``/inbox/login`` takes a pasted API key or JWT,
verifies it with the same :class:`~triggerflow_temporal.gateway._auth.Authenticator`, and
keeps it in a cookie: ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other
site's request carries it), ``Path=/inbox`` (the API never sees it), ``Secure`` when the
request came over https. The cookie is verified again on every request, so an expired JWT
or a removed API key ends the session.

CSRF: every inbox form carries ``__csrf``, an HMAC-SHA256 keyed with the session's
credential, which a page on another site cannot compute; a POST authenticated by the
cookie (or by nothing, on a loopback gateway without authentication) must carry it, and a
POST whose ``Sec-Fetch-Site`` is ``cross-site`` is refused outright. A POST with an
``Authorization`` header needs no CSRF token: browsers never add that header to a forged
cross-site request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import RedirectResponse

from ._auth import ANONYMOUS, Authenticator, Principal
from ._html import SECURITY_HEADERS, esc
from ._problems import Problem

COOKIE = "tf_inbox"
CSRF_FIELD = "__csrf"
COOKIE_PATH = "/inbox"
COOKIE_MAX_AGE_SECONDS = 12 * 3600
# API keys and JWTs: visible ASCII, no separators a header or cookie would split on.
_CREDENTIAL = re.compile(r"^[A-Za-z0-9._~+/=:@!$*-]{8,8192}$")
_CSRF_CONTEXT = b"triggerflow-temporal inbox csrf v1"


@dataclass(frozen=True)
class Session:
    """The inbox's caller.

    Attributes:
        principal: Who it is.
        source: ``header`` (Authorization), ``cookie`` (logged in here) or ``none`` (a
            loopback gateway without authentication).
        csrf: The CSRF token its forms carry.
    """

    principal: Principal
    source: str
    csrf: str

    @property
    def needs_csrf(self) -> bool:
        """Whether its POSTs must carry :data:`CSRF_FIELD`."""
        return self.source != "header"


class LoginRequired(Exception):
    """No usable credentials; the page redirects to the login page with ``reason``."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "login")
        self.reason = reason


class Forbidden(Exception):
    """A POST that failed the CSRF checks (answered 403, nothing changes)."""


def csrf_token(credential: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 keyed with its credential."""
    return hmac.new(credential.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def encode_cookie(credential: str) -> str:
    """The cookie value of ``credential`` (base64url: no quoting in any browser)."""
    return base64.urlsafe_b64encode(credential.encode()).decode().rstrip("=")


def decode_cookie(value: str) -> str | None:
    """The credential in a cookie value, or None when it is not one of ours."""
    try:
        padded = value + "=" * (-len(value) % 4)
        credential = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    return credential if _CREDENTIAL.match(credential) else None


def valid_credential(text: str) -> bool:
    """Whether a pasted credential has the shape of an API key or a JWT."""
    return bool(_CREDENTIAL.match(text))


class InboxAuth:
    """Resolves the inbox's :class:`Session` from a request.

    Args:
        authenticator: The gateway's authenticator (the API's).
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        # Without authentication (loopback only) forms still carry a CSRF token, keyed
        # with a secret of this process.
        self._anonymous = secrets.token_urlsafe(32)

    async def session(self, request: Request) -> Session:
        """The caller, from ``Authorization``, else the login cookie.

        Raises:
            LoginRequired: No credentials, or a cookie that no longer verifies.
            Problem: 401 for a refused ``Authorization`` header; 503 (JWKS unreachable).
        """
        header = request.headers.get("authorization")
        if header:
            principal = await self.authenticator.authenticate(header)
            credential = header.strip().partition(" ")[2].strip()
            return Session(principal, "header", csrf_token(credential))
        if not self.authenticator.required:
            return Session(ANONYMOUS, "none", csrf_token(self._anonymous))
        raw = request.cookies.get(COOKIE)
        if not raw:
            raise LoginRequired()
        credential = decode_cookie(raw)
        if credential is None:
            raise LoginRequired("expired")
        try:
            principal = await self.authenticator.authenticate(f"Bearer {credential}")
        except Problem as problem:
            if problem.status == 401:
                raise LoginRequired("expired") from None
            raise
        return Session(principal, "cookie", csrf_token(credential))

    async def login(self, credential: str) -> Principal:
        """Verify a pasted credential (the API's rules).

        Raises:
            Problem: 401 when it does not verify.
        """
        return await self.authenticator.authenticate(f"Bearer {credential}")


def check_post(request: Request, session: Session, form: Mapping[str, Sequence[str]]) -> None:
    """Refuse a cross-site POST and, for cookie sessions, one without the CSRF token.

    Raises:
        Forbidden: The POST must not act.
    """
    refuse_cross_site(request)
    if not session.needs_csrf:
        return
    sent = (form.get(CSRF_FIELD) or [""])[-1]
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Forbidden()


def refuse_cross_site(request: Request) -> None:
    """Refuse a request a browser marks as sent by another site (``Sec-Fetch-Site``).

    Raises:
        Forbidden: ``Sec-Fetch-Site: cross-site``.
    """
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise Forbidden()


def login_cookie(response: RedirectResponse, credential: str, *, secure: bool) -> None:
    """Set the login cookie on ``response``."""
    response.set_cookie(
        COOKIE,
        encode_cookie(credential),
        max_age=COOKIE_MAX_AGE_SECONDS,
        path=COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: RedirectResponse, *, secure: bool) -> None:
    """Remove the login cookie."""
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=secure, httponly=True, samesite="strict"
    )


def is_https(request: Request) -> bool:
    """Whether the browser talks https to us (directly, or as the proxy says)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def redirect(location: str) -> RedirectResponse:
    """A 303 to ``location`` (a path of ours) with the pages' security headers."""
    return RedirectResponse(location, status_code=303, headers=dict(SECURITY_HEADERS))


def who(session: Session) -> str:
    """The header bar's "signed in as" markup, with a logout button for cookie sessions."""
    principal = session.principal
    text = f"{esc(principal.subject)} <span class='muted'>({esc(principal.tenant)})</span>"
    if session.source == "cookie":
        return (
            f"<span class='who'>Signed in as {text} "
            "<form method='post' action='/inbox/logout'>"
            f"<input type='hidden' name='{CSRF_FIELD}' value='{esc(session.csrf)}'>"
            "<button type='submit'>Log out</button></form></span>"
        )
    how = "through your proxy" if session.source == "header" else "without authentication"
    return f"<span class='who'>Signed in as {text} {esc(how)}</span>"
