"""In-memory reference implementation of the Workspace contract (storage layer).

It states the storage primitives of :class:`~workspace.storage.base.StorageWorkspace` in plain
Python (the SQL backend must match it in the conformance suite) and is handy for tests and
single-process prototypes. Nothing persists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workspace.context import Candidate, TokenCounter, approx_tokens
from workspace.errors import RecordNotFoundError
from workspace.paging import Key
from workspace.query import ParsedQuery, memory_score, stems
from workspace.storage.base import DEFAULT_TENANT, LinkSelector, StorageWorkspace
from workspace.storage.filters import PINNED_TAG, Filters
from workspace.storage.records import NewRecord, Stamped, block_text, decode_content, new_link
from workspace.types import BoundedRead, Link, Profile, RecordRef

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

    @property
    def key(self) -> Key:
        return self.created_us, self.ref.id


@dataclass
class _Store:
    records: dict[str, _Rec] = field(default_factory=dict)
    links: dict[str, tuple[str, Stamped[Link]]] = field(default_factory=dict)  # id: tenant, link


def _stored(new: NewRecord) -> _Rec:
    enc = new.encoded
    return _Rec(
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


def _newest_first(recs: Iterable[_Rec]) -> list[_Rec]:
    return sorted(recs, key=lambda r: r.key, reverse=True)


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

    # -- helpers -------------------------------------------------------------------------------

    def _find(self, rid: str) -> _Rec:
        rec = self._store.records.get(rid)
        if rec is None or rec.tenant != self.tenant:
            raise RecordNotFoundError(rid)
        return rec

    def _filtered(self, flt: Filters) -> list[_Rec]:
        return [
            r
            for r in self._store.records.values()
            if r.tenant == self.tenant
            and flt.matches(r.ref.collection, r.ref.kind, r.ref.id, r.tags)
        ]

    @staticmethod
    def _score(query: ParsedQuery, rec: _Rec) -> float:
        return memory_score(query, rec.kind_tokens, rec.summary_tokens, rec.text_tokens)

    def _remove(self, ids: Iterable[str]) -> None:
        doomed = set(ids)
        for rid in doomed:
            self._store.records.pop(rid, None)
        links = self._store.links
        for lid in [
            lid
            for lid, (_, s) in links.items()
            if s.item.source in doomed or s.item.target in doomed
        ]:
            del links[lid]

    # -- storage primitives --------------------------------------------------------------------

    async def _insert(self, new: NewRecord) -> None:
        self._store.records[new.ref.id] = _stored(new)

    async def _insert_many(self, news: Sequence[NewRecord]) -> None:
        # Every row is built before the first one is stored: all or nothing.
        rows = {new.ref.id: _stored(new) for new in news}
        self._store.records.update(rows)

    async def _load_ref(self, rid: str) -> RecordRef:
        return self._find(rid).ref

    async def _load_content(self, rid: str) -> Any:
        rec = self._find(rid)
        return decode_content(rec.ref.content_type, rec.text, rec.blob)

    async def _load_slice(self, rid: str, offset: int, limit: int) -> BoundedRead:
        rec = self._find(rid)
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

    async def _newest(
        self, flt: Filters, after: Key | None, limit: int
    ) -> list[Stamped[RecordRef]]:
        recs = _newest_first(self._filtered(flt))
        if after is not None:
            recs = [r for r in recs if r.key < after]
        return [Stamped(r.created_us, r.ref) for r in recs[:limit]]

    async def _ranked(
        self, query: ParsedQuery, flt: Filters, offset: int, limit: int
    ) -> list[RecordRef]:
        scored = [(self._score(query, r), r) for r in self._filtered(flt)]
        ranked = sorted(
            ((s, r) for s, r in scored if s > 0),
            key=lambda sr: (sr[0], *sr[1].key),
            reverse=True,
        )
        return [r.ref for _, r in ranked[offset : offset + limit]]

    async def _delete(self, rid: str) -> None:
        self._remove([self._find(rid).ref.id])

    async def _prune(self, flt: Filters, keep_last: int, cutoff_us: int | None) -> int:
        recs = _newest_first(r for r in self._filtered(flt) if PINNED_TAG not in r.tags)
        doomed = [
            r.ref.id for r in recs[keep_last:] if cutoff_us is None or r.created_us < cutoff_us
        ]
        self._remove(doomed)
        return len(doomed)

    async def _insert_link(
        self, source: str, target: str, relation: str, meta: dict[str, Any]
    ) -> Link:
        self._find(source)
        self._find(target)
        stamped = new_link(source, target, relation, meta)
        self._store.links[stamped.item.id] = (self.tenant, stamped)
        return stamped.item

    async def _select_links(
        self, selector: LinkSelector, after: Key | None, limit: int | None
    ) -> list[Stamped[Link]]:
        for rid in selector.ids:
            self._find(rid)
        found = [
            s
            for tenant, s in self._store.links.values()
            if tenant == self.tenant
            and (selector.ref is None or selector.ref in (s.item.source, s.item.target))
            and (selector.source is None or s.item.source == selector.source)
            and (selector.target is None or s.item.target == selector.target)
            and (selector.relation is None or s.item.relation == selector.relation)
            and (after is None or s.key < after)
        ]
        found.sort(key=lambda s: s.key, reverse=True)
        return found if limit is None else found[:limit]

    async def _load_candidates(
        self, ids: Sequence[str], query: ParsedQuery | None
    ) -> list[Candidate]:
        recs = [self._store.records.get(rid) for rid in ids]
        return [
            Candidate(
                ref=r.ref,
                created_us=r.created_us,
                text=block_text(r.ref.content_type, r.text),
                relevance=0.0 if query is None else self._score(query, r),
            )
            for r in recs
            if r is not None and r.tenant == self.tenant
        ]
