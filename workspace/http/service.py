"""HTTP service exposing the Workspace contract (FastAPI); HTTP layer, server side.

Run it with ``python -m workspace serve``. Each bearer token is bound to one tenant and only ever
sees that tenant's rows (another tenant's id answers 404, exactly like a missing one); see
:mod:`workspace.http.guard` for the checks made before a body is parsed, and
:mod:`workspace.http.wire` for the bodies.

Environment:
    WORKSPACE_DATABASE_URL: Database URL or SQLite path (default ``./workspace.db``).
    WORKSPACE_TOKENS: ``token1:tenantA,token2:tenantB``; tokens have at least 16 characters and
        each appears once. Empty means no auth: every request acts for tenant ``default``
        (development only; a warning is logged, and ``python -m workspace serve`` refuses to
        listen on anything but a loopback address).
    WORKSPACE_MAX_BODY_BYTES: Request body limit in bytes (default 8 MiB); larger bodies get 413.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from workspace.errors import (
    InvalidBatchItemError,
    InvalidInputError,
    StorageBusyError,
    WorkspaceError,
)
from workspace.http import wire
from workspace.http.guard import (
    DEFAULT_MAX_JSON_ELEMENTS,
    TENANT_STATE,
    RequestGuard,
    check_tokens,
    parse_tokens,
    tenant_for_token,
)
from workspace.http.wire import (
    CheckpointBody,
    CheckpointState,
    ContextBody,
    HistoryBody,
    IngestBatchBody,
    IngestBatchResult,
    IngestBody,
    LatestBody,
    LatestCheckpoint,
    LinkBody,
    LinksQuery,
    ProfileBody,
    PruneBody,
    PruneResult,
    ReadQuery,
    RecordData,
    SearchBody,
    batch_validation_error,
    decode_wire_content,
    describe_errors,
    encode_wire_content,
)
from workspace.storage.base import StorageWorkspace
from workspace.storage.sql.engine import DEFAULT_BUSY_TIMEOUT
from workspace.storage.sql.store import SQLWorkspace
from workspace.types import Profile
from workspace.validation import DEFAULT_PAGE_SIZE, batch_item_error, check_batch_size

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_MAX_BODY_BYTES", "create_app"]

log = logging.getLogger("workspace.service")

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_DATABASE_URL = "workspace.db"


def _tenant_for(request: Request) -> str:
    # The guard middleware authenticated the request before its body was read.
    tenant = getattr(request.state, TENANT_STATE, None)
    if isinstance(tenant, str):
        return tenant
    token_map: Mapping[str, str] = request.app.state.tokens
    if not token_map:
        return "default"
    return tenant_for_token(token_map, request.headers.get("authorization", ""))


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
    # Lazy: only a traced service needs it (the optional ``otel`` extra), and it keeps the
    # Temporal SDK that triggerflow_temporal loads out of an untraced service.
    from triggerflow_temporal.plugin.tracing import service_tracer_provider

    return service_tracer_provider(tracing, service_name="workspace")


def _instrument_app(app: FastAPI, tracer_provider: Any) -> None:
    try:
        # Lazy: OpenTelemetry is the optional ``otel`` extra.
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
        excluded = wire.HEALTH
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        excluded_urls=excluded,
        # One server span per request; the ASGI receive/send spans add nothing here.
        exclude_spans=["receive", "send"],
    )


def _batch_item_errors(errors: Sequence[Mapping[str, Any]]) -> InvalidBatchItemError | None:
    # Errors inside records[i] of a batch body name the record; any other (no "records" list,
    # an unknown top-level key, malformed JSON) is about the body and stays a ValidationError.
    relative: list[dict[str, Any]] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if loc[:2] != ("body", "records") or len(loc) < 3:
            return None
        relative.append({**err, "loc": loc[2:]})
    return batch_validation_error(relative)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WorkspaceError)
    async def _workspace_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorkspaceError)
        status = exc.status_code if 400 <= exc.status_code < 600 else 500
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, StorageBusyError):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return JSONResponse(exc.to_dict(), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if request.url.path == wire.RECORDS_BATCH:
            batch = _batch_item_errors(exc.errors())
            if batch is not None:
                return JSONResponse(batch.to_dict(), status_code=batch.status_code)
        message, details = describe_errors(exc.errors())
        return _error(422, "ValidationError", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _error(exc.status_code, "HTTPError", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "InternalError", "internal error; see the service log")


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
        RequestGuard,  # type: ignore[arg-type]
        max_bytes=max_body_bytes,
        max_elements=max_json_elements,
        tokens=lambda: app.state.tokens,
    )
    if tracer_provider is not None:
        _instrument_app(app, tracer_provider)
    _add_error_handlers(app)

    @app.get(wire.HEALTH, tags=["ops"])
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

    @app.post(wire.RECORDS, status_code=201, tags=["records"])
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

    @app.post(wire.RECORDS_BATCH, status_code=201, tags=["records"])
    async def ingest_batch(body: IngestBatchBody, ws: Ws) -> IngestBatchResult:
        """Store up to 1000 records in one transaction, all or nothing; their refs, in order.

        One invalid record refuses the whole batch with 422 ``InvalidBatchItemError`` naming
        its ``index`` and ``field`` (``errors`` lists every invalid record); nothing is stored.
        More than 1000 records: 400.
        """
        check_batch_size(len(body.records))
        items: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for index, item in enumerate(body.records):
            try:
                content = decode_wire_content(item.content, item.content_type)
            except InvalidInputError as exc:
                exc.field = "content"
                failures.append(batch_item_error(index, exc))
                continue
            items.append(
                {
                    "content": content,
                    "collection": item.collection,
                    "kind": item.kind,
                    "summary": item.summary,
                    "scope": item.scope,
                    "source": item.source,
                    "meta": item.meta,
                }
            )
        if failures:
            raise InvalidBatchItemError(failures)
        refs = await ws.ingest_many(items)
        return IngestBatchResult(records=[ref.to_dict() for ref in refs])

    @app.get(wire.RECORD, tags=["records"])
    async def get_record(record_id: str, ws: Ws) -> dict[str, Any]:
        """A record's ref."""
        return (await ws.get(record_id)).to_dict()

    @app.get(wire.RECORD_DATA, tags=["records"])
    async def get_data(record_id: str, ws: Ws) -> RecordData:
        """A record's content; bytes are base64 with ``content_type="bytes"``."""
        content_type, content = encode_wire_content(await ws.get_data(record_id))
        return RecordData(id=record_id, content_type=content_type, content=content)

    @app.get(wire.RECORD_READ, tags=["records"])
    async def read_bounded(
        record_id: str, ws: Ws, params: Annotated[ReadQuery, Query()]
    ) -> dict[str, Any]:
        """A slice of a record's content."""
        return (await ws.read_bounded(record_id, params.offset, params.limit)).to_dict()

    @app.delete(wire.RECORD, status_code=204, tags=["records"])
    async def delete_record(record_id: str, ws: Ws) -> Response:
        """Delete a record and its links."""
        await ws.delete(record_id)
        return Response(status_code=204)

    @app.post(wire.SEARCH, tags=["records"])
    async def search(body: SearchBody, ws: Ws) -> dict[str, Any]:
        """Full-text search with exact filters."""
        page = await ws.search(body.query, body.filters, body.scope, body.limit, body.cursor)
        return page.to_dict()

    @app.post(wire.PRUNE, tags=["records"])
    async def prune(body: PruneBody, ws: Ws) -> PruneResult:
        """Retention: delete old records."""
        deleted = await ws.prune(
            scope=body.scope,
            older_than=body.older_than_seconds,
            keep_last=body.keep_last,
            collection=body.collection,
        )
        return PruneResult(deleted=deleted)

    @app.post(wire.LINKS, status_code=201, tags=["links"])
    async def link(body: LinkBody, ws: Ws) -> dict[str, Any]:
        """Link two records."""
        return (await ws.link(body.source, body.target, body.relation, body.meta)).to_dict()

    @app.get(wire.LINKS, tags=["links"])
    async def links(ws: Ws, params: Annotated[LinksQuery, Query()]) -> dict[str, Any]:
        """One page of links, newest first (``limit`` 1-1000, default 100; ``next_cursor``)."""
        page = await ws.links_page(
            params.ref,
            source=params.source,
            target=params.target,
            relation=params.relation,
            limit=params.limit,
            cursor=params.cursor,
        )
        return page.to_dict()

    @app.post(wire.CHECKPOINTS, status_code=201, tags=["checkpoints"])
    async def checkpoint(body: CheckpointBody, ws: Ws) -> dict[str, Any]:
        """Store a run's state snapshot."""
        state_value = decode_wire_content(body.state, body.content_type)
        ref = await ws.checkpoint(body.run_id, state_value, body.step_id, scope=body.scope)
        return ref.to_dict()

    @app.post(wire.CHECKPOINT_HISTORY, tags=["checkpoints"])
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

    @app.post(wire.CHECKPOINT_LATEST, tags=["checkpoints"])
    async def latest_checkpoint(body: LatestBody, ws: Ws) -> LatestCheckpoint:
        """A run's newest checkpoint with its state, or null."""
        found = await ws.latest_checkpoint(body.run_id, scope=body.scope)
        if found is None:
            return LatestCheckpoint(checkpoint=None)
        content_type, state = encode_wire_content(found.state)
        ref = found.ref.to_dict()
        return LatestCheckpoint(
            checkpoint=CheckpointState(ref=ref, content_type=content_type, state=state)
        )

    @app.post(wire.CONTEXT, tags=["context"])
    async def build_context(body: ContextBody, ws: Ws) -> dict[str, Any]:
        """Pack records for a goal under a token budget."""
        profile: str | Profile
        if isinstance(body.profile, ProfileBody):
            profile = body.profile.to_profile()
        else:
            profile = body.profile
        pack = await ws.build_context(body.goal, body.scope, body.budget, profile, body.required)
        return pack.to_dict()

    @app.get(wire.PROFILES, tags=["context"])
    async def profiles(ws: Ws) -> dict[str, Any]:
        """The registered context profiles."""
        return {name: p.to_dict() for name, p in sorted(ws.profiles.items())}

    return app
