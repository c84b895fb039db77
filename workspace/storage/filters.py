"""Search filters: the tags a record is indexed under and the compiled form of ``filters``.

Storage layer, shared by the memory and SQL backends. Every ``scope.<path>`` and
``meta.<path>`` value of a record becomes a tag hashing the path and the canonical JSON of the
value, so an exact, typed filter (``1`` is not ``"1"``) is one indexed lookup on every backend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workspace.errors import InvalidInputError
from workspace.validation import (
    MAX_FILTER_KEYS,
    MAX_FILTER_VALUES,
    canonical_json,
    check_collection,
    check_json,
    check_mapping,
)

MAX_TAG_DEPTH = 3
MAX_TAGS = 256


def _tag(path: str, value: Any) -> str:
    return hashlib.sha256(f"{path}\x00{canonical_json(value)}".encode()).hexdigest()[:40]


def record_tags(scope: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    """Compute the filter tags of a record.

    Every ``scope.<path>`` and ``meta.<path>`` down to three levels gets a tag.

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

    def pinned(self) -> Filters:
        """The same constraints, restricted to pinned records.

        Returns:
            The filters with the pinned tag required too.
        """
        return Filters(
            self.collections, self.kinds, self.ids, (*self.tag_groups, frozenset({PINNED_TAG}))
        )

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
        check_json(value, f"filter {key!r}")
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
