"""The deterministic TriggerFlow signal-net interpreter (workflow side, no I/O).

A signal ``{id, trigger_type, trigger_event, value, layer_marks, source, meta}`` reaches
every operator listening to ``(trigger_type, trigger_event)``. Operators run as asyncio
tasks on the workflow's deterministic event loop; a dispatch awaits all its handlers and
their downstream chains, as natively. Join progress (``when`` and-joins, batches,
``for_each``, ``match`` hit_all, ``collect``) lives in ``joins`` keyed by the layer
marks of the fan-out that owns it, so nested fan-outs never mix (deviation 7).

Everything here is deterministic: ids come from a counter carried across
continue-as-new, iteration is over insertion-ordered dicts and lists only, and time
comes from ``workflow.now()``.

Fan-outs (``for_each`` items, ``batch`` branches) run at most ``concurrency`` at a time,
``DEFAULT_FANOUT_CONCURRENCY`` when the flow gave none (a deviation: natively unbounded).
A ``for_each`` keeps its not-yet-dispatched items in ``fanouts``: when the workflow holds
fan-outs (continue-as-new is due) the in-flight items finish, the rest stay there and are
carried to the next run, which dispatches them (:meth:`Engine.resume_fanout`).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._spec import FlowSpec

SCOPE_KEY = "_triggerflow_aggregation_scope"
PARENT_KEY = "_triggerflow_parent_signal_id"
JOIN_KINDS = ("when_states", "batch_states", "collect_states", "for_each_results", "match_results")

# In-flight cap of a for_each / batch fan-out whose flow gave no ``concurrency``: thousands
# of activities scheduled in one workflow task make every task slow (bench/RESULTS.md F4),
# and a bounded fan-out is what lets a for_each stop dispatching for continue-as-new.
DEFAULT_FANOUT_CONCURRENCY = 100


class ChunkFailure(Exception):
    """A chunk handler failed; carries the JSON-ready failure description."""

    def __init__(self, details: dict[str, Any]) -> None:
        super().__init__(f"{details.get('type')}: {details.get('message')}")
        self.details = details


class PausedBranch:
    """Marker returned by a chunk operator whose handler paused."""

    def __init__(self, interrupt: dict[str, Any]) -> None:
        self.interrupt = interrupt


ChunkRunner = Callable[[dict[str, Any], dict[str, Any], str], Awaitable[Any]]
ConditionLookup = Callable[[str], Callable[..., Any] | None]


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
        from ._state import get_path

        if key is None:
            return copy.deepcopy(self._state)
        return copy.deepcopy(get_path(self._state, key, default))


class Engine:
    """Routes signals through a compiled :class:`FlowSpec`."""

    def __init__(
        self,
        spec: FlowSpec,
        *,
        execution_id: str,
        run_chunk: ChunkRunner,
        run_sub_flow: Callable[[dict[str, Any], dict[str, Any]], Awaitable[Any]],
        condition: ConditionLookup,
        on_activity: Callable[[], None],
        before_operator: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
        fanout_limit: Callable[[], int | None] | None = None,
        hold_fanout: Callable[[], bool] | None = None,
    ) -> None:
        # fanout_limit: the in-flight cap of a fan-out that has no ``concurrency`` (None:
        # unbounded, as before the cap existed). hold_fanout: True while no new for_each
        # item may be dispatched (continue-as-new is due); held items stay in ``fanouts``.
        self.spec = spec
        self.execution_id = execution_id
        self._run_chunk = run_chunk
        self._run_sub_flow = run_sub_flow
        self._condition = condition
        self._on_activity = on_activity
        self._before_operator = before_operator
        self._fanout_limit = fanout_limit or (lambda: None)
        self._hold_fanout = hold_fanout or (lambda: False)
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
        self.active = 0
        self.last_signal: dict[str, Any] | None = None
        self.skip_exceptions = False
        self.errors: list[dict[str, Any]] = []
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        # for_each instances with items not dispatched yet, by instance mark: ``op``, the
        # split's ``signal`` (without its value), ``items`` ([item, mark] in input order),
        # ``concurrency``, and ``held`` (no task is dispatching them: resume_fanout must).
        self.fanouts: dict[str, dict[str, Any]] = {}

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

    @staticmethod
    def layer_key(signal: dict[str, Any]) -> str:
        """Join-state key: layer marks, else the aggregation scope, else ``__root__``."""
        if signal["layer_marks"]:
            return ".".join(signal["layer_marks"])
        scope = signal["meta"].get(SCOPE_KEY)
        return f"signal:{scope}" if scope is not None else "__root__"

    # -------------------------------------------------------------- dispatch
    def has_listener(self, trigger_type: str, event: str) -> bool:
        """Whether any operator listens to ``(trigger_type, event)``."""
        return (trigger_type, event) in self.listeners

    async def dispatch(self, signal: dict[str, Any]) -> list[Any]:
        """Run every listener of ``signal`` and their downstream chains; return results."""
        self.last_signal = signal
        listeners = self.listeners.get((signal["trigger_type"], signal["trigger_event"]))
        if not listeners:
            return []
        self.active += 1
        self._on_activity()
        try:
            if len(listeners) == 1:
                return [await self.run_operator(listeners[0], signal)]
            return await gather_cancel_on_error([self.run_operator(op, signal) for op in listeners])
        finally:
            self.active -= 1
            self._on_activity()

    async def emit_from(
        self,
        parent: dict[str, Any],
        event: str,
        value: Any,
        layer_marks: Sequence[str],
        *,
        source: str = "chunk",
        meta: dict[str, Any] | None = None,
    ) -> list[Any]:
        """Dispatch ``event`` as emitted by the handler of ``parent``."""
        signal = self.make_signal(
            event,
            value,
            layer_marks=layer_marks,
            source=source,
            meta=self.child_meta(parent, meta),
        )
        return await self.dispatch(signal)

    async def run_operator(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        kind = op["kind"]
        handler = getattr(self, f"_op_{kind}", None)
        if handler is None:
            raise RuntimeError(f"operator kind {kind!r} is not supported by this interpreter")
        if self._before_operator is not None:
            self._before_operator(op, signal)
        return await handler(op, signal)

    # ------------------------------------------------------------- operators
    async def _op_chunk(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        try:
            result = await self._run_chunk(op, signal, self.next_id("run-"))
        except ChunkFailure as failure:
            if self.skip_exceptions:
                self.errors.append(failure.details)
                return {"error": failure.details}
            raise
        if isinstance(result, PausedBranch):
            return result.interrupt
        await self.continue_after_chunk(op, signal, result)
        return result

    async def continue_after_chunk(
        self, op: dict[str, Any], signal: dict[str, Any], result: Any
    ) -> None:
        """Dispatch a finished chunk's continuation (also used to resume a restored run)."""
        continuation = next(
            (s for s in op["emit_signals"] if s.get("role") == "continuation"), None
        )
        if continuation is not None:
            await self.emit_from(
                signal,
                continuation["trigger_event"],
                result,
                signal["layer_marks"],
                meta={"origin_chunk": {"chunk_id": op["id"], "chunk_name": op["name"]}},
            )

    async def _op_signal_gate(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        mode = op["options"].get("mode", "and")
        target = op["emit_signals"][0]["trigger_event"]
        marks = signal["layer_marks"]
        if mode == "simple_or":
            await self.emit_from(signal, target, signal["value"], marks, source="operator")
            return None
        if mode == "or":
            arrival = [signal["trigger_type"], signal["trigger_event"], signal["value"]]
            await self.emit_from(signal, target, arrival, marks, source="operator")
            return None
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
            return None
        del states[key]
        value: dict[str, Any] = {}
        for s in op["listen_signals"]:
            value.setdefault(s["trigger_type"], {})[s["trigger_event"]] = state["values"][
                s["trigger_type"]
            ][s["trigger_event"]]
        await self.emit_from(signal, target, value, marks, source="operator")
        return None

    async def _op_batch_fanout(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        marks = [*signal["layer_marks"], self.next_id("m")]
        branches = [s["trigger_event"] for s in op["emit_signals"]]
        limit = op["options"].get("concurrency") or self._fanout_limit()
        semaphore = asyncio.Semaphore(limit) if limit else None

        async def branch(event: str) -> Any:
            if semaphore is None:
                return await self.emit_from(
                    signal, event, signal["value"], marks, source="operator"
                )
            async with semaphore:
                return await self.emit_from(
                    signal, event, signal["value"], marks, source="operator"
                )

        await gather_cancel_on_error([branch(event) for event in branches])
        return None

    async def _op_batch_collect(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
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
        await self.emit_from(
            signal,
            op["emit_signals"][0]["trigger_event"],
            state["results"],
            signal["layer_marks"][:-1],
            source="operator",
        )
        return None

    async def _op_for_each_split(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        end = op["emit_signals"][1]["trigger_event"]
        value = signal["value"]
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and not items:
            await self.emit_from(signal, end, [], signal["layer_marks"], source="operator")
            return None
        instance = self.next_id("m")
        item_marks = [self.next_id("m") for _ in items]
        self.joins["for_each_results"][instance] = {
            "operator": op["id"],
            "order": item_marks,
            "values": {},
        }
        self.fanouts[instance] = {
            "op": op["id"],
            # The items travel in the record; the split's value (the whole list) is not
            # needed to dispatch them and would double the carry.
            "signal": {**signal, "value": None},
            "items": [[item, mark] for item, mark in zip(items, item_marks, strict=True)],
            "concurrency": op["options"].get("concurrency") or self._fanout_limit(),
            "held": False,
        }
        await self._send_items(instance)
        return None

    async def resume_fanout(self, instance: str) -> None:
        """Dispatch the items a held ``for_each`` has not dispatched yet (new run, close, load).

        The join progress of the instance is in ``joins`` already; the items' results join
        it like those of the items dispatched before.
        """
        record = self.fanouts.get(instance)
        if record is None:
            return
        if record["op"] not in self.ops:
            raise RuntimeError(
                f"for_each operator {record['op']!r} of a carried fan-out is not in flow "
                f"'{self.spec.name}'"
            )
        record["held"] = False
        await self._send_items(instance)

    async def _send_items(self, instance: str) -> None:
        """Dispatch the items of ``fanouts[instance]``, at most ``concurrency`` at a time.

        An item is taken out of the record when it is dispatched, so the record always
        holds exactly the items no run has started: continue-as-new carries them and the
        next run dispatches each once. While ``hold_fanout()`` is true, items waiting for a
        slot are left in the record; the dispatch returns once the in-flight ones finished.
        """
        record = self.fanouts[instance]
        op = self.ops[record["op"]]
        signal = record["signal"]
        send = op["emit_signals"][0]["trigger_event"]
        base = [*signal["layer_marks"], instance]
        limit = record["concurrency"]
        semaphore = asyncio.Semaphore(limit) if limit else None
        items: list[list[Any]] = record["items"]

        async def dispatch(mark: str) -> Any:
            if self._hold_fanout():
                return None
            # Slots are granted in input order, so the item is almost always first.
            index = next(i for i, pair in enumerate(items) if pair[1] == mark)
            item = items.pop(index)[0]
            return await self.emit_from(signal, send, item, [*base, mark], source="operator")

        async def send_item(mark: str) -> Any:
            if semaphore is None:
                return await dispatch(mark)
            async with semaphore:
                return await dispatch(mark)

        try:
            await gather_cancel_on_error([send_item(mark) for _, mark in list(items)])
        except BaseException:
            # A failed item fails the fan-out (the rest is cancelled, as natively): nothing
            # of it may be dispatched later.
            self.fanouts.pop(instance, None)
            raise
        if items:
            record["held"] = True
        else:
            del self.fanouts[instance]

    async def _op_for_each_collect(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
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
        await self.emit_from(
            signal, op["emit_signals"][0]["trigger_event"], results, marks[:-2], source="operator"
        )
        return None

    def _judge(self, case: dict[str, Any], signal: dict[str, Any]) -> bool:
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
                {
                    "flow": self.spec.name,
                    "chunk": f"condition:{ref['name']}",
                    "type": type(error).__name__,
                    "module": type(error).__module__,
                    "message": str(error),
                }
            ) from None
        if hasattr(outcome, "close") and hasattr(outcome, "send"):
            # An async condition never matches (native), and must not leak a coroutine.
            outcome.close()  # type: ignore[union-attr]
            return False
        return outcome is True

    async def _op_match_route(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        options = op["options"]
        mode = options.get("mode", "hit_first")
        result_event = op["emit_signals"][0]["trigger_event"]
        match_mark = self.next_id("m")
        marks = [*signal["layer_marks"], match_mark]
        hits: list[str] = []
        for case in options.get("cases", []):
            if case.get("is_else"):
                continue
            if self._judge(case, signal):
                event = case["route_signal"]["trigger_event"]
                if mode == "hit_first":
                    await self.emit_from(signal, event, signal["value"], marks, source="operator")
                    return None
                hits.append(event)
        if hits:
            case_marks = [self.next_id("m") for _ in hits]
            self.joins["match_results"][match_mark] = {
                "operator": op["id"],
                "order": case_marks,
                "values": {},
            }
            await gather_cancel_on_error(
                [
                    self.emit_from(
                        signal, event, signal["value"], [*marks, mark], source="operator"
                    )
                    for event, mark in zip(hits, case_marks, strict=True)
                ]
            )
            return None
        else_signal = options.get("else_signal")
        if else_signal:
            await self.emit_from(
                signal, else_signal["trigger_event"], signal["value"], marks, source="operator"
            )
        else:
            await self.emit_from(
                signal, result_event, signal["value"], signal["layer_marks"], source="operator"
            )
        return None

    async def _op_match_collect(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
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
            await self.emit_from(signal, result_event, results, marks[:-2], source="operator")
            return None
        if not marks:
            return None
        await self.emit_from(signal, result_event, signal["value"], marks[:-1], source="operator")
        return None

    async def _op_collect_branch(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
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
        await self.emit_from(
            signal,
            op["emit_signals"][0]["trigger_event"],
            collected,
            signal["layer_marks"],
            source="operator",
        )
        return None

    async def _op_sub_flow(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        result = await self._run_sub_flow(op, signal)
        await self.emit_from(
            signal, op["emit_signals"][0]["trigger_event"], result, signal["layer_marks"]
        )
        return result

    async def _op_intervention_point(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        await self.emit_from(
            signal,
            op["emit_signals"][0]["trigger_event"],
            signal["value"],
            signal["layer_marks"],
            source="operator",
        )
        return signal["value"]

    async def _op_result_sink(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        if "$final_result" not in self.state:
            self.state["$final_result"] = signal["value"]
            self.state_version += 1
        return signal["value"]

    # --------------------------------------------------------------- export
    def export(self) -> dict[str, Any]:
        """The engine's durable state (for continue-as-new and snapshots)."""
        return {
            "state": copy.deepcopy(self.state),
            "state_version": self.state_version,
            "joins": copy.deepcopy(self.joins),
            "seq": self.seq,
            "last_signal": copy.deepcopy(self.last_signal),
            "errors": copy.deepcopy(self.errors),
            "fanouts": copy.deepcopy(self.fanouts),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`export`."""
        self.state = copy.deepcopy(data.get("state") or {})
        self.state_version = int(data.get("state_version") or 0)
        joins = data.get("joins") or {}
        self.joins = {kind: copy.deepcopy(joins.get(kind) or {}) for kind in JOIN_KINDS}
        self.seq = int(data.get("seq") or 0)
        self.last_signal = copy.deepcopy(data.get("last_signal"))
        self.errors = copy.deepcopy(data.get("errors") or [])
        # Nothing dispatches a restored fan-out until resume_fanout is called.
        self.fanouts = {
            instance: {**copy.deepcopy(record), "held": True}
            for instance, record in (data.get("fanouts") or {}).items()
        }


async def gather_cancel_on_error(coros: Sequence[Awaitable[Any]]) -> list[Any]:
    """Run awaitables concurrently; on the first error cancel the rest and re-raise."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            if not task.done():
                task.cancel()
        raise
