"""Definition room: Agently ``trigger_flow/v1`` flow-config import/export, and Mermaid diagrams.

The exported config and the Mermaid text are compared byte for byte by the conformance
tests and shown in the Temporal UI: their shape must not change.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import FlowDefinitionError
from ..spec.flow_spec import deserialize_activity_config, serialize_activity_config
from .chunk import TriggerFlowChunk, checked_reads_state
from .sub_flow_bindings import export_spec, import_spec

if TYPE_CHECKING:
    from .builder import FlowBuilder
    from .graph import GraphOwner

FLOW_CONFIG_VERSION = "trigger_flow/v1"
# Per-chunk run options ride in the chunk operator's options under this key; Agently
# ignores it, and the compiler moves it out of the hashed operator.
RUN_OPTIONS_KEY = "temporal"
# Operator kinds the interpreter runs (one ``_op_<kind>`` each in _engine.py; ``match_case``
# is folded into its ``match_route`` by the compiler). tests/test_definition.py keeps the two
# lists equal.
OPERATOR_KINDS = frozenset(
    {
        "chunk",
        "signal_gate",
        "batch_fanout",
        "batch_collect",
        "for_each_split",
        "for_each_collect",
        "match_route",
        "match_case",
        "match_collect",
        "collect_branch",
        "sub_flow",
        "intervention_point",
        "result_sink",
    }
)


def export_flow_config(flow: GraphOwner, *, validate_serializable: bool = True) -> dict[str, Any]:
    """Return ``flow`` as a ``trigger_flow/v1`` dict (handler refs by name)."""
    graph = flow.graph
    operators: list[dict[str, Any]] = []
    by_id = {chunk.id: chunk for chunk in graph.chunks.values()}
    for op in graph.operators.values():
        record = copy.deepcopy(op)
        if op["kind"] == "chunk":
            chunk = by_id.get(op["id"])
            if chunk is None or chunk.anonymous:
                if validate_serializable:
                    raise FlowDefinitionError(
                        f"Cannot export TriggerFlow config because operator '{op['id']}' uses a "
                        "non-serializable handler (a lambda or unnamed callable). Define it with "
                        "`def` or give it a name."
                    )
                continue
            handler = chunk.handler
            record["handler_ref"] = {
                "kind": "registered",
                "name": chunk.name,
                "callable_name": getattr(handler, "__name__", None),
                "module": getattr(handler, "__module__", None),
                "qualname": getattr(handler, "__qualname__", None),
            }
            run: dict[str, Any] = {
                "execute_in": chunk.execute_in,
                "activity": serialize_activity_config(chunk.name, chunk.activity_config),
            }
            if chunk.reads_state is not None:  # only when declared: other exports unchanged
                run["reads_state"] = list(chunk.reads_state)
            record["options"] = {RUN_OPTIONS_KEY: run}
        refs: list[Any] = [record.get("condition_ref")]
        if op["kind"] == "match_route":
            cases: list[dict[str, Any]] = op["options"].get("cases", [])
            refs += [case.get("condition_ref") for case in cases]
        for ref in refs:
            if isinstance(ref, dict) and str(ref.get("name", "")).startswith("<lambda>"):
                if validate_serializable:
                    raise FlowDefinitionError(
                        f"Cannot export TriggerFlow config because operator '{op['id']}' uses a "
                        "non-serializable condition (a lambda). Use a named function."
                    )
        if op["kind"] == "sub_flow":
            for key in ("capture", "write_back"):
                record["options"][key] = export_spec(record["options"].get(key))
            child = graph.sub_flows[op["options"]["sub_flow_name"]]
            record["options"]["sub_flow_config"] = export_flow_config(
                child, validate_serializable=validate_serializable
            )
        operators.append(record)
    return {
        "version": FLOW_CONFIG_VERSION,
        "name": flow.name,
        "meta": copy.deepcopy(dict(graph.meta)),
        "contract": _contract_metadata(flow),
        "operators": operators,
    }


def _contract_metadata(flow: GraphOwner) -> dict[str, Any]:
    """The flow's contract section (a GraphOwner that is not a FlowBuilder has none)."""
    metadata: Callable[[], dict[str, Any]] | None = getattr(flow, "get_contract_metadata", None)
    return {} if metadata is None else metadata()


