"""Value types returned by the Workspace contract (contract layer, imports nothing of the package).

Every type is a frozen dataclass with ``to_dict()`` (JSON-able) and ``from_dict()`` so the HTTP
service and client exchange exactly what the library backends return.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "BoundedRead",
    "Checkpoint",
    "ContentType",
    "ContextBlock",
    "ContextPack",
    "Link",
    "LinkPage",
    "Omission",
    "Page",
    "Profile",
    "RecordRef",
    "SearchPage",
]

ContentType = Literal["text", "json", "bytes"]
"""How a record's content was given: ``str`` -> text, ``dict``/``list`` -> json, ``bytes``."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class RecordRef:
    """A small, state-safe handle to a stored record: keep this (or just ``id``) in state.

    Attributes:
        id: Opaque record id, unique across tenants.
        collection: One of ``observations``, ``artifacts``, ``decisions``, ``checkpoints``.
        kind: Free-form sub type chosen by the writer (``report``, ``snapshot``...).
        sha256: Hex digest of the stored bytes (UTF-8 text, compact JSON, or the raw bytes).
        size: Length in bytes of those stored bytes.
        summary: Optional short description, indexed for search and used when the full content
            does not fit a context budget.
        scope: Exact-match keys (``task_id``, ``run_id``...) that searches filter on.
        source: Optional provenance string (URL, tool name...).
        meta: Free-form JSON metadata; ``{"pinned": true}`` pins a record into every context.
        created_at: ISO-8601 UTC timestamp with microseconds.
        content_type: ``text``, ``json`` or ``bytes``; ``get_data`` returns that type.
    """

    id: str
    collection: str
    kind: str
    sha256: str
    size: int
    summary: str | None
    scope: dict[str, Any]
    source: str | None
    meta: dict[str, Any]
    created_at: str
    content_type: ContentType = "text"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of every field.

        Returns:
            The record fields.
        """
        return {
            "id": self.id,
            "collection": self.collection,
            "kind": self.kind,
            "sha256": self.sha256,
            "size": self.size,
            "summary": self.summary,
            "scope": dict(self.scope),
            "source": self.source,
            "meta": dict(self.meta),
            "created_at": self.created_at,
            "content_type": self.content_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordRef:
        """Build a ref from ``to_dict()`` output.

        Args:
            data: A mapping with the record fields.

        Returns:
            The ref.
        """
        return cls(
            id=str(data["id"]),
            collection=str(data["collection"]),
            kind=str(data["kind"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            summary=data.get("summary"),
            scope=dict(data.get("scope") or {}),
            source=data.get("source"),
            meta=dict(data.get("meta") or {}),
            created_at=str(data["created_at"]),
            content_type=data.get("content_type", "text"),
        )


@dataclass(frozen=True)
class Link:
    """A directed, typed edge between two records (e.g. a decision ``answers`` evidence).

    Attributes:
        id: Opaque link id.
        source: Id of the record the link starts at.
        target: Id of the record the link points to.
        relation: Free-form relation name (``answers``, ``supersedes``, ``derived_from``...).
        meta: Free-form JSON metadata.
        created_at: ISO-8601 UTC timestamp.
    """

    id: str
    source: str
    target: str
    relation: str
    meta: dict[str, Any]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of every field.

        Returns:
            The link fields.
        """
        return {
            "id": self.id,
            "source": self.source,
            "target": self.target,
            "relation": self.relation,
            "meta": dict(self.meta),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Link:
        """Build a link from ``to_dict()`` output.

        Args:
            data: A mapping with the link fields.

        Returns:
            The link.
        """
        return cls(
            id=str(data["id"]),
            source=str(data["source"]),
            target=str(data["target"]),
            relation=str(data["relation"]),
            meta=dict(data.get("meta") or {}),
            created_at=str(data["created_at"]),
        )


_Item = TypeVar("_Item", RecordRef, Link)


@dataclass(frozen=True)
class Page(Generic[_Item]):
    """One page of a listing.

    Attributes:
        items: The items of this page.
        next_cursor: Opaque cursor for the next page, or ``None`` on the last page.
    """

    items: list[_Item]
    next_cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict.

        Returns:
            ``{"items": [...], "next_cursor": ...}``.
        """
        return {"items": [x.to_dict() for x in self.items], "next_cursor": self.next_cursor}


@dataclass(frozen=True)
class SearchPage(Page[RecordRef]):
    """One page of search results: records best first (newest first without a query)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchPage:
        """Build a page from ``to_dict()`` output.

        Args:
            data: The mapping.

        Returns:
            The page.
        """
        items = [RecordRef.from_dict(x) for x in data.get("items", [])]
        return cls(items, data.get("next_cursor"))


@dataclass(frozen=True)
class LinkPage(Page[Link]):
    """One page of links, newest first."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkPage:
        """Build a page from ``to_dict()`` output.

        Args:
            data: The mapping.

        Returns:
            The page.
        """
        return cls([Link.from_dict(x) for x in data.get("items", [])], data.get("next_cursor"))


@dataclass(frozen=True)
class BoundedRead:
    """A slice of a record's content.

    Offsets count characters for ``text`` and ``json`` records (the compact JSON text) and bytes
    for ``bytes`` records.

    Attributes:
        id: The record id.
        content_type: The record's content type.
        data: The slice (``str``, or ``bytes`` for bytes records).
        offset: Where the slice starts.
        total: Total length of the content in the same unit.
        has_more: Whether content remains after this slice.
    """

    id: str
    content_type: ContentType
    data: str | bytes
    offset: int
    total: int
    has_more: bool

    @property
    def next_offset(self) -> int:
        """Offset to pass to read the next slice."""
        return self.offset + len(self.data)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict; bytes are base64 encoded.

        Returns:
            The slice fields.
        """
        data = self.data
        return {
            "id": self.id,
            "content_type": self.content_type,
            "data": _b64(data) if isinstance(data, bytes) else data,
            "offset": self.offset,
            "total": self.total,
            "has_more": self.has_more,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BoundedRead:
        """Build a slice from ``to_dict()`` output.

        Args:
            data: The mapping.

        Returns:
            The slice.
        """
        payload = data["data"]
        if data["content_type"] == "bytes":
            payload = base64.b64decode(payload)
        return cls(
            id=str(data["id"]),
            content_type=data["content_type"],
            data=payload,
            offset=int(data["offset"]),
            total=int(data["total"]),
            has_more=bool(data["has_more"]),
        )


@dataclass(frozen=True)
class Checkpoint:
    """The newest checkpoint of a run.

    Attributes:
        ref: The checkpoint record.
        state: The stored state, with its original type.
    """

    ref: RecordRef
    state: Any


@dataclass(frozen=True)
class ContextBlock:
    """One record packed into a context.

    Attributes:
        ref: The record.
        content: The text put in the context (full content, or the summary if ``form`` says so).
        reason: Why it is included: ``required``, ``pinned``, ``relevant`` (matched the goal) or
            ``recent`` (did not match but ranked by recency and collection weight).
        tokens: Tokens counted for ``content``.
        score: The ranking score (0 for required and pinned records, which are not ranked).
        form: ``full`` or ``summary``.
    """

    ref: RecordRef
    content: str
    reason: str
    tokens: int
    score: float
    form: Literal["full", "summary"] = "full"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict.

        Returns:
            The block fields.
        """
        return {
            "ref": self.ref.to_dict(),
            "content": self.content,
            "reason": self.reason,
            "tokens": self.tokens,
            "score": self.score,
            "form": self.form,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContextBlock:
        """Build a block from ``to_dict()`` output.

        Args:
            data: The mapping.

        Returns:
            The block.
        """
        return cls(
            ref=RecordRef.from_dict(data["ref"]),
            content=str(data["content"]),
            reason=str(data["reason"]),
            tokens=int(data["tokens"]),
            score=float(data["score"]),
            form=data.get("form", "full"),
        )


@dataclass(frozen=True)
class Omission:
    """A candidate record left out of a context.

    Attributes:
        ref: The record.
        reason: ``over_budget``, ``low_relevance`` or ``binary_content``.
        tokens: Tokens the record would have cost (0 when not counted).
        score: Its ranking score.
    """

    ref: RecordRef
    reason: str
    tokens: int = 0
    score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict.

        Returns:
            The omission fields.
        """
        return {
            "ref": self.ref.to_dict(),
            "reason": self.reason,
            "tokens": self.tokens,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Omission:
        """Build an omission from ``to_dict()`` output.

        Args:
            data: The mapping.

        Returns:
            The omission.
        """
        return cls(
            ref=RecordRef.from_dict(data["ref"]),
            reason=str(data["reason"]),
            tokens=int(data.get("tokens", 0)),
            score=float(data.get("score", 0.0)),
        )


@dataclass(frozen=True)
class ContextPack:
    """Records packed for a goal under a token budget.

    Attributes:
        goal: The goal the records were ranked against.
        profile: Name of the profile used.
        budget: The budget, e.g. ``{"tokens": 4000}``.
        used_tokens: Tokens of all blocks together.
        blocks: Included records, required and pinned first, then by score.
        omissions: Candidates left out, with the reason.
        over_budget: True when required or pinned records alone exceed the budget.
        warnings: Human-readable notes (e.g. which forced records blew the budget).
        considered: How many candidate records were ranked.
    """

    goal: str
    profile: str
    budget: dict[str, int]
    used_tokens: int
    blocks: list[ContextBlock]
    omissions: list[Omission]
    over_budget: bool = False
    warnings: list[str] = field(default_factory=list)
    considered: int = 0

    def to_text(self, separator: str = "\n\n") -> str:
        """Join the block contents, in pack order, for a prompt.

        Args:
            separator: Put between blocks.

        Returns:
            The joined text.
        """
        return separator.join(block.content for block in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict.

        Returns:
            The pack fields.
        """
        return {
            "goal": self.goal,
            "profile": self.profile,
            "budget": dict(self.budget),
            "used_tokens": self.used_tokens,
            "blocks": [b.to_dict() for b in self.blocks],
            "omissions": [o.to_dict() for o in self.omissions],
            "over_budget": self.over_budget,
            "warnings": list(self.warnings),
            "considered": self.considered,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContextPack:
        """Build a pack from ``to_dict()`` output.

        Args:
            data: The mapping.

        Returns:
            The pack.
        """
        return cls(
            goal=str(data["goal"]),
            profile=str(data["profile"]),
            budget={str(k): int(v) for k, v in dict(data["budget"]).items()},
            used_tokens=int(data["used_tokens"]),
            blocks=[ContextBlock.from_dict(b) for b in data.get("blocks", [])],
            omissions=[Omission.from_dict(o) for o in data.get("omissions", [])],
            over_budget=bool(data.get("over_budget", False)),
            warnings=[str(w) for w in data.get("warnings", [])],
            considered=int(data.get("considered", 0)),
        )


@dataclass(frozen=True)
class Profile:
    """Weights that steer ``build_context`` ranking.

    ``score = collection_weight * kind_weight * (relevance_weight * relevance
    + recency_weight * recency)`` where ``relevance`` is the full-text rank normalized to [0, 1]
    over the candidates and ``recency`` halves every ``recency_half_life_s`` seconds of age,
    measured from the newest candidate (not the wall clock, so packs are reproducible).

    Attributes:
        collection_weights: Weight per collection; collections with weight 0 (or absent) are
            never candidates, except pinned or required records.
        kind_weights: Optional weight per ``kind`` (default 1.0).
        relevance_weight: Weight of the full-text relevance term.
        recency_weight: Weight of the recency term.
        recency_half_life_s: Age in seconds at which recency drops to 0.5.
        min_relevance: When the goal has search terms, candidates whose normalized relevance is
            below this are omitted as ``low_relevance``.
        use_summaries: Pack a record's summary when its full content does not fit.
        candidate_limit: How many top-ranked and how many newest records the backend fetches.
        description: Free text for humans.
    """

    collection_weights: Mapping[str, float] = field(
        default_factory=lambda: {"observations": 1.0, "artifacts": 1.0, "decisions": 1.0}
    )
    kind_weights: Mapping[str, float] = field(default_factory=dict)
    relevance_weight: float = 0.7
    recency_weight: float = 0.3
    recency_half_life_s: float = 86400.0
    min_relevance: float = 0.0
    use_summaries: bool = True
    candidate_limit: int = 200
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict.

        Returns:
            The profile fields.
        """
        return {
            "collection_weights": dict(self.collection_weights),
            "kind_weights": dict(self.kind_weights),
            "relevance_weight": self.relevance_weight,
            "recency_weight": self.recency_weight,
            "recency_half_life_s": self.recency_half_life_s,
            "min_relevance": self.min_relevance,
            "use_summaries": self.use_summaries,
            "candidate_limit": self.candidate_limit,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Build a profile from ``to_dict()`` output (missing keys take the defaults).

        Args:
            data: The mapping.

        Returns:
            The profile.
        """
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})
