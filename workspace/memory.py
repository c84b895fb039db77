"""In-memory reference implementation of the Workspace contract.

It defines the expected behaviour in plain Python (the SQL backend must match it in the
conformance suite) and is handy for tests and single-process prototypes. Nothing persists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from workspace._common import (
    DEFAULT_PAGE_SIZE,
    PINNED_TAG,
    Filters,
    check_limit,
    check_mapping,
    check_name,
    compile_filters,
    decode_content,
    decode_cursor,
    encode_cursor,
    fingerprint,
    iso,
    links_fingerprint,
    new_id,
    now_us,
    opt_ref_id,
    ref_id,
)
from workspace._common import (
    block_text as _block_text,
)
from workspace._query import ParsedQuery, any_query, memory_score, parse_query, stems
from workspace._storage import (
    DEFAULT_TENANT,
    StorageWorkspace,
    prune_args,
    slice_args,
)
from workspace.base import RefOrId
from workspace.context import Candidate, TokenCounter, approx_tokens
from workspace.errors import RecordNotFoundError
from workspace.types import BoundedRead, Link, LinkPage, Profile, RecordRef, SearchPage

__all__ = ["MemoryWorkspace"]


@dataclass
class _Rec:
    ref: RecordRef
    tenant: str
    created_us: int
    text: str | None
    blob: bytes | None
    tags: frozenset[str]
    kind_tokens: list[str]
    summary_tokens: list[str]
    text_tokens: list[str]


@dataclass
class _Lnk:
    link: Link
    tenant: str
    created_us: int


@dataclass
class _Store:
    records: dict[str, _Rec] = field(default_factory=dict)
    links: dict[str, _Lnk] = field(default_factory=dict)


class MemoryWorkspace(StorageWorkspace):
    """A Workspace kept in process memory.

    Operations never await in the middle of a change, so concurrent tasks on one event loop see
    each operation as atomic.

    Args:
        tenant: Tenant of this instance (``for_tenant`` gives siblings sharing the data).
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
        super().__init__(tenant=tenant, token_counter=token_counter, profiles=profiles)
        self._store = _Store()

    # -- helpers -----------------------------------------------------------------------------

    def _find(self, ref: object) -> _Rec:
        rid = ref_id(ref)
        rec = self._store.records.get(rid)
        if rec is None or rec.tenant != self._tenant:
            raise RecordNotFoundError(rid)
        return rec

    def _mine(self) -> list[_Rec]:
        return [r for r in self._store.records.values() if r.tenant == self._tenant]

    def _filtered(self, flt: Filters) -> list[_Rec]:
        if flt.impossible:
            return []
        return [
            r for r in self._mine() if flt.matches(r.ref.collection, r.ref.kind, r.ref.id, r.tags)
        ]

    @staticmethod
    def _score(query: ParsedQuery, rec: _Rec) -> float:
        return memory_score(query, rec.kind_tokens, rec.summary_tokens, rec.text_tokens)

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
        new = self._prepare(content, collection, kind, summary, scope, source, meta)
        enc = new.encoded
        self._store.records[new.ref.id] = _Rec(
            ref=new.ref,
            tenant=new.tenant,
            created_us=new.created_us,
            text=enc.text,
            blob=enc.blob,
            tags=frozenset(new.tags),
            kind_tokens=stems(new.ref.kind),
            summary_tokens=stems(new.ref.summary or ""),
            text_tokens=stems(enc.text or ""),
        )
        return new.ref

    async def get(self, ref: RefOrId) -> RecordRef:
        """See :meth:`workspace.base.BaseWorkspace.get`.

        Args:
            ref: A ref or id.

        Returns:
            The ref.
        """
        return self._find(ref).ref

    async def get_data(self, ref: RefOrId) -> Any:
        """See :meth:`workspace.base.BaseWorkspace.get_data`.

        Args:
            ref: A ref or id.

        Returns:
            The content.
        """
        rec = self._find(ref)
        return decode_content(rec.ref.content_type, rec.text, rec.blob)

    async def read_bounded(self, ref: RefOrId, offset: int = 0, limit: int = 65536) -> BoundedRead:
        """See :meth:`workspace.base.BaseWorkspace.read_bounded`.

        Args:
            ref: A ref or id.
            offset: Start of the slice.
            limit: Maximum slice length.

        Returns:
            The slice.
        """
        offset, limit = slice_args(offset, limit)
        rec = self._find(ref)
        whole: str | bytes = rec.blob if rec.blob is not None else (rec.text or "")
        part = whole[offset : offset + limit]
        return BoundedRead(
            id=rec.ref.id,
            content_type=rec.ref.content_type,
            data=part,
            offset=offset,
            total=len(whole),
            has_more=offset + len(part) < len(whole),
        )

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
        parsed = parse_query(query)
        flt = compile_filters(filters, scope)
        limit = check_limit(limit)
        fp = fingerprint(None if parsed is None else parsed.groups, flt.key())
        if parsed is None:
            recs = sorted(self._filtered(flt), key=lambda r: (r.created_us, r.ref.id), reverse=True)
            if cursor is not None:
                pos = decode_cursor(cursor, fp, "k")
                key = (pos["c"], pos["i"])
                recs = [r for r in recs if (r.created_us, r.ref.id) < key]
            page = recs[: limit + 1]
            items = [r.ref for r in page[:limit]]
            next_cursor = None
            if len(page) > limit:
                last = page[limit - 1]
                next_cursor = encode_cursor(
                    {"m": "k", "f": fp, "c": last.created_us, "i": last.ref.id}
                )
            return SearchPage(items, next_cursor)
        offset = 0 if cursor is None else int(decode_cursor(cursor, fp, "o")["o"])
        if parsed.empty:
            return SearchPage([], None)
        scored = [(self._score(parsed, r), r) for r in self._filtered(flt)]
        ranked = sorted(
            ((s, r) for s, r in scored if s > 0),
            key=lambda sr: (sr[0], sr[1].created_us, sr[1].ref.id),
            reverse=True,
        )
        window = ranked[offset : offset + limit + 1]
        items = [r.ref for _, r in window[:limit]]
        next_cursor = None
        if len(window) > limit:
            next_cursor = encode_cursor({"m": "o", "f": fp, "o": offset + limit})
        return SearchPage(items, next_cursor)

    async def delete(self, ref: RefOrId) -> None:
        """See :meth:`workspace.base.BaseWorkspace.delete`.

        Args:
            ref: A ref or id.
        """
        self._remove([self._find(ref).ref.id])

    def _remove(self, ids: Sequence[str]) -> None:
        doomed = set(ids)
        for rid in doomed:
            self._store.records.pop(rid, None)
        for lid in [
            lid
            for lid, lnk in self._store.links.items()
            if lnk.link.source in doomed or lnk.link.target in doomed
        ]:
            del self._store.links[lid]

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
        args = prune_args(scope, older_than, keep_last, collection)
        flt = compile_filters(
            None if args.collection is None else {"collection": args.collection}, args.scope
        )
        recs = [r for r in self._filtered(flt) if PINNED_TAG not in r.tags]
        recs.sort(key=lambda r: (r.created_us, r.ref.id), reverse=True)
        doomed = [
            r.ref.id
            for r in recs[args.keep_last :]
            if args.cutoff_us is None or r.created_us < args.cutoff_us
        ]
        self._remove(doomed)
        return len(doomed)

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
        relation_s = str(check_name(relation, "relation"))
        meta_d = check_mapping(meta, "meta")
        src = self._find(source).ref.id
        dst = self._find(target).ref.id
        created = now_us()
        link = Link(new_id("lnk", created), src, dst, relation_s, meta_d, iso(created))
        self._store.links[link.id] = _Lnk(link, self._tenant, created)
        return link

    def _matching_links(
        self,
        ref: RefOrId | None,
        source: RefOrId | None,
        target: RefOrId | None,
        relation: str | None,
    ) -> list[_Lnk]:
        either = None if ref is None else self._find(ref).ref.id
        src = None if source is None else self._find(source).ref.id
        dst = None if target is None else self._find(target).ref.id
        found = [
            lnk
            for lnk in self._store.links.values()
            if lnk.tenant == self._tenant
            and (either is None or either in (lnk.link.source, lnk.link.target))
            and (src is None or lnk.link.source == src)
            and (dst is None or lnk.link.target == dst)
            and (relation is None or lnk.link.relation == relation)
        ]
        found.sort(key=lambda lnk: (lnk.created_us, lnk.link.id), reverse=True)
        return found

    async def links(
        self,
        ref: RefOrId | None = None,
        *,
        source: RefOrId | None = None,
        target: RefOrId | None = None,
        relation: str | None = None,
    ) -> list[Link]:
        """See :meth:`workspace.base.BaseWorkspace.links`.

        Args:
            ref: Either end.
            source: Source record.
            target: Target record.
            relation: Relation name.

        Returns:
            Matching links, newest first.
        """
        rel = check_name(relation, "relation", optional=True)
        return [lnk.link for lnk in self._matching_links(ref, source, target, rel)]

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
        rel = check_name(relation, "relation", optional=True)
        limit = check_limit(limit)
        fp = links_fingerprint(opt_ref_id(ref), opt_ref_id(source), opt_ref_id(target), rel)
        pos = None if cursor is None else decode_cursor(cursor, fp, "k")
        found = self._matching_links(ref, source, target, rel)
        if pos is not None:
            after = (pos["c"], pos["i"])
            found = [lnk for lnk in found if (lnk.created_us, lnk.link.id) < after]
        next_cursor = None
        if len(found) > limit:
            last = found[limit - 1]
            next_cursor = encode_cursor(
                {"m": "k", "f": fp, "c": last.created_us, "i": last.link.id}
            )
        return LinkPage([lnk.link for lnk in found[:limit]], next_cursor)

    # -- context -----------------------------------------------------------------------------

    async def _context_candidates(
        self,
        *,
        terms: list[str],
        scope: dict[str, Any],
        collections: list[str],
        limit: int,
        required: list[str],
    ) -> list[Candidate]:
        query = any_query(terms)
        in_scope = self._filtered(compile_filters(None, scope))
        weighted = [r for r in in_scope if r.ref.collection in collections]
        chosen: dict[str, _Rec] = {}
        if terms:
            scored = [(self._score(query, r), r) for r in weighted]
            scored = [sr for sr in scored if sr[0] > 0]
            scored.sort(key=lambda sr: (sr[0], sr[1].created_us, sr[1].ref.id), reverse=True)
            chosen.update((r.ref.id, r) for _, r in scored[:limit])
        newest = sorted(weighted, key=lambda r: (r.created_us, r.ref.id), reverse=True)
        chosen.update((r.ref.id, r) for r in newest[:limit])
        chosen.update((r.ref.id, r) for r in in_scope if PINNED_TAG in r.tags)
        for rid in required:
            rec = self._find(rid)
            chosen[rec.ref.id] = rec
        return [
            Candidate(
                ref=r.ref,
                created_us=r.created_us,
                text=_block_text(r.ref.content_type, r.text),
                relevance=self._score(query, r) if terms else 0.0,
            )
            for r in chosen.values()
        ]
