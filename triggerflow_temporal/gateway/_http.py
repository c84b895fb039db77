"""Request plumbing of the gateway: body size cap, JSON bodies, trace context.

The size cap is an ASGI middleware: a ``Content-Length`` over the limit is refused before a
byte is read, and a streamed (chunked) body is counted as it arrives and refused as soon as
it passes the limit, so nothing over the limit is ever buffered or parsed. Bodies are then
parsed here (not by FastAPI), so malformed JSON, JSON nested too deeply and bodies of the
wrong shape are all 400 problems naming the field.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import MutableMapping
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._problems import PROBLEM_JSON, Problem

_Model = TypeVar("_Model", bound=BaseModel)
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class BodyTooLarge(Exception):
    """The request body passed the gateway's limit while it was being read."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, before anything parses them.

    Args:
        app: The wrapped ASGI app.
        max_bytes: The limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length`` and count streamed bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                await _send_problem(scope, send, Problem(400, "Content-Length is not a number."))
                return
            if int(length) > self.max_bytes:
                await _send_problem(scope, send, self._too_large(int(length)))
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self._too_large(None))
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as error:
            if started:
                raise
            await _send_problem(scope, send, error.problem)

    def _too_large(self, length: int | None) -> Problem:
        size = f"{length:,} bytes" if length is not None else "more than the limit"
        return Problem(
            413,
            f"The request body is {size}; this gateway accepts at most {self.max_bytes:,} "
            "bytes (Temporal's payload cap). Store large content in the Workspace and send "
            "its ref.",
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


async def _send_problem(scope: Scope, send: Send, problem: Problem) -> None:
    body = json.dumps(problem.body(scope.get("path", ""))).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in problem.headers.items()),
    ]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TraceMiddleware:
    """Give every request a W3C trace context and answer with it in ``traceparent``.

    An incoming valid ``traceparent`` keeps its trace id (a new span id is drawn for the
    gateway's part); otherwise a new trace starts. ``scope["state"]["traceparent"]`` holds
    the value for the routes (recorded on executions the request starts).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Attach and echo the trace context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _TRACEPARENT.match(_header(scope, b"traceparent") or "")
        trace_id = incoming.group(1) if incoming and incoming.group(1) != "0" * 32 else None
        flags = incoming.group(3) if incoming else "01"
        value = f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-{flags}"
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["traceparent"] = value

        async def with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"traceparent", value.encode())]
            await send(message)

        await self.app(scope, receive, with_trace)


def traceparent(request: Request) -> str | None:
    """The request's trace context (set by :class:`TraceMiddleware`)."""
    return getattr(request.state, "traceparent", None)


async def read_body(request: Request) -> bytes:
    """The raw body, within the limit (a 413 problem past it)."""
    try:
        return await request.body()
    except BodyTooLarge as error:
        raise error.problem from None
    except Exception as error:  # client went away mid-body, bad chunking
        raise Problem(400, f"The request body could not be read: {error}.") from None


def parse_json(raw: bytes, *, required: bool = True) -> Any:
    """Parse a JSON body.

    Raises:
        Problem: 400 for an empty (when ``required``), non-UTF-8, malformed or too deeply
            nested body.
    """
    if not raw.strip():
        if required:
            raise Problem(400, "The request needs a JSON body; see /docs for its shape.")
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Problem(400, "The request body is not UTF-8 encoded JSON.") from None
    except RecursionError:
        raise Problem(400, "The JSON body is nested too deeply.") from None
    except ValueError as error:
        raise Problem(400, f"The request body is not valid JSON: {error}.") from None


async def read_model(request: Request, model: type[_Model], *, required: bool = True) -> _Model:
    """Read, parse and validate the JSON body as ``model`` (400 naming the field)."""
    data = parse_json(await read_body(request), required=required)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Problem(400, f"The request body must be a JSON object, got {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        parts = []
        for item in error.errors()[:5]:
            where = ".".join(str(p) for p in item.get("loc", ())) or "<body>"
            parts.append(f"{where}: {item.get('msg')}")
        raise Problem(400, "Invalid request body: " + "; ".join(parts) + ".") from None


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, checked (1-200 visible ASCII characters)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise Problem(
            400, "Idempotency-Key must be 1-200 visible ASCII characters (no spaces), e.g. a UUID."
        )
    return key


def body_doc(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body the route parses itself."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
