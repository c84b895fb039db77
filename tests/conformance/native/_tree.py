"""The key/type tree of a JSON-ready value (no agently import; shared by the native
scripts here and the tests that compare with their recordings).

A dict becomes ``{key: tree}``, a list the sorted distinct trees of its items (``[]`` when
empty), anything else its JSON type name (``null``, ``bool``, ``int``, ``float``, ``str``).
"""

from __future__ import annotations

import json
from typing import Any


def key_type_tree(value: Any) -> Any:
    """The key/type tree of ``value`` (see the module docstring)."""
    if isinstance(value, dict):
        return {str(key): key_type_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        distinct = {json.dumps(key_type_tree(item), sort_keys=True) for item in value}
        return [json.loads(text) for text in sorted(distinct)]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def tree_differences(ours: Any, native: Any, path: str = "$") -> list[str]:
    """Where two key/type trees differ, one line per difference (empty when equal)."""
    if isinstance(ours, dict) and isinstance(native, dict):
        found: list[str] = []
        for key in sorted(set(ours) | set(native)):
            if key not in ours:
                found.append(f"{path}.{key}: missing (native {json.dumps(native[key])[:80]})")
            elif key not in native:
                found.append(f"{path}.{key}: extra (ours {json.dumps(ours[key])[:80]})")
            else:
                found += tree_differences(ours[key], native[key], f"{path}.{key}")
        return found
    if ours != native:
        return [f"{path}: ours {json.dumps(ours)[:120]} native {json.dumps(native)[:120]}"]
    return []
