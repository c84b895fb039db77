"""Who may call the service, and what a request may look like before it is parsed.

HTTP layer (service side). Every request except ``/healthz`` and the OpenAPI pages needs
``Authorization: Bearer <token>``; each token is bound to one tenant. :class:`RequestGuard`
checks every request in this order before any JSON is parsed: the bearer token (401, the body is
never read), the body size (413), then the shape of the JSON body: at most ``max_elements``
values and :data:`MAX_JSON_DEPTH` levels of nesting (400).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from workspace.errors import AuthenticationError, InvalidInputError
from workspace.http.wire import HEALTH

__all__ = [
    "DEFAULT_MAX_JSON_ELEMENTS",
    "MAX_JSON_DEPTH",
    "MIN_TOKEN_LENGTH",
    "TOKEN_HINT",
    "RequestGuard",
    "check_json_shape",
    "check_tokens",
    "parse_tokens",
    "tenant_for_token",
]

# JSON values (array items, object member values, the body itself) in one request body.
DEFAULT_MAX_JSON_ELEMENTS = 100_000
# Nesting of a request body: content and scope/meta may nest 64 levels, plus the wrapping.
MAX_JSON_DEPTH = 100
MIN_TOKEN_LENGTH = 16
TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# Served without a token: health and the OpenAPI pages.
PUBLIC_PATHS = frozenset({HEALTH, "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# The tenant the guard authenticated, in the ASGI scope's ``state``.
TENANT_STATE = "ws_tenant"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def parse_tokens(spec: str | None) -> dict[str, str]:
    """Parse ``token1:tenantA,token2:tenantB``.

    Args:
        spec: The specification (None or blank: no tokens).

    Returns:
        Tenant by token.

    Raises:
        ValueError: For an entry without ``:`` or with an empty token or tenant, a token shorter
            than :data:`MIN_TOKEN_LENGTH` characters, or a token given twice. The message names
            the entry by position and never contains a whole token.
    """
    tokens: dict[str, str] = {}
    for position, raw in enumerate((spec or "").split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        token, sep, tenant = entry.rpartition(":")
        token, tenant = token.strip(), tenant.strip()
        if not sep or not token or not tenant:
            raise ValueError(
                f"bad WORKSPACE_TOKENS entry {position} ({entry.split(':')[0][:4]}...); "
                "use token:tenant pairs separated by commas"
            )
        if token in tokens:
            raise ValueError(
                f"WORKSPACE_TOKENS entry {position} repeats the token of an earlier entry "
                f"(tenants {tokens[token]!r} and {tenant!r}); each token must select exactly "
                "one tenant"
            )
        tokens[token] = tenant
    check_tokens(tokens)
    return tokens


def check_tokens(tokens: Mapping[str, str]) -> None:
    """Check a token map: string tokens of at least :data:`MIN_TOKEN_LENGTH` characters.

    Args:
        tokens: Tenant by token.

    Raises:
        ValueError: Naming the tenant of a bad token (never the token).
    """
    for token, tenant in tokens.items():
        if not isinstance(token, str) or not isinstance(tenant, str) or not tenant:
            raise ValueError("WORKSPACE_TOKENS: every token needs a tenant name (token:tenant)")
        if len(token) < MIN_TOKEN_LENGTH or token != token.strip() or "," in token:
            raise ValueError(
                f"WORKSPACE_TOKENS: the token of tenant {tenant!r} has {len(token)} characters; "
                f"tokens need at least {MIN_TOKEN_LENGTH}, without commas or surrounding spaces; "
                f"{TOKEN_HINT}"
            )


def tenant_for_token(token_map: Mapping[str, str], header: str) -> str:
    """The tenant of an ``Authorization`` header value.

    Args:
        token_map: Tenant by token.
        header: The header value (empty when absent).

    Returns:
        The tenant.

    Raises:
        AuthenticationError: For a missing, malformed or unknown bearer token.
    """
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing bearer token; send 'Authorization: Bearer <token>'")
    presented = token.strip().encode()
    # Compare against every token in constant time so timing does not reveal prefixes.
    tenant = None
    for known, owner in list(token_map.items()):
        if hmac.compare_digest(known.encode(), presented):
            tenant = owner
    if tenant is None:
        raise AuthenticationError("unknown bearer token")
    return tenant


# A JSON string once its escapes are gone (a single repetition: linear, no backtracking state).
_JSON_STRING = re.compile(rb'"[^"]*"')
_WHITESPACE = b" \t\r\n"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def check_json_shape(body: bytes, max_elements: int, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a JSON body with too many values or too deep nesting, without parsing it.

    Only byte counts and one regular expression over a bounded number of strings: a body of
    millions of tiny elements costs milliseconds and a few copies of itself, instead of seconds
    of CPU and hundreds of MB of Python objects.

    Args:
        body: The raw body.
        max_elements: Most JSON values allowed (array items, member values, the top value).
        max_depth: Most nested arrays/objects allowed.

    Raises:
        InvalidInputError: Naming the limit that was exceeded.
    """
    too_many = InvalidInputError(
        f"request body has more than {max_elements} JSON values (the service's "
        "max_json_elements limit); split the content into several records"
    )
    opens = body.count(b"[") + body.count(b"{")
    if 1 + body.count(b",") + opens <= max_elements and opens <= max_depth:
        return  # an upper bound (strings included) is already within both limits
    skeleton = body
    if b'"' in body:
        # Drop escaped backslashes, then escaped quotes: every quote left delimits a string.
        if b"\\" in body:
            skeleton = skeleton.replace(b"\\\\", b"").replace(b'\\"', b"")
        # Every string is a value or an object key, and every key has its own value.
        if skeleton.count(b'"') // 4 > max_elements:
            raise too_many
        skeleton = _JSON_STRING.sub(b"0", skeleton)
    skeleton = skeleton.translate(None, _WHITESPACE)
    opens = skeleton.count(b"[") + skeleton.count(b"{")
    empties = skeleton.count(b"[]") + skeleton.count(b"{}")
    if 1 + skeleton.count(b",") + opens - empties > max_elements:
        raise too_many
    if opens <= max_depth:
        return
    depth = deepest = 0
    for char in skeleton.translate(None, _NOT_BRACKETS):
        if char in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > max_depth:
                    raise InvalidInputError(
                        f"request body nests JSON deeper than {max_depth} levels"
                    )
        else:
            depth -= 1


