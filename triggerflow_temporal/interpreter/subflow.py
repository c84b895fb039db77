"""Sub-flow capture / write-back mapping (pure; used by the workflow)."""

from __future__ import annotations

import copy
from typing import Any

from ..spec.state import get_path, set_path


def _read_source(source: str, signal: dict[str, Any], state: dict[str, Any]) -> Any:
    head, _, rest = source.partition(".")
    if head == "value":
        base = signal.get("value")
        return (
            get_path(base, rest)
            if rest and isinstance(base, dict)
            else (base if not rest else None)
        )
    if head == "runtime_data":
        return get_path(state, rest) if rest else copy.deepcopy(state)
    # flow_data and resources live on the worker; they are not captured into history.
    return None


def capture_input(capture: dict[str, str], signal: dict[str, Any], state: dict[str, Any]) -> Any:
    """Build the child's start value from the parent signal and state (``capture`` spec)."""
    child_input: Any = None
    for target, source in capture.items():
        value = copy.deepcopy(_read_source(source, signal, state))
        head, _, rest = target.partition(".")
        if head != "input":
            continue
        if not rest:
            child_input = value
        else:
            if not isinstance(child_input, dict):
                child_input = {}
            set_path(child_input, rest, value)
    return child_input


def write_back_value(
    write_back: dict[str, str], result: Any, signal: dict[str, Any], state: dict[str, Any]
) -> Any:
    """Map the child's close snapshot back onto the value passed downstream.

    ``runtime_data.x`` targets are written to the parent state as well.
    """
    result = result if isinstance(result, dict) else {}
    value: Any = None
    for target, source in write_back.items():
        _, _, rest = source.partition(".")
        final = result.get("$final_result", None) if isinstance(result, dict) else None
        if not rest:
            picked = final if final is not None else result
        else:
            picked = get_path(final, rest) if isinstance(final, dict) else None
            if picked is None:
                picked = get_path(result, rest)
        head, _, target_rest = target.partition(".")
        if head == "value":
            if not target_rest:
                value = picked
            else:
                if not isinstance(value, dict):
                    value = {}
                set_path(value, target_rest, picked)
        elif head == "runtime_data" and target_rest:
            set_path(state, target_rest, copy.deepcopy(picked))
    return value
