"""Dotted-key helpers for execution state; pure functions shared by workflow and activity."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

_MISSING = object()


def get_path(data: dict[str, Any], key: str, default: Any = None) -> Any:
    """Return ``data[key]``, where ``"a.b"`` reads nested dicts; ``default`` when absent."""
    if key in data:
        return data[key]
    current: Any = data
    for part in key.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return default
    return current


def has_path(data: dict[str, Any], key: str) -> bool:
    """Return whether ``key`` (dotted) exists."""
    return get_path(data, key, _MISSING) is not _MISSING


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (dotted: nested dicts are created as needed)."""
    parts = key.split(".")
    current = data
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            current[part] = nxt
        current = nxt
    current[parts[-1]] = value


def append_path(data: dict[str, Any], key: str, value: Any) -> list[Any]:
    """Append ``value`` to the list at ``key``, creating it (a scalar becomes a list)."""
    existing = get_path(data, key, _MISSING)
    if existing is _MISSING or existing is None:
        new: list[Any] = [value]
    elif isinstance(existing, list):
        new = [*existing, value]
    else:
        new = [existing, value]
    set_path(data, key, new)
    return new


def del_path(data: dict[str, Any], key: str) -> bool:
    """Delete ``key`` (dotted); return whether something was deleted."""
    if key in data:
        del data[key]
        return True
    parts = key.split(".")
    current: Any = data
    for part in parts[:-1]:
        if not isinstance(current, dict) or part not in current:
            return False
        current = current[part]
    if isinstance(current, dict) and parts[-1] in current:
        del current[parts[-1]]
        return True
    return False


def apply_state_op(state: dict[str, Any], op: list[Any]) -> tuple[bool, Any]:
    """Apply one recorded state operation in place.

    Args:
        state: The execution state.
        op: ``["set", key, value, emit]``, ``["append", key, value, emit]`` or
            ``["del", key, emit]``.

    Returns:
        ``(changed, value)`` where ``value`` is what a ``runtime_data`` watcher receives.
    """
    kind = op[0]
    if kind == "set":
        set_path(state, op[1], op[2])
        return True, get_path(state, op[1])
    if kind == "append":
        return True, append_path(state, op[1], op[2])
    if kind == "del":
        return del_path(state, op[1]), None
    raise ValueError(f"unknown state operation {kind!r}")


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: pydantic models and dataclasses become JSON data."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (how the payload converter stores it).

    Raises:
        TypeError: ``value`` is not JSON-ready.
    """
    return len(
        json.dumps(value, default=json_default, separators=(",", ":"), ensure_ascii=False).encode()
    )


def describe_size(size: int) -> str:
    """``size`` bytes as a short human reading (``"2.5 MiB"``)."""
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


# ------------------------------------------------------------ reads_state (issue 18)
def path_covered(key: str, paths: Iterable[str]) -> bool:
    """Whether ``key`` is one of ``paths`` or below one.

    ``"order"`` covers ``"order"`` and ``"order.total"``; ``"order.total"`` does not
    cover its parent ``"order"`` (only part of that value is known).
    """
    return any(key == path or key.startswith(path + ".") for path in paths)


def normalize_paths(paths: Iterable[str]) -> list[str]:
    """``paths`` without duplicates and without paths another one covers (order kept)."""
    unique = list(dict.fromkeys(paths))
    return [
        path
        for path in unique
        if not any(other != path and path.startswith(other + ".") for other in unique)
    ]


def select_paths(state: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """The part of ``state`` at ``paths`` (dotted, as :func:`get_path` reads them).

    A dotted path keeps its nesting (``"order.total"`` gives ``{"order": {"total": 3}}``);
    a path that is absent is simply left out. Top-level keys ``paths`` cover are kept as
    they are (a literal ``"a.b"`` key too), so :func:`get_path` answers every covered key
    from the result as it does from ``state``. Values are shared, not copied. Pure and
    deterministic (the workflow sends a chunk that declares ``reads_state`` only this).
    """
    wanted = normalize_paths(paths)
    out: dict[str, Any] = {}
    for key, value in state.items():
        if path_covered(key, wanted):
            out[key] = value
    for path in wanted:
        parts = path.split(".")
        if len(parts) == 1:
            continue
        current: Any = state
        for part in parts:
            if not isinstance(current, dict) or part not in current:
                break
            current = current[part]
        else:
            # Builds new dicts along the way: the values of ``state`` are not touched.
            set_path(out, path, current)
    return out


def reads_state_problem(value: Any) -> str | None:
    """What is wrong with a ``reads_state`` declaration, or None when it is valid.

    Valid: None (the whole state), or a list or tuple of non-empty dotted paths without
    empty segments (``"customer"``, ``"order.total"``).
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return f"must be a list of state keys, got {type(value).__name__} {value!r:.80}"
    for path in value:
        if not isinstance(path, str):
            return f"holds {path!r:.80} ({type(path).__name__}); every entry must be a string"
        if not path or "" in path.split("."):
            return f"holds {path!r}; every entry must be a non-empty key such as 'order.total'"
    return None


def declared_reads(options: dict[str, Any] | None) -> list[str] | None:
    """The state paths a chunk's spec options declare it reads; None: the whole state.

    A malformed declaration (never compiled so; a snapshot's spec is checked with
    ``chunk_option_problems`` before it starts) sends the whole state.
    """
    reads = (options or {}).get("reads_state")
    if reads is None or reads_state_problem(reads) is not None:
        return None
    return list(reads)
