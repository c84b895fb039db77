"""Sub-flow capture / write-back mapping (pure; used by the workflow).

A compiled spec (definition/sub_flow_bindings.py) is either the flat form earlier versions
wrote (``{"input": "value"}``, ``{"runtime_data.k": "result.x"}``), applied as they
applied it so executions started with it replay unchanged, or Agently's normalized spec
under ``NATIVE_KEY``, applied as Agently 4.1.4.10 does (``SubFlowBindings.py``):

- capture reads ``value`` (the parent's signal value), ``runtime_data`` (the parent's
  state) and ``resources`` (the execution's runtime resources) at the given path, and a
  path that is not there fails the sub-flow with Agently's ``KeyError``; it writes the
  child's ``input`` (None when no binding targets it), its ``runtime_data`` and its
  ``resources``. Targets other than ``input``, and reads of ``resources``, travel to the
  child in an envelope (:func:`capture_envelope`) that the child opens before its START
  (:func:`open_envelope`): the child seeds its state and resources there, and it holds the
  same execution resources as its parent.
- write_back reads ``result`` (the child's close snapshot; a path is looked up in its
  ``$final_result`` first) and writes ``value`` (starting from the parent's value, which
  passes on unchanged when no binding targets it) and the parent's ``runtime_data``
  (each top-level key replaced, as natively).
"""

from __future__ import annotations

import copy
from typing import Any

from ..spec.state import get_path, set_path

# definition/sub_flow_bindings.NATIVE_KEY (the interpreter does not import definition).
NATIVE_KEY = "agently/v1"
# The child's start value when capture writes more than its input.
ENVELOPE_KEY = "$triggerflow.sub_flow_capture"
FINAL_RESULT_KEY = "$final_result"


class SubFlowPathError(KeyError):
    """A capture or write-back source path is not there (Agently's ``KeyError``)."""

    def __init__(self, scope: str, path: tuple[str, ...] | list[str]) -> None:
        self.text = f"TriggerFlow sub flow path '{'.'.join([scope, *path])}' not found."
        super().__init__(self.text)


# ---------------------------------------------------------------- flat (earlier) specs
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


def _flat_capture(capture: dict[str, str], signal: dict[str, Any], state: dict[str, Any]) -> Any:
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


def _flat_write_back(write_back: dict[str, str], result: Any, state: dict[str, Any]) -> Any:
    result = result if isinstance(result, dict) else {}
    value: Any = None
    for target, source in write_back.items():
        _, _, rest = source.partition(".")
        final = result.get(FINAL_RESULT_KEY, None) if isinstance(result, dict) else None
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


