"""Async HTTP client for the Workspace service, implementing the same ``BaseWorkspace`` contract.

The service answers with typed JSON errors that the client turns back into the same exception
classes the library backends raise (``RecordNotFoundError``, ``UnknownCollectionError``...).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx

from workspace._common import DEFAULT_PAGE_SIZE, MAX_SEARCH_LIMIT, check_limit, ref_id
from workspace._wire import decode_wire_content, encode_wire_content
from workspace.base import BaseWorkspace, RefOrId
from workspace.context import BUILTIN_PROFILES
from workspace.errors import (
    InvalidCursorError,
    InvalidInputError,
    ServiceError,
    error_from_payload,
)
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

__all__ = ["WorkspaceClient"]

_CONTENT_TYPES = (str, bytes, bytearray, memoryview, dict, list, tuple)


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
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        except ImportError as exc:
            raise ImportError(
                "Workspace client tracing needs opentelemetry-instrumentation-httpx; install it "
                "with `pip install 'triggerflow-temporal[otel]'`."
            ) from exc
        if HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
            return
        if not getattr(self._http, "_is_instrumented_by_opentelemetry", False):
            HTTPXClientInstrumentor.instrument_client(self._http, tracer_provider=tracer_provider)

    async def setup(self) -> None:
        """Check that the service is reachable and healthy.

        Raises:
            ServiceError: If it is not.
        """
        await self._call("GET", "/healthz")

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        content = None
        headers = {}
        if body is not None:
            try:
                content = json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
            except (TypeError, ValueError, UnicodeEncodeError) as exc:
                raise InvalidInputError(f"request is not JSON serializable: {exc}") from exc
            headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
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

    # -- records -----------------------------------------------------------------------------

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
        """See :meth:`workspace.base.BaseWorkspace.ingest`.

        Args:
            content: The content.
            collection: The collection.
            kind: The kind.
            summary: Optional summary.
            scope: Scope keys.
            source: Provenance.
            meta: Metadata.

        Returns:
            The new record's ref.
        """
        content_type, value = _wire(content)
        body = {
            "content": value,
            "content_type": content_type,
            "collection": collection,
            "kind": kind,
            "summary": summary,
            "scope": _mapping(scope),
            "source": source,
            "meta": _mapping(meta),
        }
        return RecordRef.from_dict(await self._call("POST", "/v1/records", body))

    async def get(self, ref: RefOrId) -> RecordRef:
        """See :meth:`workspace.base.BaseWorkspace.get`.

        Args:
            ref: A ref or id.

        Returns:
            The ref.
        """
        return RecordRef.from_dict(await self._call("GET", f"/v1/records/{ref_id(ref)}"))

    async def get_data(self, ref: RefOrId) -> Any:
        """See :meth:`workspace.base.BaseWorkspace.get_data`.

        Args:
            ref: A ref or id.

        Returns:
            The content.
        """
        data = await self._call("GET", f"/v1/records/{ref_id(ref)}/data")
        return decode_wire_content(data["content"], data["content_type"])

    async def read_bounded(self, ref: RefOrId, offset: int = 0, limit: int = 65536) -> BoundedRead:
        """See :meth:`workspace.base.BaseWorkspace.read_bounded`.

        Args:
            ref: A ref or id.
            offset: Start of the slice.
            limit: Maximum slice length.

        Returns:
            The slice.
        """
        for name, value in (("offset", offset), ("limit", limit)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"{name} must be an integer, got {value!r}")
        data = await self._call(
            "GET",
            f"/v1/records/{ref_id(ref)}/read",
            params={"offset": offset, "limit": limit},
        )
        return BoundedRead.from_dict(data)

    async def search(
        self,
        query: str | None = None,
        filters: Mapping[str, Any] | None = None,
        scope: Mapping[str, Any] | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        """See :meth:`workspace.base.BaseWorkspace.search`.

        Args:
            query: Search text.
            filters: Exact filters.
            scope: Scope keys to match.
            limit: Page size.
            cursor: Next-page cursor.

        Returns:
            The page.
        """
        body = {
            "query": query,
            "filters": _mapping(filters, "filters"),
            "scope": _mapping(scope),
            "limit": limit,
            "cursor": cursor,
        }
        return SearchPage.from_dict(await self._call("POST", "/v1/search", body))

    async def delete(self, ref: RefOrId) -> None:
        """See :meth:`workspace.base.BaseWorkspace.delete`.

        Args:
            ref: A ref or id.
        """
        await self._call("DELETE", f"/v1/records/{ref_id(ref)}")

    async def prune(
        self,
        scope: Mapping[str, Any] | None = None,
        older_than: timedelta | float | None = None,
        keep_last: int | None = None,
        collection: str | None = None,
    ) -> int:
        """See :meth:`workspace.base.BaseWorkspace.prune`.

        Args:
            scope: Scope keys to match.
            older_than: Minimum age of a deleted record.
            keep_last: Newest records to keep.
            collection: Only this collection.

        Returns:
            The number of deleted records.
        """
        seconds: float | None
        if older_than is None:
            seconds = None
        elif isinstance(older_than, timedelta):
            seconds = older_than.total_seconds()
        elif isinstance(older_than, (int, float)) and not isinstance(older_than, bool):
            seconds = float(older_than)
        else:
            raise InvalidInputError(
                f"older_than must be a timedelta or seconds, got {type(older_than).__name__}"
            )
        if seconds is not None and (not math.isfinite(seconds) or seconds < 0):
            raise InvalidInputError("older_than must be finite and not negative")
        body = {
            "scope": _mapping(scope),
            "older_than_seconds": seconds,
            "keep_last": keep_last,
            "collection": collection,
        }
        return int((await self._call("POST", "/v1/prune", body))["deleted"])

    # -- links -------------------------------------------------------------------------------

    async def link(
        self,
        source: RefOrId,
        target: RefOrId,
        relation: str,
        meta: Mapping[str, Any] | None = None,
    ) -> Link:
        """See :meth:`workspace.base.BaseWorkspace.link`.

        Args:
            source: Source record.
            target: Target record.
            relation: Relation name.
            meta: Metadata.

        Returns:
            The link.
        """
        body = {
            "source": ref_id(source),
            "target": ref_id(target),
            "relation": relation,
            "meta": _mapping(meta),
        }
        return Link.from_dict(await self._call("POST", "/v1/links", body))

    async def links(
        self,
        ref: RefOrId | None = None,
        *,
        source: RefOrId | None = None,
        target: RefOrId | None = None,
        relation: str | None = None,
    ) -> list[Link]:
        """See :meth:`workspace.base.BaseWorkspace.links`; follows the service's pages.

        Args:
            ref: Either end.
            source: Source record.
            target: Target record.
            relation: Relation name.

        Returns:
            Matching links, newest first.
        """
        found: list[Link] = []
        cursor: str | None = None
        while True:
            page = await self.links_page(
                ref,
                source=source,
                target=target,
                relation=relation,
                limit=MAX_SEARCH_LIMIT,
                cursor=cursor,
            )
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return found

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
        """See :meth:`workspace.base.BaseWorkspace.links_page`.

        Args:
            ref: Either end.
            source: Source record.
            target: Target record.
            relation: Relation name.
            limit: Page size.
            cursor: Next-page cursor.

        Returns:
            The page.
        """
        if relation is not None and not isinstance(relation, str):
            raise InvalidInputError(f"relation must be a string, got {type(relation).__name__}")
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidCursorError("cursor must be a next_cursor string from the previous page")
        params = {
            "ref": None if ref is None else ref_id(ref),
            "source": None if source is None else ref_id(source),
            "target": None if target is None else ref_id(target),
            "relation": relation,
            "limit": check_limit(limit),
            "cursor": cursor,
        }
        return LinkPage.from_dict(await self._call("GET", "/v1/links", params=params))

    # -- checkpoints -------------------------------------------------------------------------

    async def checkpoint(
        self,
        run_id: str,
        state: Any,
        step_id: str | None = None,
        *,
        scope: Mapping[str, Any] | None = None,
    ) -> RecordRef:
        """See :meth:`workspace.base.BaseWorkspace.checkpoint`.

        Args:
            run_id: The run.
            state: The state.
            step_id: The step.
            scope: Extra scope keys.

        Returns:
            The checkpoint ref.
        """
        content_type, value = _wire(state)
        body = {
            "run_id": run_id,
            "state": value,
            "content_type": content_type,
            "step_id": step_id,
            "scope": _mapping(scope),
        }
        return RecordRef.from_dict(await self._call("POST", "/v1/checkpoints", body))

    async def checkpoint_history(
        self,
        run_id: str,
        step_id: str | None = None,
        limit: int | None = None,
        *,
        scope: Mapping[str, Any] | None = None,
    ) -> list[RecordRef]:
        """See :meth:`workspace.base.BaseWorkspace.checkpoint_history`; follows the pages.

        Args:
            run_id: The run.
            step_id: Only this step.
            limit: At most this many.
            scope: Extra scope keys.

        Returns:
            Checkpoint refs, newest first.
        """
        if limit is not None:
            check_limit(limit, maximum=1_000_000)
        found: list[RecordRef] = []
        cursor: str | None = None
        while limit is None or len(found) < limit:
            page_size = MAX_SEARCH_LIMIT
            if limit is not None:
                page_size = min(page_size, limit - len(found))
            page = await self.checkpoint_history_page(
                run_id, step_id, limit=page_size, cursor=cursor, scope=scope
            )
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        return found

    async def checkpoint_history_page(
        self,
        run_id: str,
        step_id: str | None = None,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        scope: Mapping[str, Any] | None = None,
    ) -> SearchPage:
        """See :meth:`workspace.base.BaseWorkspace.checkpoint_history_page`.

        Args:
            run_id: The run.
            step_id: Only this step.
            limit: Page size.
            cursor: Next-page cursor.
            scope: Extra scope keys.

        Returns:
            The page.
        """
        body = {
            "run_id": run_id,
            "step_id": step_id,
            "limit": limit,
            "cursor": cursor,
            "scope": _mapping(scope),
        }
        return SearchPage.from_dict(await self._call("POST", "/v1/checkpoints/history", body))

    async def latest_checkpoint(
        self, run_id: str, *, scope: Mapping[str, Any] | None = None
    ) -> Checkpoint | None:
        """See :meth:`workspace.base.BaseWorkspace.latest_checkpoint`.

        Args:
            run_id: The run.
            scope: Extra scope keys.

        Returns:
            The newest checkpoint or None.
        """
        body = {"run_id": run_id, "scope": _mapping(scope)}
        found = (await self._call("POST", "/v1/checkpoints/latest", body))["checkpoint"]
        if found is None:
            return None
        state = decode_wire_content(found["state"], found["content_type"])
        return Checkpoint(ref=RecordRef.from_dict(found["ref"]), state=state)

    # -- context -----------------------------------------------------------------------------

    async def build_context(
        self,
        goal: str,
        scope: Mapping[str, Any] | None = None,
        budget: Mapping[str, int] | int | None = None,
        profile: str | Profile = "default",
        required: Sequence[RefOrId] | None = None,
    ) -> ContextPack:
        """See :meth:`workspace.base.BaseWorkspace.build_context`.

        Args:
            goal: The goal.
            scope: Only records with this scope.
            budget: ``{"tokens": N}``.
            profile: Profile name or object.
            required: Records that must be included.

        Returns:
            The pack.
        """
        name: str | None = None
        wire_profile: Any = profile
        if isinstance(profile, Profile):
            wire_profile = profile.to_dict()
        elif isinstance(profile, str):
            local = self._profiles.get(profile)
            if local is not None and local is not BUILTIN_PROFILES.get(profile):
                name, wire_profile = profile, local.to_dict()
        if required is not None and (
            isinstance(required, (str, bytes)) or not isinstance(required, Sequence)
        ):
            raise InvalidInputError("required must be a list of refs or ids")
        body = {
            "goal": goal,
            "scope": _mapping(scope),
            "budget": dict(budget) if isinstance(budget, Mapping) else budget,
            "profile": wire_profile,
            "required": None if required is None else [ref_id(r) for r in required],
        }
        pack = ContextPack.from_dict(await self._call("POST", "/v1/context", body))
        return dataclasses.replace(pack, profile=name) if name else pack


def _wire(content: object) -> tuple[str, Any]:
    if not isinstance(content, _CONTENT_TYPES):
        raise InvalidInputError(
            f"content must be str, bytes, dict or list, got {type(content).__name__}"
        )
    return encode_wire_content(content)


def _mapping(value: Mapping[str, Any] | None, what: str = "scope/meta") -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a dict, got {type(value).__name__}")
    return dict(value)