def import_flow_config(
    flow: FlowBuilder, config: Mapping[str, Any], *, replace: bool = True
) -> None:
    """Load a ``trigger_flow/v1`` config into ``flow`` against its name registries.

    Raises:
        FlowDefinitionError: Wrong version, malformed operators, or a chunk/condition
            handler name that is not registered.
    """
    graph = flow.graph
    if not isinstance(config, Mapping):
        raise FlowDefinitionError(f"A flow config must be a dict, got {type(config).__name__}.")
    if config.get("version") != FLOW_CONFIG_VERSION:
        raise FlowDefinitionError(
            f"Cannot load TriggerFlow config with version {config.get('version')!r}; expected "
            f"{FLOW_CONFIG_VERSION!r}."
        )
    raw_operators = config.get("operators")
    if not isinstance(raw_operators, list):
        raise FlowDefinitionError("Cannot load TriggerFlow config: 'operators' must be a list.")
    chunks: dict[str, TriggerFlowChunk] = {}
    operators: dict[str, dict[str, Any]] = {}
    sub_flows: dict[str, FlowBuilder] = {}
    for index, raw in enumerate(raw_operators):
        op = _checked_operator(index, raw, operators)
        if op["kind"] == "chunk":
            name = str((op.get("handler_ref") or {}).get("name") or op.get("name"))
            handler = graph.chunk_handlers.get(name)
            if handler is None:
                raise FlowDefinitionError(
                    f"Cannot load TriggerFlow config because chunk handler '{name}' is not "
                    "registered."
                )
            run = op["options"].pop(RUN_OPTIONS_KEY, None) or {}
            try:
                reads_state = checked_reads_state(name, run.get("reads_state"))
            except TypeError as error:
                raise FlowDefinitionError(f"Cannot load TriggerFlow config: {error}") from None
            chunk = TriggerFlowChunk(
                handler,
                name=name,
                execute_in=run.get("execute_in", "activity"),
                activity_config=deserialize_activity_config(run.get("activity", {})),
                reads_state=reads_state,
            )
            # Keep the config's ids and continuation event so the net stays consistent
            # (an Agently-exported config uses its own ids).
            chunk.id = op["id"]
            continuation = next(
                (s for s in op["emit_signals"] if s.get("role") == "continuation"), None
            )
            if continuation is not None:
                chunk.trigger = continuation["trigger_event"]
            chunks[name] = chunk
            op["name"] = name
            op["handler_ref"] = {"kind": "registered", "name": name}
            op["options"] = {}
        refs: list[Any] = [op.get("condition_ref")]
        if op["kind"] == "match_route":
            refs += [case.get("condition_ref") for case in op["options"].get("cases", [])]
        for ref in refs:
            if ref is None:
                continue
            name = ref.get("name")
            if name not in graph.conditions:
                raise FlowDefinitionError(
                    f"Cannot load TriggerFlow config because condition handler '{name}' is not "
                    "registered."
                )
            ref.clear()
            ref.update({"kind": "registered", "name": name})
        if op["kind"] == "sub_flow":
            # Agently writes None for the default bindings and nests paths per scope.
            op["options"]["capture"] = import_spec(op["options"].get("capture"), mode="capture")
            op["options"]["write_back"] = import_spec(
                op["options"].get("write_back"), mode="write_back"
            )
            child_config = op["options"].pop("sub_flow_config", None)
            child_name = str(op["options"].get("sub_flow_name"))
            if child_config is None:
                raise FlowDefinitionError(
                    f"Cannot load TriggerFlow config: sub_flow operator '{op['id']}' has no "
                    "sub_flow_config."
                )
            child = _child_flow(flow, child_name)
            import_flow_config(child, child_config)
            sub_flows[child.name] = child
        operators[op["id"]] = op
    _route_case_branches(operators)
    if not replace:
        for op_id, op in operators.items():
            existing = graph.operators.get(op_id)
            if existing is not None and existing != op:
                raise FlowDefinitionError(
                    f"Cannot merge TriggerFlow config: operator '{op_id}' already exists with a "
                    "different definition."
                )
    contract = config.get("contract", {})
    if not isinstance(contract, Mapping):
        raise TypeError("Cannot load TriggerFlow config, expect key 'contract' as a dictionary.")
    graph.install(
        operators=operators,
        chunks=chunks,
        sub_flows=sub_flows,
        meta=config.get("meta") or {},
        replace=replace,
    )
    # As natively: the loaded section describes the contract; nothing is checked after a load
    # (a merge keeps the flow's section unless the config has one).
    flow.load_contract_metadata(contract if replace or contract else flow.get_contract_metadata())
    if config.get("name"):
        flow.name = str(config["name"])


def _child_flow(flow: FlowBuilder, name: str) -> FlowBuilder:
    """A new flow of ``flow``'s class for a nested sub-flow config, with its registries.

    The nested config names its handlers in the parent's registries (a config carries
    names, not functions), so the child gets copies of them.
    """
    child = type(flow)(name=name)
    for handler_name, handler in flow.graph.chunk_handlers.items():
        child.register_chunk_handler(handler, name=handler_name)
    for condition_name, condition in flow.graph.conditions.items():
        child.register_condition_handler(condition, name=condition_name)
    return child


def _route_case_branches(operators: Mapping[str, dict[str, Any]]) -> None:
    """Make listeners of ``<case event>-Branch`` listen to the case event itself.

    Agently's builder makes whatever follows a ``case`` listen to the ``-Branch`` event its
    ``match_case`` operator re-emits; the interpreter skips ``match_case`` operators and
    routes to the case event directly (as this package's builder wires it).
    """
    routes = {
        signal["id"]: op["listen_signals"][0]
        for op in operators.values()
        if op["kind"] == "match_case" and op["listen_signals"]
        for signal in op["emit_signals"]
    }
    for op in operators.values():
        if op["kind"] != "match_case":
            op["listen_signals"] = [
                copy.deepcopy(routes.get(signal["id"], signal)) for signal in op["listen_signals"]
            ]


