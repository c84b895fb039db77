"""The interpreter workflow's side of runtime version 3 (a mixin; workflow code, no I/O).

The :class:`~._scheduler.Scheduler` holds the pending work as data; this mixin is its host:
it runs chunks as activities, applies what they recorded, records pauses, and lets callers
(start, emits, resumes, loads) wait for the root of work they submitted. A caller's wait
ends when the root is done, or when this run is about to continue as new with the root's
work still pending: then the update answers ``{SETTLE_KEY: root}`` and the client waits
with ``settle`` in the next run, which answers the root's outcome (roots are carried).
"""

from __future__ import annotations

import copy
from typing import Any, cast

from temporalio import workflow

from ..spec.limits import MAX_RUN_EVENTS
from ..spec.state import apply_state_op
from ..spec.wire import SETTLE_KEY, chunk_failed_error
from .resume_ledger import finish_resume, note_resume
from .scheduler import Scheduler, origin_chunk
from .signal_net import DEFAULT_FANOUT_CONCURRENCY, failure_details
from .subflow import SubFlowPathError, open_envelope
from .workflow_base import WorkflowBase


class Held:
    """A root whose work goes on in the next run (the caller settles there)."""

    def __init__(self, root: str) -> None:
        self.root = root


class SchedulerHostMixin(WorkflowBase):
    """Runtime-version-3 wiring of :class:`~._workflow.TriggerFlowWorkflow`."""

    # Provided by the workflow class and its other mixins.

    @property
    def _sched(self) -> Scheduler:
        return cast(Scheduler, self._engine)

    # ================================================================ roots
    async def _external_root(
        self, signal: dict[str, Any], *, op: dict[str, Any] | None, answer: Any
    ) -> Any:
        """Submit work from outside (start, emit, resume); its answer, or :class:`Held`."""
        self._log_signal(signal)
        if op is None:
            root = self._sched.submit_signal(signal, answer=answer)
        else:
            root = self._sched.submit_op(op, signal, answer=answer)
        note_resume(self._sched.roots[root], signal)
        return await self._await_root(root)

    async def _await_root(self, root: str) -> Any:
        await workflow.wait_condition(
            lambda: self._sched.outcome(root) is not None or self._hand_over_due()
        )
        self._refresh_status()
        outcome = self._sched.take(root)
        if outcome is None:
            return Held(root)
        return self._answer(outcome)

    def _answer(self, outcome: dict[str, Any]) -> Any:
        """What a finished root answers its caller (raises its failure)."""
        if outcome.get("error") is not None:
            raise chunk_failed_error(outcome["error"])
        answer = outcome.get("answer")
        if answer == "results":
            return outcome.get("results")
        if isinstance(answer, list) and answer and answer[0] == "interrupt":
            return copy.deepcopy(self._interrupts.get(answer[1]))
        if answer == "info":
            return self.info_query()
        return None

    async def _settle_root(self, root: str) -> dict[str, Any]:
        """The ``settle`` update for a root handed over by an earlier run."""
        await workflow.wait_condition(
            lambda: (
                self._sched.outcome(root) is not None
                or root not in self._sched.roots
                or self._hand_over_due()
            )
        )
        outcome = self._sched.take(root)
        if outcome is None:
            if root not in self._sched.roots:
                return {"settled": True, "result": None}  # long finished; outcome dropped
            return {"settled": False}
        return {"settled": True, "result": self._answer(outcome)}

    def _submit_start(self, value: Any) -> None:
        """START as a root nobody awaits (a hidden execution's start in ``_run``).

        A sub-flow's start value may be its parent's capture envelope: the child's state
        and resources are seeded from it before START (interpreter/subflow.py).
        """
        try:
            opened = open_envelope(value, self._options.runtime_resources)
        except SubFlowPathError as error:
            if self._begin(None) is not None:
                # Agently's KeyError, failing this child and so its parent's sub-flow.
                self.on_failure(failure_details(self._spec.name, "START", KeyError(error.text)))
            return
        if opened is not None:
            value, runtime_data, resources = opened
            if runtime_data:
                self._engine.state.update(runtime_data)
                self._engine.state_version += 1
            if resources:
                self._options.runtime_resources = {**self._options.runtime_resources, **resources}
        signal = self._begin(value)
        if signal is None:
            return
        self._log_signal(signal)
        self._sched.submit_signal(signal, answer=None)

    def _submit_pending_work(self) -> None:
        """Run what a loaded snapshot had pending, as one root ``loaded`` waits for."""
        work, self._pending_work = self._pending_work, []
        if self._status in ("created", "waiting"):
            self._status = "running"
        items = restored_work(self._sched, work)
        self._load_root = self._sched.submit_work(
            items, answer="info", signal_id=f"load:{workflow.info().run_id}"
        )
        self._restore_done = True

    def _hold(self) -> bool:
        """No new work starts: this run is about to continue as new."""
        # "closed", not "not open": a sealed execution continues as new too (before sealing
        # existed "sealed" only meant closing, so older histories keep their commands).
        if self._lifecycle == "closed" or self._closing:
            return False
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= MAX_RUN_EVENTS
            or self._markers_at_bound()  # version 4: MAX_RUN_MARKERS local activities
        )

    def _hand_over_due(self) -> bool:
        return self._hold() and self._sched.in_flight() == 0 and self._handover_ready()

    def _broken(self) -> bool:
        """The run must stop: the drive loop died, or a hidden execution failed."""
        if self._drive is None:
            return False
        return self._drive.done() or (self._options.hidden and self._status == "failed")

    def _raise_if_broken(self) -> None:
        if self._drive is None or not self._broken():
            return
        if self._drive.done():
            self._drive.result()  # an unexpected error: fail the workflow task (retried)
            raise RuntimeError("the TriggerFlow drive loop stopped")
        if self._error is not None:
            raise chunk_failed_error(self._error)

    # ============================================================ host: chunks
    def apply_op(
        self, record: list[Any], signal: dict[str, Any], op: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Apply one operation a chunk recorded; a signal to dispatch and wait for, or None."""
        kind = record[0]
        if kind in ("set", "append", "del"):
            return self._state_change(record)
        if kind in ("emit", "emit_nowait"):
            emitted = self._engine.make_signal(
                record[1],
                record[2],
                trigger_type=record[3],
                layer_marks=signal["layer_marks"],
                source="chunk",
                meta=self._engine.child_meta(signal),
            )
            self._resolve_resume_event_now(emitted)
            if kind == "emit":
                return emitted
            self._sched.submit_signal(emitted, answer=None)  # handed off: nobody waits
            return None
        self._apply_stream_op(record, op)
        return None

    def _state_change(self, record: list[Any]) -> dict[str, Any] | None:
        """Apply a state operation; the ``runtime_data`` signal its watchers need, if any."""
        changed, value = apply_state_op(self._engine.state, record)
        if not changed:
            return None
        self._engine.state_version += 1
        self._touch()
        key, emit = record[1], record[-1]
        if emit and self._engine.has_listener("runtime_data", key):
            return self._engine.make_signal(
                key, value, trigger_type="runtime_data", source="runtime_data"
            )
        return None

    async def _set_state_root(self, record: list[Any]) -> Any:
        """``set_state`` from outside: apply, then wait for the watchers it woke."""
        watched = self._state_change(record)
        if watched is None:
            return None
        return await self._await_root(self._sched.submit_signal(watched, answer=None))

    def on_activity(self) -> None:
        """Scheduler host: something happened."""
        self._touch()

    def on_failure(self, details: dict[str, Any]) -> None:
        """Scheduler host: a root failed."""
        self._fail(details)
        self._refresh_status()

    def on_root_done(self, root: dict[str, Any]) -> None:
        """Scheduler host: close the signal-log entry of a finished root."""
        status = "failed" if root.get("error") is not None else "completed"
        for entry in reversed(self._signal_log):
            if entry["signal_id"] == root["signal_id"]:
                entry["status"] = status
                entry["updated_at"] = self._now()
                break
        finish_resume(self._interrupts, root, self._now())
        self._refresh_status()

    def hold(self) -> bool:
        """Scheduler host: no new work starts while continue-as-new is due."""
        return self._hold()

    def _awaited_interrupts(self) -> set[str]:
        """Interrupts whose ``continue_with`` caller has not had the record yet.

        Their resumed chains go on (or finished) in a later run, whose ``settle`` answers
        with the record: the carry keeps it whatever the window of finished records holds.
        """
        if not self._v3:
            return set()
        roots = [*self._sched.roots.values(), *self._sched.done_roots.values()]
        return {
            root["answer"][1]
            for root in roots
            if isinstance(root.get("answer"), list) and root["answer"][:1] == ["interrupt"]
        }

    def _settle_marker(self, result: Any) -> Any:
        """An update's answer: ``{SETTLE_KEY: root}`` when its root went on in later runs."""
        if isinstance(result, Held):
            return {SETTLE_KEY: result.root, "result": None}
        return result


def restored_work(net: Scheduler, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A snapshot's ``pending`` entries (any runtime version) as work items to run on load."""
    items: list[dict[str, Any]] = []
    for entry in pending:
        kind = entry.get("kind")
        if kind == "work":
            items.append(copy.deepcopy(entry["item"]))
            continue
        op = net.ops.get(entry.get("op") or "")
        if op is None:
            continue  # checked by the client before the load
        elif kind == "fanout":
            record = {
                key: copy.deepcopy(entry[key])
                for key in ("op", "signal", "items", "concurrency", "marks", "instance")
                if key in entry
            }
            record["concurrency"] = record.get("concurrency") or DEFAULT_FANOUT_CONCURRENCY
            items.append({"k": "fanout", "instance": entry["instance"], "record": record})
        elif kind == "continue":
            event = net.continuation_event(op)
            if event is not None:
                signal = entry["signal"]
                items.append(
                    {
                        "k": "sig",
                        "s": net.child_signal(
                            signal,
                            event,
                            entry.get("result"),
                            signal["layer_marks"],
                            meta={"origin_chunk": origin_chunk(op, entry.get("run"))},
                        ),
                    }
                )
        else:  # a chunk run in flight when the snapshot was taken: run it again
            items.append({"k": "op", "op": op["id"], "s": copy.deepcopy(entry["signal"])})
    return items