# --------------------------------------------------------------- Agently's specs
def _bindings(spec: dict[str, Any]) -> list[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
    """``(target scope, target path, source scope, source path)`` in Agently's order."""
    found = []
    for scope, binding in spec.items():
        pairs = [("", binding)] if isinstance(binding, str) else list(binding.items())
        for target, source in pairs:
            head, *rest = source.split(".")
            found.append((scope, tuple(target.split(".")) if target else (), head, tuple(rest)))
    return found


def read_path(root: Any, path: tuple[str, ...] | list[str], *, scope: str) -> Any:
    """``root`` at ``path`` (a copy), or :class:`SubFlowPathError`, as natively."""
    current = root
    for segment in path:
        if isinstance(current, dict) and segment in current:
            current = current[segment]
            continue
        raise SubFlowPathError(scope, path)
    return copy.deepcopy(current)


def _write(target: Any, path: tuple[str, ...], value: Any) -> Any:
    """``target`` with ``value`` at ``path`` (a non-dict target becomes a dict)."""
    if not path:
        return value
    if not isinstance(target, dict):
        target = {}
    set_path(target, ".".join(path), value)
    return target


def capture_input(capture: dict[str, Any], signal: dict[str, Any], state: dict[str, Any]) -> Any:
    """The child's start value from the parent's signal and state (``capture`` spec).

    Raises:
        SubFlowPathError: (Agently's spec) a source path that is not there.
    """
    if NATIVE_KEY not in capture:
        return _flat_capture(capture, signal, state)
    return capture_envelope(capture[NATIVE_KEY], signal, state)


def capture_envelope(spec: dict[str, Any], signal: dict[str, Any], state: dict[str, Any]) -> Any:
    """Agently's capture: the child's input, or an envelope when it captures more."""
    scopes = {"value": signal.get("value"), "runtime_data": state}
    child_input: Any = None
    has_input = False
    seeds: dict[str, Any] = {"runtime_data": {}, "resources": {}}
    deferred: list[list[Any]] = []
    for target, target_path, source, source_path in _bindings(spec):
        if source == "resources":
            # Read by the child, which holds the same execution resources.
            deferred.append([target, list(target_path), list(source_path)])
            continue
        value = read_path(scopes[source], source_path, scope=source)
        if target == "input":
            child_input = _write(child_input, target_path, value)
            has_input = True
        else:
            seeds[target] = _write(seeds[target], target_path, value)
    if not deferred and not seeds["runtime_data"] and not seeds["resources"]:
        return child_input if has_input else None
    return {
        ENVELOPE_KEY: {
            "input": child_input,
            "has_input": has_input,
            "runtime_data": seeds["runtime_data"],
            "resources": seeds["resources"],
            "deferred": deferred,
        }
    }


def open_envelope(
    value: Any, resources: dict[str, Any]
) -> tuple[Any, dict[str, Any], dict[str, Any]] | None:
    """The child's side of :func:`capture_envelope`: ``(input, runtime_data, resources)``.

    None when ``value`` is a plain start value. ``resources`` are the child's (its
    parent's) execution resources, which deferred reads of ``resources.*`` read.

    Raises:
        SubFlowPathError: A ``resources`` source path is not there.
    """
    if not isinstance(value, dict) or set(value) != {ENVELOPE_KEY}:
        return None
    envelope = value[ENVELOPE_KEY]
    child_input = envelope.get("input")
    has_input = bool(envelope.get("has_input"))
    runtime_data = copy.deepcopy(envelope.get("runtime_data") or {})
    added = copy.deepcopy(envelope.get("resources") or {})
    for target, target_path, source_path in envelope.get("deferred") or []:
        if target == "resources" and target_path == source_path and source_path[0] not in resources:
            # The same key: a worker resource every execution sees already.
            continue
        picked = read_path(resources, source_path, scope="resources")
        if target == "input":
            child_input = _write(child_input, tuple(target_path), picked)
            has_input = True
        elif target == "runtime_data":
            runtime_data = _write(runtime_data, tuple(target_path), picked)
        else:
            added = _write(added, tuple(target_path), picked)
    return (child_input if has_input else None), runtime_data, added


def write_back_value(
    write_back: dict[str, Any], result: Any, signal: dict[str, Any], state: dict[str, Any]
) -> Any:
    """Map the child's close snapshot back onto the value passed downstream.

    ``runtime_data`` targets are written to the parent state as well.

    Raises:
        SubFlowPathError: (Agently's spec) a source path that is not there.
    """
    if NATIVE_KEY not in write_back:
        return _flat_write_back(write_back, result, state)
    value = copy.deepcopy(signal.get("value"))
    patch: dict[str, Any] = {}
    for target, target_path, _source, source_path in _bindings(write_back[NATIVE_KEY]):
        picked = _read_result(result, source_path)
        if target == "value":
            value = _write(value, target_path, picked)
        else:  # runtime_data (flow_data is refused by the builder)
            patch = _write(patch, target_path, picked)
    for key, item in patch.items():
        state[key] = item  # each top-level key replaced, as natively
    return value


def _read_result(result: Any, path: tuple[str, ...]) -> Any:
    if isinstance(result, dict) and FINAL_RESULT_KEY in result:
        try:
            return read_path(result[FINAL_RESULT_KEY], path, scope="result")
        except SubFlowPathError:
            pass
    return read_path(result, path, scope="result")


class FrameDetached:
    """``run_sub_flow``'s answer when the child paused: the frame waits for its resume.

    The operator's item settles without a continuation; the continuation is dispatched as
    a new root when the child reports its end (interpreter/subflow_frames.py).
    """

    def __init__(self, frame_id: str) -> None:
        self.frame_id = frame_id
