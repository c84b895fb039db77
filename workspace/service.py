"""HTTP service exposing the Workspace contract (FastAPI).

Run it with ``python -m workspace serve``. Every request except ``/healthz`` and the OpenAPI
pages needs ``Authorization: Bearer <token>``; each token is bound to one tenant and only ever
sees that tenant's rows (another tenant's id answers 404, exactly like a missing one).

Every request is checked in this order before any JSON is parsed: the bearer token (401, the
body is never read), the body size (413), then the shape of the JSON body: at most
``max_json_elements`` values and ``MAX_JSON_DEPTH`` levels of nesting (400).

Environment:
    WORKSPACE_DATABASE_URL: Database URL or SQLite path (default ``./workspace.db``).
    WORKSPACE_TOKENS: ``token1:tenantA,token2:tenantB``; tokens have at least 16 characters and
        each appears once. Empty means no auth: every request acts for tenant ``default``
        (development only; a warning is logged, and ``python -m workspace serve`` refuses to
        listen on anything but a loopback address).
    WORKSPACE_MAX_BODY_BYTES: Request body limit in bytes (default 8 MiB); larger bodies get 413.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from workspace._common import DEFAULT_PAGE_SIZE
from workspace._storage import StorageWorkspace
from workspace._wire import decode_wire_content, encode_wire_content
from workspace.errors import (
    AuthenticationError,
    InvalidInputError,
    StorageBusyError,
    WorkspaceError,
)
from workspace.sql import DEFAULT_BUSY_TIMEOUT, SQLWorkspace
from workspace.types import Profile

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_JSON_ELEMENTS",
    "MAX_JSON_DEPTH",
    "MIN_TOKEN_LENGTH",
    "check_json_shape",
    "check_tokens",
    "create_app",
    "parse_tokens",
]

log = logging.getLogger("workspace.service")

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_DATABASE_URL = "workspace.db"
# JSON values (array items, object member values, the body itself) in one request body.
DEFAULT_MAX_JSON_ELEMENTS = 100_000
# Nesting of a request body: content and scope/meta may nest 64 levels, plus the wrapping.
MAX_JSON_DEPTH = 100
MIN_TOKEN_LENGTH = 16
TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# Served without a token: health and the OpenAPI pages.
PUBLIC_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

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


def _tenant_for_token(token_map: Mapping[str, str], header: str) -> str:
    """The tenant of an ``Authorization`` header value.

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


