"""Group commit for the SQL backend's ingests (storage layer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from workspace.errors import StorageBusyError
from workspace.storage.records import NewRecord

__all__ = ["MAX_BATCH", "IngestBatcher"]

MAX_BATCH = 256


class IngestBatcher:
    """Group commit: ingests that arrive while a write is in flight share the next transaction.

    A write costs a few driver round trips regardless of how many rows it carries, so under
    concurrent load this multiplies throughput. A failing batch is retried one record at a
    time, so one bad record never fails the others.

    Args:
        write: Stores a batch of records in one transaction.
    """

    def __init__(self, write: Callable[[Sequence[NewRecord]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[tuple[NewRecord, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, new: NewRecord) -> None:
        """Store a record with the next batch; return once that batch is committed.

        Args:
            new: The record.

        Raises:
            Exception: Whatever writing this record raised.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((new, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                try:
                    await self._write([new for new, _ in batch])
                except Exception as exc:
                    if len(batch) == 1 or isinstance(exc, StorageBusyError):
                        # A busy database fails the whole batch: retrying record by record
                        # would wait out the busy timeout once per record.
                        for _, done in batch:
                            _settle(done, exc)
                        continue
                    for new, done in batch:
                        try:
                            await self._write([new])
                        except Exception as single_exc:
                            _settle(done, single_exc)
                        else:
                            _settle(done, None)
                    continue
                for _, done in batch:
                    _settle(done, None)
        except BaseException as exc:
            # Cancelled (e.g. loop shutdown): never leave a caller waiting forever.
            for _, done in self._pending:
                _settle(done, exc)
            self._pending.clear()
            raise


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)
