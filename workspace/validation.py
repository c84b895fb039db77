"""Argument checks and limits shared by every backend and the HTTP client (contract layer).

Keeping them in one place is what makes the backends behave identically: the memory backend, the
SQL backend and the HTTP client refuse the same arguments with the same errors.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from workspace.errors import (
    InvalidBatchItemError,
    InvalidInputError,
    RecordNotFoundError,
    UnknownCollectionError,
)
from workspace.types import RecordRef

T = TypeVar("T")

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
# Longest slice read_bounded returns.
MAX_READ = 16 * 1024 * 1024
MAX_JSON_NESTING = 64
# Records per ingest_many call (one transaction; HTTP: one POST /v1/records:batch request).
MAX_INGEST_BATCH = 1000
# The keyword arguments of ingest, as the keys of an ingest_many record.
INGEST_REQUIRED = ("content", "collection", "kind")
INGEST_FIELDS = (*INGEST_REQUIRED, "summary", "scope", "source", "meta")

_ID_RE = re.compile(r"^(rec|lnk)_[0-9a-f]{14}[0-9a-f]{10}$")


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


def check_required(required: object) -> list[str]:
    """Validate the ``required`` argument of ``build_context``.

    Args:
        required: A sequence of refs or ids, or None.

    Returns:
        The distinct ids, in order.

    Raises:
        InvalidInputError: For a string or non-sequence, or more than ``MAX_REQUIRED`` entries.
        RecordNotFoundError: For an entry that cannot be an id issued by this package.
    """
    if required is None:
        return []
    if isinstance(required, (str, bytes)) or not isinstance(required, Sequence):
        raise InvalidInputError("required must be a list of refs or ids")
    if len(required) > MAX_REQUIRED:
        raise InvalidInputError(
            f"required lists {len(required)} records; at most {MAX_REQUIRED} are allowed"
        )
    return list(dict.fromkeys(ref_id(r) for r in required))


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
    check_str(value, what)
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
    check_str(value, what)
    return value


def check_str(value: str, where: str) -> None:
    """Refuse a string the databases cannot store: NUL characters or lone surrogates.

    Args:
        value: The string.
        where: What it is, for the error message.

    Raises:
        InvalidInputError: Naming the problem.
    """
    if "\x00" in value:
        raise InvalidInputError(f"{where} contains a NUL character; send bytes instead")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{where} is not valid Unicode (lone surrogate)") from exc


def check_json(value: Any, where: str, depth: int = 0) -> None:
    """Refuse anything that is not a JSON value every backend stores the same way.

    Args:
        value: The value.
        where: What it is, for the error message.
        depth: Nesting of ``value`` in the checked whole (callers pass nothing).

    Raises:
        InvalidInputError: For non-JSON types, non-finite numbers, non-string keys, strings
            :func:`check_str` refuses, or nesting deeper than 64 levels.
    """
    if depth > MAX_JSON_NESTING:
        raise InvalidInputError(f"{where} is nested too deeply (max {MAX_JSON_NESTING} levels)")
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} contains a non-finite number {value!r}")
        return
    if isinstance(value, str):
        check_str(value, where)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_json(item, where, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{where} has a non-string key {key!r}")
            check_str(key, where)
            check_json(item, where, depth + 1)
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
    check_json(value, what)
    return json.loads(json.dumps(value))


def canonical_json(value: Any) -> str:
    """Serialize a JSON value deterministically (sorted keys, compact).

    Args:
        value: A JSON value.

    Returns:
        The canonical text.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


def check_slice(offset: object, limit: object) -> tuple[int, int]:
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


