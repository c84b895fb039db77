"""The interpreter of runtime version 3: durable work drained by a loop (workflow side).

Every piece of pending work is data: a signal to dispatch, an operator to run, a finished
chunk whose recorded operations are still being applied, a fan-out with items not started.
One loop (:meth:`Scheduler.drive`) takes work from a queue and runs it; a chunk or a
sub-flow runs as its own task and, when it finishes, puts its result back on the queue.
No chain awaits another, so the stack does not grow per step (the nested-await engine of
versions 1-2 overflowed after a few hundred), and the whole of the pending work can be
carried over continue-as-new in the middle of a chain: when Temporal suggests it, the loop
stops taking work, the chunks in flight finish, and the queue travels to the next run.

Completion is counted, not awaited. Work belongs to a *group*; a group is done when
nothing in it is pending. A root group is what one caller waits for (start, an emit, a
resume, work re-run after load); ``await data.async_emit(...)`` inside a chunk opens a child
group, and the rest of that chunk's operations (and its continuation) wait as a suspended
frame until the child group is done, as natively. A frame costs a record per nesting level,
so an emit that is a chunk's last act and whose continuation nobody listens to is a *tail
emit*: the chunk finishes at once and the emitted chain joins its group (a loop that
re-emits its own trigger therefore runs in constant space; its ``chunk.completed`` event
comes before the emitted chain's instead of after it). Frames are capped at
``MAX_FRAMES``: past it the execution fails with an error naming the fix.

A failure in any work of a root fails the execution (``on_failure``), cancels the rest of
that root's work and ends the root with the failure, as the nested awaits did.

Deterministic: the queue is processed in order (depth-first for what an operator emits at
once, as natively), ids come from the carried counter, no I/O and no clock.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow

from .._errors import chunk_failure_details
from ..spec.flow_spec import FlowSpec
from ..spec.limits import MAX_DONE_ROOTS, MAX_FRAMES
from .scheduler_fanout import FanoutMixin
from .scheduler_protocol import SchedulerHost
from .scheduler_state import SchedulerStateMixin
from .signal_net import (
    ChunkFailure,
    ConditionLookup,
    failure_details,
)
from .subflow import FrameDetached, SubFlowPathError


def origin_chunk(op: dict[str, Any], run: str | None) -> dict[str, Any]:
    """``meta["origin_chunk"]`` of a chunk's continuation signal, as Agently writes it.

    ``run`` is the chunk run's id (unknown for a continuation restored from a snapshot).
    """
    found: dict[str, Any] = {"chunk_id": op["id"], "chunk_name": op["name"]}
    if run is not None:
        found["run_id"] = run
    found["operator_kind"] = "chunk"
    return found


class Scheduler(SchedulerStateMixin, FanoutMixin):
    """Routes signals through a compiled :class:`FlowSpec` as durable, queued work."""

    def __init__(
        self,
        spec: FlowSpec,
        *,
        execution_id: str,
        condition: ConditionLookup,
        host: SchedulerHost,
    ) -> None:
        super().__init__(spec, execution_id=execution_id, condition=condition)
        self.host = host
        # Work items, front first. Kinds: "sig" (dispatch a signal), "op" (run an
        # operator), "after" (apply a finished chunk's operations from index "i"), "fail"
        # (a chunk or sub-flow of the item's root failed).
        self.queue: deque[dict[str, Any]] = deque()
        # Group id -> {"n": pending count, "root": root id, "owner": what to do when done}.
        self.groups: dict[str, dict[str, Any]] = {}
        # Root id -> {"signal_id", "results", "answer", "error"} while running.
        self.roots: dict[str, dict[str, Any]] = {}
        self.done_roots: dict[str, dict[str, Any]] = {}
        # Fan-outs with items not started: instance -> record (see _fanout).
        self.fanouts: dict[str, dict[str, Any]] = {}
        self.frames = 0
        # Not durable: chunk and sub-flow tasks in flight (none at continue-as-new).
        self._tasks: dict[str, tuple[asyncio.Task[None], str]] = {}
        self._fill: list[str] = []
        self._error: BaseException | None = None
        # Not durable: the task of an intervention policy choosing (nothing else runs).
        self._choosing = ""
        # Not durable: the context each root was submitted from (its caller's trace span),
        # so that the chunks of a root run in it as they did when a caller awaited them.
        self._contexts: dict[str, contextvars.Context] = {}

    # ================================================================ roots
    def submit_signal(self, signal: dict[str, Any], *, answer: Any = "results") -> str:
        """Dispatch ``signal`` as a new root; its id (``results``: the handlers' returns)."""
        root = self._new_root(signal["id"], answer)
        self._push_back({"k": "sig", "s": signal, "g": root, "top": True})
        return root

    def submit_op(self, op: dict[str, Any], signal: dict[str, Any], *, answer: Any) -> str:
        """Run operator ``op`` on ``signal`` as a new root (a self resume re-runs its chunk)."""
        root = self._new_root(signal["id"], answer)
        self.roots[root]["results"] = [None]
        self._push_back({"k": "op", "op": op["id"], "s": signal, "g": root, "slot": 0})
        return root

    def submit_work(self, items: list[dict[str, Any]], *, answer: Any, signal_id: str) -> str:
        """Run restored work (a loaded snapshot's pending items) as one root."""
        root = self._new_root(signal_id, answer)
        for item in items:
            if item["k"] == "fanout":
                record = item["record"]
                record["g"] = root
                record["running"] = 0
                self.fanouts[item["instance"]] = record
                self.groups[root]["n"] += 1
                self._fill.append(item["instance"])
            else:
                self._push_back({**item, "g": root})
        if self.groups[root]["n"] == 0:
            self._complete(root)
        return root

    def _new_root(self, signal_id: str, answer: Any) -> str:
        root = self.next_id("root-")
        self.groups[root] = {"n": 0, "root": root, "owner": None}
        self.roots[root] = {"signal_id": signal_id, "results": None, "answer": answer}
        self._contexts[root] = contextvars.copy_context()
        return root

    def outcome(self, root: str) -> dict[str, Any] | None:
        """A finished root's ``{"results", "answer", "error"}``, or None while it runs."""
        return self.done_roots.get(root)

    def busy(self) -> bool:
        """Whether any work is pending (queued, in flight, suspended or not started)."""
        return bool(self.groups)

    def in_flight(self) -> int:
        """Chunks and sub-flows running now (continue-as-new waits for none)."""
        return len(self._tasks)

    # ================================================================ loop
    async def drive(self) -> None:
        """Take and run work until cancelled.

        Raises what no root can own (a bug, a handler missing on this worker): the workflow
        task fails and Temporal retries it.
        """
        while True:
            await workflow.wait_condition(self._runnable)
            error = self.take_error()
            if error is not None:
                # A chunk or sub-flow task died of something no root owns: raise it here,
                # where the workflow's run sees it (a silent hang otherwise).
                raise error
            self._drain()

    def _runnable(self) -> bool:
        if self._error is not None:
            return True
        return bool(self.queue or self._fill) and not self._held()

    def _held(self) -> bool:
        return self.host.hold() or self._choosing in self._tasks

    def _drain(self) -> None:
        while not self._held():
            if self._fill:
                instances, self._fill = self._fill, []
                for instance in dict.fromkeys(instances):
                    self._start_items(instance)
                continue
            if not self.queue:
                return
            item = self.queue.popleft()
            group = self.groups.get(item["g"])
            if group is None:
                continue  # its root failed meanwhile
            try:
                finished = self._run_item(item)
            except ChunkFailure as failure:
                self._fail_root(group["root"], failure.details)
                continue
            if finished:
                self._settle_one(item["g"])

    def _push_back(self, item: dict[str, Any]) -> None:
        self.groups[item["g"]]["n"] += 1
        self.queue.append(item)

    def _push_front(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.groups[item["g"]]["n"] += 1
        self.queue.extendleft(reversed(items))

    def _settle_one(self, group_id: str) -> None:
        """One pending thing of ``group_id`` finished; complete groups that reach zero."""
        group = self.groups.get(group_id)
        if group is None:
            return
        group["n"] -= 1
        if group["n"] == 0:
            self._complete(group_id)

    def _complete(self, group_id: str) -> None:
        pending = [group_id]
        while pending:
            gid = pending.pop()
            group = self.groups.pop(gid, None)
            if group is None:
                continue
            owner = group["owner"]
            if gid in self.roots:
                self._finish_root(gid, None)
            elif owner is None:
                continue
            elif owner["k"] == "frame":
                # The chunk that awaited this emit goes on with its next operation.
                self.frames -= 1
                self.queue.append(owner["item"])  # already counted in its own group
            elif owner["k"] == "fanout":
                record = self.fanouts.get(owner["fo"])
                if record is None:
                    continue
                record["running"] -= 1
                if record["items"]:
                    self._fill.append(owner["fo"])
                elif record["running"] == 0:
                    del self.fanouts[owner["fo"]]
                    parent = self.groups.get(record["g"])
                    if parent is not None:
                        parent["n"] -= 1
                        if parent["n"] == 0:
                            pending.append(record["g"])

    def _finish_root(self, root: str, error: dict[str, Any] | None) -> None:
        record = self.roots.pop(root)
        self._contexts.pop(root, None)
        record["error"] = error
        if record["answer"] != "results":
            record["results"] = None  # nobody reads them: kept out of the carry
        self.done_roots[root] = record
        while len(self.done_roots) > MAX_DONE_ROOTS:
            del self.done_roots[next(iter(self.done_roots))]
        self.host.on_root_done(record)

    def take(self, root: str) -> dict[str, Any] | None:
        """Remove and return a finished root's outcome (its caller got it)."""
        return self.done_roots.pop(root, None)

    def _fail_root(self, root: str, details: dict[str, Any]) -> None:
        """Fail the execution, drop the rest of ``root``'s work, end it with the failure."""
        self.host.on_failure(details)
        doomed = {gid for gid, group in self.groups.items() if group["root"] == root}
        for gid in doomed:
            owner = self.groups.pop(gid)["owner"]
            if owner is not None and owner["k"] == "frame":
                self.frames -= 1
        self.queue = deque(item for item in self.queue if item["g"] not in doomed)
        for instance in [i for i, r in self.fanouts.items() if r["g"] in doomed]:
            del self.fanouts[instance]
        for key, (task, task_root) in list(self._tasks.items()):
            if task_root == root:
                del self._tasks[key]
                task.cancel()
        if root in self.roots:
            self._finish_root(root, details)

    # ================================================================ work
    def _run_item(self, item: dict[str, Any]) -> bool:
        """Run one work item; False when it stays pending (a task, a suspended frame)."""
        kind = item["k"]
        if kind == "sig":
            self._dispatch(item)
            return True
        if kind == "op":
            return self._run_operator(item)
        if kind == "fail":
            raise ChunkFailure(item["details"])
        return self._after(item)

    def _dispatch(self, item: dict[str, Any]) -> None:
        signal = item["s"]
        self.last_signal = signal
        listeners = self.listeners.get((signal["trigger_type"], signal["trigger_event"]))
        self.host.on_activity()
        if not listeners:
            if item.get("top"):
                self.roots[item["g"]]["results"] = []
            return
        top = bool(item.get("top"))
        if top:
            self.roots[item["g"]]["results"] = [None] * len(listeners)
        self._push_front(
            [
                {"k": "op", "op": op["id"], "s": signal, "g": item["g"], "slot": i if top else None}
                for i, op in enumerate(listeners)
            ]
        )

    def _set_result(self, item: dict[str, Any], value: Any) -> None:
        slot = item.get("slot")
        if slot is None:
            return
        root = self.roots.get(self.groups[item["g"]]["root"])
        if root is not None and root["results"] is not None:
            root["results"][slot] = value

    def _emit(self, item: dict[str, Any], emissions: list[Any]) -> None:
        """Queue what an operator decided to emit (front: depth-first, as natively)."""
        signal = item["s"]
        self._push_front(
            [
                {
                    "k": "sig",
                    "s": self.child_signal(signal, event, value, marks, source="operator"),
                    "g": item["g"],
                }
                for event, value, marks in emissions
            ]
        )

    def _run_operator(self, item: dict[str, Any]) -> bool:
        op = self.ops.get(item["op"])
        if op is None:
            raise RuntimeError(f"operator {item['op']!r} is not in flow '{self.spec.name}'")
        signal = item["s"]
        kind = op["kind"]
        choose = None if item.get("iv") else self.host.before_operator(op, signal)
        if choose is not None:  # the intervention policy chooses first (a local activity)
            self._choosing = self._start_task(item, self._chosen(item, choose))
            return False
        if kind == "chunk":
            self._start_task(item, self._chunk_task(item, op, self.next_id("run-")))
            return False
        if kind == "sub_flow":
            self._start_task(item, self._sub_flow_task(item, op))
            return False
        if kind in ("batch_fanout", "for_each_split"):
            self._fanout(item, op)
            return True
        emission: Any
        if kind == "signal_gate":
            emission = self.gate_emission(op, signal)
        elif kind == "batch_collect":
            emission = self.batch_arrival(op, signal)
        elif kind == "for_each_collect":
            emission = self.for_each_arrival(op, signal)
        elif kind == "match_collect":
            emission = self.match_arrival(op, signal)
        elif kind == "collect_branch":
            emission = self.collect_arrival(op, signal)
        elif kind == "match_route":
            emissions, _ = self.match_route(op, signal)
            self._emit(item, emissions)
            return True
        elif kind == "intervention_point":
            event = op["emit_signals"][0]["trigger_event"]
            emission = (event, signal["value"], signal["layer_marks"])
            self._set_result(item, signal["value"])
        elif kind == "result_sink":
            self._set_result(item, self.result_sink(signal))
            return True
        else:
            raise RuntimeError(f"operator kind {kind!r} is not supported by this interpreter")
        if emission is not None:
            self._emit(item, [emission])
        return True

    # -------------------------------------------------------------- tasks
    async def _chosen(self, item: dict[str, Any], choose: Callable[[], Awaitable[None]]) -> None:
        await choose()
        self.queue.appendleft({**item, "iv": 1})  # counted already: the slot passes on

    def _start_task(self, item: dict[str, Any], coro: Awaitable[None]) -> str:
        key = self.next_id("t-")
        root = self.groups[item["g"]]["root"]
        context = self._contexts.get(root)
        if context is None:
            task = asyncio.ensure_future(self._tracked(key, coro))
        else:
            task = context.run(asyncio.ensure_future, self._tracked(key, coro))
        self._tasks[key] = (task, root)
        return key

    async def _tracked(self, key: str, coro: Awaitable[None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            return  # its root failed; nothing of it is applied
        except BaseException as error:
            self._error = error
        finally:
            self._tasks.pop(key, None)

    async def _chunk_task(self, item: dict[str, Any], op: dict[str, Any], run_id: str) -> None:
        signal = item["s"]
        try:
            output = await self.host.run_chunk(op, signal, run_id)
        except ChunkFailure as failure:
            self._chunk_failure(item, op, run_id, failure.details)
            return
        self.host.on_activity()
        self.queue.append(  # counted already: the task's pending slot passes to the frame
            {
                "k": "after",
                "op": op["id"],
                "s": signal,
                "g": item["g"],
                "slot": item.get("slot"),
                "ops": output.ops,
                "i": 0,
                "out": output.value,
                "pause": output.pause,
                "run": run_id,
            }
        )

    def _chunk_failure(
        self, item: dict[str, Any], op: dict[str, Any], run_id: str, details: dict[str, Any]
    ) -> None:
        self.host.chunk_failed(op, item["s"], run_id, details)
        if self.skip_exceptions:
            self.errors.append(details)
            self._set_result(item, {"error": details})
            self._settle_one(item["g"])
            return
        self._queue_failure(item, details)

    def _queue_failure(self, item: dict[str, Any], details: dict[str, Any]) -> None:
        """Fail the item's root when the loop reaches it (its pending slot passes on).

        Queued, not applied at once: results that finished before the failure (a sibling
        branch that paused in the same workflow task) are applied first, in order.
        """
        if item["g"] in self.groups:
            self.queue.append({"k": "fail", "g": item["g"], "details": details})

    async def _sub_flow_task(self, item: dict[str, Any], op: dict[str, Any]) -> None:
        signal = item["s"]
        try:
            result = await self.host.run_sub_flow(op, signal)
        except ChunkFailure as failure:
            self._queue_failure(item, failure.details)
            return
        except SubFlowPathError as error:  # a capture or write-back path is not there
            details = failure_details(self.spec.name, op["name"], KeyError(error.text))
            self._queue_failure(item, details)
            return
        self.host.on_activity()
        if isinstance(result, FrameDetached):
            # The child paused (its interrupts are projected here); its continuation is
            # dispatched as a new root when it ends, as natively the pause signal ends it.
            self._set_result(item, None)
            self._settle_one(item["g"])
            return
        self._set_result(item, result)
        event = op["emit_signals"][0]["trigger_event"]
        self._push_back(
            {
                "k": "sig",
                "s": self.child_signal(signal, event, result, signal["layer_marks"]),
                "g": item["g"],
            }
        )
        self._settle_one(item["g"])

    # ------------------------------------------------------ chunk results
    def _after(self, item: dict[str, Any]) -> bool:
        """Apply a finished chunk's operations; False when it waits for an emitted chain."""
        op = self.ops[item["op"]]
        signal = item["s"]
        ops = item["ops"]
        try:
            while item["i"] < len(ops):
                record = ops[item["i"]]
                item["i"] += 1
                emitted = self.host.apply_op(record, signal, op)
                if emitted is None:
                    continue
                if item["i"] == len(ops) and item["pause"] is None and not self._listened(op):
                    # Tail emit: nothing of this chunk waits for the emitted chain.
                    self._finish_chunk(item, op, None)
                    self._push_back({"k": "sig", "s": emitted, "g": item["g"]})
                    return True
                return self._suspend(item, op, emitted)
            interrupt = None
            if item["pause"] is not None:
                interrupt = self.host.record_pause(op, signal, item["pause"])
        except ChunkFailure as failure:
            self._chunk_failure_in_after(item, op, failure.details)
            return False
        self._finish_chunk(item, op, interrupt)
        if interrupt is None:
            event = self.continuation_event(op)
            if event is not None:
                self._push_back(
                    {
                        "k": "sig",
                        "s": self.child_signal(
                            signal,
                            event,
                            item["out"],
                            signal["layer_marks"],
                            meta={"origin_chunk": origin_chunk(op, item["run"])},
                        ),
                        "g": item["g"],
                    }
                )
        return True

    def _chunk_failure_in_after(
        self, item: dict[str, Any], op: dict[str, Any], details: dict[str, Any]
    ) -> None:
        # Same as a failure of the chunk itself; the item is still counted in its group.
        self._chunk_failure(item, op, item["run"], details)

    def _finish_chunk(
        self, item: dict[str, Any], op: dict[str, Any], interrupt: dict[str, Any] | None
    ) -> None:
        self.host.chunk_done(op, item["s"], item["run"], item["out"], interrupt)
        self._set_result(item, interrupt if interrupt is not None else item["out"])

    def _listened(self, op: dict[str, Any]) -> bool:
        event = self.continuation_event(op)
        return event is not None and self.has_listener("event", event)

    def _suspend(self, item: dict[str, Any], op: dict[str, Any], emitted: dict[str, Any]) -> bool:
        """Park ``item`` until the chain of ``emitted`` is done (``await data.async_emit``)."""
        if self.frames >= MAX_FRAMES:
            raise ChunkFailure(
                chunk_failure_details(
                    flow_name=self.spec.name,
                    chunk_name=op["name"],
                    error_type="RecursionError",
                    error_module="builtins",
                    message=(
                        f"TriggerFlow execution '{self.execution_id}' has {MAX_FRAMES} chunks "
                        "waiting for chains they emitted (await data.async_emit(...) nested "
                        "that deep). A loop that re-emits its own trigger runs in constant "
                        "space when the emit is the chunk's last act and nothing listens to "
                        "the chunk's completion; or use data.emit_nowait(...)."
                    ),
                )
            )
        group = self.next_id("g-")
        self.groups[group] = {
            "n": 0,
            "root": self.groups[item["g"]]["root"],
            "owner": {"k": "frame", "item": item},
        }
        self.frames += 1
        self._push_back({"k": "sig", "s": emitted, "g": group})
        return False

    # ============================================================= export
    def take_error(self) -> BaseException | None:
        """An unexpected error raised by a task (re-raised by the workflow's run)."""
        error, self._error = self._error, None
        return error
