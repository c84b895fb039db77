"""Definition room: serve a live ``agently.TriggerFlow`` by converting it into a TriggerFlow.

The graph comes from Agently's own ``trigger_flow/v1`` export (``get_flow_config()``), the
chunk and condition handlers from the live object's name registries, and the flow is built
with :meth:`TriggerFlow.from_flow_config`.

Agently derives its ids from each handler's file path and line number (and ``collect`` from
random uuids), which would make the blueprint hash change when code moves. The conversion
(:mod:`.agently_ids`) re-derives every id, event name and group id the way this package's
builder does (from structure and handler names), so the converted flow has the same
blueprint hash as the same graph written with :class:`triggerflow_temporal.TriggerFlow`.
Two shapes keep a stable hash that differs from the hand-written one, because Agently's
export does not record what would tell them apart: chunks created with ``flow.chunk(fn)``
before they are wired in another order (Agently lists a chunk where it was created, this
builder where it is first wired), and a ``collect`` under ``when(<chunk>)`` (read as part
of the chunk's chain) or under a second ``when()`` on the same event.

``agently`` is imported lazily: it is the optional ``agently`` extra (this module only
reads the live object it is handed).
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import FlowDefinitionError
from .agently_ids import canonical_config, unattached
from .builder import FlowBuilder

AGENTLY_VERSION = "4.1.4.10"
INSTALL_HINT = 'pip install "triggerflow-temporal[agently]"'

# agently flow -> (fingerprint of what was converted, converted flow). The plugin and
# TriggerFlow.from_agently() share it, so the flow a client creates executions from is the
# object the plugin attached its client to.
_converted: weakref.WeakKeyDictionary[Any, tuple[str, FlowBuilder]] = weakref.WeakKeyDictionary()

# The class a conversion builds when its caller names none. The plugin converts the agently
# flows it is handed and sits below the client room, so it cannot name the public
# TriggerFlow; yet the object it converts is the one TriggerFlow.from_agently() returns
# later, and that one must create executions. client/flow.py registers TriggerFlow here
# when it defines it (the package __init__ imports it, so before any plugin exists).
_flow_class: type[FlowBuilder] = FlowBuilder


def use_flow_class(cls: type[FlowBuilder]) -> None:
    """Make :func:`from_agently` build ``cls`` when its caller names no class.

    Args:
        cls: A :class:`FlowBuilder` subclass (the public ``TriggerFlow``).
    """
    global _flow_class
    _flow_class = cls


def is_agently_flow(obj: Any) -> bool:
    """Whether ``obj`` is an ``agently.TriggerFlow`` (checked without importing agently)."""
    return any(
        cls.__name__ == "TriggerFlow" and (cls.__module__ or "").split(".")[0] == "agently"
        for cls in type(obj).__mro__
    )


def from_agently(flow: Any, cls: type[FlowBuilder] | None = None) -> FlowBuilder:
    """Convert a live ``agently.TriggerFlow`` into a :class:`TriggerFlow`.

    The same agently object converts to the same TriggerFlow object until its graph or
    handlers change. Flow-level runtime resources, flow_data and ``skip_exceptions`` are
    copied when the flow is converted.

    Args:
        flow: An ``agently.TriggerFlow`` (agently 4.1.4.10), sub-flows included.
        cls: The class to build (default: the one :func:`use_flow_class` registered, the
            public ``TriggerFlow``).

    Returns:
        The converted flow; serve it with :class:`TriggerFlowPlugin` and create executions
        from it.

    Raises:
        FlowDefinitionError: agently is not installed, ``flow`` is not an agently
            TriggerFlow, or a chunk or condition cannot be served (a lambda, two functions
            with one name, a callable without a name, a ``__main__`` function).
    """
    _require_agently()
    if not is_agently_flow(flow):
        raise FlowDefinitionError(
            f"from_agently() takes an agently.TriggerFlow, got {type(flow).__name__}. A "
            "triggerflow_temporal.TriggerFlow needs no conversion."
        )
    name, config, chunk_registry, condition_registry = _read_live(flow)
    handlers: dict[str, Callable[..., Any]] = {}
    conditions: dict[str, Callable[..., Any]] = {}
    _collect_handlers(name, config, chunk_registry, condition_registry, handlers, conditions)
    canonical = canonical_config(config)
    live_contract = getattr(flow, "_contract", None)
    fingerprint = json.dumps(
        [
            canonical,
            sorted((k, id(v)) for k, v in {**handlers, **conditions}.items()),
            [id(getattr(live_contract, part, None)) for part in _CONTRACT_PARTS],
            config.get("contract"),
        ],
        sort_keys=True,
        default=str,
    )
    flow_class = cls or _flow_class
    cached = _converted.get(flow)
    if cached is not None and cached[0] == fingerprint and isinstance(cached[1], flow_class):
        return cached[1]
    converted = flow_class.from_flow_config(canonical, handlers=handlers, conditions=conditions)
    if live_contract is not None:
        # The live contract's types (Agently's TriggerFlowContract attributes), checked here
        # as natively; its metadata alone would describe them without checking anything.
        converted.set_contract(
            **{part: getattr(live_contract, part, None) for part in _CONTRACT_PARTS},
            meta=dict(getattr(live_contract, "meta", None) or {}),
        )
    # Agently keeps these on private attributes of its own object (there is no public
    # getter); reading them is reading agently, pinned to AGENTLY_VERSION.
    converted.skip_exceptions = bool(getattr(flow, "_skip_exceptions", False))
    converted.update_runtime_resources(_live_mapping(getattr(flow, "_runtime_resources", None)))
    converted.replace_flow_data(_live_mapping(getattr(flow, "_flow_data", None)))
    converted.compile()  # reject what a worker cannot run (e.g. __main__ handlers) now
    _converted[flow] = (fingerprint, converted)
    return converted


_CONTRACT_PARTS = ("initial_input", "stream", "result")


def _require_agently() -> None:
    try:
        # Imported by name, on use: agently is the optional ``agently`` extra.
        importlib.import_module("agently")
    except ImportError as error:
        raise FlowDefinitionError(
            f"Serving an agently.TriggerFlow needs the agently package ({error}). Install the "
            f"extra: {INSTALL_HINT}, or build the flow with triggerflow_temporal.TriggerFlow."
        ) from None


def _read_live(
    flow: Any,
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Name, flow config and handler registries of a live agently flow."""
    try:
        name = str(flow.name)
        config = flow.get_flow_config(validate_serializable=False)
        # The handler registries are private attributes of agently's own blueprint object
        # (agently has no public getter for them); AttributeError below means another
        # agently version than the pinned one.
        blueprint = flow._blue_print
        chunk_registry = dict(blueprint._chunk_registry)
        condition_registry = dict(blueprint._condition_registry)
    except AttributeError as error:
        version = getattr(importlib.import_module("agently"), "__version__", "unknown")
        raise FlowDefinitionError(
            f"Cannot read this agently.TriggerFlow ({error}): triggerflow_temporal reads "
            f"agently {AGENTLY_VERSION} flows and agently {version} is installed. Install the "
            f"pinned version: {INSTALL_HINT}."
        ) from None
    return name, copy.deepcopy(config), chunk_registry, condition_registry


