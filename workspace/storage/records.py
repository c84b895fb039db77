"""What the storage backends store: ids, timestamps, encoded content, new records and links.

Storage layer, shared by the memory and SQL backends so that both compute the same ids, hashes,
sizes and timestamps for the same input.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from workspace.errors import InvalidInputError
from workspace.paging import Key
from workspace.storage.filters import record_tags
from workspace.types import ContentType, Link, RecordRef
from workspace.validation import (
    check_collection,
    check_json,
    check_mapping,
    check_name,
    check_str,
    check_text,
)

_clock_lock = threading.Lock()
_last_us = 0

_Item = TypeVar("_Item", RecordRef, Link)


@dataclass(frozen=True)
class Stamped(Generic[_Item]):
    """A record ref or link with its creation time, the order of newest-first listings."""

    created_us: int
    item: _Item

    @property
    def key(self) -> Key:
        """The keyset position after this item: ``(created_us, id)``."""
        return self.created_us, self.item.id


def now_us() -> int:
    """Return a strictly increasing (per process) UTC timestamp in microseconds.

    Strictly increasing so that records written one after another in a process never tie on
    ``created_at`` and "newest first" matches write order.

    Returns:
        Microseconds since the epoch.
    """
    global _last_us
    with _clock_lock:
        us = max(time.time_ns() // 1000, _last_us + 1)
        _last_us = us
        return us


def new_id(prefix: str, created_us: int) -> str:
    """Return a new id that sorts by creation time.

    Args:
        prefix: ``rec`` or ``lnk``.
        created_us: The creation timestamp.

    Returns:
        ``<prefix>_<14 hex digits of time><10 random hex digits>``.
    """
    return f"{prefix}_{created_us:014x}{secrets.token_hex(5)}"


def iso(us: int) -> str:
    """Format microseconds since the epoch as ISO-8601 UTC.

    Args:
        us: Microseconds since the epoch.

    Returns:
        e.g. ``2025-01-02T03:04:05.000006+00:00``.
    """
    dt = datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc).replace(
        microsecond=us % 1_000_000
    )
    return dt.isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Encoded:
    """Content ready to store."""

    content_type: ContentType
    text: str | None
    blob: bytes | None
    sha256: str
    size: int


def encode_content(content: object) -> Encoded:
    """Turn user content into what the backends store.

    Args:
        content: ``str`` (text), ``dict``/``list`` (JSON) or ``bytes``.

    Returns:
        The encoded content.

    Raises:
        InvalidInputError: For any other type, NUL characters in text, or non-JSON values.
    """
    if isinstance(content, (bytes, bytearray, memoryview)):
        blob = bytes(content)
        return Encoded("bytes", None, blob, hashlib.sha256(blob).hexdigest(), len(blob))
    if isinstance(content, str):
        check_str(content, "text content")
        raw = content.encode("utf-8")
        return Encoded("text", content, None, hashlib.sha256(raw).hexdigest(), len(raw))
    if isinstance(content, (dict, list, tuple)):
        check_json(content, "content")
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        raw = text.encode("utf-8")
        return Encoded("json", text, None, hashlib.sha256(raw).hexdigest(), len(raw))
    raise InvalidInputError(
        f"content must be str, bytes, dict or list, got {type(content).__name__}"
    )


def decode_content(content_type: str, text: str | None, blob: bytes | None) -> Any:
    """Inverse of :func:`encode_content`.

    Args:
        content_type: The stored content type.
        text: Stored text (text and json records).
        blob: Stored bytes (bytes records).

    Returns:
        The content with its original type.
    """
    if content_type == "bytes":
        return bytes(blob or b"")
    if content_type == "json":
        return json.loads(text or "null")
    return text or ""


def block_text(content_type: str, text: str | None) -> str | None:
    """Return the text a record contributes to a context (None for binary content).

    Args:
        content_type: The stored content type.
        text: The stored text.

    Returns:
        The text, or None.
    """
    return None if content_type == "bytes" else (text or "")


@dataclass(frozen=True)
class NewRecord:
    """A validated record ready to insert."""

    ref: RecordRef
    tenant: str
    created_us: int
    encoded: Encoded
    tags: list[str]


def new_record(
    tenant: str,
    content: object,
    collection: object,
    kind: object,
    summary: object,
    scope: object,
    source: object,
    meta: object,
) -> NewRecord:
    """Validate ``ingest`` arguments and build the record to insert.

    Args:
        tenant: The tenant it is written for.
        content: The content.
        collection: The collection.
        kind: The kind.
        summary: Optional summary.
        scope: Scope keys.
        source: Optional provenance.
        meta: Metadata.

    Returns:
        The record, with a new id, its timestamp, encoded content and filter tags.

    Raises:
        UnknownCollectionError: If ``collection`` is not allowed.
        InvalidInputError: For any other invalid argument (``field`` names it).
    """
    field = "collection"
    try:
        col = check_collection(collection)
        field = "kind"
        kind_s = str(check_name(kind, "kind"))
        field = "summary"
        summary_s = check_text(summary, "summary")
        field = "source"
        source_s = check_text(source, "source")
        field = "scope"
        scope_d = check_mapping(scope, "scope")
        field = "meta"
        meta_d = check_mapping(meta, "meta")
        field = "content"
        encoded = encode_content(content)
    except InvalidInputError as exc:
        if exc.field is None:
            exc.field = field
        raise
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
    return NewRecord(ref, tenant, created, encoded, record_tags(scope_d, meta_d))


def new_link(source: str, target: str, relation: str, meta: Mapping[str, Any]) -> Stamped[Link]:
    """Build a link with a new id, created now.

    Args:
        source: Id of the record it starts at.
        target: Id of the record it points to.
        relation: The (validated) relation name.
        meta: The (validated) metadata.

    Returns:
        The link with its creation time.
    """
    created = now_us()
    link = Link(new_id("lnk", created), source, target, relation, dict(meta), iso(created))
    return Stamped(created, link)
