"""Sub-flow ``capture`` / ``write_back`` specs: Agently's shapes, checks and messages.

Natively (agently 4.1.4.10, ``BluePrintSubFlow.normalize_spec`` / ``compile_bindings``) a
spec is ``None`` (the default: ``{"input": "value"}`` for capture, ``{"value":
"result"}`` for write_back) or a mapping from a *target scope* to either a source path
string (only for the ``input`` / ``value`` scopes: the whole target) or a mapping from a
dotted target path to a source path (``"scope[.dotted.path]"``):

- capture targets ``input``, ``runtime_data``, ``flow_data``, ``resources``; sources
  ``value``, ``runtime_data``, ``flow_data``, ``resources``;
- write_back targets ``value``, ``runtime_data``, ``flow_data``; source ``result`` (the
  child's close snapshot; a path is looked up in its ``$final_result`` first).

A spec is compiled into the operator's options in one of two forms. The default (``None``,
or a mapping equal to it) keeps the flat form earlier versions wrote (``{"input":
"value"}``), so those graphs keep their blueprint hash; any other mapping is kept as
Agently's normalized spec under :data:`NATIVE_KEY`, which the interpreter applies with
Agently's semantics (interpreter/subflow.py). A spec whose paths are flat
(``{"runtime_data.k": "value.x"}``, the form this package used to accept) is read as the
nested one it abbreviates.

``flow_data`` scopes are refused: flow_data is worker-local and not durable, so workflow
code cannot read or write it deterministically (docs/triggerflow-on-temporal.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from .._errors import FlowDefinitionError

Mode = Literal["capture", "write_back"]

# The key under which a compiled spec keeps Agently's normalized form.
NATIVE_KEY = "agently/v1"

DEFAULTS: dict[str, dict[str, str]] = {
    "capture": {"input": "value"},
    "write_back": {"value": "result"},
}

_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TARGETS = {
    "capture": frozenset({"input", "runtime_data", "flow_data", "resources"}),
    "write_back": frozenset({"value", "runtime_data", "flow_data"}),
}
_SOURCES = {
    "capture": frozenset({"value", "runtime_data", "flow_data", "resources"}),
    "write_back": frozenset({"result"}),
}
_WHOLE_TARGET = frozenset({"input", "value"})


def parse_target_path(path: Any, *, option_name: str) -> tuple[str, ...]:
    """A dotted target path's segments (native checks and messages)."""
    if not isinstance(path, str):
        raise TypeError(
            f"TriggerFlow sub flow {option_name} target path must be a string, got: {type(path)}."
        )
    if path == "":
        raise FlowDefinitionError(
            f"TriggerFlow sub flow {option_name} target path can not be empty."
        )
    segments = tuple(path.split("."))
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise FlowDefinitionError(
                f"TriggerFlow sub flow {option_name} target path '{path}' contains invalid "
                f"segment '{segment}'."
            )
    return segments


def parse_source_path(path: Any, *, mode: Mode, target_scope: str) -> tuple[str, tuple[str, ...]]:
    """A source path's scope and segments (native checks and messages)."""
    if not isinstance(path, str):
        raise TypeError(
            f"TriggerFlow sub flow {mode} source path for target scope '{target_scope}' "
            f"must be a string, got: {type(path)}."
        )
    if path == "":
        raise FlowDefinitionError(
            f"TriggerFlow sub flow {mode} source path for target scope '{target_scope}' can "
            "not be empty."
        )
    segments = tuple(path.split("."))
    allowed = _SOURCES[mode]
    if segments[0] not in allowed:
        raise FlowDefinitionError(
            f"TriggerFlow sub flow {mode} source scope '{segments[0]}' is not supported. "
            f"Allowed scopes: {sorted(allowed)}"
        )
    for segment in segments[1:]:
        if not _SEGMENT.fullmatch(segment):
            raise FlowDefinitionError(
                f"TriggerFlow sub flow {mode} source path '{path}' contains invalid segment "
                f"'{segment}'."
            )
    return segments[0], segments[1:]


def _unflatten(spec: Mapping[Any, Any], mode: Mode) -> dict[Any, Any]:
    """``{"runtime_data.k": src}`` (this package's earlier flat form) as the nested form."""
    nested: dict[Any, Any] = {}
    for key, binding in spec.items():
        head, dot, rest = key.partition(".") if isinstance(key, str) else (key, "", "")
        if dot and head in _TARGETS[mode] and isinstance(binding, str):
            existing = nested.setdefault(head, {})
            if isinstance(existing, dict):
                existing[rest] = binding
                continue
        nested[key] = binding
    return nested