def _live_mapping(value: Any) -> dict[str, Any]:
    """A shallow dict of an agently StateData (live objects kept as they are)."""
    if value is None:
        return {}
    try:
        return {str(key): val for key, val in value.items()}
    except (AttributeError, TypeError):
        return {}


# ------------------------------------------------------------------ handler checks
_PLACES = (
    (r"Chunk\[(.*)\]-chunk-", " after chunk '{}'"),
    (r"InterventionPoint\[(.*)\]-", " after intervention point '{}'"),
    (r"Batch-", " in a batch"),
    (r"ForEach-", " in a for_each"),
    (r"Match-", " in a match/if branch"),
    (r"When-", " after a when()"),
    (r"SubFlow-", " after a sub-flow"),
    (r"Collect-(.*)", " after collect '{}'"),
    (r"START$", " at the start"),
)


def _where(op: Mapping[str, Any]) -> str:
    """Where an operator sits, for error messages (" after chunk 'x'")."""
    signals = op.get("listen_signals") or []
    if not signals:
        return ""
    event = str(signals[0].get("trigger_event", ""))
    if signals[0].get("trigger_type", "event") != "event":
        return f" on {signals[0].get('trigger_type')} '{event}'"
    for pattern, text in _PLACES:
        found = re.match(pattern, event)
        if found:
            return text.format(*found.groups())
    return f" on event '{event}'"


