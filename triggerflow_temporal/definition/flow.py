"""The TriggerFlow definition API: flow, chunks, processes and name registries.

Pure Python with no Temporal import. The builder keeps Agently's names and semantics
(``to``, ``batch``, ``for_each``, ``match``, ``when``, ``collect``, ...) and records the
graph the way Agently's ``trigger_flow/v1`` config does: a list of operators, each
listening to signals and emitting signals. Ids are derived from structure and handler
*names* only, so a definition built twice, or moved to another file, is the same graph.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .._errors import FlowDefinitionError

if TYPE_CHECKING:
    from ..client.execution import TriggerFlowExecution

TriggerType = Literal["event", "runtime_data", "flow_data"]
ExecuteIn = Literal["activity", "local_activity", "workflow"]
EXECUTE_IN_VALUES: tuple[str, ...] = ("activity", "local_activity", "workflow")

# Keys of temporalio.workflow.ActivityConfig that make sense per chunk.
ACTIVITY_CONFIG_KEYS = frozenset(
    {
        "task_queue",
        "schedule_to_close_timeout",
        "schedule_to_start_timeout",
        "start_to_close_timeout",
        "heartbeat_timeout",
        "retry_policy",
        "cancellation_type",
        "summary",
        "priority",
    }
)


def digest(identity: Any, length: int = 16) -> str:
    """Return a short, stable hex digest of a JSON-ready identity."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def make_signal(trigger_type: str, trigger_event: str, role: str | None = None) -> dict[str, Any]:
    """Return a definition signal record in Agently's flow-config shape."""
    signal: dict[str, Any] = {
        "id": f"{trigger_type}:{trigger_event}",
        "trigger_type": trigger_type,
        "trigger_event": trigger_event,
    }
    if role is not None:
        signal["role"] = role
    return signal


def _callable_name(fn: Callable[..., Any]) -> str | None:
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else None


