"""The async contract every Workspace backend implements, and its scoped view (contract layer).

The Workspace holds long, reviewable, cross-turn material; execution state keeps only the small
:class:`~workspace.types.RecordRef` (or just its id). The storage backends (``workspace.storage``)
and the HTTP client (``workspace.http.client``) implement :class:`BaseWorkspace` and pass the
same conformance suite. :class:`BoundWorkspace` lives here rather than in a module of its own
because ``BaseWorkspace.bound()`` creates it while it is itself a ``BaseWorkspace``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from workspace.checkpoints import CHECKPOINT_COLLECTION, CHECKPOINT_KIND, CheckpointsMixin
from workspace.context import BUILTIN_PROFILES, check_profile
from workspace.errors import InvalidInputError
from workspace.forwarding import forward
from workspace.paging import decode_offset, links_fingerprint, offset_cursor
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
    check_limit,
    check_mapping,
    check_name,
    merge_scope,
    opt_ref_id,
    prepare_batch,
)

__all__ = [
    "CHECKPOINT_COLLECTION",
    "CHECKPOINT_KIND",
    "BaseWorkspace",
    "BoundWorkspace",
    "RefOrId",
]

RefOrId = RecordRef | str
"""A record handle: the ref returned by ``ingest`` or just its id."""


class BaseWorkspace(CheckpointsMixin, ABC):
    """Abstract async Workspace: records, search, links, checkpoints and context packs.

    Use it as an async context manager (``setup()`` on enter, ``close()`` on exit) or call
    ``setup()`` and ``close()`` yourself.
    """

    def __init__(self, *, profiles: Mapping[str, Profile] | None = None) -> None:
        self._profiles: dict[str, Profile] = dict(BUILTIN_PROFILES)
        for name, profile in (profiles or {}).items():
            self.register_profile(name, profile)

    async def setup(self) -> None:
        """Prepare the backend (create or migrate the schema). Idempotent.

        Backends without persistent schema need no setup; this default does nothing.
        """
        return None

    async def close(self) -> None:
        """Release connections and other resources. The default does nothing."""
        return None

    async def __aenter__(self) -> BaseWorkspace:
        await self.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- records -----------------------------------------------------------------------------

    @abstractmethod
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
        """Store content and return a small ref to keep in execution state.

        Args:
            content: Text (``str``), JSON (``dict``/``list``) or ``bytes``; ``get_data`` returns
                the same type.
            collection: ``observations``, ``artifacts``, ``decisions`` or ``checkpoints``.
            kind: Sub type chosen by the writer, e.g. ``report`` (1-128 characters).
            summary: Short description; searchable and used when the content does not fit a
                context budget.
            scope: Exact-match keys such as ``{"task_id": "t1"}`` that searches filter on.
            source: Provenance (URL, tool name...).
            meta: Free-form JSON metadata; ``{"pinned": True}`` pins the record into contexts.

        Returns:
            The ref of the new record.

        Raises:
            UnknownCollectionError: If ``collection`` is not allowed.
            InvalidInputError: For any other invalid argument.
        """

    @abstractmethod
    async def ingest_many(self, records: Sequence[Mapping[str, Any]]) -> list[RecordRef]:
        """Store several records at once, all or nothing, in one transaction (one HTTP request).

        Every record is validated exactly as :meth:`ingest` validates its arguments before
        anything is written; one invalid record refuses the whole batch and nothing is stored.
        Not idempotent, like ``ingest``: calling it again stores the records again.

        Args:
            records: At most 1000 (``validation.MAX_INGEST_BATCH``) dicts of ``ingest``'s
                keyword arguments: ``content``, ``collection`` and ``kind`` are required,
                ``summary``, ``scope``, ``source`` and ``meta`` optional. An empty list stores
                nothing.

        Returns:
            The refs of the new records, in the order given.

        Raises:
            InvalidBatchItemError: If records are invalid (``index`` and ``field`` name the
                first, ``errors`` lists the invalid records found: every one on the library
                backends; over HTTP the request model's checks come before the storage
                checks, so only the first stage's failures); nothing was stored.
            InvalidInputError: If ``records`` is not a list or holds more than 1000 records.
        """

    @abstractmethod
    async def get(self, ref: RefOrId) -> RecordRef:
        """Fetch a record's ref (metadata only).

        Args:
            ref: A ref or record id.

        Returns:
            The ref.

        Raises:
            RecordNotFoundError: If no such record exists for this tenant.
        """

    @abstractmethod
    async def get_data(self, ref: RefOrId) -> Any:
        """Fetch a record's content with its original type (``str``, ``dict``/``list``, ``bytes``).

        Args:
            ref: A ref or record id.

        Returns:
            The content.

        Raises:
            RecordNotFoundError: If no such record exists for this tenant.
        """

    @abstractmethod
    async def read_bounded(self, ref: RefOrId, offset: int = 0, limit: int = 65536) -> BoundedRead:
        """Read a slice of a record's content without loading all of it.

        Args:
            ref: A ref or record id.
            offset: Start, in characters (text, json) or bytes (bytes).
            limit: Maximum length of the slice, same unit.

        Returns:
            The slice, the total length and whether more remains.

        Raises:
            RecordNotFoundError: If no such record exists for this tenant.
            InvalidInputError: If ``offset`` is negative or ``limit`` is not positive.
        """

    @abstractmethod
    async def search(
        self,
        query: str | None = None,
        filters: Mapping[str, Any] | None = None,
        scope: Mapping[str, Any] | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        """Full-text search with exact filters, paginated.

        Without a query results are newest first; with one they are ranked by relevance, then
        recency. Query syntax: words are ANDed, ``"a phrase"``, ``x OR y``; other punctuation is
        ignored, so any user text is safe to pass.

        Args:
            query: Search text, or None to list.
            filters: Exact filters: ``collection``, ``kind``, ``id``, ``scope.<path>``,
                ``meta.<path>``; a list value matches any of its items.
            scope: Shorthand for ``scope.<key>`` filters.
            limit: Page size, 1-1000.
            cursor: ``next_cursor`` of the previous page.

        Returns:
            A page of refs and the cursor of the next page.

        Raises:
            InvalidInputError: For unknown filter keys or a bad limit.
            InvalidCursorError: For a malformed cursor or one from another query.
        """

    @abstractmethod
    async def delete(self, ref: RefOrId) -> None:
        """Delete a record and every link that touches it.

        Args:
            ref: A ref or record id.

        Raises:
            RecordNotFoundError: If no such record exists for this tenant.
        """

    @abstractmethod
    async def prune(
        self,
        scope: Mapping[str, Any] | None = None,
        older_than: timedelta | float | None = None,
        keep_last: int | None = None,
        collection: str | None = None,
    ) -> int:
        """Retention: delete old records in a scope. Pinned records are never pruned.

        Among the matching unpinned records, the ``keep_last`` newest are kept and, of the rest,
        those older than ``older_than`` are deleted (all of the rest when ``older_than`` is None).

        Args:
            scope: Only records whose scope matches (None: the whole tenant).
            older_than: Minimum age (``timedelta`` or seconds) of a deleted record.
            keep_last: How many newest matching records to keep regardless of age.
            collection: Only this collection.

        Returns:
            The number of deleted records.

        Raises:
            InvalidInputError: If neither ``older_than`` nor ``keep_last`` is given.
        """

    # -- links -------------------------------------------------------------------------------

    @abstractmethod
    async def link(
        self,
        source: RefOrId,
        target: RefOrId,
        relation: str,
        meta: Mapping[str, Any] | None = None,
    ) -> Link:
        """Link two records, e.g. ``link(decision, evidence, "answers")``.

        Args:
            source: The record the link starts at.
            target: The record it points to.
            relation: Relation name (1-128 characters).
            meta: Free-form JSON metadata.

        Returns:
            The link.

        Raises:
            RecordNotFoundError: If either record does not exist for this tenant.
        """

    @abstractmethod
    async def links(
        self,
        ref: RefOrId | None = None,
        *,
        source: RefOrId | None = None,
        target: RefOrId | None = None,
        relation: str | None = None,
    ) -> list[Link]:
        """List links, newest first.

        Args:
            ref: Links where this record is the source or the target.
            source: Links starting at this record.
            target: Links pointing to this record.
            relation: Only this relation.

        Returns:
            Matching links, all of them (use :meth:`links_page` to read them page by page).

        Raises:
            RecordNotFoundError: If a given record does not exist for this tenant.
        """

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
        """One page of :meth:`links`, newest first.

        The backends override this with a query per page; this default, for other subclasses,
        pages through :meth:`links`.

        Args:
            ref: Links where this record is the source or the target.
            source: Links starting at this record.
            target: Links pointing to this record.
            relation: Only this relation.
            limit: Page size, 1-1000 (default 100).
            cursor: ``next_cursor`` of the previous page.

        Returns:
            The page; ``next_cursor`` is None on the last one.

        Raises:
            InvalidInputError: For a bad limit or relation.
            InvalidCursorError: For a cursor of another listing.
            RecordNotFoundError: If a given record does not exist for this tenant.
        """
        limit = check_limit(limit)
        fp = links_fingerprint(opt_ref_id(ref), opt_ref_id(source), opt_ref_id(target), relation)
        offset = 0 if cursor is None else decode_offset(cursor, fp)
        found = await self.links(ref, source=source, target=target, relation=relation)
        more = len(found) > offset + limit
        next_cursor = offset_cursor(fp, offset + limit) if more else None
        return LinkPage(found[offset : offset + limit], next_cursor)

    # -- context -----------------------------------------------------------------------------

    @abstractmethod
    async def build_context(
        self,
        goal: str,
        scope: Mapping[str, Any] | None = None,
        budget: Mapping[str, int] | int | None = None,
        profile: str | Profile = "default",
        required: Sequence[RefOrId] | None = None,
    ) -> ContextPack:
        """Pack the records most useful for a goal under a token budget.

        Records in ``scope`` are ranked by full-text relevance to the goal (any goal word
        matches), recency and the profile's collection weights; see :mod:`workspace.context`.
        Required and pinned records are always included, even past the budget.

        Args:
            goal: What the context is for; its words are matched against the records.
            scope: Only records with this scope (required records may be outside it).
            budget: ``{"tokens": N}`` (default 4000).
            profile: A registered profile name (``default``, ``document_review`` or one added
                with ``register_profile``) or a ``Profile``.
            required: Records that must be included.

        Returns:
            The pack: blocks, omissions, used tokens and the budget.

        Raises:
            UnknownProfileError: For an unregistered profile name.
            RecordNotFoundError: If a required record does not exist for this tenant.
            InvalidInputError: For a bad budget or scope.
        """

    # -- profiles and views ------------------------------------------------------------------

    def register_profile(self, name: str, profile: Profile) -> None:
        """Register (or replace) a named context profile on this workspace.

        Args:
            name: The profile name (1-128 characters).
            profile: The weights.

        Raises:
            InvalidInputError: For an invalid name or profile.
        """
        check_name(name, "profile name")
        self._profiles[name] = check_profile(profile)

    @property
    def profiles(self) -> dict[str, Profile]:
        """A copy of the registered profiles by name."""
        return dict(self._profiles)

    def bound(self, **scope: Any) -> BoundWorkspace:
        """Return a view that merges ``scope`` into every scoped call.

        ``ingest``, ``ingest_many`` (each record), ``search``, ``build_context``,
        ``checkpoint*`` and ``prune`` of the view add these keys to their scope; a call that
        contradicts them raises InvalidInputError.
        Other calls pass through unchanged (an id is its own capability).

        Args:
            **scope: Fixed scope keys, e.g. ``task_id="t1", execution_id="e1"``.

        Returns:
            The bound view (closing it does not close this workspace).
        """
        return BoundWorkspace(self, scope)


class BoundWorkspace(BaseWorkspace):
    """A view of ``inner`` that merges a fixed ``scope`` into every scoped call.

    ``ingest``, ``ingest_many`` (each record), ``search``, ``prune``, ``checkpoint*`` and
    ``build_context`` add the fixed keys; other calls, and profiles, are the wrapped
    workspace's. Closing the view closes nothing.
    """

    def __init__(self, inner: BaseWorkspace, scope: Mapping[str, Any]) -> None:
        # No super().__init__(): the view keeps no profile registry of its own.
        self._inner = inner
        self._scope = check_mapping(scope, "bound scope")

    @property
    def scope(self) -> dict[str, Any]:
        """A copy of the fixed scope."""
        return dict(self._scope)

    @property
    def inner(self) -> BaseWorkspace:
        """The workspace this view wraps."""
        return self._inner

    def merge_scope(self, scope: Mapping[str, Any] | None) -> dict[str, Any]:
        """``scope`` with this view's fixed keys merged in (a contradiction is refused)."""
        return merge_scope(self._scope, scope)

    def bound(self, **scope: Any) -> BoundWorkspace:
        """Return a narrower view with more fixed scope keys.

        Args:
            **scope: Additional fixed keys (must not contradict this view's).

        Returns:
            The new view.
        """
        return BoundWorkspace(self._inner, self.merge_scope(scope))

    def register_profile(self, name: str, profile: Profile) -> None:
        """Register a profile on the wrapped workspace.

        Args:
            name: The profile name (1-128 characters).
            profile: The weights.
        """
        self._inner.register_profile(name, profile)

    @property
    def profiles(self) -> dict[str, Profile]:
        """A copy of the wrapped workspace's profiles by name."""
        return self._inner.profiles

    async def ingest_many(self, records: Sequence[Mapping[str, Any]]) -> list[RecordRef]:
        """See :meth:`BaseWorkspace.ingest_many`; the bound scope is merged into each record's.

        A record whose scope contradicts the bound one refuses the batch
        (``InvalidBatchItemError`` naming its index and ``scope``).
        """

        def scoped(item: dict[str, Any]) -> dict[str, Any]:
            try:
                item["scope"] = self.merge_scope(item.get("scope"))
            except InvalidInputError as exc:
                exc.field = "scope"
                raise
            return item

        return await self._inner.ingest_many(prepare_batch(records, scoped))

    setup = forward(BaseWorkspace.setup)
    ingest = forward(BaseWorkspace.ingest)
    get = forward(BaseWorkspace.get)
    get_data = forward(BaseWorkspace.get_data)
    read_bounded = forward(BaseWorkspace.read_bounded)
    search = forward(BaseWorkspace.search)
    delete = forward(BaseWorkspace.delete)
    prune = forward(BaseWorkspace.prune)
    link = forward(BaseWorkspace.link)
    links = forward(BaseWorkspace.links)
    links_page = forward(BaseWorkspace.links_page)
    checkpoint = forward(BaseWorkspace.checkpoint)
    checkpoint_history = forward(BaseWorkspace.checkpoint_history)
    checkpoint_history_page = forward(BaseWorkspace.checkpoint_history_page)
    latest_checkpoint = forward(BaseWorkspace.latest_checkpoint)
    build_context = forward(BaseWorkspace.build_context)
