"""What a run hands to the next one is bounded by design (workflow side, no I/O).

An execution may live for months and pause thousands of times; what it carries over
continue-as-new must not grow with its age. Records that are still live (waiting
interrupts, pending interventions) are always carried; finished ones keep a window: the
newest, at most a count and a number of bytes of JSON. Older entries stay in the history of
the run that made them (``async_get_history`` reads them); the runtime stream keeps its
newest items, and a reader asking for a trimmed offset gets an error naming the oldest one
it can still read.
"""

from __future__ import annotations

from typing import Any

from ..spec.limits import MAX_STREAM_BYTES, MAX_STREAM_ITEMS
from ..spec.state import json_size


def keep_window(
    records: dict[str, dict[str, Any]],
    *,
    live: Any,
    max_count: int,
    max_bytes: int,
) -> dict[str, dict[str, Any]]:
    """``records`` with every live one and the newest finished ones that fit the window.

    ``live(record)`` says which records are still in use; insertion order is age.
    """
    kept: set[str] = set()
    size = 0
    for key in reversed(list(records)):
        record = records[key]
        if live(record):
            kept.add(key)
            continue
        if len(kept) >= max_count:
            continue
        cost = json_size(record)
        if size + cost > max_bytes:
            continue
        size += cost
        kept.add(key)
    return {key: value for key, value in records.items() if key in kept}


def keep_newest(items: list[Any], *, max_count: int, max_bytes: int) -> list[Any]:
    """The newest ``items`` that fit ``max_count`` and ``max_bytes`` of JSON, in order."""
    kept: list[Any] = []
    size = 0
    for item in reversed(items[-max_count:]):
        cost = json_size(item)
        if size + cost > max_bytes:
            break
        size += cost
        kept.append(item)
    return kept[::-1]


def stream_items_to_drop(sizes: list[int]) -> int:
    """How many of the oldest stream items (of these wire sizes) the carry leaves out."""
    keep = 0
    total = 0
    for size in reversed(sizes[-MAX_STREAM_ITEMS:]):
        if total + size > MAX_STREAM_BYTES:
            break
        total += size
        keep += 1
    return len(sizes) - keep
