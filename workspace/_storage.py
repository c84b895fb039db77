"""Behaviour shared by the storage backends (memory and SQL), on top of a few primitives."""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from workspace._common import (
    MAX_INT64,
    MAX_REQUIRED,
    Encoded,
    brief,
    check_collection,
    check_keep_last,
    check_mapping,
    check_name,
    check_older_than,
    check_text,
    encode_content,
    iso,
    new_id,
    now_us,
    record_tags,
    ref_id,
)
from workspace._query import goal_terms
from workspace.base import DEFAULT_BUDGET, BaseWorkspace, RefOrId
from workspace.context import (
    Candidate,
    TokenCounter,
    approx_tokens,
    assemble,
    check_budget,
    resolve_profile,
    weighted_collections,
)
from workspace.errors import InvalidInputError
from workspace.types import ContextPack, Profile, RecordRef

DEFAULT_TENANT = "default"

_W = TypeVar("_W", bound="StorageWorkspace")


@dataclass(frozen=True)
class NewRecord:
    """A validated record ready to insert."""

    ref: RecordRef
    tenant: str
    created_us: int
    encoded: Encoded
    tags: list[str]


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

    def _prepare(
        self,
        content: object,
        collection: object,
        kind: object,
        summary: object,
        scope: object,
        source: object,
        meta: object,
    ) -> NewRecord:
        col = check_collection(collection)
        kind_s = str(check_name(kind, "kind"))
        summary_s = check_text(summary, "summary")
        source_s = check_text(source, "source")
        scope_d = check_mapping(scope, "scope")
        meta_d = check_mapping(meta, "meta")
        encoded = encode_content(content)
        created = now_us()
        ref = RecordRef(
            id=new_id("rec", created),
            collection=col,
            kind=kind_s,
            sha256=encoded.sha256,
            size=encoded.size,
            summary=summary_s,
            scope=scope_d,
            source=source_s,
            meta=meta_d,
            created_at=iso(created),
            content_type=encoded.content_type,
        )
        return NewRecord(ref, self._tenant, created, encoded, record_tags(scope_d, meta_d))

    @abstractmethod
    async def _context_candidates(
        self,
        *,
        terms: list[str],
        scope: dict[str, Any],
        collections: list[str],
        limit: int,
        required: list[str],
    ) -> list[Candidate]:
        """Return the candidates of a context.

        The union of: the ``limit`` records best matching any term, the ``limit`` newest
        records (both within ``scope`` and ``collections``), pinned records in ``scope``, and the
        ``required`` ids (anywhere in the tenant). Each with its raw rank for the terms.

        Raises:
            RecordNotFoundError: If a required id does not exist for this tenant.
        """

    async def build_context(
        self,
        goal: str,
        scope: Mapping[str, Any] | None = None,
        budget: Mapping[str, int] | int | None = None,
        profile: str | Profile = "default",
        required: Sequence[RefOrId] | None = None,
    ) -> ContextPack:
        """See :meth:`BaseWorkspace.build_context`.

        Args:
            goal: The goal.
            scope: Only records with this scope.
            budget: ``{"tokens": N}``.
            profile: Profile name or object.
            required: Records that must be included.

        Returns:
            The pack.

        Raises:
            InvalidInputError: For a bad goal, budget, scope or profile.
        """
        if not isinstance(goal, str):
            raise InvalidInputError(f"goal must be a string, got {type(goal).__name__}")
        budget_tokens = check_budget(DEFAULT_BUDGET if budget is None else budget)
        name, prof = resolve_profile(self._profiles, profile)
        scope_d = check_mapping(scope, "scope")
        if required is not None and (
            isinstance(required, (str, bytes)) or not isinstance(required, Sequence)
        ):
            raise InvalidInputError("required must be a list of refs or ids")
        if required is not None and len(required) > MAX_REQUIRED:
            raise InvalidInputError(
                f"required lists {len(required)} records; at most {MAX_REQUIRED} are allowed"
            )
        required_ids = list(dict.fromkeys(ref_id(r) for r in required or ()))
        terms = goal_terms(goal)
        candidates = await self._context_candidates(
            terms=terms,
            scope=scope_d,
            collections=weighted_collections(prof),
            limit=prof.candidate_limit,
            required=required_ids,
        )
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


@dataclass(frozen=True)
class PruneArgs:
    """Validated ``prune`` arguments."""

    scope: dict[str, Any]
    cutoff_us: int | None
    keep_last: int
    collection: str | None


def prune_args(
    scope: object, older_than: object, keep_last: object, collection: object
) -> PruneArgs:
    """Validate ``prune`` arguments.

    Args:
        scope: Scope to match.
        older_than: Minimum age.
        keep_last: Newest records to keep.
        collection: Collection to match.

    Returns:
        The validated arguments (``cutoff_us`` is None when age does not matter).

    Raises:
        InvalidInputError: If neither ``older_than`` nor ``keep_last`` is given, or one is bad.
    """
    delta = check_older_than(older_than)
    keep = check_keep_last(keep_last)
    if delta is None and keep is None:
        raise InvalidInputError(
            "prune needs older_than and/or keep_last; to delete everything use keep_last=0"
        )
    # Clamped at the epoch: nothing is older than that, and the value stays a valid BIGINT.
    cutoff = None if delta is None else max(now_us() - int(delta.total_seconds() * 1e6), 0)
    return PruneArgs(
        scope=check_mapping(scope, "scope"),
        cutoff_us=cutoff,
        keep_last=keep or 0,
        collection=None if collection is None else check_collection(collection),
    )


MAX_READ = 16 * 1024 * 1024


def slice_args(offset: object, limit: object) -> tuple[int, int]:
    """Validate ``read_bounded`` arguments.

    Args:
        offset: Start of the slice.
        limit: Maximum length of the slice.

    Returns:
        ``(offset, limit)``.

    Raises:
        InvalidInputError: Unless ``0 <= offset < 2**63`` and ``1 <= limit <= 16 MiB``.
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_INT64:
        raise InvalidInputError(
            f"offset must be an integer between 0 and {MAX_INT64}, got {brief(offset)}"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_READ:
        raise InvalidInputError(
            f"limit must be an integer between 1 and {MAX_READ}, got {brief(limit)}"
        )
    return offset, limit