def _checked_operator(index: int, raw: Any, seen: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of operator ``raw`` with defaults, or a FlowDefinitionError naming what is wrong.

    A hand-edited or corrupted config must fail here, with the operator named, rather than
    compile into a net that silently never fires (an unknown kind, a signal list that is a
    string) or shadows an operator (a duplicate id).
    """
    where = f"Cannot load TriggerFlow config: operator #{index}"
    if not isinstance(raw, Mapping) or "id" not in raw or "kind" not in raw:
        raise FlowDefinitionError(f"{where} needs 'id' and 'kind'.")
    op = copy.deepcopy(dict(raw))  # pyright: ignore[reportUnknownArgumentType]
    op_id, kind = op["id"], op["kind"]
    if not isinstance(op_id, str) or not op_id:
        raise FlowDefinitionError(f"{where} has id {op_id!r}; ids are non-empty strings.")
    where = f"{where} ('{op_id}')"
    if op_id in seen:
        raise FlowDefinitionError(
            f"{where} has a duplicate id: every operator id must be unique. Re-export the "
            "config from the flow instead of copying operators by hand."
        )
    if kind not in OPERATOR_KINDS:
        raise FlowDefinitionError(
            f"{where} has unknown kind {kind!r}; known kinds: {sorted(OPERATOR_KINDS)}."
        )
    op.setdefault("options", {})
    op.setdefault("listen_signals", [])
    op.setdefault("emit_signals", [])
    if not isinstance(op["options"], Mapping):
        raise FlowDefinitionError(f"{where}: 'options' must be a dict, got {op['options']!r}.")
    for key in ("listen_signals", "emit_signals"):
        signals = op[key]
        if not isinstance(signals, list) or not all(
            isinstance(signal, Mapping)
            and isinstance(signal.get("id"), str)
            and isinstance(signal.get("trigger_event"), str)
            for signal in signals  # pyright: ignore[reportUnknownVariableType]
        ):
            raise FlowDefinitionError(
                f"{where}: {key!r} must be a list of signal dicts with string 'id' and "
                f"'trigger_event', got {signals!r}."
            )
    return op


def _node_id(op_id: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", op_id)


def _label(text: str) -> str:
    return text.replace('"', "'")


_SHAPES = {
    "chunk": ('["', '"]'),
    "signal_gate": ('{{"', '"}}'),
    "batch_fanout": ('[/"', '"/]'),
    "batch_collect": ('[\\"', '"\\]'),
    "for_each_split": ('[/"', '"/]'),
    "for_each_collect": ('[\\"', '"\\]'),
    "match_route": ('{"', '"}'),
    "collect_branch": ('[\\"', '"\\]'),
    "sub_flow": ('[["', '"]]'),
}


def to_mermaid(operators: Iterable[Mapping[str, Any]], *, mode: str = "simplified") -> str:
    """Return a ``flowchart TD`` Mermaid diagram of an operator list."""
    ops = [op for op in operators if op["kind"] != "match_case"]
    producers: dict[str, list[str]] = {}
    for op in ops:
        for signal in op.get("emit_signals", []):
            producers.setdefault(signal["id"], []).append(_node_id(op["id"]))
        for case in op.get("options", {}).get("cases", []) if op["kind"] == "match_route" else []:
            producers.setdefault(case["route_signal"]["id"], []).append(_node_id(op["id"]))
    lines = ["flowchart TD", '    START(["START"])']
    external: dict[str, str] = {}
    for op in ops:
        left, right = _SHAPES.get(op["kind"], ('["', '"]'))
        label = op["name"] if op["kind"] == "chunk" else op["kind"].replace("_", " ")
        if mode == "detailed":
            label = f"{label}<br/>{op['kind']}: {op['id']}"
        lines.append(f"    {_node_id(op['id'])}{left}{_label(label)}{right}")
    for op in ops:
        target = _node_id(op["id"])
        for signal in op.get("listen_signals", []):
            sources = producers.get(signal["id"])
            edge_label = ""
            if signal["id"] == "event:START":
                sources = ["START"]
            elif not sources:
                node = external.setdefault(signal["id"], f"ext_{len(external)}")
                if len(external) and node == f"ext_{len(external) - 1}":
                    lines.append(
                        f'    {node}(("{_label(signal["trigger_type"])}: '
                        f'{_label(signal["trigger_event"])}"))'
                    )
                sources = [node]
            elif op["kind"] == "chunk" and signal["trigger_event"].startswith("Match-"):
                edge_label = "|case|" if "-Case-" in signal["trigger_event"] else "|else|"
            for source in dict.fromkeys(sources):
                if source != target:
                    lines.append(f"    {source} -->{edge_label} {target}")
    return "\n".join(lines)
