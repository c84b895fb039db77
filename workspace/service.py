"""HTTP service exposing the Workspace contract (FastAPI).

Run it with ``python -m workspace serve``. Every request except ``/healthz`` and the OpenAPI
pages needs ``Authorization: Bearer <token>``; each token is bound to one tenant and only ever
sees that tenant's rows (another tenant's id answers 404, exactly like a missing one).

Environment:
    WORKSPACE_DATABASE_URL: Database URL or SQLite path (default ``./workspace.db``).
    WORKSPACE_TOKENS: ``token1:tenantA,token2:tenantB``. Empty means no auth: every request acts
        for tenant ``default`` (development only; a warning is logged).
    WORKSPACE_MAX_BODY_BYTES: Request body limit in bytes (default 8 MiB); larger bodies get 413.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from workspace._storage import StorageWorkspace
from workspace._wire import decode_wire_content, encode_wire_content
from workspace.errors import AuthenticationError, WorkspaceError
from workspace.sql import SQLWorkspace
from workspace.types import Profile

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app", "parse_tokens"]

log = logging.getLogger("workspace.service")

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_DATABASE_URL = "workspace.db"

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
        ValueError: For an entry without ``:`` or with an empty token or tenant.
    """
    tokens: dict[str, str] = {}
    for entry in (spec or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        token, sep, tenant = entry.rpartition(":")
        if not sep or not token.strip() or not tenant.strip():
            raise ValueError(
                f"bad WORKSPACE_TOKENS entry {entry.split(':')[0][:4]}...; "
                "use token:tenant pairs separated by commas"
            )
        tokens[token.strip()] = tenant.strip()
    return tokens


class _BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413, before any parsing."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "PayloadTooLargeError",
                "message": f"request body exceeds {self.max_bytes} bytes; "
                "store large content in smaller records or raise WORKSPACE_MAX_BODY_BYTES",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    if declared <= 4 * self.max_bytes + (1 << 20):
                        await self._drain(receive, 0)
                    await self._reject(send)
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
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
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
    """Body of ``POST /v1/checkpoints/history``."""

    run_id: StrictStr
    step_id: StrictStr | None = None
    limit: StrictInt | None = None
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
    token_map: Mapping[str, str] = request.app.state.tokens
    if not token_map:
        return "default"
    header = request.headers.get("authorization", "")
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
    from triggerflow_temporal._tracing import service_tracer_provider

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
) -> FastAPI:
    """Build the FastAPI application.

    Args:
        workspace: Storage to serve (its tenant is replaced per request). When None, a
            ``SQLWorkspace`` on ``database_url`` is opened at startup and closed at shutdown.
        database_url: Used when ``workspace`` is None; default ``WORKSPACE_DATABASE_URL`` or
            ``./workspace.db``.
        tokens: Tenant by bearer token, or a ``WORKSPACE_TOKENS``-style string; default the
            ``WORKSPACE_TOKENS`` variable. A mapping is consulted on every request, so it may be
            updated while serving (token rotation).
        max_body_bytes: Request body limit; default ``WORKSPACE_MAX_BODY_BYTES`` or 8 MiB.
        tracing: OpenTelemetry spans for requests (FastAPI) and SQL statements (SQLAlchemy),
            continuing the caller's trace from its ``traceparent`` header. ``True`` uses the
            global tracer provider (built from the ``OTEL_*`` variables when none is set), a
            ``TracerProvider`` is used as is, ``False`` turns tracing off, and ``None``
            (default) turns it on when ``OTEL_TRACES_EXPORTER`` or
            ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. Needs the ``otel`` extra.

    Returns:
        The application.

    Raises:
        ValueError: For a malformed token specification or body limit.
    """
    if tokens is None:
        tokens = os.environ.get("WORKSPACE_TOKENS", "")
    token_map: Mapping[str, str] = parse_tokens(tokens) if isinstance(tokens, str) else tokens
    if max_body_bytes is None:
        max_body_bytes = int(os.environ.get("WORKSPACE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    url = database_url or os.environ.get("WORKSPACE_DATABASE_URL") or DEFAULT_DATABASE_URL
    tracer_provider = _tracer_provider(tracing)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owned = workspace is None
        store = SQLWorkspace(url) if workspace is None else workspace
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
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)  # type: ignore[arg-type]
    if tracer_provider is not None:
        _instrument_app(app, tracer_provider)

    @app.exception_handler(WorkspaceError)
    async def _workspace_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorkspaceError)
        status = exc.status_code if 400 <= exc.status_code < 600 else 500
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
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
    ) -> dict[str, Any]:
        """List links."""
        found = await ws.links(ref, source=source, target=target, relation=relation)
        return {"items": [x.to_dict() for x in found]}

    @app.post("/v1/checkpoints", status_code=201, tags=["checkpoints"])
    async def checkpoint(body: CheckpointBody, ws: Ws) -> dict[str, Any]:
        """Store a run's state snapshot."""
        state_value = decode_wire_content(body.state, body.content_type)
        ref = await ws.checkpoint(body.run_id, state_value, body.step_id, scope=body.scope)
        return ref.to_dict()

    @app.post("/v1/checkpoints/history", tags=["checkpoints"])
    async def checkpoint_history(body: HistoryBody, ws: Ws) -> dict[str, Any]:
        """A run's checkpoints, newest first."""
        refs = await ws.checkpoint_history(body.run_id, body.step_id, body.limit, scope=body.scope)
        return {"items": [r.to_dict() for r in refs]}

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