def normalize_spec(spec: Any, *, mode: Mode) -> dict[str, str | dict[str, str]] | None:
    """Agently's normalized ``capture`` / ``write_back`` spec, checked as natively.

    Raises:
        TypeError: Where Agently raises ``TypeError`` (a spec, binding or path of the wrong
            type), with Agently's message.
        FlowDefinitionError: (a ``ValueError``) Where Agently raises ``ValueError`` (an
            unknown scope, an empty or invalid path, conflicting targets), with Agently's
            message; and for ``flow_data`` scopes, which Temporal cannot carry.
    """
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise TypeError(f"TriggerFlow sub flow {mode} spec must be a mapping, got: {type(spec)}.")
    normalized: dict[str, str | dict[str, str]] = {}
    for target_scope, binding in _unflatten(spec, mode).items():
        if not isinstance(target_scope, str):
            raise TypeError(
                f"TriggerFlow sub flow {mode} target scope must be a string, got: "
                f"{type(target_scope)}."
            )
        allowed = _TARGETS[mode]
        if target_scope not in allowed:
            raise FlowDefinitionError(
                f"TriggerFlow sub flow {mode} target scope '{target_scope}' is not supported. "
                f"Allowed scopes: {sorted(allowed)}"
            )
        normalized[target_scope] = _normalize_binding(binding, mode=mode, scope=target_scope)
    _check_paths(normalized, mode)
    return normalized


def _normalize_binding(binding: Any, *, mode: Mode, scope: str) -> str | dict[str, str]:
    if isinstance(binding, str):
        if scope not in _WHOLE_TARGET:
            raise TypeError(
                f"TriggerFlow sub flow {mode} scope '{scope}' only accepts key-path mappings."
            )
        return binding
    if not isinstance(binding, Mapping):
        raise TypeError(
            f"TriggerFlow sub flow {mode} scope '{scope}' expects a string or mapping, got: "
            f"{type(binding)}."
        )
    normalized: dict[str, str] = {}
    for target_path, source_path in binding.items():
        if not isinstance(target_path, str):
            raise TypeError(
                f"TriggerFlow sub flow {mode} target path for scope '{scope}' must be a "
                f"string, got: {type(target_path)}."
            )
        if not isinstance(source_path, str):
            raise TypeError(
                f"TriggerFlow sub flow {mode} source path for scope '{scope}' must be a "
                f"string, got: {type(source_path)}."
            )
        normalized[target_path] = source_path
    return normalized


def _check_paths(normalized: Mapping[str, str | dict[str, str]], mode: Mode) -> None:
    """Every path parses, targets do not overlap, and no scope is ``flow_data``."""
    for scope, binding in normalized.items():
        if isinstance(binding, str):
            sources = [parse_source_path(binding, mode=mode, target_scope=scope)[0]]
        else:
            targets = [parse_target_path(path, option_name=f"{mode}.{scope}") for path in binding]
            sources = [
                parse_source_path(source, mode=mode, target_scope=scope)[0]
                for source in binding.values()
            ]
            _check_conflicts(targets, mode=mode, scope=scope)
        if scope == "flow_data" or "flow_data" in sources:
            raise FlowDefinitionError(
                f"TriggerFlow sub flow {mode} {scope!r} uses flow_data, which this runtime "
                "cannot carry: flow_data is worker-local and not durable, so workflow code "
                "cannot read or write it deterministically. Pass the value through the "
                "sub-flow's input, value or runtime_data instead."
            )


def _check_conflicts(targets: list[tuple[str, ...]], *, mode: Mode, scope: str) -> None:
    seen: set[tuple[str, ...]] = set()
    for target in sorted(targets, key=len):
        if target in seen:
            raise FlowDefinitionError(
                f"TriggerFlow sub flow {mode} target path '{scope}.{'.'.join(target)}' is "
                "duplicated."
            )
        for depth in range(1, len(target)):
            if target[:depth] in seen:
                raise FlowDefinitionError(
                    f"TriggerFlow sub flow {mode} target paths conflict under scope "
                    f"'{scope}': '{scope}.{'.'.join(target[:depth])}' and "
                    f"'{scope}.{'.'.join(target)}'."
                )
        seen.add(target)


def compile_spec(spec: Any, *, mode: Mode) -> dict[str, Any]:
    """The operator option for ``spec``: the flat default, or Agently's form under a key."""
    normalized = normalize_spec(spec, mode=mode)
    if normalized is None or normalized == DEFAULTS[mode]:
        return dict(DEFAULTS[mode])
    return {NATIVE_KEY: normalized}


def export_spec(compiled: Any) -> Any:
    """A compiled option as a flow config writes it (Agently's nested form for native)."""
    if isinstance(compiled, Mapping) and NATIVE_KEY in compiled:
        return compiled[NATIVE_KEY]
    return compiled


def import_spec(spec: Any, *, mode: Mode) -> dict[str, Any]:
    """The compiled option for a flow config's ``capture`` / ``write_back``.

    ``None`` is the default (as Agently writes it); a flat spec written by an earlier
    version of this package (``{"runtime_data.k": "value.x"}``, or the flat default) keeps
    its flat form, so its graph keeps its blueprint hash; anything else is Agently's spec.
    """
    if isinstance(spec, Mapping) and NATIVE_KEY in spec:
        spec = spec[NATIVE_KEY]
    if (
        isinstance(spec, Mapping)
        and spec
        and all(isinstance(key, str) and isinstance(value, str) for key, value in spec.items())
    ):
        flat = any("." in key for key in spec)
        if flat or dict(spec) == DEFAULTS[mode]:
            normalize_spec(spec, mode=mode)  # checked as a nested spec would be
            return dict(spec)
    return compile_spec(spec, mode=mode)
