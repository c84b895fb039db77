"""Sub-flows as child workflows, and their pauses projected to the parent.

A mixin of the interpreter workflow; all of it is workflow code (deterministic, no I/O).

``to_sub_flow`` runs the child flow as a child workflow. From runtime version 4
(``SUB_FLOW_PAUSE_VERSION``) a child may pause, as natively (Agently 4.1.4.10,
triggerflow-semantics.md 3.10):

- The child is started with ``ExecutionOptions.sub_flow_parent`` and
  ``ParentClosePolicy.ABANDON`` (it must outlive a parent run that continues as new). It
  reports each of its interrupts to the parent with the ``sub_flow_report`` signal when it
  is raised, resumed or cancelled, and, once it has reported one, its end.
- The parent keeps a *frame* per child (Agently's ``sub_flow_frames`` record) and projects
  each child interrupt as its own, id ``"<frame id>:<child interrupt id>"`` with
  ``local_interrupt_id``, ``sub_flow_frame_id`` and ``child_interrupt``, so the parent is
  ``waiting`` and its queries, snapshot and search attributes show the child's pause. The
  sub-flow operator settles without a continuation (natively the parent chunk returns a
  pause signal): the frame is *detached*.
- ``continue_with(<projected id>)`` on the parent is checked there (unknown and stale ids
  are refused by the validator, as any interrupt) and forwarded to the child as its
  ``continue_with_nowait`` signal. When the child ends it reports its close snapshot; the
  parent writes it back and dispatches the operator's continuation as a new root, which
  the forwarding ``continue_with`` awaits.
- Children reported after a frame ended are ignored; closing the parent with
  ``pending_interrupts="cancel"`` cancels its waiting children (``sub_flow_cancel``).
- Frames are carried over continue-as-new and saved in the snapshot's
  ``sub_flow_frames``; the client fills ``child_saved_state`` with the child's own
  snapshot, and a loaded parent starts each waiting child again from it.

Executions started before version 4 keep running a child to its end in one await (a child
that paused never ended), so their histories replay unchanged.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from ..spec import wire
from ..spec.notifications import INTERRUPT_CREATED, INTERRUPT_RESUMED
from ..spec.wire import ContinueRequest, ExecutionOptions, WorkflowInput, failure_from_activity
from .events import error_info
from .resume_ledger import ROOT_KEY
from .scheduler_host import Held
from .signal_net import ChunkFailure
from .subflow import FrameDetached, capture_input, write_back_value
from .workflow_base import SUB_FLOW_PAUSE_VERSION, WorkflowBase

# Frame keys of this runtime only (kept out of the snapshot's native frame record).
_PRIVATE = ("detached", "seq", "ended", "outcome", "root", "restart")


class SubFlowFramesMixin(WorkflowBase):
    """Sub-flow runs and frames of :class:`~.workflow.TriggerFlowWorkflow`."""

    # Frame id -> frame record (Agently's keys plus _PRIVATE), while the child runs or
    # waits: the record is dropped when the child ends, so the map is bounded by the
    # sub-flows in flight and paused, not by the execution's length.
    _frames: dict[str, dict[str, Any]]
    # Child side: the reports sent to the parent, in order (one chain of signals).
    _report_chain: asyncio.Future[None] | None
    # Parent side: cancel signals to waiting children, awaited before the run ends.
    _frame_signals: list[asyncio.Future[None]]

    # ================================================================ parent side
    async def _run_sub_flow(self, op: dict[str, Any], signal: dict[str, Any]) -> Any:
        options = op["options"]
        child = self._spec.sub_flows.get(options["sub_flow_name"])
        if child is None:
            raise RuntimeError(f"sub-flow {options['sub_flow_name']!r} missing from the spec")
        child_input = capture_input(options.get("capture") or {}, signal, self._engine.state)
        child_id = f"{self._execution_id}:{op['id']}:{self._engine.next_id('child-')}"
        frame = {
            "child_execution_id": child_id,
            "operator_id": op["id"],
            "sub_flow_name": child.name,
        }
        self._emit(
            "triggerflow.sub_flow_started",
            f"TriggerFlow execution '{self._execution_id}' started sub-flow '{child.name}'.",
            lambda: {**frame, "input": child_input},
        )
        child_options = ExecutionOptions(
            auto_close=True,
            auto_close_timeout=0.0,
            hidden=True,
            runtime_resources=self._options.runtime_resources,
            tenant=self._options.tenant,
            runtime_version=self._options.runtime_version,
        )
        start = WorkflowInput(
            spec=self._spec_input(child), options=child_options, start={"value": child_input}
        )
        summary = f"{child.name} (sub-flow of {self._spec.name})"
        try:
            if self._options.runtime_version >= SUB_FLOW_PAUSE_VERSION:
                result = await self._run_pausable_child(op, signal, child_id, start, summary)
                if isinstance(result, FrameDetached):
                    return result
            else:
                result = await workflow.execute_child_workflow(
                    child.name,
                    self._wire_input(start),
                    id=child_id,
                    result_type=dict,
                    static_summary=summary,
                )
        except ChildWorkflowError as error:
            details = failure_from_activity(error, child.name, op["name"])
            self._sub_flow_failed(frame, details)
            raise ChunkFailure(details) from None
        self._sub_flow_completed(frame, result)
        return write_back_value(options.get("write_back") or {}, result, signal, self._engine.state)

    def _sub_flow_failed(self, frame: dict[str, Any], details: dict[str, Any]) -> None:
        self._emit(
            "triggerflow.sub_flow_failed",
            f"TriggerFlow execution '{self._execution_id}' sub-flow '{frame['sub_flow_name']}' "
            "failed.",
            frame,
            level="ERROR",
            error=error_info(details),
        )

    def _sub_flow_completed(self, frame: dict[str, Any], result: Any) -> None:
        self._emit(
            "triggerflow.sub_flow_completed",
            f"TriggerFlow execution '{self._execution_id}' sub-flow '{frame['sub_flow_name']}' "
            "completed.",
            lambda: {**frame, "result": result},
        )

    async def _run_pausable_child(
        self,
        op: dict[str, Any],
        signal: dict[str, Any],
        child_id: str,
        start: WorkflowInput,
        summary: str,
    ) -> Any:
        """Run the child; its close snapshot, or :class:`FrameDetached` once it paused."""
        start.options.sub_flow_parent = {"workflow_id": self._execution_id, "frame_id": child_id}
        start.options.started_by = self._options.started_by
        now = self._now()
        frame = self._frames[child_id] = {
            "frame_id": child_id,
            "status": "running",
            "parent_execution_id": self._execution_id,
            "parent_operator_id": op["id"],
            "child_execution_id": child_id,
            "child_flow_name": op["options"]["sub_flow_name"],
            "created_at": now,
            "started_at": now,
            "parent_signal": copy.deepcopy(signal),
            "parent_layer_marks": copy.deepcopy(signal.get("layer_marks") or []),
            "parent_value": copy.deepcopy(signal.get("value")),
            "projected_interrupts": {},
            "resource_bindings": {},
            "resource_keys": sorted(self._options.runtime_resources),
            "child_saved_state": None,
            "projected_root_interrupt_ids": [],
            "detached": False,
            "seq": 0,
        }
        handle = await workflow.start_child_workflow(
            op["options"]["sub_flow_name"],
            self._wire_input(start),
            id=child_id,
            result_type=dict,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=summary,
        )
        # Read once detached (the child's end then comes as a report): never left unread.
        handle.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            await workflow.wait_condition(lambda: handle.done() or frame["status"] == "waiting")
        except asyncio.CancelledError:
            handle.cancel()  # the root failed: the child goes with it, as before
            self._frames.pop(child_id, None)
            raise
        if not handle.done():
            frame["detached"] = True
            return FrameDetached(child_id)
        self._frames.pop(child_id, None)
        return await handle

    @workflow.signal(name=wire.SIGNAL_SUB_FLOW_REPORT)
    def sub_flow_report(self, report: dict[str, Any]) -> None:
        """A child's interrupt changed, or a detached child ended."""
        frame = self._frames.get(str(report.get("frame_id")))
        if frame is None:
            return  # the frame ended or was cancelled: a late report changes nothing
        kind = report.get("kind")
        if kind == "interrupt":
            seq = int(report.get("seq") or 0)
            if seq <= frame["seq"]:
                return
            frame["seq"] = seq
            self._project(frame, report["interrupt"])
        elif kind in ("done", "failed") and frame["detached"]:
            self._frame_ended(frame, report)

    def _project(self, frame: dict[str, Any], child_record: dict[str, Any]) -> None:
        """Mirror one child interrupt into this execution's interrupts (native keys)."""
        local_id = child_record["id"]
        projected_id = f"{frame['frame_id']}:{local_id}"
        existing = self._interrupts.get(projected_id)
        status = child_record["status"]
        if status == "waiting":
            if existing is not None and existing["status"] == "waiting":
                return
            record = copy.deepcopy(child_record)
            record.update(
                id=projected_id,
                local_interrupt_id=local_id,
                sub_flow_frame_id=frame["frame_id"],
                child_interrupt=copy.deepcopy(child_record),
            )
            self._interrupts[projected_id] = record
            # Only the child's pauses still open and this one: a child that pauses again
            # and again (a review loop) must not grow its frame per cycle.
            frame["projected_interrupts"] = {
                pid: lid
                for pid, lid in frame["projected_interrupts"].items()
                if (self._interrupts.get(pid) or {}).get("status") == "waiting"
            }
            frame["projected_interrupts"][projected_id] = local_id
            frame["projected_root_interrupt_ids"] = list(frame["projected_interrupts"])
            frame["status"] = "waiting"
            self._touch()
            self._put_stream_item(
                {
                    "type": "interrupt",
                    "action": "project",
                    "execution_id": self._execution_id,
                    "sub_flow_frame_id": frame["frame_id"],
                    "interrupt": record,
                },
                system=True,
            )
            self._on_interrupt_raised(record, frame["parent_signal"])
            self._notify(INTERRUPT_CREATED, record)
            self._refresh_status()
            return
        if existing is None or existing["status"] != "waiting":
            return  # resumed here first (forwarded), or never seen waiting
        # Resumed or cancelled in the child itself (its timeout, an event, a message).
        existing["status"] = status
        existing["child_interrupt"] = copy.deepcopy(child_record)
        for key in ("resumed_at", "resume_value", "response", "resumed_by"):
            if key in child_record:
                existing[key] = copy.deepcopy(child_record[key])
        if status == "resumed":
            frame["status"] = "running"
            self._on_interrupt_resumed(existing, child_record.get("resume_value"))
        self._touch()
        self._refresh_status()

    def _frame_ended(self, frame: dict[str, Any], report: dict[str, Any]) -> None:
        """A detached child ended: write back and dispatch its continuation (a new root)."""
        self._frames.pop(frame["frame_id"], None)
        for projected_id in frame["projected_interrupts"]:
            record = self._interrupts.get(projected_id)
            if record is not None and record["status"] == "waiting":
                record["status"] = "cancelled"  # the child ended without it
        summary = {
            "child_execution_id": frame["child_execution_id"],
            "operator_id": frame["parent_operator_id"],
            "sub_flow_name": frame["child_flow_name"],
        }
        op = self._engine.ops[frame["parent_operator_id"]]
        if report["kind"] == "failed":
            details = report.get("error") or {}
            self._sub_flow_failed(summary, details)
            frame["outcome"] = {"error": details}
            frame["ended"] = True
            self.on_failure(details)
            return
        result = report.get("result") or {}
        self._sub_flow_completed(summary, result)
        origin = frame["parent_signal"]
        value = write_back_value(
            op["options"].get("write_back") or {}, result, origin, self._engine.state
        )
        signal = self._engine.make_signal(
            op["emit_signals"][0]["trigger_event"],
            value,
            layer_marks=origin["layer_marks"],
            source="sub_flow",
            meta=self._engine.child_meta(origin),
        )
        resumed = [
            pid for pid in frame["projected_interrupts"] if self._interrupts.get(pid) is not None
        ]
        self._log_signal(signal)
        root = self._sched.submit_signal(
            signal, answer=["interrupt", resumed[-1]] if resumed else None
        )
        request = (
            (self._interrupts.get(resumed[-1]) or {}).get("resume_request_id") if resumed else None
        )
        if isinstance(request, str):
            self._sched.roots[root][ROOT_KEY] = [resumed[-1], request]
        frame["root"] = root
        frame["ended"] = True
        self._refresh_status()

    async def _continue_projected(
        self, request: ContinueRequest, record: dict[str, Any], *, awaited: bool
    ) -> Any:
        """``continue_with`` of a projected interrupt: forward it to the child.

        Returns the projected record once the child paused again or ended and the
        parent's continuation is quiescent (``awaited``), as ``continue_with`` does.
        """
        frame_id = record["sub_flow_frame_id"]
        frame = self._frames.get(frame_id)
        self._mark_resumed(record, request)
        self._on_interrupt_resumed(
            record,
            request.value,
            resume_request_id=request.resume_request_id,
            actor=record["resumed_by_principal"]["subject"],
        )
        self._notify_interrupt_end(record, INTERRUPT_RESUMED)
        self._refresh_status()
        if frame is None:
            return copy.deepcopy(record)
        frame["status"] = "running"
        seq = frame["seq"]
        await workflow.get_external_workflow_handle(frame["child_execution_id"]).signal(
            wire.SIGNAL_CONTINUE_WITH_NOWAIT,
            ContinueRequest(
                interrupt_id=record["local_interrupt_id"],
                value=request.value,
                resume_request_id=request.resume_request_id,
                actor=request.actor,
            ),
        )
        if not awaited:
            return None
        # The frame record is this run's: an update waiting here keeps the run from
        # continuing as new until the child paused again or ended.
        await workflow.wait_condition(
            lambda: (
                bool(frame.get("ended")) or (frame["seq"] != seq and frame["status"] == "waiting")
            )
        )
        if frame.get("ended"):
            if "outcome" in frame:
                return self._answer(frame["outcome"])
            answer = await self._await_root(frame["root"])
            if isinstance(answer, Held):
                return answer  # the continuation goes on in the next run
        return copy.deepcopy(self._interrupts[request.interrupt_id])

    def _cancel_frames(self) -> None:
        """Close: the waiting children are closed too (their interrupts cancelled)."""
        for frame_id, frame in list(self._frames.items()):
            if not frame["detached"]:
                continue
            frame["status"] = "cancelled"
            del self._frames[frame_id]
            task = asyncio.ensure_future(
                workflow.get_external_workflow_handle(frame["child_execution_id"]).signal(
                    wire.SIGNAL_SUB_FLOW_CANCEL
                )
            )
            # A child that ended meanwhile cannot be told: nothing is left to cancel.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            # Awaited before the run ends: a signal whose sender completed is not delivered.
            self._frame_signals.append(task)

    def _saved_frames(self, *, drop: tuple[str, ...] = _PRIVATE) -> dict[str, dict[str, Any]]:
        """The paused children's frames: for the snapshot (native keys only) or the carry."""
        return {
            frame_id: {k: copy.deepcopy(v) for k, v in frame.items() if k not in drop}
            for frame_id, frame in self._frames.items()
            if frame["detached"]
        }

    def _restore_frames(self, saved: dict[str, Any], *, carried: bool) -> None:
        """Frames from a carry (as they were) or a loaded snapshot (children to start)."""
        for frame_id, frame in (saved or {}).items():
            record = {**copy.deepcopy(frame), "detached": True}
            record.setdefault("seq", 0)
            if not carried:
                record["restart"] = True
            self._frames[frame_id] = record

    def _export_frames(self) -> dict[str, dict[str, Any]]:
        """The carry's frames: as they are, but for this run's answer to its caller."""
        return self._saved_frames(drop=("outcome", "root"))

    async def _restart_loaded_frames(self) -> None:
        """A loaded parent starts each waiting child again from its saved snapshot."""
        for frame in list(self._frames.values()):
            if not frame.pop("restart", False):
                continue
            op = self._engine.ops[frame["parent_operator_id"]]
            child = self._spec.sub_flows[op["options"]["sub_flow_name"]]
            child_id = f"{self._execution_id}:{op['id']}:{self._engine.next_id('child-')}"
            options = ExecutionOptions(
                auto_close=True,
                auto_close_timeout=0.0,
                hidden=True,
                runtime_resources=self._options.runtime_resources,
                tenant=self._options.tenant,
                runtime_version=self._options.runtime_version,
                started_by=self._options.started_by,
                sub_flow_parent={"workflow_id": self._execution_id, "frame_id": frame["frame_id"]},
            )
            frame["child_execution_id"] = child_id
            saved_child, frame["child_saved_state"] = frame["child_saved_state"], None
            await workflow.start_child_workflow(
                child.name,
                self._wire_input(
                    WorkflowInput(
                        spec=self._spec_input(child), options=options, restore=saved_child
                    )
                ),
                id=child_id,
                result_type=dict,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"{child.name} (sub-flow of {self._spec.name}, loaded)",
            )

    # ================================================================= child side
    def _on_interrupt_raised(self, record: dict[str, Any], signal: dict[str, Any]) -> None:
        super()._on_interrupt_raised(record, signal)  # pyright: ignore[reportAttributeAccessIssue]
        self._report_interrupt(record)

    def _on_interrupt_resumed(self, record: dict[str, Any], value: Any, **how: Any) -> None:
        super()._on_interrupt_resumed(record, value, **how)  # pyright: ignore[reportAttributeAccessIssue]
        self._report_interrupt(record)

    def _report_to_parent(self, kind: str, **body: Any) -> None:
        """Tell the parent (a sub-flow's child only), in order, once each."""
        parent = self._options.sub_flow_parent
        if not parent:
            return
        parent["seq"] = int(parent.get("seq") or 0) + 1
        parent["reported"] = True
        report = {"frame_id": parent["frame_id"], "kind": kind, "seq": parent["seq"], **body}
        previous = self._report_chain

        async def send() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await workflow.get_external_workflow_handle(parent["workflow_id"]).signal(
                    wire.SIGNAL_SUB_FLOW_REPORT, report
                )
            except Exception:
                pass  # the parent closed: nobody is left to tell

        self._report_chain = asyncio.ensure_future(send())

    def _report_interrupt(self, record: dict[str, Any]) -> None:
        self._report_to_parent("interrupt", interrupt=copy.deepcopy(record))

    async def _report_end(self) -> None:
        """Before the run ends: a child that paused tells its parent how it ended.

        A child that never paused ends as its parent awaits it (the child result).
        """
        parent = self._options.sub_flow_parent
        if parent and parent.get("reported") and not parent.get("ended"):
            if self._status == "failed" and self._error is not None:
                parent["ended"] = True
                self._report_to_parent("failed", error=copy.deepcopy(self._error))
            elif self._lifecycle == "closed" and self._status != "cancelled":
                parent["ended"] = True
                self._report_to_parent("done", result=copy.deepcopy(self._close_snapshot or {}))
        await self._flush_frame_signals()

    async def _flush_frame_signals(self) -> None:
        """Wait until the signals to the parent and to children are delivered.

        Before the run ends or continues as new: a signal whose sender's run closed first
        is not delivered. Nothing to wait for (no sub-flow paused): no await at all.
        """
        if self._report_chain is not None and not self._report_chain.done():
            await asyncio.wait([self._report_chain])
        if self._frame_signals:
            await asyncio.wait(self._frame_signals)
            self._frame_signals = []

    @workflow.signal(name=wire.SIGNAL_SUB_FLOW_CANCEL)
    async def sub_flow_cancel(self) -> None:
        """The parent closed with its interrupts cancelled: close this child likewise."""
        if self._lifecycle == "open" and self._close_snapshot is None:
            await self._close("parent_closed", "cancel")
