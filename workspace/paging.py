"""Pagination: the cursor format every backend shares, and reading a listing to its end.

Contract layer. A cursor is opaque to callers: URL-safe base64 of canonical JSON holding a mode,
the fingerprint of the query it continues (so it cannot be replayed against another query) and
a position. Two modes:

* keyset (``"k"``): after the item with this ``(created_us, id)``; listings newest first.
* offset (``"o"``): this many results were returned already; relevance-ranked searches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from workspace.errors import InvalidCursorError
from workspace.validation import MAX_INT64, MAX_SEARCH_LIMIT, canonical_json

__all__ = [
    "Key",
    "decode_cursor",
    "decode_keyset",
    "decode_offset",
    "encode_cursor",
    "fingerprint",
    "keyset_cursor",
    "links_fingerprint",
    "offset_cursor",
    "read_all",
]

Key = tuple[int, str]
"""A keyset position: ``(created_us, id)`` of the last item of the previous page."""

MAX_CURSOR_CHARS = 512

_T_co = TypeVar("_T_co", covariant=True)
_T = TypeVar("_T")


class _Page(Protocol[_T_co]):
    @property
    def items(self) -> Sequence[_T_co]: ...

    @property
    def next_cursor(self) -> str | None: ...


def fingerprint(*parts: Any) -> str:
    """Hash a query's defining arguments so a cursor cannot be reused with another query.

    Args:
        *parts: JSON-able values.

    Returns:
        A short hex digest.
    """
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:16]


def links_fingerprint(
    ref: str | None, source: str | None, target: str | None, relation: str | None
) -> str:
    """Fingerprint of a links query, so a links cursor only continues the same listing.

    Args:
        ref: Either-end record id.
        source: Source record id.
        target: Target record id.
        relation: Relation name.

    Returns:
        A short hex digest.
    """
    return fingerprint("links", ref, source, target, relation)


def encode_cursor(payload: dict[str, Any]) -> str:
    """Make an opaque cursor.

    Args:
        payload: Position data (see :func:`keyset_cursor` and :func:`offset_cursor`).

    Returns:
        URL-safe base64 text.
    """
    raw = canonical_json(payload).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def keyset_cursor(fp: str, key: Key) -> str:
    """Cursor continuing a newest-first listing after ``key``.

    Args:
        fp: Fingerprint of the query.
        key: ``(created_us, id)`` of the last item returned.

    Returns:
        The cursor.
    """
    return encode_cursor({"m": "k", "f": fp, "c": key[0], "i": key[1]})


def offset_cursor(fp: str, offset: int) -> str:
    """Cursor continuing a ranked search after ``offset`` results.

    Args:
        fp: Fingerprint of the query.
        offset: Results returned so far.

    Returns:
        The cursor.
    """
    return encode_cursor({"m": "o", "f": fp, "o": offset})


def decode_cursor(cursor: object, fp: str, mode: str) -> dict[str, Any]:
    """Decode and check a cursor made by :func:`encode_cursor`.

    Args:
        cursor: The cursor.
        fp: The fingerprint of the current query.
        mode: ``k`` (keyset, no query) or ``o`` (offset, ranked query).

    Returns:
        The payload.

    Raises:
        InvalidCursorError: If it is malformed or was issued for a different query.
    """
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursorError(
            f"cursor must be a next_cursor string (at most {MAX_CURSOR_CHARS} characters) from "
            "the previous page"
        )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursorError(
            "cursor is malformed; pass next_cursor from the previous page unchanged"
        ) from exc
    if not isinstance(payload, dict) or payload.get("m") != mode:
        raise InvalidCursorError("cursor is malformed; pass next_cursor from the previous page")
    if payload.get("f") != fp:
        raise InvalidCursorError(
            "cursor was issued for a different query or filters; restart without a cursor"
        )
    position = payload.get("c") if mode == "k" else payload.get("o")
    if isinstance(position, bool) or not isinstance(position, int):
        raise InvalidCursorError("cursor is malformed; pass next_cursor unchanged")
    if not 0 <= position <= MAX_INT64:
        raise InvalidCursorError(
            f"cursor position is out of range (0 to {MAX_INT64}); "
            "pass next_cursor from the previous page unchanged"
        )
    if mode == "k" and not isinstance(payload.get("i"), str):
        raise InvalidCursorError("cursor is malformed; pass next_cursor unchanged")
    return payload


def decode_keyset(cursor: object, fp: str) -> Key:
    """Position of a keyset cursor.

    Args:
        cursor: The cursor.
        fp: The fingerprint of the current query.

    Returns:
        ``(created_us, id)`` to continue after.

    Raises:
        InvalidCursorError: If it is malformed or was issued for a different query.
    """
    payload = decode_cursor(cursor, fp, "k")
    return int(payload["c"]), str(payload["i"])


def decode_offset(cursor: object, fp: str) -> int:
    """Position of an offset cursor.

    Args:
        cursor: The cursor.
        fp: The fingerprint of the current query.

    Returns:
        How many results to skip.

    Raises:
        InvalidCursorError: If it is malformed or was issued for a different query.
    """
    return int(decode_cursor(cursor, fp, "o")["o"])


async def read_all(
    fetch: Callable[[int, str | None], Awaitable[_Page[_T]]], limit: int | None = None
) -> list[_T]:
    """Follow a paginated listing to its end (or until ``limit`` items).

    Args:
        fetch: Reads one page: ``fetch(page_size, cursor)``.
        limit: At most this many items (None: all).

    Returns:
        The items, in listing order.
    """
    found: list[_T] = []
    cursor: str | None = None
    while limit is None or len(found) < limit:
        size = MAX_SEARCH_LIMIT if limit is None else min(MAX_SEARCH_LIMIT, limit - len(found))
        page = await fetch(size, cursor)
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return found
