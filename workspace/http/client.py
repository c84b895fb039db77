"""Async HTTP client for the Workspace service; HTTP layer, client side.

It implements the same :class:`~workspace.contract.BaseWorkspace` contract by sending the bodies
of :mod:`workspace.http.wire`. The service answers with typed JSON errors that the client turns
back into the exception classes the storage backends raise (``RecordNotFoundError``,
``UnknownCollectionError``...).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from workspace.context import BUILTIN_PROFILES
from workspace.contract import BaseWorkspace, RefOrId
from workspace.errors import (
    InvalidBatchItemError,
    InvalidCursorError,
    InvalidInputError,
    ServiceError,
    error_from_payload,
)
from workspace.http import wire
from workspace.http.wire import (
    CheckpointBody,
    ContextBody,
    HistoryBody,
    IngestBatchBody,
    IngestBatchResult,
    IngestBody,
    LatestBody,
    LatestCheckpoint,
    LinkBody,
    LinksQuery,
    PruneBody,
    PruneResult,
    ReadQuery,
    RecordData,
    SearchBody,
    batch_validation_error,
    checked_request,
    decode_wire_content,
    describe_errors,
    encode_wire_content,
)
from workspace.paging import read_all
from workspace.types import (
    BoundedRead,
    Checkpoint,
    ContextPack,
    Link,
    LinkPage,
    Profile,
    RecordRef,
    SearchPage,
)
from workspace.validation import (
    DEFAULT_PAGE_SIZE,
    batch_item_error,
    check_batch,
    check_batch_record,
    check_limit,
    check_older_than,
    check_required,
    check_slice,
    ref_id,
)

__all__ = ["WorkspaceClient"]


def _mapping(value: Mapping[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        exc = InvalidInputError(f"{what} must be a dict, got {type(value).__name__}")
        exc.field = what
        raise exc
    return dict(value)


def _ingest_body(
    content: Any,
    collection: Any,
    kind: Any,
    summary: Any,
    scope: Any,
    source: Any,
    meta: Any,
) -> IngestBody:
    """The body of one record; raises InvalidInputError (``field`` set) or ValidationError."""
    try:
        content_type, value = encode_wire_content(content)
    except InvalidInputError as exc:
        exc.field = "content"
        raise
    return IngestBody(
        content=value,
        content_type=content_type,
        collection=collection,
        kind=kind,
        summary=summary,
        scope=_mapping(scope, "scope"),
        source=source,
        meta=_mapping(meta, "meta"),
    )


class WorkspaceClient(BaseWorkspace):
    """Talks to ``python -m workspace serve`` over HTTP.

    Profiles registered on the client with ``register_profile`` are sent inline with each
    ``build_context`` call, so the server needs no configuration for them. Token counting
    happens on the server with the server's counter.

    Args:
        base_url: The service URL, e.g. ``http://127.0.0.1:8080``.
        token: Bearer token; it selects the tenant.
        timeout: Per-request timeout in seconds.
        transport: Custom httpx transport (e.g. ``httpx.ASGITransport(app)`` in tests).
        profiles: Extra named profiles.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        profiles: Mapping[str, Profile] | None = None,
    ) -> None:
        super().__init__(profiles=profiles)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self._base_url, headers=headers, timeout=timeout, transport=transport
        )
        self._traced = False

    @property
    def base_url(self) -> str:
        """The service URL."""
        return self._base_url

    def enable_tracing(self, tracer_provider: Any = None) -> None:
        """Trace each request as an OpenTelemetry client span that carries the trace context.

        The W3C ``traceparent`` header lets a traced service (``create_app(tracing=...)``)
        continue the caller's trace. Needs the ``otel`` extra. A no-op when ``httpx`` is
        already traced process-wide (``TriggerFlowPlugin(tracing=...)`` does that) or when
        this client is traced already.

        Args:
            tracer_provider: The provider; default the global one.

        Raises:
            ImportError: Without the OpenTelemetry packages.
        """
        try:
            # Lazy: OpenTelemetry is the optional ``otel`` extra.
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        except ImportError as exc:
            raise ImportError(
                "Workspace client tracing needs opentelemetry-instrumentation-httpx; install it "
                "with `pip install 'triggerflow-temporal[otel]'`."
            ) from exc
        if HTTPXClientInstrumentor().is_instrumented_by_opentelemetry or self._traced:
            return
        HTTPXClientInstrumentor.instrument_client(self._http, tracer_provider=tracer_provider)
        self._traced = True

    async def setup(self) -> None:
        """Check that the service is reachable and healthy.

        Raises:
            ServiceError: If it is not.
        """
        await self._call("GET", wire.HEALTH)

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        body: BaseModel | None = None,
        params: BaseModel | None = None,
    ) -> Any:
        content = None
        headers = {}
        if body is not None:
            try:
                # json.dumps, not model_dump_json: that would send NaN as null instead of failing.
                text = json.dumps(body.model_dump(), allow_nan=False, ensure_ascii=False)
                content = text.encode("utf-8")
            except (TypeError, ValueError, UnicodeEncodeError) as exc:
                raise InvalidInputError(f"request is not JSON serializable: {exc}") from exc
            headers["Content-Type"] = "application/json"
        query = {} if params is None else params.model_dump(exclude_none=True)
        try:
            response = await self._http.request(
                method, path, content=content, params=query, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ServiceError(503, f"cannot reach {self._base_url}: {exc!r}") from exc
        if response.status_code == 204:
            return None
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.status_code >= 400:
            raise error_from_payload(response.status_code, payload)
        return payload

    # -- records -------------------------------------------------------------------------------

    async def ingest(
        self,
        content: str | bytes | dict[str, Any] | list[Any],
        collection: str,
        kind: str,
        summary: str | None = None,
        scope: Mapping[str, Any] | None = None,
        source: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> RecordRef:
        """See :meth:`BaseWorkspace.ingest`."""
        with checked_request():
            body = _ingest_body(content, collection, kind, summary, scope, source, meta)
        return RecordRef.from_dict(await self._call("POST", wire.RECORDS, body))

    async def ingest_many(self, records: Sequence[Mapping[str, Any]]) -> list[RecordRef]:
        """See :meth:`BaseWorkspace.ingest_many`: one ``POST /v1/records/batch`` request.

        Records the wire models refuse are reported before anything is sent, with the same
        ``InvalidBatchItemError`` (index and field) the service would answer.
        """
        items = check_batch(records)
        if not items:
            return []
        bodies: list[IngestBody] = []
        failures: list[dict[str, Any]] = []
        for index, record in enumerate(items):
            try:
                item = check_batch_record(record)
                bodies.append(
                    _ingest_body(
                        item["content"],
                        item["collection"],
                        item["kind"],
                        item.get("summary"),
                        item.get("scope"),
                        item.get("source"),
                        item.get("meta"),
                    )
                )
            except InvalidInputError as exc:
                failures.append(batch_item_error(index, exc))
            except ValidationError as exc:
                found = batch_validation_error(
                    [{**err, "loc": (index, *err["loc"])} for err in exc.errors()]
                )
                if found is None:  # pragma: no cover - pydantic always locates its errors
                    raise InvalidInputError(describe_errors(exc.errors())[0]) from None
                failures.extend(found.errors)
        if failures:
            raise InvalidBatchItemError(failures)
        reply = await self._call("POST", wire.RECORDS_BATCH, IngestBatchBody(records=bodies))
        result = IngestBatchResult.model_validate(reply)
        return [RecordRef.from_dict(ref) for ref in result.records]

    async def get(self, ref: RefOrId) -> RecordRef:
        """See :meth:`BaseWorkspace.get`."""
        path = wire.RECORD.format(record_id=ref_id(ref))
        return RecordRef.from_dict(await self._call("GET", path))

    async def get_data(self, ref: RefOrId) -> Any:
        """See :meth:`BaseWorkspace.get_data`."""
        path = wire.RECORD_DATA.format(record_id=ref_id(ref))
        data = RecordData.model_validate(await self._call("GET", path))
        return decode_wire_content(data.content, data.content_type)

    async def read_bounded(self, ref: RefOrId, offset: int = 0, limit: int = 65536) -> BoundedRead:
        """See :meth:`BaseWorkspace.read_bounded`."""
        offset, limit = check_slice(offset, limit)
        path = wire.RECORD_READ.format(record_id=ref_id(ref))
        params = ReadQuery(offset=offset, limit=limit)
        return BoundedRead.from_dict(await self._call("GET", path, params=params))

    async def search(
        self,
        query: str | None = None,
        filters: Mapping[str, Any] | None = None,
        scope: Mapping[str, Any] | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        """See :meth:`BaseWorkspace.search`."""
        with checked_request():
            body = SearchBody(
                query=query,
                filters=_mapping(filters, "filters"),
                scope=_mapping(scope, "scope"),
                limit=limit,
                cursor=cursor,
            )
        return SearchPage.from_dict(await self._call("POST", wire.SEARCH, body))

    async def delete(self, ref: RefOrId) -> None:
        """See :meth:`BaseWorkspace.delete`."""
        await self._call("DELETE", wire.RECORD.format(record_id=ref_id(ref)))

    async def prune(
        self,
        scope: Mapping[str, Any] | None = None,
        older_than: timedelta | float | None = None,
        keep_last: int | None = None,
        collection: str | None = None,
    ) -> int:
        """See :meth:`BaseWorkspace.prune`."""
        delta = check_older_than(older_than)
        with checked_request():
            body = PruneBody(
                scope=_mapping(scope, "scope"),
                older_than_seconds=None if delta is None else delta.total_seconds(),
                keep_last=keep_last,
                collection=collection,
            )
        result = PruneResult.model_validate(await self._call("POST", wire.PRUNE, body))
        return result.deleted

    # -- links ---------------------------------------------------------------------------------

    async def link(
        self,
        source: RefOrId,
        target: RefOrId,
        relation: str,
        meta: Mapping[str, Any] | None = None,
    ) -> Link:
        """See :meth:`BaseWorkspace.link`."""
        source_id, target_id = ref_id(source), ref_id(target)
        with checked_request():
            body = LinkBody(
                source=source_id, target=target_id, relation=relation, meta=_mapping(meta, "meta")
            )
        return Link.from_dict(await self._call("POST", wire.LINKS, body))

    async def links(
        self,
        ref: RefOrId | None = None,
        *,
        source: RefOrId | None = None,
        target: RefOrId | None = None,
        relation: str | None = None,
    ) -> list[Link]:
        """See :meth:`BaseWorkspace.links`; follows the service's pages."""

        async def page(size: int, cursor: str | None) -> LinkPage:
            return await self.links_page(
                ref, source=source, target=target, relation=relation, limit=size, cursor=cursor
            )

        return await read_all(page)

    async def links_page(
        self,
        ref: RefOrId | None = None,
        *,
        source: RefOrId | None = None,
        target: RefOrId | None = None,
        relation: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> LinkPage:
        """See :meth:`BaseWorkspace.links_page`."""
        if relation is not None and not isinstance(relation, str):
            raise InvalidInputError(f"relation must be a string, got {type(relation).__name__}")
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidCursorError("cursor must be a next_cursor string from the previous page")
        params = LinksQuery(
            ref=None if ref is None else ref_id(ref),
            source=None if source is None else ref_id(source),
            target=None if target is None else ref_id(target),
            relation=relation,
            limit=check_limit(limit),
            cursor=cursor,
        )
        return LinkPage.from_dict(await self._call("GET", wire.LINKS, params=params))

    # -- checkpoints ---------------------------------------------------------------------------

    async def checkpoint(
        self,
        run_id: str,
        state: Any,
        step_id: str | None = None,
        *,
        scope: Mapping[str, Any] | None = None,
    ) -> RecordRef:
        """See :meth:`BaseWorkspace.checkpoint`."""
        content_type, value = encode_wire_content(state)
        with checked_request():
            body = CheckpointBody(
                run_id=run_id,
                state=value,
                content_type=content_type,
                step_id=step_id,
                scope=_mapping(scope, "scope"),
            )
        return RecordRef.from_dict(await self._call("POST", wire.CHECKPOINTS, body))

    async def checkpoint_history_page(
        self,
        run_id: str,
        step_id: str | None = None,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        scope: Mapping[str, Any] | None = None,
    ) -> SearchPage:
        """See :meth:`BaseWorkspace.checkpoint_history_page`."""
        with checked_request():
            body = HistoryBody(
                run_id=run_id,
                step_id=step_id,
                limit=limit,
                cursor=cursor,
                scope=_mapping(scope, "scope"),
            )
        return SearchPage.from_dict(await self._call("POST", wire.CHECKPOINT_HISTORY, body))

    async def latest_checkpoint(
        self, run_id: str, *, scope: Mapping[str, Any] | None = None
    ) -> Checkpoint | None:
        """See :meth:`BaseWorkspace.latest_checkpoint` (one request)."""
        with checked_request():
            body = LatestBody(run_id=run_id, scope=_mapping(scope, "scope"))
        reply = await self._call("POST", wire.CHECKPOINT_LATEST, body)
        found = LatestCheckpoint.model_validate(reply).checkpoint
        if found is None:
            return None
        state = decode_wire_content(found.state, found.content_type)
        return Checkpoint(ref=RecordRef.from_dict(found.ref), state=state)

    # -- context -------------------------------------------------------------------------------

    async def build_context(
        self,
        goal: str,
        scope: Mapping[str, Any] | None = None,
        budget: Mapping[str, int] | int | None = None,
        profile: str | Profile = "default",
        required: Sequence[RefOrId] | None = None,
    ) -> ContextPack:
        """See :meth:`BaseWorkspace.build_context`."""
        name: str | None = None
        wire_profile: Any = profile
        if isinstance(profile, Profile):
            wire_profile = profile.to_dict()
        elif isinstance(profile, str):
            local = self.profiles.get(profile)
            if local is not None and local is not BUILTIN_PROFILES.get(profile):
                name, wire_profile = profile, local.to_dict()
        required_ids = None if required is None else check_required(required)
        with checked_request():
            body = ContextBody(
                goal=goal,
                scope=_mapping(scope, "scope"),
                budget=dict(budget) if isinstance(budget, Mapping) else budget,
                profile=wire_profile,
                required=required_ids,
            )
        pack = ContextPack.from_dict(await self._call("POST", wire.CONTEXT, body))
        return dataclasses.replace(pack, profile=name) if name else pack
