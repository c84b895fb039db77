"""The signal net both interpreters share: routing tables, ids, join bookkeeping (no I/O).

A signal ``{id, trigger_type, trigger_event, value, layer_marks, source, meta}`` reaches
every operator listening to ``(trigger_type, trigger_event)``. Join progress (``when``
and-joins, batches, ``for_each``, ``match`` hit_all, ``collect``) lives in ``joins`` keyed
by the layer marks of the fan-out that owns it, so nested fan-outs never mix (deviation 7).

What an operator *decides* is here, as plain functions of the net's state that return the
signals to emit; how the emitted signals are run is the interpreter's business:
:class:`~._engine.Engine` (runtime versions 1-2) awaits each downstream chain inside the
upstream one, :class:`~._scheduler.Scheduler` (version 3) queues them as durable work.

Everything here is deterministic: ids come from a counter carried across continue-as-new,
iteration is over insertion-ordered dicts and lists only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import chunk_failure_details
from ..spec.flow_spec import FlowSpec
from ..spec.state import get_path

SCOPE_KEY = "_triggerflow_aggregation_scope"
PARENT_KEY = "_triggerflow_parent_signal_id"
JOIN_KINDS = ("when_states", "batch_states", "collect_states", "for_each_results", "match_results")

# In-flight cap of a for_each / batch fan-out whose flow gave no ``concurrency``: thousands
# of activities scheduled in one workflow task make every task slow (bench/RESULTS.md F4),
# and a bounded fan-out is what lets a for_each stop dispatching for continue-as-new.
DEFAULT_FANOUT_CONCURRENCY = 100

ConditionLookup = Callable[[str], Callable[..., Any] | None]

# An emission decided by an operator: (event, value, layer marks).
Emission = tuple[str, Any, list[str]]


class ChunkFailure(Exception):
    """A chunk handler failed; carries the JSON-ready failure description."""

    def __init__(self, details: dict[str, Any]) -> None:
        super().__init__(f"{details.get('type')}: {details.get('message')}")
        self.details = details


class PausedBranch:
    """Marker returned by a chunk operator whose handler paused."""

    def __init__(self, interrupt: dict[str, Any]) -> None:
        self.interrupt = interrupt


class ConditionData:
    """The ``data`` a match/if condition sees (read-only, in the workflow)."""

    def __init__(self, signal: dict[str, Any], state: dict[str, Any], execution_id: str) -> None:
        self.value = signal.get("value")
        self.input = self.value
        self.inputs = self.value
        self.trigger_event = signal.get("trigger_event")
        self.trigger_type = signal.get("trigger_type")
        self.event = self.trigger_event
        self.type = self.trigger_type
        self.execution_id = execution_id
        self._state = state

    def get_state(self, key: str | None = None, default: Any = None, **_: Any) -> Any:
        """Read execution state (dotted keys)."""
        if key is None:
            return copy.deepcopy(self._state)
        return copy.deepcopy(get_path(self._state, key, default))


class SignalNet:
    """Routing tables, ids and join state of one execution, shared by both interpreters."""

    def __init__(self, spec: FlowSpec, *, execution_id: str, condition: ConditionLookup) -> None:
        self.spec = spec
        self.execution_id = execution_id
        self._condition = condition
        self.ops: dict[str, dict[str, Any]] = {op["id"]: op for op in spec.operators}
        self.listeners: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for op in spec.operators:
            if op["kind"] == "match_case":
                continue  # definition-only: case chunks listen to the route signal directly
            for signal in op["listen_signals"]:
                key = (signal["trigger_type"], signal["trigger_event"])
                bucket = self.listeners.setdefault(key, [])
                if all(existing["id"] != op["id"] for existing in bucket):
                    bucket.append(op)
        self.state: dict[str, Any] = {}
        self.state_version = 0
        self.joins: dict[str, dict[str, Any]] = {kind: {} for kind in JOIN_KINDS}
        self.seq = 0
        self.last_signal: dict[str, Any] | None = None
        self.skip_exceptions = False
        self.errors: list[dict[str, Any]] = []
        # Execution-only handlers (``execution.on``), Agently's ``signal_net.bindings``
        # records in order; the active ones listen through a chunk operator of their own.
        self.bindings: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ ids
    def next_id(self, prefix: str) -> str:
        """Return a deterministic id, unique within the execution (carried over CAN)."""
        self.seq += 1
        return f"{prefix}{self.seq}"

    def make_signal(
        self,
        event: str,
        value: Any,
        *,
        trigger_type: str = "event",
        layer_marks: Sequence[str] = (),
        source: str = "runtime",
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build a signal record (Agently's ``last_signal`` shape)."""
        return {
            "id": self.next_id("sig-"),
            "trigger_event": event,
            "trigger_type": trigger_type,
            "value": value,
            "layer_marks": list(layer_marks),
            "source": source,
            "meta": dict(meta or {}),
        }

    def child_meta(
        self, parent: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Meta for a signal emitted while handling ``parent`` (inherits its scope)."""
        scope = parent["meta"].get(SCOPE_KEY)
        meta = {PARENT_KEY: parent["id"], SCOPE_KEY: scope if scope is not None else parent["id"]}
        if extra:
            meta.update(extra)
        return meta

    def child_signal(
        self,
        parent: dict[str, Any],
        event: str,
        value: Any,
        layer_marks: Sequence[str],
        *,
        source: str = "chunk",
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The signal for ``event`` as emitted by the handler of ``parent``."""
        return self.make_signal(
            event, value, layer_marks=layer_marks, source=source, meta=self.child_meta(parent, meta)
        )

    @staticmethod
    def layer_key(signal: dict[str, Any]) -> str:
        """Join-state key: layer marks, else the aggregation scope, else ``__root__``."""
        if signal["layer_marks"]:
            return ".".join(signal["layer_marks"])
        scope = signal["meta"].get(SCOPE_KEY)
        return f"signal:{scope}" if scope is not None else "__root__"

    def has_listener(self, trigger_type: str, event: str) -> bool:
        """Whether any operator listens to ``(trigger_type, event)``."""
        return (trigger_type, event) in self.listeners

    @staticmethod
    def continuation_event(op: dict[str, Any]) -> str | None:
        """The event a finished chunk emits its result on, if it has one."""
        continuation = next(
            (s for s in op["emit_signals"] if s.get("role") == "continuation"), None
        )
        return None if continuation is None else continuation["trigger_event"]

    # ---------------------------------------------------------- join decisions
    def gate_arrival(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        """Record an arrival at an and-``when`` gate; the joined value once all arrived.

        Returns ``_NOT_YET`` while some listened signal has not arrived in this scope.
        """
        states = self.joins["when_states"].setdefault(op["id"], {})
        key = self.layer_key(signal)
        state = states.setdefault(key, {"values": {}, "filled": []})
        slot = f"{signal['trigger_type']}:{signal['trigger_event']}"
        state["values"].setdefault(signal["trigger_type"], {})[signal["trigger_event"]] = signal[
            "value"
        ]
        if slot not in state["filled"]:
            state["filled"].append(slot)
        if any(s["id"] not in state["filled"] for s in op["listen_signals"]):
            return NOT_YET
        del states[key]
        value: dict[str, Any] = {}
        for s in op["listen_signals"]:
            value.setdefault(s["trigger_type"], {})[s["trigger_event"]] = state["values"][
                s["trigger_type"]
            ][s["trigger_event"]]
        return value

    def gate_emission(self, op: dict[str, Any], signal: dict[str, Any]) -> Emission | None:
        """What a ``when`` gate emits for this arrival (``simple_or``, ``or`` or ``and``)."""
        mode = op["options"].get("mode", "and")
        target = op["emit_signals"][0]["trigger_event"]
        marks = signal["layer_marks"]
        if mode == "simple_or":
            return (target, signal["value"], marks)
        if mode == "or":
            return (
                target,
                [signal["trigger_type"], signal["trigger_event"], signal["value"]],
                marks,
            )
        value = self.gate_arrival(op, signal)
        return None if value is NOT_YET else (target, value, marks)

    def batch_arrival(self, op: dict[str, Any], signal: dict[str, Any]) -> Emission | None:
        """Record a batch branch's result; the batch's results once every branch is in."""
        keys: dict[str, str] = op["options"].get("result_keys", {})
        signal_id = f"{signal['trigger_type']}:{signal['trigger_event']}"
        if signal_id not in keys or not signal["layer_marks"]:
            return None
        states = self.joins["batch_states"].setdefault(op["id"], {})
        key = self.layer_key(signal)
        state = states.setdefault(
            key,
            {
                "results": {name: None for name in keys.values()},
                "triggers": {sid: False for sid in keys},
            },
        )
        state["results"][keys[signal_id]] = signal["value"]
        state["triggers"][signal_id] = True
        if not all(state["triggers"].values()):
            return None
        del states[key]
        return (
            op["emit_signals"][0]["trigger_event"],
            state["results"],
            signal["layer_marks"][:-1],
        )

    def for_each_arrival(self, op: dict[str, Any], signal: dict[str, Any]) -> Emission | None:
        """Record an item's result; the list in input order once every item is in."""
        marks = signal["layer_marks"]
        if len(marks) < 2:
            return None
        instance, item = marks[-2], marks[-1]
        state = self.joins["for_each_results"].get(instance)
        if state is None or item not in state["order"]:
            return None
        state["values"][item] = signal["value"]
        if len(state["values"]) < len(state["order"]):
            return None
        del self.joins["for_each_results"][instance]
        results = [state["values"][mark] for mark in state["order"]]
        return (op["emit_signals"][0]["trigger_event"], results, marks[:-2])

    def match_arrival(self, op: dict[str, Any], signal: dict[str, Any]) -> Emission | None:
        """A case branch reached the end of a match: pass on, or join a hit_all."""
        marks = signal["layer_marks"]
        result_event = op["emit_signals"][0]["trigger_event"]
        if len(marks) >= 2 and marks[-2] in self.joins["match_results"]:
            state = self.joins["match_results"][marks[-2]]
            if marks[-1] not in state["order"]:
                return None
            state["values"][marks[-1]] = signal["value"]
            if len(state["values"]) < len(state["order"]):
                return None
            del self.joins["match_results"][marks[-2]]
            results = [state["values"][mark] for mark in state["order"]]
            return (result_event, results, marks[:-2])
        if not marks:
            return None
        return (result_event, signal["value"], marks[:-1])

    def collect_arrival(self, op: dict[str, Any], signal: dict[str, Any]) -> Emission | None:
        """Record a branch at a ``collect``; the collected dict once every branch is in."""
        options = op["options"]
        branch_ids: list[str] = options["branch_ids"]
        states = self.joins["collect_states"].setdefault(options["collect_id"], {})
        key = self.layer_key(signal)
        state = states.setdefault(key, {})
        state[options["branch_id"]] = signal["value"]
        if any(branch not in state for branch in branch_ids):
            return None
        collected = {branch: state[branch] for branch in branch_ids}
        if options.get("mode") == "filled_then_empty":
            del states[key]
        return (op["emit_signals"][0]["trigger_event"], collected, signal["layer_marks"])

    def match_route(
        self, op: dict[str, Any], signal: dict[str, Any]
    ) -> tuple[list[Emission], bool]:
        """The branches a match routes ``signal`` to, and whether they form a hit_all join."""
        options = op["options"]
        mode = options.get("mode", "hit_first")
        result_event = op["emit_signals"][0]["trigger_event"]
        match_mark = self.next_id("m")
        marks = [*signal["layer_marks"], match_mark]
        hits: list[str] = []
        for case in options.get("cases", []):
            if case.get("is_else"):
                continue
            if self.judge(case, signal):
                event = case["route_signal"]["trigger_event"]
                if mode == "hit_first":
                    return [(event, signal["value"], marks)], False
                hits.append(event)
        if hits:
            case_marks = [self.next_id("m") for _ in hits]
            self.joins["match_results"][match_mark] = {
                "operator": op["id"],
                "order": case_marks,
                "values": {},
            }
            return [
                (event, signal["value"], [*marks, mark])
                for event, mark in zip(hits, case_marks, strict=True)
            ], True
        else_signal = options.get("else_signal")
        if else_signal:
            return [(else_signal["trigger_event"], signal["value"], marks)], False
        return [(result_event, signal["value"], signal["layer_marks"])], False

    def judge(self, case: dict[str, Any], signal: dict[str, Any]) -> bool:
        """Whether a match/if case matches ``signal`` (value or named condition)."""
        ref = case.get("condition_ref")
        if ref is None:
            return bool(signal["value"] == case.get("condition_value"))
        condition = self._condition(ref["name"])
        if condition is None:
            raise RuntimeError(
                f"Condition handler '{ref['name']}' of flow '{self.spec.name}' is not registered "
                "on this worker."
            )
        try:
            outcome = condition(ConditionData(signal, self.state, self.execution_id))
        except Exception as error:  # a user condition fails the execution
            # As natively: the execution fails with the condition's error. Left uncaught it
            # would fail the workflow task, which Temporal retries forever.
            raise ChunkFailure(
                failure_details(self.spec.name, f"condition:{ref['name']}", error)
            ) from None
        if hasattr(outcome, "close") and hasattr(outcome, "send"):
            # An async condition never matches (native), and must not leak a coroutine.
            outcome.close()  # type: ignore[union-attr]
            return False
        return outcome is True

    def result_sink(self, signal: dict[str, Any]) -> Any:
        """The first value to reach a result sink becomes ``$final_result``."""
        if "$final_result" not in self.state:
            self.state["$final_result"] = signal["value"]
            self.state_version += 1
        return signal["value"]

    # --------------------------------------------------------------- export
    def export(self) -> dict[str, Any]:
        """The interpreter's durable state (for continue-as-new and snapshots)."""
        raise NotImplementedError

    def restore(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`export`."""
        raise NotImplementedError

    def export_net(self) -> dict[str, Any]:
        """The net's durable state (for continue-as-new and snapshots)."""
        net = {
            "state": copy.deepcopy(self.state),
            "state_version": self.state_version,
            "joins": copy.deepcopy(self.joins),
            "seq": self.seq,
            "last_signal": copy.deepcopy(self.last_signal),
            "errors": copy.deepcopy(self.errors),
        }
        if self.bindings:  # only then: carries of executions without bindings are as before
            net["bindings"] = copy.deepcopy(self.bindings)
        return net

    # ------------------------------------------------------------- bindings
    def set_bindings(self, records: list[dict[str, Any]]) -> None:
        """Replace the execution-only handlers (a restore, a load)."""
        for record in list(self.bindings):
            self.remove_binding(record["binding_id"])
        for record in records:
            self.add_binding(record)

    def add_binding(self, record: dict[str, Any]) -> None:
        """``execution.on``: one more handler of ``record['trigger_event']`` (same id: replaced).

        A ``missing_handler`` record is kept (and saved) but does not listen.
        """
        self.remove_binding(record["binding_id"])
        record = copy.deepcopy(record)
        self.bindings.append(record)
        if record.get("status") != "active":
            return
        op = binding_operator(record)
        self.ops[op["id"]] = op
        key = (record["trigger_type"], record["trigger_event"])
        self.listeners.setdefault(key, []).append(op)

    def remove_binding(
        self,
        binding_id: str,
        *,
        trigger_type: str | None = None,
        trigger_event: str | None = None,
    ) -> bool:
        """``execution.off``: whether a binding matched (and was removed)."""
        for record in self.bindings:
            if record["binding_id"] != binding_id:
                continue
            if trigger_type is not None and record["trigger_type"] != trigger_type:
                return False
            if trigger_event is not None and record["trigger_event"] != trigger_event:
                return False
            self.bindings.remove(record)
            op_id = binding_operator_id(binding_id)
            self.ops.pop(op_id, None)
            key = (record["trigger_type"], record["trigger_event"])
            bucket = [op for op in self.listeners.get(key, []) if op["id"] != op_id]
            if bucket:
                self.listeners[key] = bucket
            else:
                self.listeners.pop(key, None)
            return True
        return False

    def restore_net(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`export_net`."""
        self.state = copy.deepcopy(data.get("state") or {})
        self.state_version = int(data.get("state_version") or 0)
        joins = data.get("joins") or {}
        self.joins = {kind: copy.deepcopy(joins.get(kind) or {}) for kind in JOIN_KINDS}
        self.seq = int(data.get("seq") or 0)
        self.last_signal = copy.deepcopy(data.get("last_signal"))
        self.errors = copy.deepcopy(data.get("errors") or [])
        if data.get("bindings") or self.bindings:
            self.set_bindings(data.get("bindings") or [])


# Prefix of the chunk name a binding's handler runs under: the plugin registers the
# activity ``"<flow>.on:<module>.<qualname>"`` for each of its ``event_handlers``.
BINDING_CHUNK_PREFIX = "on:"


def binding_operator_id(binding_id: str) -> str:
    """The id of the chunk operator a binding listens through."""
    return f"binding-{binding_id}"


def binding_operator(record: dict[str, Any]) -> dict[str, Any]:
    """The chunk operator an active binding listens through (not part of the graph)."""
    ref = record["handler_ref"]
    op_id = binding_operator_id(record["binding_id"])
    event = f"Binding[{record['binding_id']}]"
    return {
        "id": op_id,
        "kind": "chunk",
        "name": f"{BINDING_CHUNK_PREFIX}{ref['module']}.{ref['qualname']}",
        "listen_signals": [
            {
                "id": f"{record['trigger_type']}:{record['trigger_event']}",
                "trigger_type": record["trigger_type"],
                "trigger_event": record["trigger_event"],
            }
        ],
        "emit_signals": [
            {
                "id": f"event:{event}",
                "trigger_type": "event",
                "trigger_event": event,
                "role": "continuation",
            }
        ],
        "options": {},
        "handler_ref": {"kind": "registered", "name": record["binding_id"]},
        "condition_ref": None,
        "group_id": None,
        "group_kind": None,
        "parent_group_id": None,
        "parent_group_kind": None,
    }


class _NotYet:
    def __repr__(self) -> str:
        return "NOT_YET"


NOT_YET: Any = _NotYet()


def failure_details(flow: str, chunk: str, error: BaseException) -> dict[str, Any]:
    """The JSON-ready failure description of ``error`` raised in ``chunk`` of ``flow``."""
    return chunk_failure_details(
        flow_name=flow,
        chunk_name=chunk,
        error_type=type(error).__name__,
        error_module=type(error).__module__,
        message=str(error),
    )
