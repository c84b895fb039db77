"""Validation, encoding, ids, tags and cursors shared by every storage backend.

Keeping these in one place is what makes the backends behave identically: the memory backend
and the SQL backend compute the same tags, the same hashes and the same cursors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from workspace.errors import (
    InvalidCursorError,
    InvalidInputError,
    RecordNotFoundError,
    UnknownCollectionError,
)
from workspace.types import ContentType, RecordRef

COLLECTIONS: tuple[str, ...] = ("observations", "artifacts", "decisions", "checkpoints")
MAX_NAME_LEN = 128
MAX_SEARCH_LIMIT = 1000
# Page size of links and checkpoint history when none is given (the maximum is MAX_SEARCH_LIMIT).
DEFAULT_PAGE_SIZE = 100
# Largest integer a SQL BIGINT holds: offsets and cursor positions beyond it are refused.
MAX_INT64 = 2**63 - 1
# Filters: keys (including scope keys) per query, and list values summed over all keys. Each
# scope/meta key is one indexed sub-query; past a few dozen the planners slow down sharply.
MAX_FILTER_KEYS = 32
MAX_FILTER_VALUES = 1000
# Ids in build_context(required=...).
MAX_REQUIRED = 1000
MAX_TAG_DEPTH = 3
MAX_TAGS = 256
FILTER_COLUMNS = ("collection", "kind", "id")

_ID_RE = re.compile(r"^(rec|lnk)_[0-9a-f]{14}[0-9a-f]{10}$")
_clock_lock = threading.Lock()
_last_us = 0


def brief(value: object, width: int = 60) -> str:
    """``repr`` of a value for an error message, shortened (huge ints and strings included).

    Args:
        value: Any value.
        width: Maximum length.

    Returns:
        The shortened repr.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= width else text[: width - 3] + "..."


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


def looks_like_id(value: str, prefix: str = "rec") -> bool:
    """Tell whether ``value`` has the shape of an id this package issues.

    Lookups of anything else fail fast as not found, without touching the database.

    Args:
        value: Candidate id.
        prefix: Expected prefix.

    Returns:
        True if the shape matches.
    """
    return bool(_ID_RE.match(value)) and value.startswith(prefix + "_")


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


def ref_id(ref_or_id: object, prefix: str = "rec") -> str:
    """Extract the id from a ``RecordRef`` or id string.

    Args:
        ref_or_id: A ``RecordRef`` or its id.
        prefix: Expected id prefix.

    Returns:
        The id.

    Raises:
        InvalidInputError: If it is neither a ref nor a string.
        RecordNotFoundError: If the string cannot be an id issued by this package.
    """
    if isinstance(ref_or_id, RecordRef):
        value = ref_or_id.id
    elif isinstance(ref_or_id, str):
        value = ref_or_id
    else:
        raise InvalidInputError(
            f"expected a RecordRef or a record id string, got {type(ref_or_id).__name__}"
        )
    if not looks_like_id(value, prefix):
        raise RecordNotFoundError(value)
    return value


def opt_ref_id(ref_or_id: object) -> str | None:
    """:func:`ref_id` that passes ``None`` through.

    Args:
        ref_or_id: A ``RecordRef``, its id, or None.

    Returns:
        The id or None.
    """
    return None if ref_or_id is None else ref_id(ref_or_id)


def check_collection(value: object) -> str:
    """Validate a collection name.

    Args:
        value: The name.

    Returns:
        The name.

    Raises:
        UnknownCollectionError: If it is not an allowed collection.
    """
    if not isinstance(value, str) or value not in COLLECTIONS:
        raise UnknownCollectionError(value, COLLECTIONS)
    return value


def check_name(value: object, what: str, *, optional: bool = False) -> str | None:
    """Validate a short identifier-like string (kind, relation, tenant, run id...).

    Args:
        value: The value.
        what: Name of the argument, used in the error message.
        optional: Whether ``None`` is allowed.

    Returns:
        The value.

    Raises:
        InvalidInputError: If it is not a non-empty string of at most 128 characters without NUL.
    """
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_NAME_LEN:
        raise InvalidInputError(f"{what} is longer than {MAX_NAME_LEN} characters")
    _check_str(value, what)
    return value


def check_text(value: object, what: str) -> str | None:
    """Validate an optional free-text field (summary, source).

    Args:
        value: The value.
        what: Name of the argument.

    Returns:
        The value.

    Raises:
        InvalidInputError: If it is not ``None`` or a string without NUL.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string or None, got {type(value).__name__}")
    _check_str(value, what)
    return value


def _check_str(value: str, where: str) -> None:
    if "\x00" in value:
        raise InvalidInputError(f"{where} contains a NUL character; send bytes instead")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{where} is not valid Unicode (lone surrogate)") from exc


def _check_json(value: Any, where: str, depth: int = 0) -> None:
    if depth > 64:
        raise InvalidInputError(f"{where} is nested too deeply (max 64 levels)")
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} contains a non-finite number {value!r}")
        return
    if isinstance(value, str):
        _check_str(value, where)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(item, where, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{where} has a non-string key {key!r}")
            _check_str(key, where)
            _check_json(item, where, depth + 1)
        return
    raise InvalidInputError(
        f"{where} contains a {type(value).__name__}, which is not JSON; "
        "use str, int, float, bool, None, list or dict"
    )


def check_mapping(value: object, what: str) -> dict[str, Any]:
    """Validate a JSON object argument (scope, meta).

    Args:
        value: The value (``None`` means empty).
        what: Name of the argument.

    Returns:
        A plain dict copy (round-tripped through JSON so later mutation by the caller is harmless).

    Raises:
        InvalidInputError: If it is not a mapping of JSON values.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a dict, got {type(value).__name__}")
    _check_json(value, what)
    return json.loads(json.dumps(value))