def _callable_origin(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{qualname}"


def _same_callable(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    if a is b:
        return True
    # Re-running module-level wiring (e.g. an importlib.reload) yields new function
    # objects with the same code location; treat them as the same handler.
    return (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
        and "<locals>" not in (getattr(a, "__qualname__", "") or "")
        and "<lambda>" not in (getattr(a, "__qualname__", "") or "")
    )


class TriggerFlowChunk:
    """A named handler node of a flow graph.

    Its return value is emitted on its continuation event (``trigger``) and becomes the
    next chunk's ``data.input``.

    Attributes:
        name: The chunk name; also the activity name suffix (``"<flow>.<name>"``).
        id: ``"chunk-" + digest(name)``; stable across builds and files.
        trigger: The continuation event name, ``"Chunk[<name>]-<id>"``.
        execute_in: ``"activity"`` (default), ``"local_activity"`` or ``"workflow"``.
        activity_config: Per-chunk ``temporalio.workflow.ActivityConfig`` values.
    """

    def __init__(
        self,
        handler: Callable[..., Any],
        *,
        name: str,
        execute_in: ExecuteIn = "activity",
        activity_config: Mapping[str, Any] | None = None,
        anonymous: bool = False,
    ) -> None:
        self.name = name
        self.handler = handler
        self.anonymous = anonymous
        identity: dict[str, Any] = {"kind": "chunk", "name": name}
        if anonymous:
            identity["anonymous"] = uuid.uuid4().hex
        self.id = "chunk-" + digest(identity)
        self.trigger = f"Chunk[{name}]-{self.id}"
        self.execute_in: ExecuteIn = execute_in
        self.activity_config: dict[str, Any] = dict(activity_config or {})
        self.declared_emits: list[str] = []
        _validate_chunk_options(name, execute_in, self.activity_config)

    def declare_emits(self, *events: str) -> TriggerFlowChunk:
        """Document extra events this chunk emits (Mermaid and flow config only)."""
        for event in events:
            if not isinstance(event, str):
                raise TypeError(
                    f"TriggerFlowChunk.declare_emits() only accepts string event names, got: "
                    f"{type(event)}"
                )
            if event not in self.declared_emits:
                self.declared_emits.append(event)
        return self

    def options(
        self, *, execute_in: ExecuteIn | None = None, **activity_config: Any
    ) -> TriggerFlowChunk:
        """Change where and how this chunk runs; returns the chunk.

        Args:
            execute_in: ``"activity"``, ``"local_activity"`` or ``"workflow"``.
            **activity_config: Keys of ``temporalio.workflow.ActivityConfig``.
        """
        merged = {**self.activity_config, **activity_config}
        new_execute_in = execute_in or self.execute_in
        _validate_chunk_options(self.name, new_execute_in, merged)
        self.execute_in = new_execute_in
        self.activity_config = merged
        return self

    async def async_call(self, data: Any) -> Any:
        """Call the handler directly (sync or async), as Agently's chunk does."""
        result = self.handler(data)
        if hasattr(result, "__await__"):
            result = await result
        return result

    def __repr__(self) -> str:
        return f"TriggerFlowChunk(name={self.name!r}, execute_in={self.execute_in!r})"


def _validate_chunk_options(name: str, execute_in: str, activity_config: Mapping[str, Any]) -> None:
    if execute_in not in EXECUTE_IN_VALUES:
        raise FlowDefinitionError(
            f"Chunk '{name}' has execute_in={execute_in!r}. Set it to 'activity', "
            "'local_activity' or 'workflow'."
        )
    unknown = sorted(set(activity_config) - ACTIVITY_CONFIG_KEYS)
    if unknown:
        raise FlowDefinitionError(
            f"Chunk '{name}' got unknown activity option(s) {unknown}. Allowed keys are the "
            "per-activity keys of temporalio.workflow.ActivityConfig: "
            f"{sorted(ACTIVITY_CONFIG_KEYS)}."
        )


class _Block:
    """Builder scope: the root of a chain or a for_each/match body."""

    def __init__(self, outer: _Block | None = None, data: dict[str, Any] | None = None) -> None:
        self.outer = outer
        self.data: dict[str, Any] = data if data is not None else {}

    def root(self) -> _Block:
        block = self
        while block.outer is not None:
            block = block.outer
        return block


class TriggerFlowProcess:
    """An immutable builder position: "the trigger the next operator listens to".

    Calling builder methods on the same process more than once branches the graph.
    """

    def __init__(
        self,
        *,
        flow: TriggerFlow,
        trigger_event: str,
        block: _Block,
        trigger_type: TriggerType = "event",
        signals: list[dict[str, Any]] | None = None,
        group_id: str | None = None,
        group_kind: str | None = None,
    ) -> None:
        self._flow = flow
        self.trigger_event = trigger_event
        self.trigger_type: TriggerType = trigger_type
        self._block = block
        self._signals = (
            copy.deepcopy(signals)
            if signals is not None
            else [make_signal(trigger_type, trigger_event)]
        )
        self._group_id = group_id
        self._group_kind = group_kind

    # ----------------------------------------------------------------- helpers
    def _new(
        self,
        trigger_event: str,
        *,
        block: _Block | None = None,
        trigger_type: TriggerType = "event",
        signals: list[dict[str, Any]] | None = None,
        group_id: str | None | type[_Keep] = None,
        group_kind: str | None | type[_Keep] = None,
    ) -> TriggerFlowProcess:
        return TriggerFlowProcess(
            flow=self._flow,
            trigger_event=trigger_event,
            trigger_type=trigger_type,
            block=block if block is not None else self._block,
            signals=signals,
            group_id=self._group_id if group_id is _Keep else group_id,  # type: ignore[arg-type]
            group_kind=self._group_kind if group_kind is _Keep else group_kind,  # type: ignore[arg-type]
        )

    def _parent_group(self) -> tuple[str | None, str | None]:
        if self._group_id is None:
            return None, None
        return (
            self._block.data.get("outer_group_id"),
            self._block.data.get("outer_group_kind"),
        )

    def _group_fields(self) -> dict[str, Any]:
        parent_id, parent_kind = self._parent_group()
        return {
            "group_id": self._group_id,
            "group_kind": self._group_kind,
            "parent_group_id": parent_id,
            "parent_group_kind": parent_kind,
        }

    def _resolve_trigger(self, trigger: Any) -> str:
        if isinstance(trigger, TriggerFlowChunk):
            return trigger.trigger
        if isinstance(trigger, str) and trigger in self._flow._chunks:
            return self._flow._chunks[trigger].trigger
        if not isinstance(trigger, str):
            raise TypeError(
                f"when() trigger must be an event name, a chunk or a chunk name, got {trigger!r}"
            )
        return trigger

    # --------------------------------------------------------------- operators
    def to(
        self,
        chunk: Any,
        side_branch: bool = False,
        name: str | None = None,
        **sub_flow_options: Any,
    ) -> TriggerFlowProcess:
        """Attach a chunk (callable, chunk object, chunk name, ``(name, fn)`` or flow)."""
        if isinstance(chunk, TriggerFlow):
            return self.to_sub_flow(chunk, side_branch=side_branch, name=name, **sub_flow_options)
        if sub_flow_options:
            raise TypeError(
                f"to() got unexpected keyword argument(s) {sorted(sub_flow_options)}; "
                "capture/write_back/concurrency only apply to sub-flows."
            )
        typed = self._flow._resolve_chunk(chunk, name=name)
        self._flow._attach_chunk(typed, self._signals, **self._group_fields())
        if side_branch:
            return self._new(
                self.trigger_event,
                trigger_type=self.trigger_type,
                signals=self._signals,
                group_id=_Keep,
                group_kind=_Keep,
            )
        return self._new(typed.trigger, group_id=_Keep, group_kind=_Keep)

    def side_branch(self, chunk: Any, *, name: str | None = None) -> TriggerFlowProcess:
        """Run ``chunk`` on the current trigger; the chain keeps the old trigger."""
        return self.to(chunk, side_branch=True, name=name)

    def batch(
        self,
        *chunks: Any,
        side_branch: bool = False,
        concurrency: int | None = None,
    ) -> TriggerFlowProcess:
        """Fan the same input out to every chunk; the next step gets ``{name: result}``."""
        if not chunks:
            raise FlowDefinitionError("batch() needs at least one chunk.")
        _check_concurrency("batch", concurrency)
        typed_chunks = [self._flow._resolve_chunk(chunk) for chunk in chunks]
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
        for typed in typed_chunks:
            input_signal = make_signal("event", f"Batch-{batch_id}-Input-{typed.id}")
            output_signal = make_signal("event", typed.trigger)
            inputs.append(input_signal)
            outputs.append(output_signal)
            result_keys[output_signal["id"]] = typed.name
            self._flow._attach_chunk(
                typed,
                [input_signal],
                group_id=batch_id,
                group_kind="batch",
                parent_group_id=self._group_id,
                parent_group_kind=self._group_kind,
            )
        group = {
            "group_id": batch_id,
            "group_kind": "batch",
            "parent_group_id": self._group_id,
            "parent_group_kind": self._group_kind,
        }
        self._flow._add_operator(
            id=f"batch-fanout-{batch_id}",
            kind="batch_fanout",
            name=f"batch:{batch_id}",
            listen_signals=self._signals,
            emit_signals=inputs,
            options={"concurrency": concurrency},
            **group,
        )
        self._flow._add_operator(
            id=f"batch-collect-{batch_id}",
            kind="batch_collect",
            name=f"batch_collect:{batch_id}",
            listen_signals=outputs,
            emit_signals=[make_signal("event", batch_trigger, role="continuation")],
            options={"result_keys": result_keys},
            **group,
        )
        if side_branch:
            return self._new(
                self.trigger_event,
                trigger_type=self.trigger_type,
                signals=self._signals,
                group_id=_Keep,
                group_kind=_Keep,
            )
        return self._new(batch_trigger, group_id=_Keep, group_kind=_Keep)

    def for_each(self, *, concurrency: int | None = None) -> TriggerFlowProcess:
        """Run the following chain once per item of a (non-``str``) sequence input."""
        _check_concurrency("for_each", concurrency)
        for_each_id = digest(
            {
                "kind": "for_each",
                "listen_signals": self._signals,
                "concurrency": concurrency,
                "parent_group_id": self._group_id,
            }
        )
        send = f"ForEach-{for_each_id}-Send"
        end = f"ForEach-{for_each_id}-End"
        self._flow._add_operator(
            id=f"for_each-split-{for_each_id}",
            kind="for_each_split",
            name=f"for_each:{for_each_id}",
            listen_signals=self._signals,
            emit_signals=[
                make_signal("event", send, role="continuation"),
                make_signal("event", end, role="continuation"),
            ],
            options={"concurrency": concurrency},
            group_id=for_each_id,
            group_kind="for_each",
            parent_group_id=self._group_id,
            parent_group_kind=self._group_kind,
        )
        block = _Block(
            outer=self._block,
            data={
                "for_each_id": for_each_id,
                "outer_group_id": self._group_id,
                "outer_group_kind": self._group_kind,
            },
        )
        return self._new(send, block=block, group_id=for_each_id, group_kind="for_each")

    def end_for_each(self) -> TriggerFlowProcess:
        """Close the ``for_each`` body; the next step gets the results in input order."""
        if "for_each_id" not in self._block.data:
            raise FlowDefinitionError("Cannot use .end_for_each() without .for_each().")
        for_each_id = self._block.data["for_each_id"]
        end = f"ForEach-{for_each_id}-End"
        outer_id = self._block.data.get("outer_group_id")
        outer_kind = self._block.data.get("outer_group_kind")
        self._flow._add_operator(
            id=f"for_each-collect-{for_each_id}",
            kind="for_each_collect",
            name=f"for_each_collect:{for_each_id}",
            listen_signals=self._signals,
            emit_signals=[make_signal("event", end, role="continuation")],
            options={"for_each_id": for_each_id},
            group_id=for_each_id,
            group_kind="for_each",
            parent_group_id=outer_id,
            parent_group_kind=outer_kind,
        )
        return self._new(
            end,
            block=self._block.outer or _Block(),
            group_id=outer_id,
            group_kind=outer_kind,
        )

    def match(self, *, mode: Literal["hit_first", "hit_all"] = "hit_first") -> TriggerFlowProcess:
        """Open a match block: add branches with ``case``/``case_else``, then ``end_match``."""
        if mode not in ("hit_first", "hit_all"):
            raise FlowDefinitionError(
                f"match(mode={mode!r}) is not supported; use 'hit_first' or 'hit_all'."
            )
        match_id = digest(
            {
                "kind": "match",
                "mode": mode,
                "listen_signals": self._signals,
                "parent_group_id": self._group_id,
            }
        )
        result_signal = make_signal("event", f"Match-{match_id}-Result", role="continuation")
        route_id = f"match-route-{match_id}"
        block = _Block(
            outer=self._block,
            data={
                "match_id": match_id,
                "route_id": route_id,
                "branch_ends": [],
                "is_first_case": True,
                "has_else": False,
                "result_signal": result_signal,
                "outer_group_id": self._group_id,
                "outer_group_kind": self._group_kind,
            },
        )
        existing = self._flow._operators.get(route_id)
        if existing is None:
            self._flow._add_operator(
                id=route_id,
                kind="match_route",
                name=f"match:{match_id}",
                listen_signals=self._signals,
                emit_signals=[result_signal],
                options={"mode": mode, "cases": [], "else_signal": None},
                group_id=match_id,
                group_kind="match",
                parent_group_id=self._group_id,
                parent_group_kind=self._group_kind,
            )
        return self._new(
            self.trigger_event,
            block=block,
            trigger_type=self.trigger_type,
            signals=self._signals,
            group_id=match_id,
            group_kind="match",
        )

    def _close_branch(self, match_id: str) -> None:
        if not self.trigger_event.startswith(f"Match-{match_id}"):
            self._block.data["branch_ends"].extend(copy.deepcopy(self._signals))

    def case(self, condition: Any) -> TriggerFlowProcess:
        """Add a branch taken when ``condition(data) is True`` or ``data.value == condition``."""
        if "match_id" not in self._block.data:
            raise FlowDefinitionError("Cannot use .case() before .match().")
        match_id = self._block.data["match_id"]
        condition_ref: dict[str, Any] | None = None
        condition_value: Any = None
        if callable(condition):
            condition_name = self._flow._register_condition(condition)
            condition_ref = {"kind": "registered", "name": condition_name}
        else:
            try:
                json.dumps(condition)
            except TypeError as error:
                raise FlowDefinitionError(
                    f"case({condition!r}): a value condition must be JSON-serialisable so the "
                    "flow can be exported and compared in the workflow; use a named condition "
                    "function instead."
                ) from error
            condition_value = condition
        case_id = digest(
            {
                "kind": "match_case",
                "match_id": match_id,
                "condition_ref": condition_ref,
                "condition_value": condition_value,
            }
        )
        if self._block.data["is_first_case"]:
            self._block.data["is_first_case"] = False
        else:
            self._close_branch(match_id)
        case_trigger = f"Match-{match_id}-Case-{case_id}"
        route = self._flow._operators[self._block.data["route_id"]]
        case_config = {
            "case_id": case_id,
            "route_signal": make_signal("event", case_trigger),
            "condition_ref": condition_ref,
            "condition_value": condition_value,
            "is_else": False,
        }
        if not any(c["case_id"] == case_id for c in route["options"]["cases"]):
            route["options"]["cases"].append(case_config)
            route["emit_signals"].append(make_signal("event", case_trigger))
        self._flow._add_operator(
            id=f"match-case-{case_id}",
            kind="match_case",
            name=f"case:{case_id}",
            listen_signals=[make_signal("event", case_trigger)],
            emit_signals=[make_signal("event", f"{case_trigger}-Branch", role="continuation")],
            condition_ref=condition_ref,
            options={"condition_value": condition_value} if condition_ref is None else {},
            group_id=match_id,
            group_kind="match",
            parent_group_id=self._block.data.get("outer_group_id"),
            parent_group_kind=self._block.data.get("outer_group_kind"),
        )
        return self._new(case_trigger, group_id=match_id, group_kind="match")

    def case_else(self) -> TriggerFlowProcess:
        """Add the branch taken when no case matched."""
        if "match_id" not in self._block.data:
            raise FlowDefinitionError("Cannot use .case_else() before .match().")
        if self._block.data["is_first_case"]:
            raise FlowDefinitionError("Cannot use .case_else() before any .case().")
        match_id = self._block.data["match_id"]
        self._block.data["has_else"] = True
        self._close_branch(match_id)
        else_trigger = f"Match-{match_id}-Else"
        route = self._flow._operators[self._block.data["route_id"]]
        if route["options"].get("else_signal") is None:
            route["options"]["else_signal"] = make_signal("event", else_trigger)
            route["emit_signals"].append(make_signal("event", else_trigger))
        self._flow._add_operator(
            id=f"match-else-{match_id}",
            kind="match_case",
            name=f"else:{match_id}",
            listen_signals=[make_signal("event", else_trigger)],
            emit_signals=[make_signal("event", f"{else_trigger}-Branch", role="continuation")],
            options={"is_else": True},
            group_id=match_id,
            group_kind="match",
            parent_group_id=self._block.data.get("outer_group_id"),
            parent_group_kind=self._block.data.get("outer_group_kind"),
        )
        return self._new(else_trigger, group_id=match_id, group_kind="match")

    def end_match(self) -> TriggerFlowProcess:
        """Close the match block; the next step gets the branch result (or results)."""
        if "match_id" not in self._block.data:
            raise FlowDefinitionError("Cannot use .end_match() before .match().")
        match_id = self._block.data["match_id"]
        self._close_branch(match_id)
        outer_id = self._block.data.get("outer_group_id")
        outer_kind = self._block.data.get("outer_group_kind")
        collect_id = f"match-collect-{match_id}"
        ends = self._block.data["branch_ends"]
        existing = self._flow._operators.get(collect_id)
        if existing is None:
            self._flow._add_operator(
                id=collect_id,
                kind="match_collect",
                name=f"match_result:{match_id}",
                listen_signals=ends,
                emit_signals=[self._block.data["result_signal"]],
                options={"match_id": match_id},
                group_id=match_id,
                group_kind="match",
                parent_group_id=outer_id,
                parent_group_kind=outer_kind,
            )
        else:
            _merge_signals(existing["listen_signals"], ends)
        return self._new(
            f"Match-{match_id}-Result",
            block=self._block.outer or _Block(),
            group_id=outer_id,
            group_kind=outer_kind,
        )

    def if_condition(self, condition: Any) -> TriggerFlowProcess:
        """Alias of ``match().case(condition)``."""
        return self.match().case(condition)

    def elif_condition(self, condition: Any) -> TriggerFlowProcess:
        """Alias of ``case(condition)``."""
        return self.case(condition)

    def else_condition(self) -> TriggerFlowProcess:
        """Alias of ``case_else()``."""
        return self.case_else()

    def end_condition(self) -> TriggerFlowProcess:
        """Alias of ``end_match()``."""
        return self.end_match()

    def when(
        self, trigger: Any, *, mode: Literal["and", "or", "simple_or"] = "and"
    ) -> TriggerFlowProcess:
        """Start a new root chain on an event, a chunk's completion, or a join of several."""
        if mode not in ("and", "or", "simple_or"):
            raise FlowDefinitionError(
                f"when(mode={mode!r}) is not supported; use 'and', 'or' or 'simple_or'."
            )
        if isinstance(trigger, (TriggerFlowChunk, str)):
            event = self._resolve_trigger(trigger)
            return self._flow._root_process(make_signal("event", event))
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
            return self._flow._root_process(signals[0])
        when_id = digest(
            {"kind": "when", "mode": mode, "signals": sorted(s["id"] for s in signals)}
        )
        when_trigger = f"When-{when_id}"
        self._flow._add_operator(
            id=f"when-{when_id}",
            kind="signal_gate",
            name=f"when:{when_id}",
            listen_signals=signals,
            emit_signals=[make_signal("event", when_trigger, role="continuation")],
            options={"mode": mode},
        )
        return self._flow._root_process(make_signal("event", when_trigger))

    def collect(
        self,
        collection_name: str,
        branch_id: str | None = None,
        *,
        mode: Literal["filled_and_update", "filled_then_empty"] = "filled_and_update",
    ) -> TriggerFlowProcess:
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
        self._flow._add_operator(
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
        for other in config["operator_ids"]:
            self._flow._operators[other]["options"]["branch_ids"] = list(config["branch_ids"])
        return self._new(collect_trigger, group_id=_Keep, group_kind=_Keep)

    def to_sub_flow(
        self,
        trigger_flow: TriggerFlow,
        *,
        side_branch: bool = False,
        name: str | None = None,
        capture: Mapping[str, Any] | None = None,
        write_back: Mapping[str, Any] | None = None,
        concurrency: int | None = None,
    ) -> TriggerFlowProcess:
        """Run ``trigger_flow`` as an isolated child execution (a Temporal child workflow)."""
        if not isinstance(trigger_flow, TriggerFlow):
            raise FlowDefinitionError(
                f"to_sub_flow() needs a TriggerFlow, got {type(trigger_flow).__name__}."
            )
        if trigger_flow is self._flow:
            raise FlowDefinitionError(f"Flow '{self._flow.name}' cannot run itself as a sub-flow.")
        _check_concurrency("to_sub_flow", concurrency)
        capture_spec = dict(capture) if capture is not None else {"input": "value"}
        write_back_spec = dict(write_back) if write_back is not None else {"value": "result"}
        _validate_mapping_spec("capture", capture_spec, trigger_flow.name)
        _validate_mapping_spec("write_back", write_back_spec, trigger_flow.name)
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
        self._flow._sub_flows[trigger_flow.name] = trigger_flow
        self._flow._add_operator(
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
            return self._new(
                self.trigger_event,
                trigger_type=self.trigger_type,
                signals=self._signals,
                group_id=_Keep,
                group_kind=_Keep,
            )
        return self._new(result_event, group_id=_Keep, group_kind=_Keep)

    def intervention_point(self, *, name: str, target: str | None = None) -> TriggerFlowProcess:
        """Insert pending interventions addressed to ``target``, then pass the value on."""
        if not isinstance(name, str) or not name:
            raise FlowDefinitionError("TriggerFlow intervention_point() requires a non-empty name.")
        point_id = "intervention-point-" + digest({"kind": "intervention_point", "name": name})
        trigger = f"InterventionPoint[{name}]-{point_id}"
        self._flow._add_operator(
            id=point_id,
            kind="intervention_point",
            name=name,
            listen_signals=self._signals,
            emit_signals=[make_signal("event", trigger, role="continuation")],
            options={"target": str(target) if target is not None else None},
            **self._group_fields(),
        )
        return self._new(trigger, group_id=_Keep, group_kind=_Keep)

    def end(self) -> TriggerFlowProcess:
        """Deprecated result sink: the first value reaching it becomes ``$final_result``."""
        sink_id = "result-" + digest(
            {"kind": "result_sink", "listen_signals": self._signals, "group_id": self._group_id}
        )
        self._flow._add_operator(
            id=sink_id,
            kind="result_sink",
            name="result",
            listen_signals=self._signals,
            emit_signals=[],
            options={},
            **self._group_fields(),
        )
        return self

    def ____(self, *annotations: Any, **_: Any) -> TriggerFlowProcess:
        """Visual separator for long chains; does nothing."""
        return self


class _Keep:
    """Sentinel: keep the current process's group."""


def _merge_signals(target: list[dict[str, Any]], extra: list[dict[str, Any]]) -> None:
    seen = {signal["id"] for signal in target}
    for signal in extra:
        if signal["id"] not in seen:
            target.append(copy.deepcopy(signal))
            seen.add(signal["id"])


def _check_concurrency(operator: str, concurrency: int | None) -> None:
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0
    ):
        raise FlowDefinitionError(
            f"{operator}(concurrency={concurrency!r}) must be None or a non-negative int."
        )


_CAPTURE_SOURCES = ("value", "runtime_data", "flow_data", "resources")
_WRITE_BACK_TARGETS = ("value", "runtime_data", "flow_data")


def _validate_mapping_spec(kind: str, spec: Mapping[str, Any], child: str) -> None:
    for target, source in spec.items():
        if not isinstance(target, str) or not isinstance(source, str):
            raise FlowDefinitionError(
                f"to_sub_flow({child!r}) {kind} must map strings to strings, got "
                f"{target!r}: {source!r}."
            )
        if kind == "capture":
            head = source.split(".", 1)[0]
            if head not in _CAPTURE_SOURCES:
                raise FlowDefinitionError(
                    f"to_sub_flow({child!r}) capture source {source!r} must start with one of "
                    f"{list(_CAPTURE_SOURCES)}."
                )
        else:
            head = target.split(".", 1)[0]
            if head not in _WRITE_BACK_TARGETS or not source.split(".", 1)[0] == "result":
                raise FlowDefinitionError(
                    f"to_sub_flow({child!r}) write_back {target!r}: {source!r} must map "
                    f"{list(_WRITE_BACK_TARGETS)} targets to 'result[.path]'."
                )


class TriggerFlow:
    """A TriggerFlow definition: chunks joined by ``to``/``batch``/``for_each``/... .

    The flow runs on Temporal through :class:`TriggerFlowPlugin`; building it needs no
    Temporal at all.

    Args:
        blueprint: Unsupported positional slot kept for Agently compatibility; use
            :meth:`load_blueprint` instead.
        name: The flow name; also the Temporal workflow type. Defaults to a uuid hex, as
            natively, but a worker and a client only meet on a stable name: set it.
        skip_exceptions: When True a chunk error is recorded and its branch stops, but the
            execution goes on and ends ``completed``.
    """

    def __init__(
        self,
        blueprint: Any = None,
        name: str | None = None,
        skip_exceptions: bool = False,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise FlowDefinitionError(f"TriggerFlow name must be a non-empty string, got {name!r}.")
        self.name: str = name if name is not None else uuid.uuid4().hex
        self.skip_exceptions = skip_exceptions
        self._operators: dict[str, dict[str, Any]] = {}
        self._chunks: dict[str, TriggerFlowChunk] = {}
        self._chunk_registry: dict[str, Callable[..., Any]] = {}
        self._condition_registry: dict[str, Callable[..., Any]] = {}
        self._sub_flows: dict[str, TriggerFlow] = {}
        self._runtime_resources: dict[str, Any] = {}
        self._flow_data: dict[str, Any] = {}
        self._root_counts: dict[str, int] = {}
        self._meta: dict[str, Any] = {}
        self._plugin: Any = None
        self._start = self._root_process(make_signal("event", "START"))
        if blueprint is not None:
            self.load_blueprint(blueprint)

    # ------------------------------------------------------------ registries
    def chunk(
        self,
        handler_or_name: Callable[..., Any] | str | None = None,
        *,
        name: str | None = None,
        execute_in: ExecuteIn = "activity",
        **activity_config: Any,
    ) -> Any:
        """Create (and register) a chunk; usable as ``@flow.chunk`` or ``@flow.chunk("x")``.

        Args:
            handler_or_name: The handler, or the chunk name when used as a decorator factory.
            name: Explicit chunk name (defaults to the handler's ``__name__``).
            execute_in: ``"activity"`` (default), ``"local_activity"`` or ``"workflow"``.
            **activity_config: Per-chunk ``temporalio.workflow.ActivityConfig`` keys
                (``start_to_close_timeout``, ``retry_policy``, ``summary``, ...).

        Returns:
            The :class:`TriggerFlowChunk`, or a decorator returning it.
        """
        if callable(handler_or_name):
            return self._make_chunk(
                handler_or_name, name=name, execute_in=execute_in, activity_config=activity_config
            )
        explicit = handler_or_name if isinstance(handler_or_name, str) else name

        def decorator(handler: Callable[..., Any]) -> TriggerFlowChunk:
            return self._make_chunk(
                handler, name=explicit, execute_in=execute_in, activity_config=activity_config
            )

        return decorator

    def _make_chunk(
        self,
        handler: Callable[..., Any],
        *,
        name: str | None,
        execute_in: ExecuteIn = "activity",
        activity_config: Mapping[str, Any] | None = None,
    ) -> TriggerFlowChunk:
        if isinstance(handler, TriggerFlowChunk):
            return handler
        if not callable(handler):
            raise FlowDefinitionError(f"A chunk handler must be callable, got {handler!r}.")
        chunk_name = name if name is not None else _callable_name(handler)
        anonymous = False
        if chunk_name is None or chunk_name == "<lambda>":
            # Kept runnable in the builder (as natively) but rejected by the compiler.
            chunk_name = chunk_name or "<anonymous>"
            anonymous = True
        existing = self._chunks.get(chunk_name)
        if existing is not None and not anonymous:
            if not _same_callable(existing.handler, handler):
                raise FlowDefinitionError(
                    f"Flow '{self.name}': chunk name '{chunk_name}' is already bound to "
                    f"{_callable_origin(existing.handler)}, and {_callable_origin(handler)} "
                    f"has the same name. Chunk names are activity names, so they must be "
                    f"unique: give one an explicit name, e.g. flow.to(fn, name='{chunk_name}_2') "
                    f"or @flow.chunk('{chunk_name}_2')."
                )
            if activity_config or execute_in != "activity":
                existing.options(execute_in=execute_in, **dict(activity_config or {}))
            return existing
        chunk = TriggerFlowChunk(
            handler,
            name=chunk_name,
            execute_in=execute_in,
            activity_config=activity_config,
            anonymous=anonymous,
        )
        if anonymous:
            self._chunks[f"{chunk_name}#{chunk.id}"] = chunk
        else:
            self._chunks[chunk_name] = chunk
        return chunk

    def _resolve_chunk(self, chunk: Any, *, name: str | None = None) -> TriggerFlowChunk:
        if isinstance(chunk, TriggerFlowChunk):
            if chunk.name in self._chunks and self._chunks[chunk.name] is not chunk:
                return self._make_chunk(chunk.handler, name=chunk.name)
            self._chunks.setdefault(chunk.name, chunk)
            return chunk
        if isinstance(chunk, str):
            if chunk in self._chunks:
                return self._chunks[chunk]
            if chunk in self._chunk_registry:
                return self._make_chunk(self._chunk_registry[chunk], name=chunk)
            raise FlowDefinitionError(
                f"Flow '{self.name}' has no chunk named '{chunk}'. Known chunks: "
                f"{sorted(k for k in self._chunks if '#' not in k)}."
            )
        if isinstance(chunk, tuple):
            if len(chunk) != 2 or not isinstance(chunk[0], str) or not callable(chunk[1]):
                raise FlowDefinitionError(
                    f"A chunk tuple must be ('name', handler), got {chunk!r}."
                )
            return self._make_chunk(chunk[1], name=chunk[0])
        if callable(chunk):
            return self._make_chunk(chunk, name=name)
        raise FlowDefinitionError(
            f"Flow '{self.name}': cannot use {chunk!r} as a chunk; pass a function, a chunk, a "
            "chunk name or a ('name', function) tuple."
        )

    def register_chunk_handler(
        self, handler: Callable[..., Any], *, name: str | None = None
    ) -> Callable[..., Any]:
        """Register a handler under a name, for :meth:`load_flow_config`."""
        return self._register(self._chunk_registry, "chunk", handler, name)

    def register_condition_handler(
        self, handler: Callable[..., Any], *, name: str | None = None
    ) -> Callable[..., Any]:
        """Register a condition under a name, for :meth:`load_flow_config`."""
        return self._register(self._condition_registry, "condition", handler, name)

    def _register(
        self,
        registry: dict[str, Callable[..., Any]],
        kind: str,
        handler: Callable[..., Any],
        name: str | None,
    ) -> Callable[..., Any]:
        if not callable(handler):
            raise FlowDefinitionError(f"A {kind} handler must be callable, got {handler!r}.")
        key = name or _callable_name(handler)
        if not key or key == "<lambda>":
            raise FlowDefinitionError(
                f"Cannot register a {kind} handler without a name ({handler!r}); pass name=."
            )
        existing = registry.get(key)
        if existing is not None and not _same_callable(existing, handler):
            raise FlowDefinitionError(
                f"Flow '{self.name}': {kind} handler name '{key}' is already bound to "
                f"{_callable_origin(existing)}; register {_callable_origin(handler)} under "
                "another name."
            )
        registry[key] = handler
        return handler

    def _register_condition(self, condition: Callable[..., Any]) -> str:
        name = _callable_name(condition)
        if name is None or name == "<lambda>":
            # Anonymous conditions are kept under a unique key; the compiler rejects them.
            key = f"<lambda>#{uuid.uuid4().hex[:8]}"
            self._condition_registry[key] = condition
            return key
        existing = self._condition_registry.get(name)
        if existing is not None and not _same_callable(existing, condition):
            raise FlowDefinitionError(
                f"Flow '{self.name}': condition name '{name}' is already bound to "
                f"{_callable_origin(existing)}, and {_callable_origin(condition)} has the same "
                "name. Rename one of them, or register it with "
                "flow.register_condition_handler(fn, name=...) and use a distinct name."
            )
        self._condition_registry[name] = condition
        return name

    # ------------------------------------------------------------ graph store
    def _root_process(self, signal: dict[str, Any]) -> TriggerFlowProcess:
        count = self._root_counts.get(signal["id"], 0)
        self._root_counts[signal["id"]] = count + 1
        root_id = signal["id"] if count == 0 else f"{signal['id']}#{count}"
        block = _Block(data={"root_id": root_id})
        return TriggerFlowProcess(
            flow=self,
            trigger_event=signal["trigger_event"],
            trigger_type=signal["trigger_type"],
            block=block,
            signals=[signal],
        )

    def _add_operator(self, **operator: Any) -> dict[str, Any]:
        record = {
            "id": operator["id"],
            "kind": operator["kind"],
            "name": operator["name"],
            "listen_signals": copy.deepcopy(operator.get("listen_signals", [])),
            "emit_signals": copy.deepcopy(operator.get("emit_signals", [])),
            "options": copy.deepcopy(operator.get("options", {})),
            "handler_ref": operator.get("handler_ref"),
            "condition_ref": operator.get("condition_ref"),
            "group_id": operator.get("group_id"),
            "group_kind": operator.get("group_kind"),
            "parent_group_id": operator.get("parent_group_id"),
            "parent_group_kind": operator.get("parent_group_kind"),
        }
        existing = self._operators.get(record["id"])
        if existing is not None:
            # Identical wiring is idempotent; extra listen signals merge (a chunk that
            # several triggers feed).
            _merge_signals(existing["listen_signals"], record["listen_signals"])
            return existing
        self._operators[record["id"]] = record
        return record

    def _attach_chunk(
        self,
        chunk: TriggerFlowChunk,
        listen_signals: list[dict[str, Any]],
        **group: Any,
    ) -> None:
        emit = [make_signal("event", chunk.trigger, role="continuation")]
        emit.extend(make_signal("event", e, role="declared_emit") for e in chunk.declared_emits)
        self._add_operator(
            id=chunk.id,
            kind="chunk",
            name=chunk.name,
            listen_signals=listen_signals,
            emit_signals=emit,
            options={},
            handler_ref={"kind": "registered", "name": chunk.name},
            **group,
        )

    # -------------------------------------------------------- builder entries
    def to(
        self, chunk: Any, side_branch: bool = False, name: str | None = None, **kw: Any
    ) -> TriggerFlowProcess:
        """Attach a chunk to ``START``; see :meth:`TriggerFlowProcess.to`."""
        return self._start.to(chunk, side_branch=side_branch, name=name, **kw)

    def side_branch(self, chunk: Any, *, name: str | None = None) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.side_branch`."""
        return self._start.side_branch(chunk, name=name)

    def batch(
        self, *chunks: Any, side_branch: bool = False, concurrency: int | None = None
    ) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.batch`."""
        return self._start.batch(*chunks, side_branch=side_branch, concurrency=concurrency)

    def for_each(self, *, concurrency: int | None = None) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.for_each`."""
        return self._start.for_each(concurrency=concurrency)

    def match(self, *, mode: Literal["hit_first", "hit_all"] = "hit_first") -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.match`."""
        return self._start.match(mode=mode)

    def if_condition(self, condition: Any) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.if_condition`."""
        return self._start.if_condition(condition)

    def when(
        self, trigger: Any, *, mode: Literal["and", "or", "simple_or"] = "and"
    ) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.when`."""
        return self._start.when(trigger, mode=mode)

    def collect(
        self, collection_name: str, branch_id: str | None = None, **kw: Any
    ) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.collect`."""
        return self._start.collect(collection_name, branch_id, **kw)

    def to_sub_flow(self, trigger_flow: TriggerFlow, **kw: Any) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.to_sub_flow`."""
        return self._start.to_sub_flow(trigger_flow, **kw)

    def intervention_point(self, *, name: str, target: str | None = None) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.intervention_point`."""
        return self._start.intervention_point(name=name, target=target)

    def end(self) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.end`."""
        return self._start.end()

    # ------------------------------------------------------- flow-level state
    def update_runtime_resources(
        self, mapping: Mapping[str, Any] | None = None, **kw: Any
    ) -> TriggerFlow:
        """Add flow-level live objects every execution's chunks can read (worker side)."""
        self._runtime_resources.update(dict(mapping or {}), **kw)
        return self

    def set_runtime_resource(self, key: str, value: Any) -> TriggerFlow:
        """Set one flow-level runtime resource."""
        self._runtime_resources[key] = value
        return self

    def get_runtime_resource(self, key: str, default: Any = None) -> Any:
        """Return a flow-level runtime resource."""
        return self._runtime_resources.get(key, default)

    def del_runtime_resource(self, key: str) -> TriggerFlow:
        """Remove a flow-level runtime resource."""
        self._runtime_resources.pop(key, None)
        return self

    def get_flow_data(self, key: str | None = None, default: Any = None, **_: Any) -> Any:
        """Flow-scoped data shared by executions in one worker process (not durable)."""
        from ..spec.state import get_path

        return (
            copy.deepcopy(self._flow_data)
            if key is None
            else get_path(self._flow_data, key, default)
        )

    def set_flow_data(self, key: str, value: Any, **_: Any) -> None:
        """Set flow-scoped data (not durable; see :meth:`get_flow_data`)."""
        from ..spec.state import set_path

        set_path(self._flow_data, key, value)

    # ------------------------------------------------------------- compiling
    @property
    def chunks(self) -> dict[str, TriggerFlowChunk]:
        """Named chunks of this flow."""
        return {k: v for k, v in self._chunks.items() if "#" not in k}

    def compile(self) -> Any:
        """Compile to a frozen :class:`FlowSpec`; raises :class:`FlowDefinitionError`."""
        from .compile import compile_flow

        return compile_flow(self)

    @property
    def blueprint_hash(self) -> str:
        """sha256 of the canonical compiled spec (flow name left out)."""
        return self.compile().blueprint_hash

    def get_flow_config(self, *, validate_serializable: bool = True) -> dict[str, Any]:
        """Export Agently's ``trigger_flow/v1`` flow config."""
        from .flow_config import export_flow_config

        return export_flow_config(self, validate_serializable=validate_serializable)

    def get_json_flow(self, save_to: str | None = None) -> str:
        """Export the flow config as JSON text (and write it to ``save_to``)."""
        text = json.dumps(self.get_flow_config(), indent=2, ensure_ascii=False)
        if save_to:
            with open(save_to, "w", encoding="utf-8") as file:
                file.write(text)
        return text

    def get_yaml_flow(self, save_to: str | None = None) -> str:
        """Export the flow config as YAML text (and write it to ``save_to``)."""
        import yaml

        text = yaml.safe_dump(self.get_flow_config(), sort_keys=False, allow_unicode=True)
        if save_to:
            with open(save_to, "w", encoding="utf-8") as file:
                file.write(text)
        return text

    def load_flow_config(self, config: Mapping[str, Any], *, replace: bool = True) -> TriggerFlow:
        """Import a ``trigger_flow/v1`` config against this flow's name registries."""
        from .flow_config import import_flow_config

        import_flow_config(self, config, replace=replace)
        return self

    @classmethod
    def from_flow_config(
        cls,
        config: Mapping[str, Any],
        *,
        handlers: Mapping[str, Callable[..., Any]] | None = None,
        conditions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> TriggerFlow:
        """Build a new flow from a config, with handlers and conditions given by name."""
        flow = cls(name=str(config.get("name") or "flow"))
        for name, handler in (handlers or {}).items():
            flow.register_chunk_handler(handler, name=name)
        for name, condition in (conditions or {}).items():
            flow.register_condition_handler(condition, name=name)
        return flow.load_flow_config(config)

    @classmethod
    def from_agently(cls, flow: Any) -> TriggerFlow:
        """Convert a live ``agently.TriggerFlow`` (needs the ``agently`` extra).

        Returns the flow :class:`TriggerFlowPlugin` serves for that agently object (the
        same object while its graph and handlers are unchanged): create executions from it.
        Ids are re-derived from structure and handler names, so the blueprint hash equals
        the same graph built with this class.

        Raises:
            FlowDefinitionError: agently is not installed, or a chunk or condition cannot
                be served (a lambda, two functions with one name, ``__main__``).
        """
        from .agently_import import from_agently

        return from_agently(flow)

    def load_json_flow(self, path_or_text: str) -> TriggerFlow:
        """Import a JSON flow config from a path or a JSON string."""
        text = _read_text_or_path(path_or_text)
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise FlowDefinitionError(
                f"Cannot load a JSON flow config: {error} (line {error.lineno}, column "
                f"{error.colno}). Pass a path to a file or the JSON text of a trigger_flow/v1 "
                "config (flow.get_json_flow())."
            ) from None
        return self.load_flow_config(config)

    def load_yaml_flow(self, path_or_text: str) -> TriggerFlow:
        """Import a YAML flow config from a path or a YAML string."""
        import yaml

        text = _read_text_or_path(path_or_text)
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise FlowDefinitionError(
                f"Cannot load a YAML flow config: {error}. Pass a path to a file or the YAML "
                "text of a trigger_flow/v1 config (flow.get_yaml_flow())."
            ) from None
        return self.load_flow_config(config)

    def save_blueprint(self) -> TriggerFlowBlueprint:
        """Return a copy of the graph with its live handlers (not serialisable)."""
        return TriggerFlowBlueprint(self)

    def load_blueprint(self, blueprint: TriggerFlowBlueprint) -> TriggerFlow:
        """Replace this flow's graph with a saved blueprint; the flow keeps its name."""
        if not isinstance(blueprint, TriggerFlowBlueprint):
            raise FlowDefinitionError(
                f"load_blueprint() needs a TriggerFlowBlueprint from save_blueprint(), got "
                f"{type(blueprint).__name__}; for a dict use load_flow_config()."
            )
        blueprint.apply_to(self)
        return self

    def to_mermaid(self, *, mode: Literal["simplified", "detailed"] = "simplified") -> str:
        """Return a Mermaid ``flowchart TD`` diagram of the graph."""
        from .flow_config import to_mermaid

        return to_mermaid(self._operators.values(), mode=mode)

    # -------------------------------------------------------------- running
    def create_execution(self, client: Any = None, **kwargs: Any) -> TriggerFlowExecution:
        """Create a client-side handle for a new execution; see :class:`TriggerFlowExecution`."""
        from ..client.execution import TriggerFlowExecution

        return TriggerFlowExecution(self, client=client, **kwargs)

    def get_execution(
        self, client: Any = None, execution_id: str | None = None
    ) -> TriggerFlowExecution:
        """Attach to an existing execution by id, from any process."""
        from ..client.execution import TriggerFlowExecution

        if not execution_id:
            raise ValueError("get_execution() needs execution_id=.")
        return TriggerFlowExecution._attach(self, client=client, execution_id=execution_id)

    async def async_start(self, value: Any = None, *, client: Any = None, **kwargs: Any) -> Any:
        """Run a hidden execution to its close and return the close snapshot."""
        kwargs.setdefault("auto_close_timeout", 0.0)
        execution = self.create_execution(client=client, auto_close=True, hidden=True, **kwargs)
        return await execution.async_start(value)

    async def async_start_execution(
        self, value: Any = None, *, client: Any = None, **kwargs: Any
    ) -> TriggerFlowExecution:
        """Create an execution, start it and return it."""
        kwargs.setdefault("auto_close", False)
        execution = self.create_execution(client=client, **kwargs)
        await execution.async_start(value)
        return execution

    def __repr__(self) -> str:
        return f"TriggerFlow(name={self.name!r}, operators={len(self._operators)})"


class TriggerFlowBlueprint:
    """A copy of a flow's graph and live handlers (``save_blueprint()``)."""

    def __init__(self, flow: TriggerFlow) -> None:
        self.name = flow.name
        self._operators = copy.deepcopy(flow._operators)
        self.chunks = dict(flow._chunks)
        self._chunk_registry = dict(flow._chunk_registry)
        self._condition_registry = dict(flow._condition_registry)
        self._sub_flows = dict(flow._sub_flows)

    def get_flow_config(self, name: str | None = None) -> dict[str, Any]:
        """Export this blueprint as a flow config."""
        flow = TriggerFlow(name=name or self.name)
        self.apply_to(flow)
        return flow.get_flow_config()

    def apply_to(self, flow: TriggerFlow) -> None:
        """Install this blueprint's graph and handlers into ``flow``."""
        flow._operators = copy.deepcopy(self._operators)
        flow._chunks = dict(self.chunks)
        flow._chunk_registry = dict(self._chunk_registry)
        flow._condition_registry = dict(self._condition_registry)
        flow._sub_flows = dict(self._sub_flows)


def _read_text_or_path(path_or_text: str) -> str:
    import os

    if "\n" not in path_or_text and os.path.exists(path_or_text):
        with open(path_or_text, encoding="utf-8") as file:
            return file.read()
    return path_or_text
