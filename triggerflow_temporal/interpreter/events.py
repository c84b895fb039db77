"""RuntimeEvents and the runtime stream, workflow side (a mixin of the interpreter workflow).

Workflow code: deterministic, no I/O. Events go through :class:`~._events.EventRecorder`
(numbered, built only when a hook wants them and the workflow is not replaying). Stream
items go to a ``temporalio.contrib.workflow_streams.WorkflowStream`` log held in workflow
memory: publishing adds no command to history, the log is rebuilt identically on replay,
and an item's offset in it is its sequence number (``RuntimeStreamItem.seq``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from temporalio.contrib.workflow_streams import WorkflowStreamState

from .carry_bounds import stream_items_to_drop
from .workflow_base import WorkflowBase

# Topics of the execution's WorkflowStream: items put by chunks, system items (interrupts,
# interventions), and the end marker published once when the stream stops (``stop_stream``
# or close). One log: offsets (sequence numbers) are global across the topics.
STREAM_TOPIC = "triggerflow.stream"
STREAM_SYSTEM_TOPIC = "triggerflow.stream.system"
STREAM_END_TOPIC = "triggerflow.stream.end"

_INTERVENTION_EVENTS = {
    "append": "triggerflow.intervention_received",
    "insert": "triggerflow.intervention_inserted",
    "consume": "triggerflow.intervention_consumed",
    "expire": "triggerflow.intervention_expired",
}


def stream_state_from_carry(carry: dict[str, Any] | None) -> WorkflowStreamState | None:
    """The stream log handed over by continue-as-new, or None."""
    state = (carry or {}).get("stream")
    if not state:
        return None
    from pydantic import TypeAdapter

    return TypeAdapter(WorkflowStreamState).validate_python(state)


def error_info(details: dict[str, Any]) -> dict[str, Any]:
    """Agently's ``ErrorInfo`` keys from a chunk failure's details."""
    return {
        "type": details.get("type"),
        "message": details.get("message"),
        "module": details.get("module"),
        "details": {"flow": details.get("flow"), "chunk": details.get("chunk")},
    }


class EventsMixin(WorkflowBase):
    """Event and stream bookkeeping of :class:`~._workflow.TriggerFlowWorkflow`."""

    # ------------------------------------------------------------- events
    def _emit(
        self,
        event_type: str,
        message: str,
        payload: Any = None,
        *,
        level: str = "INFO",
        error: dict[str, Any] | None = None,
    ) -> None:
        self._events.emit(event_type, message, payload, level=level, error=error)

    def _emit_chunk(
        self,
        event_type: str,
        op: dict[str, Any],
        signal: dict[str, Any],
        run_id: str,
        extra: Callable[[], dict[str, Any]] | dict[str, Any] | None = None,
        *,
        level: str = "INFO",
        error: dict[str, Any] | None = None,
    ) -> None:
        """A ``chunk.*`` event with Agently's payload and the chunk run's context."""
        name = op["name"]

        def payload() -> dict[str, Any]:
            body: dict[str, Any] = {
                "chunk_id": op["id"],
                "chunk_name": name,
                "operator_kind": op["kind"],
                "trigger_event": signal["trigger_event"],
                "trigger_type": signal["trigger_type"],
                "signal_id": signal["id"],
                "input": signal["value"],
                "signal_source": signal["source"],
                "signal_meta": {k: v for k, v in signal["meta"].items() if k != "resume"},
            }
            more: dict[str, Any] = extra() if callable(extra) else extra or {}
            body.update(more)
            return body

        def run() -> dict[str, Any]:
            parent = self._events.execution_run()
            return {
                "run_id": f"{self._execution_id}:{run_id}",
                "run_kind": "chunk_execution",
                "parent_run_id": parent["run_id"],
                "execution_id": self._execution_id,
                "meta": {
                    "chunk_id": op["id"],
                    "chunk_name": name,
                    "operator_kind": op["kind"],
                    "trigger_event": signal["trigger_event"],
                    "signal_id": signal["id"],
                },
            }

        verb = event_type.rsplit(".", 1)[-1]
        self._events.emit(
            event_type, f"Chunk '{name}' {verb}.", payload, level=level, error=error, run=run
        )

    # ------------------------------------------------------------- stream
    def _put_stream_item(
        self, item: Any, origin: dict[str, Any] | None = None, *, system: bool = False
    ) -> None:
        """Append ``item`` to the runtime stream (rejected once the stream stopped)."""
        origin_chunk = (
            {"chunk_id": origin["id"], "chunk_name": origin["name"]} if origin is not None else None
        )
        if self._stream_stopped:
            self._emit(
                "triggerflow.stream_item_rejected",
                f"TriggerFlow execution '{self._execution_id}' ignored a stream item because "
                "its stream is closed.",
                lambda: {"item": item, "origin_chunk": origin_chunk},
                level="WARNING",
            )
            return
        self._stream.topic(STREAM_SYSTEM_TOPIC if system else STREAM_TOPIC).publish(item)
        self._emit(
            "triggerflow.stream_item_emitted",
            f"TriggerFlow execution '{self._execution_id}' emitted a stream item.",
            lambda: {
                "item": item,
                "item_type": type(item).__name__,
                "origin_chunk": origin_chunk,
            },
        )

    def _stop_runtime_stream(self, reason: str) -> None:
        """End the stream: consumers finish after the items put so far."""
        if self._stream_stopped:
            return
        self._stream_stopped = True
        self._stream.topic(STREAM_END_TOPIC).publish({"reason": reason})
        self._emit(
            "triggerflow.stream_closed",
            f"TriggerFlow execution '{self._execution_id}' runtime stream closed.",
            {"execution_id": self._execution_id, "reason": reason},
        )

    def _trim_stream(self) -> None:
        """Drop the oldest stream items past the carry's window.

        A reader asking for a dropped offset is told the oldest one it can still read.
        """
        state = self._stream.get_state()
        drop = stream_items_to_drop([len(item.topic) + len(item.data) for item in state.log])
        if drop:
            self._stream.truncate(state.base_offset + drop)

    def _export_stream(self) -> dict[str, Any]:
        """Carry-over for continue-as-new: event counter, stream log and stop flag."""
        carry: dict[str, Any] = {"event_seq": self._events.seq}
        state = self._stream.get_state()
        if state.log or state.publishers or state.base_offset:
            carry["stream"] = dataclasses.asdict(state)
        if self._stream_stopped:
            carry["stream_stopped"] = True
        return carry

    # ---------------------------------------------------- interrupts / interventions
    def _on_interrupt_raised(self, record: dict[str, Any], signal: dict[str, Any]) -> None:
        self._emit(
            "triggerflow.interrupt_raised",
            f"TriggerFlow execution '{self._execution_id}' paused for interrupt '{record['id']}'.",
            lambda: {"interrupt": record},
            level="WARNING",
        )
        self._put_stream_item(
            {
                "type": "interrupt",
                "action": "pause",
                "execution_id": self._execution_id,
                "interrupt": record,
                "signal": {k: v for k, v in signal.items()},
            },
            system=True,
        )

    def _on_interrupt_resumed(
        self,
        record: dict[str, Any],
        value: Any,
        *,
        resume_request_id: str | None = None,
        actor: str | None = None,
        by_event: str | None = None,
    ) -> None:
        how = f"by event '{by_event}'" if by_event else f"from interrupt '{record['id']}'"
        self._emit(
            "triggerflow.execution_resumed",
            f"TriggerFlow execution '{self._execution_id}' resumed {how}.",
            lambda: {
                "interrupt_id": record["id"],
                "resume_request_id": resume_request_id,
                "actor_id": actor,
                "value": value,
                "event": by_event,
            },
        )
        self._put_stream_item(
            {
                "type": "interrupt",
                "action": "resume",
                "execution_id": self._execution_id,
                "interrupt": record,
                "value": value,
            },
            system=True,
        )

    def _on_intervention(self, action: str, record: dict[str, Any]) -> None:
        """Stream item, then event, as natively (``append|insert|consume|expire``)."""
        self._put_stream_item(
            {
                "type": "intervention",
                "action": action,
                "execution_id": self._execution_id,
                "intervention": record,
            },
            system=True,
        )
        self._emit(
            _INTERVENTION_EVENTS[action],
            f"TriggerFlow execution '{self._execution_id}' intervention '{action}'.",
            lambda: {"intervention": record},
        )