def canonical_json(value: Any) -> str:
    """Serialize a JSON value deterministically (sorted keys, compact).

    Args:
        value: A JSON value.

    Returns:
        The canonical text.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
        _check_str(content, "text content")
        raw = content.encode("utf-8")
        return Encoded("text", content, None, hashlib.sha256(raw).hexdigest(), len(raw))
    if isinstance(content, (dict, list, tuple)):
        _check_json(content, "content")
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


def _tag(path: str, value: Any) -> str:
    return hashlib.sha256(f"{path}\x00{canonical_json(value)}".encode()).hexdigest()[:40]


def record_tags(scope: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    """Compute the filter tags of a record.

    Every ``scope.<path>`` and ``meta.<path>`` down to three levels gets a tag hashing the path
    and the canonical JSON of the value there, so an exact, typed filter (``1`` is not ``"1"``)
    is a single indexed lookup on every backend.

    Args:
        scope: The record scope.
        meta: The record meta.

    Returns:
        Sorted unique tags (at most 256; deeper or later paths are not filterable).
    """
    tags: set[str] = set()

    def walk(prefix: str, value: Any, depth: int) -> None:
        if len(tags) >= MAX_TAGS:
            return
        tags.add(_tag(prefix, value))
        if isinstance(value, Mapping) and depth < MAX_TAG_DEPTH:
            for key, item in value.items():
                walk(f"{prefix}.{key}", item, depth + 1)

    for root, mapping in (("scope", scope), ("meta", meta)):
        for key, item in mapping.items():
            walk(f"{root}.{key}", item, 1)
    return sorted(tags)


PINNED_TAG = _tag("meta.pinned", True)


@dataclass(frozen=True)
class Filters:
    """Validated search filters.

    ``tag_groups``: each group is a set of tags; a record matches when it has at least one tag of
    every group. ``None`` column sets mean "no constraint"; empty sets match nothing.
    """

    collections: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    tag_groups: tuple[frozenset[str], ...] = ()

    @property
    def impossible(self) -> bool:
        """True when some constraint can match nothing (an empty membership list)."""
        return any(
            s is not None and not s for s in (self.collections, self.kinds, self.ids)
        ) or any(not g for g in self.tag_groups)

    def key(self) -> list[Any]:
        """Return a canonical JSON-able form, for cursor fingerprints.

        Returns:
            The filters as sorted lists.
        """

        def norm(values: frozenset[str] | None) -> list[str] | None:
            return None if values is None else sorted(values)

        groups = sorted(sorted(g) for g in self.tag_groups)
        return [norm(self.collections), norm(self.kinds), norm(self.ids), groups]

    def matches(self, collection: str, kind: str, record_id: str, tags: Iterable[str]) -> bool:
        """Evaluate the filters in Python (memory backend).

        Args:
            collection: Record collection.
            kind: Record kind.
            record_id: Record id.
            tags: Record tags.

        Returns:
            Whether the record matches.
        """
        if self.collections is not None and collection not in self.collections:
            return False
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.ids is not None and record_id not in self.ids:
            return False
        tag_set = tags if isinstance(tags, (set, frozenset)) else set(tags)
        return all(not group.isdisjoint(tag_set) for group in self.tag_groups)


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]


def compile_filters(
    filters: Mapping[str, Any] | None,
    scope: Mapping[str, Any] | None,
    *,
    collections: Sequence[str] | None = None,
) -> Filters:
    """Validate and compile search filters.

    Args:
        filters: ``{"collection": ..., "kind": ..., "id": ..., "scope.<path>": ...,
            "meta.<path>": ...}``; a list value means "any of these".
        scope: Shorthand for ``scope.<key>`` filters.
        collections: Extra restriction to these collections (used by ``build_context``).

    Returns:
        The compiled filters.

    Raises:
        InvalidInputError: For unknown keys or non-JSON values.
        UnknownCollectionError: For unknown collection names.
    """
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, got {type(filters).__name__}")
    if scope is not None and isinstance(scope, Mapping) and len(scope) > MAX_FILTER_KEYS:
        raise InvalidInputError(
            f"scope has {len(scope)} keys; at most {MAX_FILTER_KEYS} filter keys are allowed"
        )
    scope_map = check_mapping(scope, "scope")
    cols: set[str] | None = None
    kinds: set[str] | None = None
    ids: set[str] | None = None
    groups: list[frozenset[str]] = []
    merged: list[tuple[str, Any]] = list((filters or {}).items())
    merged += [(f"scope.{k}", v) for k, v in scope_map.items()]
    if len(merged) > MAX_FILTER_KEYS:
        raise InvalidInputError(
            f"filters and scope have {len(merged)} keys together; at most {MAX_FILTER_KEYS} "
            "filter keys are allowed"
        )
    total_values = sum(len(_values(value)) for _, value in merged)
    if total_values > MAX_FILTER_VALUES:
        raise InvalidInputError(
            f"filters list {total_values} values in all; at most {MAX_FILTER_VALUES} are allowed"
        )
    for key, value in merged:
        if not isinstance(key, str):
            raise InvalidInputError(f"filter keys must be strings, got {key!r}")
        _check_json(value, f"filter {key!r}")
        if key == "collection":
            values = {check_collection(v) for v in _values(value)}
            cols = values if cols is None else cols & values
        elif key == "kind":
            values = {str(v) for v in _values(value)}
            kinds = values if kinds is None else kinds & values
        elif key == "id":
            values = {str(v) for v in _values(value)}
            ids = values if ids is None else ids & values
        elif key.partition(".")[0] in ("scope", "meta") and all(key.partition(".")[2].split(".")):
            groups.append(frozenset(_tag(key, v) for v in _values(value)))
        else:
            raise InvalidInputError(
                f"unknown filter key {key!r}; use 'collection', 'kind', 'id', "
                "'scope.<key>' or 'meta.<key>' (dotted paths reach nested keys)"
            )
    if collections is not None:
        allowed = set(collections)
        cols = allowed if cols is None else cols & allowed
    return Filters(
        collections=None if cols is None else frozenset(cols),
        kinds=None if kinds is None else frozenset(kinds),
        ids=None if ids is None else frozenset(ids),
        tag_groups=tuple(groups),
    )


def check_limit(limit: object, *, maximum: int = MAX_SEARCH_LIMIT) -> int:
    """Validate a page size.

    Args:
        limit: The requested size.
        maximum: The largest allowed.

    Returns:
        The limit.

    Raises:
        InvalidInputError: Unless it is an int in ``[1, maximum]``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInputError(
            f"limit must be an integer between 1 and {maximum}, got {brief(limit)}"
        )
    return limit


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
        payload: Position data.

    Returns:
        URL-safe base64 text.
    """
    raw = canonical_json(payload).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


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
    if not isinstance(cursor, str) or not cursor or len(cursor) > 512:
        raise InvalidCursorError(
            "cursor must be a next_cursor string (at most 512 characters) from the previous page"
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


def check_older_than(older_than: object) -> timedelta | None:
    """Validate the ``older_than`` argument of ``prune``.

    Args:
        older_than: A ``timedelta``, a number of seconds, or None.

    Returns:
        The timedelta, or None.

    Raises:
        InvalidInputError: For negative or non-numeric values.
    """
    if older_than is None:
        return None
    if isinstance(older_than, timedelta):
        delta = older_than
    elif isinstance(older_than, (int, float)) and not isinstance(older_than, bool):
        if not math.isfinite(older_than):
            raise InvalidInputError("older_than must be finite")
        try:
            delta = timedelta(seconds=older_than)
        except OverflowError:
            raise InvalidInputError(
                f"older_than must be at most {int(timedelta.max.total_seconds())} seconds "
                "(999999999 days)"
            ) from None
    else:
        raise InvalidInputError(
            f"older_than must be a timedelta or seconds, got {type(older_than).__name__}"
        )
    if delta < timedelta(0):
        raise InvalidInputError("older_than must not be negative")
    return delta


def check_keep_last(keep_last: object) -> int | None:
    """Validate the ``keep_last`` argument of ``prune``.

    Args:
        keep_last: A non-negative int or None.

    Returns:
        The value.

    Raises:
        InvalidInputError: Otherwise.
    """
    if keep_last is None:
        return None
    if (
        isinstance(keep_last, bool)
        or not isinstance(keep_last, int)
        or not 0 <= keep_last <= MAX_INT64
    ):
        raise InvalidInputError(
            f"keep_last must be an integer between 0 and {MAX_INT64}, got {brief(keep_last)}"
        )
    return keep_last


def merge_scope(
    base: Mapping[str, Any], extra: Mapping[str, Any] | None, *, what: str = "scope"
) -> dict[str, Any]:
    """Merge a call's scope into a bound scope.

    Args:
        base: The fixed scope of a bound view.
        extra: The scope given to the call.
        what: Name used in errors.

    Returns:
        The merged scope.

    Raises:
        InvalidInputError: When the call contradicts the bound scope.
    """
    merged = dict(base)
    for key, value in check_mapping(extra, what).items():
        if key in merged and merged[key] != value:
            raise InvalidInputError(
                f"{what} key {key!r}={value!r} conflicts with the bound value {merged[key]!r}"
            )
        merged[key] = value
    return merged
