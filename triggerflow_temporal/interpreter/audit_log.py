"""The refusal audit log of one execution (workflow side, deterministic).

A signal appends an entry (bounded to the newest ``MAX_AUDIT_ENTRIES``); a query reads them.
The log ends after ``AUDIT_IDLE_SECONDS`` without a new entry (a query still reads a
closed log while Temporal retains it) and continues as new when its history grows.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

from temporalio import workflow

from ..spec.audit import (
    AUDIT_IDLE_SECONDS,
    AUDIT_WORKFLOW,
    ENTRIES_QUERY,
    MAX_AUDIT_ENTRIES,
    RECORD_SIGNAL,
)


@workflow.defn(name=AUDIT_WORKFLOW)
class AuditLogWorkflow:
    """Entries of refused requests for one execution."""

    @workflow.init
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._entries: list[dict[str, Any]] = copy.deepcopy(entries)
        self._count = 0

    @workflow.run
    async def run(self, entries: list[dict[str, Any]]) -> None:
        """Live until idle for ``AUDIT_IDLE_SECONDS``."""
        while True:
            count = self._count
            try:
                await workflow.wait_condition(
                    lambda count=count: (
                        self._count != count or workflow.info().is_continue_as_new_suggested()
                    ),
                    timeout=timedelta(seconds=AUDIT_IDLE_SECONDS),
                )
            except asyncio.TimeoutError:
                return
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._entries)

    @workflow.signal(name=RECORD_SIGNAL)
    def record(self, entry: dict[str, Any]) -> None:
        """Append one entry (the oldest go past ``MAX_AUDIT_ENTRIES``)."""
        self._entries.append(copy.deepcopy(entry))
        del self._entries[:-MAX_AUDIT_ENTRIES]
        self._count += 1

    @workflow.query(name=ENTRIES_QUERY)
    def entries(self) -> list[dict[str, Any]]:
        """Every entry kept, oldest first."""
        return copy.deepcopy(self._entries)
