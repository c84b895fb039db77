"""The nested-await interpreter of runtime versions 1 and 2 (workflow side, no I/O).

Kept unchanged in behaviour so that executions started by those versions replay: a dispatch
awaits all its handlers and their downstream chains, as natively, which costs stack frames
per step (a loop of a few hundred steps overflows). New executions run on
:class:`~._scheduler.Scheduler` (runtime version 3), whose work is durable data drained by
a loop. What an operator decides (joins, routing) is shared in :mod:`._signal_net`.

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

from ..spec.flow_spec import FlowSpec
from .signal_net import (
    DEFAULT_FANOUT_CONCURRENCY,
    JOIN_KINDS,
    PARENT_KEY,
    SCOPE_KEY,
    ChunkFailure,
    ConditionData,
    ConditionLookup,
    PausedBranch,
    SignalNet,
)

__all__ = [
    "DEFAULT_FANOUT_CONCURRENCY",
    "JOIN_KINDS",
    "PARENT_KEY",
    "SCOPE_KEY",
    "ChunkFailure",
    "ConditionData",
    "Engine",
    "PausedBranch",
    "gather_cancel_on_error",
]

ChunkRunner = Callable[[dict[str, Any], dict[str, Any], str], Awaitable[Any]]


class Engine(SignalNet):
    """Routes signals through a compiled :class:`FlowSpec` by nested awaits."""

    def __init__(
        self,
        spec: FlowSpec,
        *,
        execution_id: str,
        run_chunk: ChunkRunner,
        run_sub_flow: Callable[[dict[str, Any], dict[str, Any]], Awaitable[Any]],
        condition: ConditionLookup,
        on_activity: Callable[[], None],
        # (what it returns is the scheduler's: an intervention policy's choice, never here)
        before_operator: Callable[[dict[str, Any], dict[str, Any]], object] | None = None,
        fanout_limit: Callable[[], int | None] | None = None,
        hold_fanout: Callable[[], bool] | None = None,
    ) -> None:
        # fanout_limit: the in-flight cap of a fan-out that has no ``concurrency`` (None:
        # unbounded, as before the cap existed). hold_fanout: True while no new for_each
        # item may be dispatched (continue-as-new is due); held items stay in ``fanouts``.
        super().__init__(spec, execution_id=execution_id, condition=condition)
        self._run_chunk = run_chunk
        self._run_sub_flow = run_sub_flow
        self._on_activity = on_activity
        self._before_operator = before_operator
        self._fanout_limit = fanout_limit or (lambda: None)
        self._hold_fanout = hold_fanout or (lambda: False)
        self.active = 0
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        # for_each instances with items not dispatched yet, by instance mark: ``op``, the
        # split's ``signal`` (without its value), ``items`` ([item, mark] in input order),
        # ``concurrency``, and ``held`` (no task is dispatching them: resume_fanout must).
        self.fanouts: dict[str, dict[str, Any]] = {}

    # -------------------------------------------------------------- dispatch
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
        signal = self.child_signal(parent, event, value, layer_marks, source=source, meta=meta)
        return await self.dispatch(signal)

    async def run_operator(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        """Run operator ``op`` on ``signal``; its result."""
        kind = op["kind"]
        handler = getattr(self, f"_op_{kind}", None)
        if handler is None:
            raise RuntimeError(f"operator kind {kind!r} is not supported by this interpreter")
        if self._before_operator is not None:
            self._before_operator(op, signal)
        return await handler(op, signal)

    def run_chunk_operator(self, op: dict[str, Any], signal: dict[str, Any]) -> Awaitable[Any]:
        """Run chunk operator ``op`` on ``signal`` (a self resume re-runs its chunk)."""
        return self._op_chunk(op, signal)

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
        await self._emit_decided(signal, self.gate_emission(op, signal))
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
        await self._emit_decided(signal, self.batch_arrival(op, signal))
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
        await self._emit_decided(signal, self.for_each_arrival(op, signal))
        return None

    async def _op_match_route(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        emissions, joined = self.match_route(op, signal)
        if not joined:
            await self._emit_decided(signal, emissions[0])
            return None
        await gather_cancel_on_error(
            [
                self.emit_from(signal, event, value, marks, source="operator")
                for event, value, marks in emissions
            ]
        )
        return None

    async def _op_match_collect(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        await self._emit_decided(signal, self.match_arrival(op, signal))
        return None

    async def _op_collect_branch(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        await self._emit_decided(signal, self.collect_arrival(op, signal))
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
        return self.result_sink(signal)

    async def _emit_decided(self, signal: dict[str, Any], emission: Any) -> None:
        """Dispatch what an operator decided to emit (nothing when ``emission`` is None)."""
        if emission is not None:
            event, value, marks = emission
            await self.emit_from(signal, event, value, marks, source="operator")

    # --------------------------------------------------------------- export
    def export(self) -> dict[str, Any]:
        """The engine's durable state (for continue-as-new and snapshots)."""
        return {**self.export_net(), "fanouts": copy.deepcopy(self.fanouts)}

    def restore(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`export`."""
        self.restore_net(data)
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
