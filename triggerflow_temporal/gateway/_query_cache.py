"""Answers of queries on closed workflow runs, shared and kept; one query at a time per run.

Gateway side.

A closed run's history is final, so its query answers never change; each query on it costs
the worker a replay of the whole history. Many requests about one closed execution (a burst
of late approvers, a page polling a finished run) share one query and its answer here.
Failed queries are not kept. Queries on a running run go one at a time per execution
(:class:`KeyedLocks`): a worker that does not keep the run cached can drop a query that
arrives while it evicts the run after another.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any

MAX_ENTRIES = 2048


class ClosedRunCache:
    """Single-flight, bounded (LRU) cache of query answers keyed by run and query.

    Args:
        max_entries: Answers kept at most.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[Hashable, asyncio.Future[Any]] = OrderedDict()

    async def get(self, key: Hashable, make: Callable[[], Awaitable[Any]]) -> Any:
        """The answer for ``key``, asking ``make()`` once for all concurrent callers."""
        found = self._entries.get(key)
        if found is None:
            found = asyncio.ensure_future(make())
            self._entries[key] = found
            found.add_done_callback(lambda done: self._drop_failed(key, done))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return await asyncio.shield(found)

    def _drop_failed(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        if done.cancelled() or done.exception() is not None:
            if self._entries.get(key) is done:
                del self._entries[key]


class KeyedLocks:
    """One lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Run the block while holding ``key``'s lock."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
