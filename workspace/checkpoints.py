"""Checkpoints: a run's snapshots stored as records (part of the Workspace contract).

A mixin of :class:`~workspace.contract.BaseWorkspace`, built on its ``ingest``, ``search``
and ``get_data``; kept apart so the contract module stays single-purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workspace.paging import read_all
from workspace.types import Checkpoint, RecordRef, SearchPage
from workspace.validation import DEFAULT_PAGE_SIZE, check_limit, checkpoint_scope

CHECKPOINT_COLLECTION = "checkpoints"
CHECKPOINT_KIND = "snapshot"
# Most checkpoints checkpoint_history(limit=...) reads in one call (in pages of 1000).
MAX_HISTORY = 1_000_000


class CheckpointsMixin:
    """``checkpoint``, ``checkpoint_history(_page)`` and ``latest_checkpoint``."""

    # Provided by BaseWorkspace (abstract there).
    ingest: Any
    search: Any
    get_data: Any

    async def checkpoint(
        self,
        run_id: str,
        state: Any,
        step_id: str | None = None,
        *,
        scope: Mapping[str, Any] | None = None,
    ) -> RecordRef:
        """Store a snapshot of a run's state (collection ``checkpoints``, kind ``snapshot``).

        Args:
            run_id: The run.
            state: The state: a JSON value (``dict``/``list``), text or bytes.
            step_id: The step that produced it.
            scope: Extra scope keys (``run_id`` and ``step_id`` are added).

        Returns:
            The checkpoint's ref.

        Raises:
            InvalidInputError: For an invalid run or step id or state.
        """
        return await self.ingest(
            state,
            collection=CHECKPOINT_COLLECTION,
            kind=CHECKPOINT_KIND,
            scope=checkpoint_scope(run_id, step_id, scope),
        )

    async def checkpoint_history(
        self,
        run_id: str,
        step_id: str | None = None,
        limit: int | None = None,
        *,
        scope: Mapping[str, Any] | None = None,
    ) -> list[RecordRef]:
        """List a run's checkpoints, newest first.

        Args:
            run_id: The run.
            step_id: Only this step's checkpoints.
            limit: At most this many (None: all; read in pages of 1000, see
                :meth:`checkpoint_history_page` to page yourself).
            scope: Extra scope keys to match.

        Returns:
            Checkpoint refs, newest first.

        Raises:
            InvalidInputError: For an invalid run id or limit.
        """
        if limit is not None:
            check_limit(limit, maximum=MAX_HISTORY)

        async def page(size: int, cursor: str | None) -> SearchPage:
            return await self.checkpoint_history_page(
                run_id, step_id, limit=size, cursor=cursor, scope=scope
            )

        return await read_all(page, limit)

    async def checkpoint_history_page(
        self,
        run_id: str,
        step_id: str | None = None,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        scope: Mapping[str, Any] | None = None,
    ) -> SearchPage:
        """One page of a run's checkpoints, newest first (a :meth:`search` underneath).

        Args:
            run_id: The run.
            step_id: Only this step's checkpoints.
            limit: Page size, 1-1000 (default 100).
            cursor: ``next_cursor`` of the previous page.
            scope: Extra scope keys to match.

        Returns:
            The page; ``next_cursor`` is None on the last one.

        Raises:
            InvalidInputError: For an invalid run id or limit.
            InvalidCursorError: For a cursor of another query.
        """
        limit = check_limit(limit)
        return await self.search(
            filters={"collection": CHECKPOINT_COLLECTION, "kind": CHECKPOINT_KIND},
            scope=checkpoint_scope(run_id, step_id, scope),
            limit=limit,
            cursor=cursor,
        )

    async def latest_checkpoint(
        self, run_id: str, *, scope: Mapping[str, Any] | None = None
    ) -> Checkpoint | None:
        """Return the newest checkpoint of a run with its state.

        Args:
            run_id: The run.
            scope: Extra scope keys to match.

        Returns:
            The checkpoint, or None if the run has none.

        Raises:
            InvalidInputError: For an invalid run id.
        """
        refs = await self.checkpoint_history(run_id, limit=1, scope=scope)
        if not refs:
            return None
        return Checkpoint(ref=refs[0], state=await self.get_data(refs[0]))
