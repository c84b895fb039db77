"""The contract implemented once for every storage backend, on top of a few storage primitives.

Storage layer. :class:`StorageWorkspace` validates every argument, parses queries, compiles
filters, issues and checks cursors, and decides which records a context considers; the backends
(``memory.py``, ``sql/store.py``) only implement the ``_``-prefixed primitives declared here:
read, write and list rows for an already validated request. That split is what keeps the
backends identical in everything but storage.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from workspace.context import (
    DEFAULT_BUDGET,
    Candidate,
    TokenCounter,
    approx_tokens,
    assemble,
    check_budget,
    resolve_profile,
    weighted_collections,
)
from workspace.contract import BaseWorkspace, RefOrId
from workspace.errors import InvalidInputError, RecordNotFoundError
from workspace.paging import (
    Key,
    decode_keyset,
    decode_offset,
    fingerprint,
    keyset_cursor,
    links_fingerprint,
    offset_cursor,
)
from workspace.query import ParsedQuery, any_query, goal_terms, parse_query
from workspace.storage.filters import Filters, compile_filters
from workspace.storage.records import NewRecord, Stamped, new_record, now_us
from workspace.types import (
    BoundedRead,
    ContextPack,
    Link,
    LinkPage,
    Profile,
    RecordRef,
    SearchPage,
)
from workspace.validation import (
    DEFAULT_PAGE_SIZE,
    check_collection,
    check_keep_last,
    check_limit,
    check_mapping,
    check_name,
    check_older_than,
    check_required,
    check_slice,
    opt_ref_id,
    prepare_batch,
    ref_id,
)

__all__ = ["DEFAULT_TENANT", "LinkSelector", "StorageWorkspace"]

DEFAULT_TENANT = "default"
# Most pinned records a context considers (they are always included, so this bounds its size).
MAX_PINNED = 1000

_W = TypeVar("_W", bound="StorageWorkspace")
_Item = TypeVar("_Item", RecordRef, Link)


@dataclass(frozen=True)
class LinkSelector:
    """Which links to list: validated ids (None: any) and relation."""

    ref: str | None = None
    source: str | None = None
    target: str | None = None
    relation: str | None = None

    @property
    def ids(self) -> list[str]:
        """The given record ids in the order ref, source, target (each must exist)."""
        return [x for x in (self.ref, self.source, self.target) if x is not None]


def _keyset_page(
    rows: Sequence[Stamped[_Item]], limit: int, fp: str
) -> tuple[list[_Item], str | None]:
    # Rows are fetched with limit + 1 so that a full page knows whether another one follows.
    more = len(rows) > limit
    return [row.item for row in rows[:limit]], keyset_cursor(
        fp, rows[limit - 1].key
    ) if more else None


class StorageWorkspace(BaseWorkspace):
    """Base of the backends that store data themselves (not the HTTP client).

    Args:
        tenant: Every row is written with and filtered by this tenant.
        token_counter: Counts tokens for ``build_context``.
        profiles: Extra named profiles.
    """

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        token_counter: TokenCounter = approx_tokens,
        profiles: Mapping[str, Profile] | None = None,
    ) -> None:
        super().__init__(profiles=profiles)
        self._tenant = str(check_name(tenant, "tenant"))
        if not callable(token_counter):
            raise InvalidInputError("token_counter must be a callable taking a str")
        self._token_counter = token_counter

    @property
    def tenant(self) -> str:
        """The tenant this instance reads and writes."""
        return self._tenant

    def for_tenant(self: _W, tenant: str) -> _W:
        """Return a sibling that shares storage and connections but acts for another tenant.

        Args:
            tenant: The tenant.

        Returns:
            The sibling (closing it closes the shared resources too; close only the original).
        """
        clone = copy.copy(self)
        clone._tenant = str(check_name(tenant, "tenant"))
        return clone

    # -- storage primitives (implemented by each backend, for this instance's tenant) -----------

    @abstractmethod
    async def _insert(self, new: NewRecord) -> None:
        """Store a validated record."""

    @abstractmethod
    async def _insert_many(self, news: Sequence[NewRecord]) -> None:
        """Store validated records atomically: all of them, or none when it raises."""

    @abstractmethod
    async def _load_ref(self, rid: str) -> RecordRef:
        """The ref of a record; RecordNotFoundError when it does not exist."""

    @abstractmethod
    async def _load_content(self, rid: str) -> Any:
        """The decoded content of a record; RecordNotFoundError when it does not exist."""

    @abstractmethod
    async def _load_slice(self, rid: str, offset: int, limit: int) -> BoundedRead:
        """A slice of a record's content; RecordNotFoundError when it does not exist."""

    @abstractmethod
    async def _newest(
        self, flt: Filters, after: Key | None, limit: int
    ) -> list[Stamped[RecordRef]]:
        """At most ``limit`` matching records, newest first, strictly after ``after``.

        Newest first means by ``(created_us, id)`` descending; ``flt`` is never impossible.
        """

    @abstractmethod
    async def _ranked(
        self, query: ParsedQuery, flt: Filters, offset: int, limit: int
    ) -> list[RecordRef]:
        """Matching records by relevance to a non-empty query, then newest first.

        Skips ``offset`` of them and returns at most ``limit``; ``flt`` is never impossible.
        """

    @abstractmethod
    async def _delete(self, rid: str) -> None:
        """Delete a record and its links; RecordNotFoundError when it does not exist."""

    @abstractmethod
    async def _prune(self, flt: Filters, keep_last: int, cutoff_us: int | None) -> int:
        """Delete matching unpinned records but the ``keep_last`` newest; return how many.

        Only records created before ``cutoff_us`` are deleted (any age when None).
        """

    @abstractmethod
    async def _insert_link(
        self, source: str, target: str, relation: str, meta: dict[str, Any]
    ) -> Link:
        """Store a new link (see ``records.new_link``); RecordNotFoundError for a missing end."""

    @abstractmethod
    async def _select_links(
        self, selector: LinkSelector, after: Key | None, limit: int | None
    ) -> list[Stamped[Link]]:
        """Links matching ``selector``, newest first, strictly after ``after``, at most ``limit``.

        RecordNotFoundError for a selector id that does not exist (checked in the order of
        ``selector.ids``).
        """

    @abstractmethod
    async def _load_candidates(
        self, ids: Sequence[str], query: ParsedQuery | None
    ) -> list[Candidate]:
        """Candidates for the existing ids among ``ids`` (missing ones are left out).

        Each with its raw rank for ``query`` (0 without a query or when it does not match).
        """

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
        new = new_record(self._tenant, content, collection, kind, summary, scope, source, meta)
        await self._insert(new)
        return new.ref

    async def ingest_many(self, records: Sequence[Mapping[str, Any]]) -> list[RecordRef]:
        """See :meth:`BaseWorkspace.ingest_many`: every record is validated, then one write."""
        news = prepare_batch(records, lambda item: new_record(self._tenant, **_record_args(item)))
        if news:
            await self._insert_many(news)
        return [new.ref for new in news]

    async def get(self, ref: RefOrId) -> RecordRef:
        """See :meth:`BaseWorkspace.get`."""
        return await self._load_ref(ref_id(ref))

    async def get_data(self, ref: RefOrId) -> Any:
        """See :meth:`BaseWorkspace.get_data`."""
        return await self._load_content(ref_id(ref))

    async def read_bounded(self, ref: RefOrId, offset: int = 0, limit: int = 65536) -> BoundedRead:
        """See :meth:`BaseWorkspace.read_bounded`."""
        offset, limit = check_slice(offset, limit)
        return await self._load_slice(ref_id(ref), offset, limit)

    async def search(
        self,
        query: str | None = None,
        filters: Mapping[str, Any] | None = None,
        scope: Mapping[str, Any] | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        """See :meth:`BaseWorkspace.search`.

        Without a query the listing pages by keyset (newest first); with one, by offset into the
        ranking. Either cursor carries the query's fingerprint.
        """
        parsed = parse_query(query)
        flt = compile_filters(filters, scope)
        limit = check_limit(limit)
        fp = fingerprint(None if parsed is None else parsed.groups, flt.key())
        if parsed is None:
            after = None if cursor is None else decode_keyset(cursor, fp)
            if flt.impossible:
                return SearchPage([], None)
            return SearchPage(*_keyset_page(await self._newest(flt, after, limit + 1), limit, fp))
        offset = 0 if cursor is None else decode_offset(cursor, fp)
        if parsed.empty or flt.impossible:
            return SearchPage([], None)
        found = await self._ranked(parsed, flt, offset, limit + 1)
        more = len(found) > limit
        return SearchPage(found[:limit], offset_cursor(fp, offset + limit) if more else None)

    async def delete(self, ref: RefOrId) -> None:
        """See :meth:`BaseWorkspace.delete`."""
        await self._delete(ref_id(ref))

    async def prune(
        self,
        scope: Mapping[str, Any] | None = None,
        older_than: timedelta | float | None = None,
        keep_last: int | None = None,
        collection: str | None = None,
    ) -> int:
        """See :meth:`BaseWorkspace.prune`."""
        delta = check_older_than(older_than)
        keep = check_keep_last(keep_last)
        if delta is None and keep is None:
            raise InvalidInputError(
                "prune needs older_than and/or keep_last; to delete everything use keep_last=0"
            )
        # Clamped at the epoch: nothing is older than that, and the value stays a valid BIGINT.
        cutoff = None if delta is None else max(now_us() - int(delta.total_seconds() * 1e6), 0)
        scope_d = check_mapping(scope, "scope")
        col = None if collection is None else check_collection(collection)
        flt = compile_filters(None if col is None else {"collection": col}, scope_d)
        if flt.impossible:
            return 0
        return await self._prune(flt, keep or 0, cutoff)

    # -- links ---------------------------------------------------------------------------------

    async def link(
        self,
        source: RefOrId,
        target: RefOrId,
        relation: str,
        meta: Mapping[str, Any] | None = None,
    ) -> Link:
        """See :meth:`BaseWorkspace.link`."""
        relation_s = str(check_name(relation, "relation"))
        meta_d = check_mapping(meta, "meta")
        return await self._insert_link(ref_id(source), ref_id(target), relation_s, meta_d)

    async def links(
        self,
        ref: RefOrId | None = None,
        *,
        source: RefOrId | None = None,
        target: RefOrId | None = None,
        relation: str | None = None,
    ) -> list[Link]:
        """See :meth:`BaseWorkspace.links`."""
        selector = _link_selector(ref, source, target, relation)
        return [row.item for row in await self._select_links(selector, None, None)]

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
        """See :meth:`BaseWorkspace.links_page`; pages by keyset, one query per page."""
        selector = _link_selector(ref, source, target, relation)
        limit = check_limit(limit)
        fp = links_fingerprint(selector.ref, selector.source, selector.target, selector.relation)
        after = None if cursor is None else decode_keyset(cursor, fp)
        rows = await self._select_links(selector, after, limit + 1)
        return LinkPage(*_keyset_page(rows, limit, fp))

    # -- context -------------------------------------------------------------------------------

    async def build_context(
        self,
        goal: str,
        scope: Mapping[str, Any] | None = None,
        budget: Mapping[str, int] | int | None = None,
        profile: str | Profile = "default",
        required: Sequence[RefOrId] | None = None,
    ) -> ContextPack:
        """See :meth:`BaseWorkspace.build_context`.

        The candidates are the union of: the ``candidate_limit`` records best matching any goal
        word and the ``candidate_limit`` newest records (both in ``scope`` and the profile's
        weighted collections), up to 1000 pinned records in ``scope``, and the ``required``
        records (anywhere in the tenant).

        Raises:
            InvalidInputError: For a bad goal, budget, scope or profile.
            RecordNotFoundError: If a required record does not exist for this tenant.
        """
        if not isinstance(goal, str):
            raise InvalidInputError(f"goal must be a string, got {type(goal).__name__}")
        budget_tokens = check_budget(DEFAULT_BUDGET if budget is None else budget)
        name, prof = resolve_profile(self.profiles, profile)
        scope_d = check_mapping(scope, "scope")
        required_ids = check_required(required)
        terms = goal_terms(goal)
        query = any_query(terms) if terms else None
        in_scope = compile_filters(None, scope_d)
        weighted = compile_filters(None, scope_d, collections=weighted_collections(prof))
        limit = prof.candidate_limit
        ids: dict[str, None] = {}
        if not weighted.impossible:
            if query is not None:
                ids.update((ref.id, None) for ref in await self._ranked(query, weighted, 0, limit))
            ids.update((row.item.id, None) for row in await self._newest(weighted, None, limit))
        if not in_scope.impossible:
            pinned = await self._newest(in_scope.pinned(), None, MAX_PINNED)
            ids.update((row.item.id, None) for row in pinned)
        ids.update((rid, None) for rid in required_ids)
        candidates = await self._load_candidates(list(ids), query)
        found = {c.ref.id for c in candidates}
        for rid in required_ids:
            if rid not in found:
                raise RecordNotFoundError(rid)
        return assemble(
            candidates,
            goal=goal,
            profile_name=name,
            profile=prof,
            budget_tokens=budget_tokens,
            token_counter=self._token_counter,
            required=required_ids,
            has_terms=bool(terms),
        )


def _record_args(item: Mapping[str, Any]) -> dict[str, Any]:
    # check_batch_record made sure of the keys; the optional ones default to None.
    return {
        "content": item["content"],
        "collection": item["collection"],
        "kind": item["kind"],
        "summary": item.get("summary"),
        "scope": item.get("scope"),
        "source": item.get("source"),
        "meta": item.get("meta"),
    }


def _link_selector(ref: object, source: object, target: object, relation: object) -> LinkSelector:
    relation_s = check_name(relation, "relation", optional=True)
    return LinkSelector(opt_ref_id(ref), opt_ref_id(source), opt_ref_id(target), relation_s)
