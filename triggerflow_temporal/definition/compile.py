"""Definition room: compile a flow's graph into a FlowSpec, rejecting what a worker cannot run.

The compiled spec (and its blueprint hash) is what travels in workflow input and recorded
histories: its shape must not change.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .._errors import FlowDefinitionError
from ..spec.flow_spec import FlowSpec, serialize_activity_config

if TYPE_CHECKING:
    from .chunk import TriggerFlowChunk
    from .graph import GraphOwner

# Operator fields that make up the graph; anything else (e.g. an imported config's
# inspected file/line refs) is dropped so the hash depends on structure and names only.
_OPERATOR_FIELDS = (
    "id",
    "kind",
    "name",
    "listen_signals",
    "emit_signals",
    "options",
    "handler_ref",
    "condition_ref",
    "group_id",
    "group_kind",
    "parent_group_id",
    "parent_group_kind",
)


def _normalize_ref(ref: Any) -> Any:
    if not isinstance(ref, dict):
        return None
    return {"kind": "registered", "name": ref.get("name")}


def _normalize_operator(op: dict[str, Any]) -> dict[str, Any]:
    out = {key: copy.deepcopy(op.get(key)) for key in _OPERATOR_FIELDS}
    out["handler_ref"] = _normalize_ref(op.get("handler_ref"))
    out["condition_ref"] = _normalize_ref(op.get("condition_ref"))
    out["listen_signals"] = [_normalize_signal(s) for s in op.get("listen_signals") or []]
    out["emit_signals"] = [_normalize_signal(s) for s in op.get("emit_signals") or []]
    options = out.get("options") or {}
    if op.get("kind") == "match_route":
        for case in options.get("cases", []):
            case["condition_ref"] = _normalize_ref(case.get("condition_ref"))
    out["options"] = options
    return out


def _normalize_signal(signal: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": signal["id"],
        "trigger_type": signal["trigger_type"],
        "trigger_event": signal["trigger_event"],
    }
    if signal.get("role"):
        out["role"] = signal["role"]
    return out


def _check_handler(flow_name: str, chunk: TriggerFlowChunk) -> None:
    handler = chunk.handler
    qualname = getattr(handler, "__qualname__", "") or ""
    if chunk.anonymous or "<lambda>" in qualname and chunk.name == "<lambda>":
        listens = ""
        raise FlowDefinitionError(
            f"Flow '{flow_name}' uses a lambda (or a callable without a __name__) as a chunk"
            f"{listens}. Chunks run as Temporal activities named '<flow>.<chunk>', so each needs "
            "a stable name: define it with `def`, or pass name= (flow.to(fn, name='step'))."
        )
    if getattr(handler, "__module__", None) == "__main__":
        raise FlowDefinitionError(
            f"Chunk '{chunk.name}' of flow '{flow_name}' is defined in __main__, which a worker "
            "process cannot import. Move the flow and its handlers into a module (for example "
            "myapp/flows.py) and import it from your script and from the worker "
            "(python worker.py myapp.flows:flow)."
        )


def _check_condition(flow_name: str, name: str, condition: Any) -> None:
    if name.startswith("<lambda>"):
        raise FlowDefinitionError(
            f"Flow '{flow_name}' uses a lambda as a match/if condition. Conditions run in the "
            "workflow and are looked up by name: define it with `def` (a named function), or "
            "register it with flow.register_condition_handler(fn, name='...')."
        )
    if getattr(condition, "__module__", None) == "__main__":
        raise FlowDefinitionError(
            f"Condition '{name}' of flow '{flow_name}' is defined in __main__, which a worker "
            "process cannot import. Move it into a module next to the flow."
        )


def compile_flow(flow: GraphOwner, _stack: tuple[str, ...] = ()) -> FlowSpec:
    """Compile ``flow`` (and its sub-flows) into a :class:`FlowSpec`.

    Raises:
        FlowDefinitionError: A lambda, an unnamed or clashing handler, a ``__main__``
            handler, a missing handler for an imported config, or a sub-flow cycle.
    """
    if flow.name in _stack:
        raise FlowDefinitionError(
            f"Sub-flow cycle: {' -> '.join((*_stack, flow.name))}. A flow cannot contain itself."
        )
    graph = flow.graph
    operators: list[dict[str, Any]] = []
    chunks: dict[str, dict[str, Any]] = {}
    for op in graph.operators.values():
        normalized = _normalize_operator(op)
        if op["kind"] == "chunk":
            name = op["name"]
            chunk = _lookup_chunk(flow, op)
            _check_handler(flow.name, chunk)
            try:
                activity = serialize_activity_config(name, chunk.activity_config)
            except ValueError as error:
                raise FlowDefinitionError(str(error)) from error
            chunks[name] = {"execute_in": chunk.execute_in, "activity": activity}
            if chunk.reads_state is not None:
                # Only when declared: the spec (and blueprint hash) of every other chunk
                # stays as it was, so recorded histories keep replaying.
                chunks[name]["reads_state"] = list(chunk.reads_state)
        elif op["kind"] in ("match_route", "match_case"):
            refs = [op.get("condition_ref")]
            refs += [c.get("condition_ref") for c in op["options"].get("cases", [])]
            for ref in refs:
                if ref is None:
                    continue
                name = ref.get("name")
                condition = graph.conditions.get(name)
                if condition is None:
                    raise FlowDefinitionError(
                        f"Flow '{flow.name}' needs condition handler '{name}', which is not "
                        f"registered. Call flow.register_condition_handler(fn, name='{name}')."
                    )
                _check_condition(flow.name, name, condition)
        operators.append(normalized)
    sub_flows: dict[str, FlowSpec] = {}
    for name, child in graph.sub_flows.items():
        sub_flows[name] = compile_flow(child, (*_stack, flow.name))
    frozen = tuple(operators)
    return FlowSpec(
        name=flow.name,
        operators=frozen,
        chunks=chunks,
        sub_flows=sub_flows,
        blueprint_hash=FlowSpec.hash_of(frozen, chunks, sub_flows),
    )


def _lookup_chunk(flow: GraphOwner, op: dict[str, Any]) -> TriggerFlowChunk:
    for chunk in flow.graph.chunks.values():
        if chunk.id == op["id"]:
            return chunk
    name = (op.get("handler_ref") or {}).get("name") or op["name"]
    chunk = flow.graph.chunks.get(name)
    if chunk is not None:
        return chunk
    raise FlowDefinitionError(
        f"Flow '{flow.name}': chunk handler '{name}' is not registered. Call "
        f"flow.register_chunk_handler(fn, name='{name}') before loading the config."
    )