def _origin(ref: Mapping[str, Any]) -> str:
    if not ref.get("qualname") and not ref.get("callable_name"):
        return "an unnamed callable"
    place = f"{ref.get('module') or '?'}.{ref.get('qualname') or ref.get('callable_name')}"
    if ref.get("file"):
        place += f" ({ref['file']}:{ref.get('line')})"
    return place


def _callable_origin(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"


def _check_ref(
    flow_name: str,
    what: str,
    ref: Any,
    where: str,
    registry: Mapping[str, Any],
) -> str:
    """Return the registered name of a handler ref, or raise naming it and the fix."""
    ref = ref if isinstance(ref, Mapping) else {}
    kind = ref.get("kind")
    name = ref.get("name")
    callable_name = ref.get("callable_name")
    prefix = f"Flow '{flow_name}' (agently): {what}"
    if callable_name == "<lambda>" and kind == "anonymous":
        fix = (
            "pass a name (flow.to(fn, name='step'))"
            if what.startswith("chunk")
            else "register it with flow.register_condition_handler(fn, name='...')"
        )
        raise FlowDefinitionError(
            f"{prefix}{where} is a lambda ({_origin(ref)}). On Temporal a handler is looked "
            f"up by name on the worker: define it with `def` in an importable module, or {fix}."
        )
    if kind == "anonymous":
        first = registry.get(str(name))
        first_origin = _callable_origin(first) if first is not None else "another function"
        raise FlowDefinitionError(
            f"{prefix}{where} is a second, different function named '{name}' ({_origin(ref)}); "
            f"the first is {first_origin}. Closures from one factory do this, and Agently then "
            "leaves the second one unnamed. Handlers are looked up by name on the worker, so "
            f"give each its own name: flow.to(fn, name='{name}_2')."
        )
    if kind not in ("registered", "inspected") or not name:
        fix = (
            "Wrap it in a `def` or pass a name (flow.to(fn, name='step'))."
            if what.startswith("chunk")
            else "Use a named `def` function."
        )
        raise FlowDefinitionError(
            f"{prefix}{where} is a callable without a __name__ (e.g. a functools.partial or "
            f"a callable object), so a worker cannot look it up by name. {fix}"
        )
    handler = registry.get(str(name))
    if handler is None:
        raise FlowDefinitionError(
            f"{prefix}{where} refers to handler '{name}', which the flow has not registered. "
            f"Call flow.register_{what.split()[0]}_handler(fn, name='{name}')."
        )
    if (getattr(handler, "__module__", None) or "").split(".")[0] == "agently":
        raise FlowDefinitionError(
            f"{prefix}{where} runs Agently's internal helper {_callable_origin(handler)} "
            "(the ____(log_info=/print_info=/show_value=) separator adds one). It cannot run "
            "outside Agently's engine: drop those arguments, or log from your own chunk."
        )
    return str(name)


def _collect_handlers(
    flow_name: str,
    config: Mapping[str, Any],
    chunk_registry: Mapping[str, Any],
    condition_registry: Mapping[str, Any],
    handlers: dict[str, Callable[..., Any]],
    conditions: dict[str, Callable[..., Any]],
) -> None:
    """Fill ``handlers``/``conditions`` with what the config's operators use, or raise.

    Agently merges a sub-flow's registries into its parent's when the sub-flow is attached,
    so the parent's registries serve the nested configs too.
    """
    for op in config.get("operators") or []:
        kind = op.get("kind")
        where = _where(op)
        if unattached(op):
            continue
        if kind == "chunk":
            label = f"chunk '{op.get('name')}'"
            name = _check_ref(flow_name, label, op.get("handler_ref"), where, chunk_registry)
            handlers[name] = chunk_registry[name]
        refs: list[Any] = [op.get("condition_ref")]
        if kind == "match_route":
            refs += [case.get("condition_ref") for case in op["options"].get("cases", [])]
        for ref in refs:
            if ref is None:
                continue
            label = f"condition '{ref['name']}'" if ref.get("name") else "a condition"
            name = _check_ref(flow_name, label, ref, where, condition_registry)
            conditions[name] = condition_registry[name]
        if kind == "sub_flow":
            child = (op.get("options") or {}).get("sub_flow_config") or {}
            child_name = str(child.get("name") or op.get("name"))
            _collect_handlers(
                child_name, child, chunk_registry, condition_registry, handlers, conditions
            )