def checkpoint_scope(
    run_id: object, step_id: object, scope: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The scope of a checkpoint: its run (and step) merged into ``scope``."""
    base: dict[str, Any] = {"run_id": check_name(run_id, "run_id")}
    if step_id is not None:
        base["step_id"] = check_name(step_id, "step_id")
    return merge_scope(base, scope)


def batch_item_error(index: int, exc: InvalidInputError) -> dict[str, Any]:
    """Describe why record ``index`` of an ``ingest_many`` batch was refused.

    Args:
        index: Its position in the batch.
        exc: The error its single ``ingest`` would raise (``exc.field`` names the field).

    Returns:
        ``{"index", "field", "error", "message"}``, an entry of ``InvalidBatchItemError.errors``.
    """
    return {
        "index": index,
        "field": exc.field,
        "error": type(exc).__name__,
        "message": exc.message,
    }


def check_batch_size(count: int) -> None:
    """Refuse a batch of more than :data:`MAX_INGEST_BATCH` records.

    Args:
        count: Records in the batch.

    Raises:
        InvalidInputError: Naming the limit.
    """
    if count > MAX_INGEST_BATCH:
        raise InvalidInputError(
            f"a batch holds at most {MAX_INGEST_BATCH} records, got {count}; "
            "split it into several calls"
        )


def check_batch_record(record: object) -> dict[str, Any]:
    """Validate the keys of one ``ingest_many`` record (``ingest`` checks the values).

    Args:
        record: A dict of ``ingest``'s keyword arguments.

    Returns:
        A shallow copy.

    Raises:
        InvalidInputError: If it is not a dict, has an unknown key or misses a required one
            (``field`` names the key).
    """
    if not isinstance(record, Mapping):
        raise InvalidInputError(
            f"a record must be a dict of ingest arguments, got {type(record).__name__}"
        )
    for key in record:
        if key not in INGEST_FIELDS:
            exc = InvalidInputError(
                f"unknown field {brief(key)}; a record takes {', '.join(INGEST_FIELDS)}"
            )
            exc.field = key if isinstance(key, str) else brief(key)
            raise exc
    for key in INGEST_REQUIRED:
        if key not in record:
            exc = InvalidInputError(f"{key} is required")
            exc.field = key
            raise exc
    return dict(record)


def check_batch(records: object) -> list[object]:
    """Validate an ``ingest_many`` batch as a whole: a list of at most 1000 records.

    Each record is checked by :func:`check_batch_record` and then as ``ingest`` arguments, by
    the caller, so that one error can name every invalid record.

    Args:
        records: A list of dicts, each with ``ingest``'s keyword arguments (``content``,
            ``collection`` and ``kind`` required; ``summary``, ``scope``, ``source``, ``meta``).

    Returns:
        The records, in order.

    Raises:
        InvalidInputError: If ``records`` is not a list, or holds more than
            :data:`MAX_INGEST_BATCH` records.
    """
    if isinstance(records, (str, bytes, bytearray, Mapping)) or not isinstance(records, Sequence):
        raise InvalidInputError(
            f"records must be a list of dicts of ingest arguments, got {type(records).__name__}"
        )
    check_batch_size(len(records))
    return list(records)


def prepare_batch(records: object, prepare: Callable[[dict[str, Any]], T]) -> list[T]:
    """Check an ``ingest_many`` batch and turn each record into what will be stored.

    Args:
        records: The batch (:func:`check_batch`).
        prepare: Turns one record's checked keys (:func:`check_batch_record`) into the
            backend's item; raises ``InvalidInputError`` (``field`` set) for a bad value.

    Returns:
        The prepared items, in order.

    Raises:
        InvalidBatchItemError: Naming every refused record (index and field); nothing is
            returned, so nothing gets stored.
        InvalidInputError: ``records`` is not a list or is over the batch size.
    """
    items: list[T] = []
    failures: list[dict[str, Any]] = []
    for index, record in enumerate(check_batch(records)):
        try:
            items.append(prepare(check_batch_record(record)))
        except InvalidInputError as exc:
            failures.append(batch_item_error(index, exc))
    if failures:
        raise InvalidBatchItemError(failures)
    return items