class RequestGuard:
    """ASGI middleware run before FastAPI parses anything.

    1. Authentication from the ``Authorization`` header alone: a missing or unknown token gets
       401 and the body is never read (the connection is closed).
    2. Body size: over ``max_bytes`` gets 413 (from ``Content-Length`` before reading, or while
       reading a chunked body).
    3. JSON shape: more than ``max_elements`` values or ``MAX_JSON_DEPTH`` levels gets 400.

    The tenant of the token travels to the endpoints in ``scope["state"][TENANT_STATE]``.
    """

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        max_bytes: int,
        max_elements: int,
        tokens: Callable[[], Mapping[str, str]],
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.max_elements = max_elements
        self.tokens = tokens

    @staticmethod
    async def _send_error(
        send: Send, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]]
    ) -> None:
        body = json.dumps(payload).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, send: Send) -> None:
        message = (
            f"request body exceeds {self.max_bytes} bytes; store large content in smaller "
            "records or raise WORKSPACE_MAX_BODY_BYTES"
        )
        payload = {"error": "PayloadTooLargeError", "message": message}
        await self._send_error(send, 413, payload, [(b"connection", b"close")])

    async def _drain(self, receive: Receive, already: int) -> None:
        # Reading the rest lets the client finish sending and see the 413 instead of a reset
        # connection; past the cap the client is abusive and the connection is simply closed.
        cap = 4 * self.max_bytes + (1 << 20)
        while already <= cap:
            message = await receive()
            if message["type"] != "http.request":
                return
            already += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    def _authenticate(self, scope: Scope) -> str:
        token_map = self.tokens()
        if not token_map:
            return "default"
        header = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        return tenant_for_token(token_map, header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request, then hand it (with its buffered body) to the application."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path", "") not in PUBLIC_PATHS:
            try:
                tenant = self._authenticate(scope)
            except AuthenticationError as exc:
                await self._send_error(
                    send,
                    401,
                    exc.to_dict(),
                    [(b"www-authenticate", b"Bearer"), (b"connection", b"close")],
                )
                return
            scope.setdefault("state", {})[TENANT_STATE] = tenant
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    if declared <= 4 * self.max_bytes + (1 << 20):
                        await self._drain(receive, 0)
                    await self._too_large(send)
                    return
        # Buffer the body (bounded) so chunked uploads are limited too; replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                check_json_shape(body, self.max_elements)
            except InvalidInputError as exc:
                await self._send_error(send, 400, exc.to_dict(), [])
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
