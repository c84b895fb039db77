"""What a run hands on (workflow side, deterministic): held fan-outs, continue-as-new and snapshots.

The carry of continue-as-new (bounded windows, :mod:`.carry_bounds`), the snapshot that
``save()`` returns and ``load()`` restores, and the for_each items a run holds for the next.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from .._errors import ChunkOutputError
from ..spec.limits import (
    MAX_ERRORS,
    MAX_FINISHED_INTERVENTION_BYTES,
    MAX_FINISHED_INTERVENTIONS,
    MAX_PAYLOAD_BYTES,
    MAX_REJECTED_BYTES,
    MAX_REJECTED_REQUESTS,
    MAX_RESOLVED_INTERRUPT_BYTES,
    MAX_RESOLVED_INTERRUPTS,
)
from ..spec.state import describe_size, json_size
from .carry_bounds import keep_newest, keep_window
from .interventions import STATE_KEY as INTERVENTIONS_KEY
from .legacy_engine import (
    DEFAULT_FANOUT_CONCURRENCY,
    JOIN_KINDS,
    gather_cancel_on_error,
)
from .snapshot import build_snapshot
from .workflow_base import (
    BOUNDED_FANOUT_VERSION,
    CHAIN_MAY_HOLD,
    WorkflowBase,
)


class CarryMixin(WorkflowBase):
    """Fan-out holding, continue-as-new carry and snapshots of the workflow."""

    # ============================================================== fan-outs
    def _check_carry(self, carry: dict[str, Any]) -> None:
        if not self._fanout_bounded():
            return
        size = json_size(carry)
        if size <= MAX_PAYLOAD_BYTES:
            return
        message = (
            f"TriggerFlow execution '{self._execution_id}' cannot continue as new: its "
            f"state, join progress and logs are {describe_size(size)} of JSON, over the "
            f"{describe_size(MAX_PAYLOAD_BYTES)} this runtime carries between runs (Temporal "
            "refuses payloads over 2 MiB). Keep large outputs in the Workspace and their refs "
            "in state."
        )
        raise ApplicationError(
            message,
            {
                "type": ChunkOutputError.__name__,
                "module": ChunkOutputError.__module__,
                "message": message,
            },
            type=ChunkOutputError.__name__,
            non_retryable=True,
        )

    def _fanout_bounded(self) -> bool:
        """Whether this execution caps fan-outs by default and holds them for CAN."""
        return self._options.runtime_version >= BOUNDED_FANOUT_VERSION

    def _fanout_limit(self) -> int | None:
        """In-flight cap of a fan-out that has no ``concurrency`` (None: unbounded)."""
        return DEFAULT_FANOUT_CONCURRENCY if self._fanout_bounded() else None

    def _hold_fanout(self) -> bool:
        """Dispatch no new for_each item: continue-as-new is suggested and may happen.

        In-flight items finish, the rest is carried to the next run. Never while closing
        (close drains everything in this run) nor in a chain an update awaits.
        """
        return (
            CHAIN_MAY_HOLD.get()
            and self._lifecycle != "closed"  # sealed by async_seal(): held as when open
            and not self._closing
            and workflow.info().is_continue_as_new_suggested()
            and self._fanout_bounded()
        )

    def _resume_held_fanouts(self) -> bool:
        """Dispatch the rest of every held for_each in the background; True if there was any.

        Called when a run starts from a carry, and by close when it overtook the
        continue-as-new the items were held for.
        """
        held = [instance for instance, record in self._legacy.fanouts.items() if record["held"]]
        for instance in held:
            self._legacy.fanouts[instance]["held"] = False
            self._legacy.active += 1  # counted from now: no continue-as-new before it runs
            self._detached.append(asyncio.ensure_future(self._run_held_fanout(instance)))
        return bool(held)

    async def _run_held_fanout(self, instance: str) -> None:
        CHAIN_MAY_HOLD.set(True)  # nobody awaits this chain: it may be held again
        try:
            await self._guarded(self._legacy.resume_fanout(instance))
        except ApplicationError:
            pass  # recorded as the execution's failure; nobody awaits this work
        finally:
            self._legacy.active -= 1
            self._touch()

    async def _drain_for_close(self) -> None:
        """Wait until in-flight work is done, dispatching held for_each items in this run."""
        if self._v3:
            # Closing lifts the hold: the drive loop runs everything pending in this run.
            await workflow.wait_condition(lambda: not self._sched.busy() or self._broken())
            self._raise_if_broken()
            return
        while True:
            await workflow.wait_condition(
                lambda: self._legacy.active == 0 and all(t.done() for t in self._detached)
            )
            if not self._resume_held_fanouts():
                return

    def _pending_snapshot_work(self, exclude: str | None = None) -> list[dict[str, Any]]:
        """What a snapshot taken now runs on load.

        Chunk runs in flight (but ``exclude``) and work not started (queued, suspended,
        for_each items not dispatched).
        """
        if self._v3:
            return self._sched.pending_work([v for k, v in self._inflight.items() if k != exclude])
        inflight = [copy.deepcopy(v) for k, v in self._inflight.items() if k != exclude]
        return inflight + self._pending_fanouts()

    def _pending_fanouts(self) -> list[dict[str, Any]]:
        """Undispatched for_each items, as snapshot pending work (re-dispatched on load)."""
        return [
            {"kind": "fanout", "instance": instance, **copy.deepcopy(record)}
            for instance, record in self._legacy.fanouts.items()
        ]

    # ======================================================= continue-as-new
    def _export_runtime(self) -> dict[str, Any]:
        if self._v3:
            self._trim_for_carry()
        return {
            "engine": self._engine.export(),
            "status": self._status,
            "lifecycle": self._lifecycle,
            "sealed_at": self._sealed_at,
            "started": self._started,
            "interrupts": copy.deepcopy(self._interrupts),
            "error": copy.deepcopy(self._error),
            "created_at": self._created_at,
            "started_at": self._started_at,
            "last_activity_at": self._last_activity_at,
            "deadlines": copy.deepcopy(self._deadlines),
            "intervention": self._interventions.section(),
            "signal_log": copy.deepcopy(self._signal_log),
            "rejected": copy.deepcopy(self._rejected),
            "steps": self._steps,
            "observe": self._export_stream(),
            "notify": self._export_notify(),
            **({"frames": self._export_frames()} if self._frames else {}),
        }

    def _trim_for_carry(self) -> None:
        """Keep only a window of finished records: the carry must not grow with age."""
        awaited = self._awaited_interrupts()
        self._interrupts = keep_window(
            self._interrupts,
            live=lambda record: record["status"] == "waiting" or record["id"] in awaited,
            max_count=MAX_RESOLVED_INTERRUPTS,
            max_bytes=MAX_RESOLVED_INTERRUPT_BYTES,
        )
        ledger = self._interventions.records
        kept = keep_window(
            ledger,
            live=lambda record: record["status"] == "pending",
            max_count=MAX_FINISHED_INTERVENTIONS,
            max_bytes=MAX_FINISHED_INTERVENTION_BYTES,
        )
        if len(kept) != len(ledger):
            self._interventions.records = kept
            self._engine.state[INTERVENTIONS_KEY] = copy.deepcopy(kept)
        self._rejected = keep_newest(
            self._rejected, max_count=MAX_REJECTED_REQUESTS, max_bytes=MAX_REJECTED_BYTES
        )
        del self._engine.errors[:-MAX_ERRORS]
        self._trim_stream()

    def _restore_runtime(self, carry: dict[str, Any]) -> None:
        self._engine.restore(carry.get("engine") or {})
        self._status = carry.get("status", self._status)
        self._lifecycle = carry.get("lifecycle", self._lifecycle)
        self._sealed_at = carry.get("sealed_at")
        self._started = bool(carry.get("started"))
        self._interrupts = copy.deepcopy(carry.get("interrupts") or {})
        self._error = copy.deepcopy(carry.get("error"))
        self._created_at = carry.get("created_at", self._created_at)
        self._started_at = carry.get("started_at")
        self._last_activity_at = carry.get("last_activity_at", self._last_activity_at)
        self._deadlines = copy.deepcopy(carry.get("deadlines") or {})
        if carry.get("intervention"):
            self._interventions.restore(carry["intervention"])
        self._signal_log = copy.deepcopy(carry.get("signal_log") or [])
        self._rejected = copy.deepcopy(carry.get("rejected") or [])
        self._steps = int(carry.get("steps") or 0)
        self._restore_frames(carry.get("frames") or {}, carried=True)

    # ============================================================ snapshots
    def _snapshot(self, pending: list[dict[str, Any]]) -> dict[str, Any]:
        """The execution in Agently's schema v2 shape (``async_save``)."""
        resource_keys = {key: "flow" for key in self._runtime.chunk_resources(self._spec.name, {})}
        resource_keys.update({key: "execution" for key in self._options.runtime_resources})
        engine = self._engine.export_net()
        options = {
            "auto_close": self._options.auto_close,
            "auto_close_timeout": self._options.auto_close_timeout,
            "skip_exceptions": self._options.skip_exceptions,
            "concurrency": self._options.concurrency,
            "intervention_mode": self._interventions.mode,
            "tenant": self._options.tenant,
        }
        return build_snapshot(
            execution_id=self._execution_id,
            run_id=workflow.info().run_id,
            flow_name=self._spec.name,
            blueprint_hash=self._spec.blueprint_hash,
            spec=self._spec.to_json(),
            options=options,
            task_queue=workflow.info().task_queue,
            status=self._status,
            lifecycle=self._lifecycle,
            started=self._started,
            state=self._engine.state,
            state_version=self._engine.state_version,
            flow_data=self._runtime.flow_data(self._spec.name),
            interrupts=self._interrupts,
            intervention=self._interventions.section(),
            last_signal=self._engine.last_signal,
            signal_attempts=self._signal_log,
            joins=engine["joins"],
            engine={"seq": engine["seq"], "errors": engine["errors"]},
            pending=pending,
            deadlines=self._deadlines,
            rejected_requests=self._rejected,
            error=self._error,
            close_snapshot=self._close_snapshot,
            close_reason=self._close_reason,
            resource_keys=resource_keys,
            created_at=self._created_at,
            started_at=self._started_at,
            last_activity_at=self._last_activity_at,
            closed_at=self._closed_at,
            sealed_at=self._sealed_at,
            now=self._now(),
            sub_flow_frames=self._saved_frames(),
            bindings=self._engine.bindings,
        )

    def _restore_snapshot(self, saved: dict[str, Any]) -> None:
        """Seed this new workflow from a parsed snapshot (``async_load``)."""
        system = saved["durable_system_state"]
        extra = system.get("temporal") or {}
        engine = extra.get("engine") or {}
        self._engine.restore(
            {
                "state": saved["runtime_data"],
                "state_version": saved.get("state_version") or 0,
                "joins": {kind: system.get(kind) or {} for kind in JOIN_KINDS},
                "seq": engine.get("seq") or 0,
                "last_signal": saved.get("last_signal") or None,
                "errors": engine.get("errors") or [],
                "bindings": (saved.get("signal_net") or {}).get("bindings") or [],
            }
        )
        self._status = saved["status"]
        self._lifecycle = saved["lifecycle_state"]
        self._sealed_at = saved.get("sealed_at") if self._lifecycle != "closed" else None
        if self._lifecycle == "sealed" and self._sealed_at is None:
            # Saved mid-close (close seals without a sealed_at): the copy drains and closes
            # itself. Sealed by async_seal() (sealed_at set): the copy stays sealed.
            self._lifecycle = "open"
        self._started = bool(extra.get("started"))
        self._interrupts = copy.deepcopy(saved["interrupts"])
        mode = self._interventions.mode
        self._interventions.restore(saved["intervention"])
        if mode is not None:
            self._interventions.mode = mode  # the loading caller's choice wins
        self._engine.state[INTERVENTIONS_KEY] = copy.deepcopy(self._interventions.records)
        self._deadlines = copy.deepcopy(extra.get("deadlines") or {})
        self._rejected = copy.deepcopy(extra.get("rejected_requests") or [])
        self._error = copy.deepcopy(extra.get("error"))
        self._signal_log = copy.deepcopy(
            (saved.get("signal_net") or {}).get("signal_attempts") or []
        )
        self._pending_work = copy.deepcopy(extra.get("pending") or [])
        self._restore_frames(saved.get("sub_flow_frames") or {}, carried=False)
        self._started_at = saved.get("started_at")
        if self._lifecycle == "closed":
            self._close_snapshot = copy.deepcopy(self._engine.state)
            self._close_reason = saved.get("close_reason")
            self._closed_at = saved.get("closed_at")
            self._pending_work = []
        if not workflow.unsafe.is_replaying():
            # flow_data is worker-local and not durable (as natively); load replaces it.
            flow_data = self._runtime.flow_data(self._spec.name)
            flow_data.clear()
            flow_data.update(copy.deepcopy(saved.get("flow_data") or {}))

    async def _resume_pending_work(self) -> None:
        """Re-run what was in flight when the snapshot was taken (at least once)."""
        work, self._pending_work = self._pending_work, []
        coros = []
        for item in work:
            op = self._engine.ops.get(item.get("op", ""))
            if op is None:
                continue  # checked by the client before the load
            if item.get("kind") == "fanout":
                # for_each items not dispatched when the snapshot was taken.
                instance = item["instance"]
                self._legacy.fanouts[instance] = {
                    key: copy.deepcopy(item[key])
                    for key in ("op", "signal", "items", "concurrency")
                }
                self._legacy.fanouts[instance]["held"] = True
                coros.append(self._legacy.resume_fanout(instance))
                continue
            signal = item["signal"]
            if item.get("kind") == "continue":
                coros.append(self._legacy.continue_after_chunk(op, signal, item.get("result")))
            else:
                coros.append(self._legacy.run_operator(op, signal))
        if self._status in ("created", "waiting"):
            self._status = "running"
        self._legacy.active += 1
        # The ``loaded`` update waits for this work to be quiescent: before the bounded
        # fan-out it finished in this run; from it, the client settles across runs.
        token = CHAIN_MAY_HOLD.set(self._fanout_bounded())
        try:
            await self._guarded(gather_cancel_on_error(coros))
        except ApplicationError:
            pass  # recorded as the execution's failure
        finally:
            CHAIN_MAY_HOLD.reset(token)
            self._legacy.active -= 1
            self._restore_done = True
            self._touch()
