"""Definition room: :class:`TriggerFlowProcess`, the builder position users chain on.

It keeps Agently's names and semantics (``to``, ``batch``, ``for_each``, ``match``,
``when``, ``collect``, ``to_sub_flow``, ...); each operator method adds operator records to
the flow's :class:`~.graph.FlowGraph` and returns the position after it. The block
operators (``for_each``, ``match``/``if``) come from :class:`~.branching.BranchingProcess`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

from .._errors import FlowDefinitionError
from .branching import BranchingProcess
from .chunk import TriggerFlowChunk
from .graph import GraphOwner
from .ids import digest, make_signal
from .position import Keep, check_concurrency
from .sub_flow_bindings import compile_spec

if TYPE_CHECKING:
    from typing_extensions import Self

    from .builder import FlowBuilder


class TriggerFlowProcess(BranchingProcess):
    """An immutable builder position: "the trigger the next operator listens to".

    Calling builder methods on the same process more than once branches the graph.
    """

    def to(
        self,
        chunk: Any,
        side_branch: bool = False,
        name: str | None = None,
        **sub_flow_options: Any,
    ) -> Self:
        """Attach a chunk (callable, chunk object, chunk name, ``(name, fn)`` or flow)."""
        if isinstance(chunk, GraphOwner):
            # Every GraphOwner is a FlowBuilder (the one subclass).
            flow = cast("FlowBuilder", chunk)
            return self.to_sub_flow(flow, side_branch=side_branch, name=name, **sub_flow_options)
        if sub_flow_options:
            raise TypeError(
                f"to() got unexpected keyword argument(s) {sorted(sub_flow_options)}; "
                "capture/write_back/concurrency only apply to sub-flows."
            )
        typed = self._graph.resolve_chunk(chunk, name=name)
        self._graph.attach_chunk(typed, self._signals, **self._group_fields())
        if side_branch:
            return self._same_position()
        return self._new(typed.trigger, group_id=Keep, group_kind=Keep)

    def side_branch(self, chunk: Any, *, name: str | None = None) -> Self:
        """Run ``chunk`` on the current trigger; the chain keeps the old trigger."""
        return self.to(chunk, side_branch=True, name=name)

    def batch(
        self,
        *chunks: Any,
        side_branch: bool = False,
        concurrency: int | None = None,
    ) -> Self:
        """Fan the same input out to every chunk; the next step gets ``{name: result}``."""
        if not chunks:
            raise FlowDefinitionError("batch() needs at least one chunk.")
        check_concurrency("batch", concurrency)
        typed_chunks = [self._graph.resolve_chunk(chunk) for chunk in chunks]
        batch_id = digest(
            {
                "kind": "batch",
                "listen_signals": self._signals,
                "chunk_ids": [chunk.id for chunk in typed_chunks],
                "concurrency": concurrency,
                "parent_group_id": self._group_id,
            }
        )
        batch_trigger = f"Batch-{batch_id}"
        inputs: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        result_keys: dict[str, str] = {}
        group = {
            "group_id": batch_id,
            "group_kind": "batch",
            "parent_group_id": self._group_id,
            "parent_group_kind": self._group_kind,
        }
        for typed in typed_chunks:
            input_signal = make_signal("event", f"Batch-{batch_id}-Input-{typed.id}")
            output_signal = make_signal("event", typed.trigger)
            inputs.append(input_signal)
            outputs.append(output_signal)
            result_keys[output_signal["id"]] = typed.name
            self._graph.attach_chunk(typed, [input_signal], **group)
        self._graph.add_operator(
            id=f"batch-fanout-{batch_id}",
            kind="batch_fanout",
            name=f"batch:{batch_id}",
            listen_signals=self._signals,
            emit_signals=inputs,
            options={"concurrency": concurrency},
            **group,
        )
        self._graph.add_operator(
            id=f"batch-collect-{batch_id}",
            kind="batch_collect",
            name=f"batch_collect:{batch_id}",
            listen_signals=outputs,
            emit_signals=[make_signal("event", batch_trigger, role="continuation")],
            options={"result_keys": result_keys},
            **group,
        )
        if side_branch:
            return self._same_position()
        return self._new(batch_trigger, group_id=Keep, group_kind=Keep)

    def when(self, trigger: Any, *, mode: Literal["and", "or", "simple_or"] = "and") -> Self:
        """Start a new root chain on an event, a chunk's completion, or a join of several."""
        if mode not in ("and", "or", "simple_or"):
            raise FlowDefinitionError(
                f"when(mode={mode!r}) is not supported; use 'and', 'or' or 'simple_or'."
            )
        if isinstance(trigger, (TriggerFlowChunk, str)):
            event = self._resolve_trigger(trigger)
            return self.root(self._flow, make_signal("event", event))
        if isinstance(trigger, (list, tuple)):
            trigger = {"event": list(trigger)}
        if not isinstance(trigger, dict) or not trigger:
            raise FlowDefinitionError(
                f"when() got {trigger!r}; pass an event name, a chunk, a list of them, or a dict "
                "like {'event': [...], 'runtime_data': 'key', 'collect': 'name'}."
            )
        signals: list[dict[str, Any]] = []
        for trigger_type, events in trigger.items():
            if trigger_type not in ("event", "runtime_data", "flow_data", "collect"):
                raise FlowDefinitionError(
                    f"when() trigger type {trigger_type!r} is not supported; use 'event', "
                    "'runtime_data', 'flow_data' or 'collect'."
                )
            event_list = events if isinstance(events, (list, tuple)) else [events]
            for event in event_list:
                if trigger_type == "collect":
                    # Deviation 6: when({"collect": name}) works (native raises KeyError).
                    signals.append(make_signal("event", f"Collect-{event}"))
                elif trigger_type == "event":
                    signals.append(make_signal("event", self._resolve_trigger(event)))
                else:
                    if not isinstance(event, str):
                        raise FlowDefinitionError(
                            f"when({{{trigger_type!r}: ...}}) needs key names, got {event!r}."
                        )
                    signals.append(make_signal(trigger_type, event))
        if len(signals) == 1:
            return self.root(self._flow, signals[0])
        when_id = digest(
            {"kind": "when", "mode": mode, "signals": sorted(s["id"] for s in signals)}
        )
        when_trigger = f"When-{when_id}"
        self._graph.add_operator(
            id=f"when-{when_id}",
            kind="signal_gate",
            name=f"when:{when_id}",
            listen_signals=signals,
            emit_signals=[make_signal("event", when_trigger, role="continuation")],
            options={"mode": mode},
        )
        return self.root(self._flow, make_signal("event", when_trigger))

    def collect(
        self,
        collection_name: str,
        branch_id: str | None = None,
        *,
        mode: Literal["filled_and_update", "filled_then_empty"] = "filled_and_update",
    ) -> Self:
        """Join branches of the same root chain; emits ``{branch_id: value}`` when all arrived."""
        if not isinstance(collection_name, str) or not collection_name:
            raise FlowDefinitionError("collect() needs a non-empty collection name.")
        if mode not in ("filled_and_update", "filled_then_empty"):
            raise FlowDefinitionError(
                f"collect(mode={mode!r}) is not supported; use 'filled_and_update' or "
                "'filled_then_empty'."
            )
        root = self._block.root()
        configs = root.data.setdefault("collect_configs", {})
        root_id = root.data.get("root_id", "root")
        # Deviation 4: collect ids derive from the root and the name, never from uuids.
        config = configs.setdefault(
            collection_name,
            {
                "collect_id": digest({"kind": "collect", "root": root_id, "name": collection_name}),
                "branch_ids": [],
                "operator_ids": [],
            },
        )
        if branch_id is None:
            branch_id = digest({"branch": [s["id"] for s in self._signals]}, 12)
        if branch_id not in config["branch_ids"]:
            config["branch_ids"].append(branch_id)
        collect_id = config["collect_id"]
        collect_trigger = f"Collect-{collection_name}"
        operator_id = f"collect-{collect_id}-{branch_id}"
        self._graph.add_operator(
            id=operator_id,
            kind="collect_branch",
            name=f"collect:{collection_name}",
            listen_signals=self._signals,
            emit_signals=[make_signal("event", collect_trigger, role="continuation")],
            options={
                "collection_name": collection_name,
                "collect_id": collect_id,
                "branch_id": branch_id,
                "branch_ids": list(config["branch_ids"]),
                "mode": mode,
            },
            **self._group_fields(),
        )
        if operator_id not in config["operator_ids"]:
            config["operator_ids"].append(operator_id)
        # Every branch of one collection knows all branch ids: update the live records.
        operators = self._graph.operators
        for other in config["operator_ids"]:
            operators[other]["options"]["branch_ids"] = list(config["branch_ids"])
        self._graph.touch()
        return self._new(collect_trigger, group_id=Keep, group_kind=Keep)

    def to_sub_flow(
        self,
        trigger_flow: FlowBuilder,
        *,
        side_branch: bool = False,
        name: str | None = None,
        capture: Mapping[str, Any] | None = None,
        write_back: Mapping[str, Any] | None = None,
        concurrency: int | None = None,
    ) -> Self:
        """Run ``trigger_flow`` as an isolated child execution (a Temporal child workflow).

        ``capture`` and ``write_back`` take Agently's specs (definition/sub_flow_bindings.py):
        ``None`` for the default, or ``{scope: "source.path" | {"target.path":
        "source.path"}}``.
        """
        if not isinstance(trigger_flow, GraphOwner):
            raise FlowDefinitionError(
                f"to_sub_flow() needs a TriggerFlow, got {type(trigger_flow).__name__}."
            )
        if trigger_flow is self._flow:
            raise FlowDefinitionError(f"Flow '{self._flow.name}' cannot run itself as a sub-flow.")
        check_concurrency("to_sub_flow", concurrency)
        capture_spec = compile_spec(capture, mode="capture")
        write_back_spec = compile_spec(write_back, mode="write_back")
        op_name = name or trigger_flow.name
        sub_id = digest(
            {
                "kind": "sub_flow",
                "name": op_name,
                "flow": trigger_flow.name,
                "listen_signals": self._signals,
                "capture": capture_spec,
                "write_back": write_back_spec,
            }
        )
        result_event = f"SubFlow-{sub_id}-Result"
        self._graph.add_sub_flow(trigger_flow)
        self._graph.add_operator(
            id=f"sub-flow-{sub_id}",
            kind="sub_flow",
            name=op_name,
            listen_signals=self._signals,
            emit_signals=[make_signal("event", result_event, role="continuation")],
            options={
                "sub_flow_name": trigger_flow.name,
                "capture": capture_spec,
                "write_back": write_back_spec,
                "concurrency": concurrency,
            },
            **self._group_fields(),
        )
        if side_branch:
            return self._same_position()
        return self._new(result_event, group_id=Keep, group_kind=Keep)

    def intervention_point(self, *, name: str, target: str | None = None) -> Self:
        """Insert pending interventions addressed to ``target``, then pass the value on."""
        if not isinstance(name, str) or not name:
            raise FlowDefinitionError("TriggerFlow intervention_point() requires a non-empty name.")
        point_id = "intervention-point-" + digest({"kind": "intervention_point", "name": name})
        trigger = f"InterventionPoint[{name}]-{point_id}"
        self._graph.add_operator(
            id=point_id,
            kind="intervention_point",
            name=name,
            listen_signals=self._signals,
            emit_signals=[make_signal("event", trigger, role="continuation")],
            options={"target": str(target) if target is not None else None},
            **self._group_fields(),
        )
        return self._new(trigger, group_id=Keep, group_kind=Keep)

    def end(self) -> Self:
        """Deprecated result sink: the first value reaching it becomes ``$final_result``."""
        sink_id = "result-" + digest(
            {"kind": "result_sink", "listen_signals": self._signals, "group_id": self._group_id}
        )
        self._graph.add_operator(
            id=sink_id,
            kind="result_sink",
            name="result",
            listen_signals=self._signals,
            emit_signals=[],
            options={},
            **self._group_fields(),
        )
        return self

    def ____(self, *annotations: Any, **_: Any) -> Self:
        """Visual separator for long chains; does nothing."""
        return self