class _Guard:
    """ASGI middleware run before FastAPI parses anything.

    1. Authentication from the ``Authorization`` header alone: a missing or unknown token gets
       401 and the body is never read (the connection is closed).
    2. Body size: over ``max_bytes`` gets 413 (from ``Content-Length`` before reading, or while
       reading a chunked body).
    3. JSON shape: more than ``max_elements`` values or ``MAX_JSON_DEPTH`` levels gets 400.

    The tenant of the token travels to the endpoints in ``scope["state"]["ws_tenant"]``.
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
        return _tenant_for_token(token_map, header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            scope.setdefault("state", {})["ws_tenant"] = tenant
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


# -- request bodies ---------------------------------------------------------------------------

ContentTypeName = Literal["text", "json", "bytes"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestBody(_Body):
    """Body of ``POST /v1/records``; bytes content is base64 with ``content_type="bytes"``."""

    content: Any = Field(description="str (text), object/array (json) or base64 str (bytes)")
    content_type: ContentTypeName | None = Field(
        None, description="text, json or bytes; inferred from content when omitted"
    )
    collection: Any = Field(description="observations, artifacts, decisions or checkpoints")
    kind: StrictStr
    summary: StrictStr | None = None
    scope: dict[str, Any] | None = None
    source: StrictStr | None = None
    meta: dict[str, Any] | None = None


class SearchBody(_Body):
    """Body of ``POST /v1/search``."""

    query: StrictStr | None = None
    filters: dict[str, Any] | None = None
    scope: dict[str, Any] | None = None
    limit: StrictInt = 20
    cursor: StrictStr | None = None


class PruneBody(_Body):
    """Body of ``POST /v1/prune``."""

    scope: dict[str, Any] | None = None
    older_than_seconds: float | None = Field(None, ge=0)
    keep_last: StrictInt | None = None
    collection: Any = None


class LinkBody(_Body):
    """Body of ``POST /v1/links``."""

    source: StrictStr
    target: StrictStr
    relation: StrictStr
    meta: dict[str, Any] | None = None


class CheckpointBody(_Body):
    """Body of ``POST /v1/checkpoints``."""

    run_id: StrictStr
    state: Any
    content_type: ContentTypeName | None = None
    step_id: StrictStr | None = None
    scope: dict[str, Any] | None = None


class HistoryBody(_Body):
    """Body of ``POST /v1/checkpoints/history`` (``limit`` 1-1000, default 100)."""

    run_id: StrictStr
    step_id: StrictStr | None = None
    limit: StrictInt | None = None
    cursor: StrictStr | None = None
    scope: dict[str, Any] | None = None


class LatestBody(_Body):
    """Body of ``POST /v1/checkpoints/latest``."""

    run_id: StrictStr
    scope: dict[str, Any] | None = None


class ProfileBody(_Body):
    """An inline context profile (see ``workspace.types.Profile``)."""

    collection_weights: dict[str, float] = Field(
        default_factory=lambda: {"observations": 1.0, "artifacts": 1.0, "decisions": 1.0}
    )
    kind_weights: dict[str, float] = Field(default_factory=dict)
    relevance_weight: float = 0.7
    recency_weight: float = 0.3
    recency_half_life_s: float = 86400.0
    min_relevance: float = 0.0
    use_summaries: bool = True
    candidate_limit: StrictInt = 200
    description: str = ""


class ContextBody(_Body):
    """Body of ``POST /v1/context``."""

    goal: StrictStr
    scope: dict[str, Any] | None = None
    budget: dict[str, StrictInt] | StrictInt | None = None
    profile: StrictStr | ProfileBody = "default"
    required: list[StrictStr] | None = None


# -- app --------------------------------------------------------------------------------------


def _tenant_for(request: Request) -> str:
    # The guard middleware authenticated the request before its body was read.
    tenant = getattr(request.state, "ws_tenant", None)
    if isinstance(tenant, str):
        return tenant
    token_map: Mapping[str, str] = request.app.state.tokens
    if not token_map:
        return "default"
    return _tenant_for_token(token_map, request.headers.get("authorization", ""))


def _store(request: Request) -> StorageWorkspace:
    store: StorageWorkspace = request.app.state.workspace
    return store.for_tenant(_tenant_for(request))


Ws = Annotated[StorageWorkspace, Depends(_store)]


def _error(status: int, name: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": name, "message": message, **extra}, status_code=status)


def _tracer_provider(tracing: Any) -> Any:
    if tracing is False or (
        tracing is None and not any(name.startswith("OTEL_") for name in os.environ)
    ):
        return None
    from triggerflow_temporal.plugin.tracing import service_tracer_provider

    return service_tracer_provider(tracing, service_name="workspace")


def _instrument_app(app: FastAPI, tracer_provider: Any) -> None:
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as exc:
        raise ImportError(
            "Workspace service tracing needs opentelemetry-instrumentation-fastapi; install it "
            "with `pip install 'triggerflow-temporal[otel]'`."
        ) from exc
    excluded = None
    if not any(
        os.environ.get(name)
        for name in ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")
    ):
        excluded = "/healthz"
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        excluded_urls=excluded,
        # One server span per request; the ASGI receive/send spans add nothing here.
        exclude_spans=["receive", "send"],
    )


def create_app(
    workspace: StorageWorkspace | None = None,
    *,
    database_url: str | None = None,
    tokens: Mapping[str, str] | str | None = None,
    max_body_bytes: int | None = None,
    tracing: Any = None,
    max_json_elements: int | None = None,
    busy_timeout: float | None = None,
) -> FastAPI:
    """Build the FastAPI application.

    Args:
        workspace: Storage to serve (its tenant is replaced per request). When None, a
            ``SQLWorkspace`` on ``database_url`` is opened at startup and closed at shutdown.
        database_url: Used when ``workspace`` is None; default ``WORKSPACE_DATABASE_URL`` or
            ``./workspace.db``.
        tokens: Tenant by bearer token, or a ``WORKSPACE_TOKENS``-style string; default the
            ``WORKSPACE_TOKENS`` variable. A mapping is consulted on every request, so it may be
            updated while serving (token rotation); it is checked once here (tokens of at least
            16 characters).
        max_body_bytes: Request body limit; default ``WORKSPACE_MAX_BODY_BYTES`` or 8 MiB.
        tracing: OpenTelemetry spans for requests (FastAPI) and SQL statements (SQLAlchemy),
            continuing the caller's trace from its ``traceparent`` header. ``True`` uses the
            global tracer provider (built from the ``OTEL_*`` variables when none is set), a
            ``TracerProvider`` is used as is, ``False`` turns tracing off, and ``None``
            (default) turns it on when ``OTEL_TRACES_EXPORTER`` or
            ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. Needs the ``otel`` extra.
        max_json_elements: Most JSON values in a request body (default 100,000); more get 400
            before the body is parsed.
        busy_timeout: Seconds a SQLite write waits for another process's lock before the
            request gets 503 with ``Retry-After`` (default 5; only used when ``workspace`` is
            None).

    Returns:
        The application.

    Raises:
        ValueError: For a malformed, short or repeated token, or a bad limit.
    """
    if tokens is None:
        tokens = os.environ.get("WORKSPACE_TOKENS", "")
    token_map: Mapping[str, str] = parse_tokens(tokens) if isinstance(tokens, str) else tokens
    check_tokens(token_map)
    if max_body_bytes is None:
        max_body_bytes = int(os.environ.get("WORKSPACE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    if max_json_elements is None:
        max_json_elements = DEFAULT_MAX_JSON_ELEMENTS
    if max_json_elements <= 0:
        raise ValueError("max_json_elements must be positive")
    if busy_timeout is None:
        busy_timeout = DEFAULT_BUSY_TIMEOUT
    url = database_url or os.environ.get("WORKSPACE_DATABASE_URL") or DEFAULT_DATABASE_URL
    tracer_provider = _tracer_provider(tracing)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owned = workspace is None
        store = SQLWorkspace(url, busy_timeout=busy_timeout) if workspace is None else workspace
        await store.setup()
        if tracer_provider is not None and isinstance(store, SQLWorkspace):
            store.enable_tracing(tracer_provider)
        app.state.workspace = store
        if not token_map:
            log.warning("WORKSPACE_TOKENS is empty: the service accepts unauthenticated requests")
        try:
            yield
        finally:
            if owned:
                await store.close()

    app = FastAPI(
        title="Workspace",
        version="1",
        summary="Artifacts, decisions, links, checkpoints and context packs.",
        lifespan=lifespan,
    )
    app.state.tokens = token_map
    app.add_middleware(
        _Guard,  # type: ignore[arg-type]
        max_bytes=max_body_bytes,
        max_elements=max_json_elements,
        tokens=lambda: app.state.tokens,
    )
    if tracer_provider is not None:
        _instrument_app(app, tracer_provider)

    @app.exception_handler(WorkspaceError)
    async def _workspace_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorkspaceError)
        status = exc.status_code if 400 <= exc.status_code < 600 else 500
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, StorageBusyError):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return JSONResponse(exc.to_dict(), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
        return _error(422, "ValidationError", f"invalid request: {summary}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _error(exc.status_code, "HTTPError", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "InternalError", "internal error; see the service log")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        """Liveness and database reachability."""
        ws = getattr(app.state, "workspace", None)
        try:
            if isinstance(ws, SQLWorkspace):
                await ws.ping()
        except Exception as exc:  # any failure means unhealthy
            log.warning("health check failed: %s", exc)
            return _error(503, "Unavailable", "database unreachable")
        return JSONResponse({"status": "ok"})

    @app.post("/v1/records", status_code=201, tags=["records"])
    async def ingest(body: IngestBody, ws: Ws) -> dict[str, Any]:
        """Store a record; returns its ref."""
        content = decode_wire_content(body.content, body.content_type)
        ref = await ws.ingest(
            content,
            body.collection,
            body.kind,
            summary=body.summary,
            scope=body.scope,
            source=body.source,
            meta=body.meta,
        )
        return ref.to_dict()

    @app.get("/v1/records/{record_id}", tags=["records"])
    async def get_record(record_id: str, ws: Ws) -> dict[str, Any]:
        """A record's ref."""
        return (await ws.get(record_id)).to_dict()

    @app.get("/v1/records/{record_id}/data", tags=["records"])
    async def get_data(record_id: str, ws: Ws) -> dict[str, Any]:
        """A record's content; bytes are base64 with ``content_type="bytes"``."""
        content_type, content = encode_wire_content(await ws.get_data(record_id))
        return {"id": record_id, "content_type": content_type, "content": content}

    @app.get("/v1/records/{record_id}/read", tags=["records"])
    async def read_bounded(
        record_id: str,
        ws: Ws,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1)] = 65536,
    ) -> dict[str, Any]:
        """A slice of a record's content."""
        return (await ws.read_bounded(record_id, offset, limit)).to_dict()

    @app.delete("/v1/records/{record_id}", status_code=204, tags=["records"])
    async def delete_record(record_id: str, ws: Ws) -> Response:
        """Delete a record and its links."""
        await ws.delete(record_id)
        return Response(status_code=204)

    @app.post("/v1/search", tags=["records"])
    async def search(body: SearchBody, ws: Ws) -> dict[str, Any]:
        """Full-text search with exact filters."""
        page = await ws.search(body.query, body.filters, body.scope, body.limit, body.cursor)
        return page.to_dict()

    @app.post("/v1/prune", tags=["records"])
    async def prune(body: PruneBody, ws: Ws) -> dict[str, int]:
        """Retention: delete old records."""
        deleted = await ws.prune(
            scope=body.scope,
            older_than=body.older_than_seconds,
            keep_last=body.keep_last,
            collection=body.collection,
        )
        return {"deleted": deleted}

    @app.post("/v1/links", status_code=201, tags=["links"])
    async def link(body: LinkBody, ws: Ws) -> dict[str, Any]:
        """Link two records."""
        return (await ws.link(body.source, body.target, body.relation, body.meta)).to_dict()

    @app.get("/v1/links", tags=["links"])
    async def links(
        ws: Ws,
        ref: str | None = None,
        source: str | None = None,
        target: str | None = None,
        relation: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of links, newest first (``limit`` 1-1000, default 100; ``next_cursor``)."""
        page = await ws.links_page(
            ref, source=source, target=target, relation=relation, limit=limit, cursor=cursor
        )
        return page.to_dict()

    @app.post("/v1/checkpoints", status_code=201, tags=["checkpoints"])
    async def checkpoint(body: CheckpointBody, ws: Ws) -> dict[str, Any]:
        """Store a run's state snapshot."""
        state_value = decode_wire_content(body.state, body.content_type)
        ref = await ws.checkpoint(body.run_id, state_value, body.step_id, scope=body.scope)
        return ref.to_dict()

    @app.post("/v1/checkpoints/history", tags=["checkpoints"])
    async def checkpoint_history(body: HistoryBody, ws: Ws) -> dict[str, Any]:
        """One page of a run's checkpoints, newest first (``next_cursor`` for the next)."""
        page = await ws.checkpoint_history_page(
            body.run_id,
            body.step_id,
            limit=DEFAULT_PAGE_SIZE if body.limit is None else body.limit,
            cursor=body.cursor,
            scope=body.scope,
        )
        return page.to_dict()

    @app.post("/v1/checkpoints/latest", tags=["checkpoints"])
    async def latest_checkpoint(body: LatestBody, ws: Ws) -> dict[str, Any]:
        """A run's newest checkpoint with its state, or null."""
        found = await ws.latest_checkpoint(body.run_id, scope=body.scope)
        if found is None:
            return {"checkpoint": None}
        content_type, content = encode_wire_content(found.state)
        return {
            "checkpoint": {
                "ref": found.ref.to_dict(),
                "content_type": content_type,
                "state": content,
            }
        }

    @app.post("/v1/context", tags=["context"])
    async def build_context(body: ContextBody, ws: Ws) -> dict[str, Any]:
        """Pack records for a goal under a token budget."""
        profile: str | Profile
        if isinstance(body.profile, ProfileBody):
            profile = Profile(**body.profile.model_dump())
        else:
            profile = body.profile
        pack = await ws.build_context(body.goal, body.scope, body.budget, profile, body.required)
        return pack.to_dict()

    @app.get("/v1/profiles", tags=["context"])
    async def profiles(ws: Ws) -> dict[str, Any]:
        """The registered context profiles."""
        return {name: p.to_dict() for name, p in sorted(ws.profiles.items())}

    return app
