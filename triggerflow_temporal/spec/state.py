"""Dotted-key helpers for execution state; pure functions shared by workflow and activity."""

from __future__ import annotations

import dataclasses
import json
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
