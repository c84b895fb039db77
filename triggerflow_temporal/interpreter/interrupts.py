"""Interrupts: ``pause_for`` records, timeouts, ``continue_with`` checks and resumes.

A mixin of the interpreter workflow (split out to keep each module single-purpose). All of
it is workflow code: deterministic, no I/O.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from .._errors import chunk_failure_details
from ..spec.chunk_io import pack_resume
from ..spec.limits import MAX_REJECTED_REQUESTS
from ..spec.mailbox import REGISTER_ACTIVITY, RegisterOrder
from ..spec.notifications import INTERRUPT_CREATED, INTERRUPT_RESUMED, INTERRUPT_TIMED_OUT
from ..spec.wire import ContinueRequest
from .access import (
    ACCESS_KEY,
    access_problem,
    actor_problem,
    normalize_actor,
    resumed_by_principal,
)
from .events import EventsMixin
from .interrupt_records import check_response, new_interrupt_record
from .scheduler_host import Held
from .signal_net import ChunkFailure


class InterruptsMixin(EventsMixin):
    """Interrupt bookkeeping of the workflow (:class:`~.workflow.TriggerFlowWorkflow`)."""

    # Provided by the workflow class.

    def _pending(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self._interrupts.items() if v["status"] == "waiting"}

    def _record_interrupt(
        self, op: dict[str, Any], signal: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        interrupt_id = request.get("interrupt_id") or workflow.uuid4().hex
        existing = self._interrupts.get(interrupt_id)
        if (
            existing is not None
            and existing.get("resume_to") == "self"
            and existing.get("max_resumes") is not None
            and int(existing.get("resume_count") or 0) >= int(existing["max_resumes"])
        ):
            self._emit(
                "triggerflow.self_resume_limit_reached",
                f"TriggerFlow execution '{self._execution_id}' reached the self resume limit of "
                f"interrupt '{interrupt_id}'.",
                lambda: {"interrupt_id": interrupt_id, "interrupt": existing},
                level="ERROR",
            )
            raise ChunkFailure(
                chunk_failure_details(
                    flow_name=self._spec.name,
                    chunk_name=op["name"],
                    error_type="RuntimeError",
                    error_module="builtins",
                    message=(
                        f"TriggerFlow self resume limit reached for interrupt '{interrupt_id}': "
                        f"resume_count={existing['resume_count']}, "
                        f"max_resumes={existing['max_resumes']}."
                    ),
                )
            )
        if existing is not None and existing["status"] == "waiting":
            raise ChunkFailure(
                chunk_failure_details(
                    flow_name=self._spec.name,
                    chunk_name=op["name"],
                    error_type="ValueError",
                    error_module="builtins",
                    message=f"Interrupt id {interrupt_id!r} is already waiting; use unique ids.",
                )
            )
        record = new_interrupt_record(
            interrupt_id=interrupt_id,
            request=request,
            op=op,
            signal=signal,
            execution_id=self._execution_id,
            flow_name=self._spec.name,
            created_at=workflow.now().timestamp(),
            previous=existing,
        )
        self._interrupts[interrupt_id] = record
        if request.get("timeout"):
            deadline = workflow.now().timestamp() + float(request["timeout"])
            self._deadlines[interrupt_id] = {"at": deadline, "value": request.get("timeout_value")}
            record["deadline"] = deadline  # when the timeout resumes it (epoch seconds)
            self._start_timeout_timer(interrupt_id)
        self._touch()
        self._on_interrupt_raised(record, signal)
        self._register_correlation(record)
        self._notify(INTERRUPT_CREATED, record)
        self._start_follow_up(record)
        return copy.deepcopy(record)

    def _register_correlation(self, record: dict[str, Any]) -> None:
        """Make a ``pause_for(correlation=...)`` reachable by its messages (an activity).

        Idempotent at the mailbox, so it is simply issued again for every waiting
        correlated interrupt when a run starts (continue-as-new, load).
        """
        correlation = (record.get(ACCESS_KEY) or {}).get("correlation")
        if not correlation or record["status"] != "waiting":
            return
        order = RegisterOrder(
            tenant=self._options.tenant,
            name=correlation["name"],
            key=correlation["key"],
            execution_id=self._execution_id,
            interrupt_id=record["id"],
            task_queue=workflow.info().task_queue,
        )
        task = asyncio.ensure_future(
            workflow.execute_activity(
                REGISTER_ACTIVITY,
                order,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
                summary=f"mailbox {correlation['name']}",
            )
        )
        # Retried until it lands; a run that continues as new first registers it again.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())

    def _start_timeout_timer(self, interrupt_id: str) -> None:
        deadline = self._deadlines[interrupt_id]

        async def expire() -> None:
            remaining = deadline["at"] - workflow.now().timestamp()
            if remaining > 0:
                await workflow.sleep(
                    timedelta(seconds=remaining), summary=f"interrupt {interrupt_id} timeout"
                )
            record = self._interrupts.get(interrupt_id)
            # Internal work goes on while sealed (only external calls are refused).
            if record is None or record["status"] != "waiting" or self._lifecycle == "closed":
                return
            try:
                await self._continue(
                    ContinueRequest(
                        interrupt_id=interrupt_id, value=deadline["value"], actor="timeout"
                    ),
                    awaited=False,
                    by_timer=True,
                )
            except ApplicationError:
                pass  # the resumed chain failed; recorded as the execution's failure

        self._timers[interrupt_id] = asyncio.ensure_future(expire())

    async def _resolve_resume_event(self, signal: dict[str, Any]) -> None:
        """An ordinary emit of a waiting interrupt's ``resume_event`` resolves it."""
        self._resolve_resume_event_now(signal)

    def _resumed_by_event(self, event: str, trigger_type: str) -> list[dict[str, Any]]:
        """The waiting interrupts an ordinary emit of ``event`` resolves."""
        if trigger_type != "event":
            return []
        found = []
        for record in self._interrupts.values():
            if record["status"] != "waiting":
                continue
            target = record.get("resume_event")
            resume_to = record.get("resume_to")
            if isinstance(resume_to, dict):
                target = target or resume_to.get("event")
            if target == event:
                found.append(record)
        return found

    def _resume_event_problem(self, event: str, trigger_type: str, value: Any) -> str | None:
        """Why an emit of ``event`` with ``value`` may not resolve the interrupts it names.

        Every resume path checks ``response_payload_schema``: ``continue_with`` in its
        validator, an external emit of a ``resume_event`` here (issue 17).
        """
        for record in self._resumed_by_event(event, trigger_type):
            problem = check_response(record, value)
            if problem:
                return (
                    f"emit of {event!r} would resume interrupt {record['id']!r}, but its value "
                    f"does not match the interrupt's response_payload_schema ({problem}). "
                    "Nothing was emitted; send a value that matches the schema."
                )
        return None

    def _resume_event_access_problem(self, event: str, trigger_type: str, actor: Any) -> str | None:
        """Why ``actor`` may not resolve the interrupts an emit of ``event`` would resume."""
        for record in self._resumed_by_event(event, trigger_type):
            problem = access_problem(record, actor, self._options.started_by)
            if problem:
                return f"emit of {event!r} would resume interrupt {record['id']!r}: {problem}"
        return None

    def _resolve_resume_event_now(self, signal: dict[str, Any]) -> None:
        """:meth:`_resolve_resume_event` without the await (the scheduler applies emits)."""
        for record in self._resumed_by_event(signal["trigger_event"], signal["trigger_type"]):
            if self._v3:
                problem = check_response(record, signal["value"])
                if problem:
                    # A chunk's emit cannot be refused; the interrupt stays waiting.
                    self._emit(
                        "triggerflow.resume_rejected",
                        f"TriggerFlow execution '{self._execution_id}' did not resume "
                        f"interrupt '{record['id']}' by event '{signal['trigger_event']}': "
                        f"{problem}",
                        lambda record=record: {"interrupt_id": record["id"]},
                        level="WARNING",
                    )
                    continue
            record["status"] = "resumed"
            record["resumed_at"] = workflow.now().timestamp()
            record["resume_value"] = signal["value"]
            self._on_interrupt_resumed(record, signal["value"], by_event=signal["trigger_event"])
            self._notify_interrupt_end(record, INTERRUPT_RESUMED)

    def _check_continue(self, request: ContinueRequest, *, by_timer: bool = False) -> bool:
        """Raise why ``request`` cannot resume; False for an idempotent duplicate.

        ``by_timer``: the interrupt's own timeout resumes it; access rules do not apply.
        """
        record = self._interrupts.get(request.interrupt_id)
        if record is None:
            raise ApplicationError(
                f"{request.interrupt_id!r}: unknown interrupt id for execution "
                f"{self._execution_id}; pending: {sorted(self._pending())}.",
                type="KeyError",
                non_retryable=True,
            )
        ledger = record.get("resume_requests") or {}
        if request.resume_request_id is not None and request.resume_request_id in ledger:
            if ledger[request.resume_request_id]["value"] != request.value:
                raise ApplicationError(
                    f"TriggerFlow interrupt {request.interrupt_id!r} got a conflicting "
                    f"resume_request_id {request.resume_request_id!r}: it was used with a "
                    "different value.",
                    type="ValueError",
                    non_retryable=True,
                )
            return False
        if record["status"] != "waiting":
            raise ApplicationError(
                f"TriggerFlow interrupt {request.interrupt_id!r} is not waiting "
                f"(status {record['status']!r}).",
                type="ValueError",
                non_retryable=True,
            )
        if not by_timer:
            self._check_actor(record, request.actor)
        problem = check_response(record, request.value)
        if problem:
            raise ApplicationError(problem, type="ValueError", non_retryable=True)
        return True

    def _check_actor(self, record: dict[str, Any], actor: Any) -> None:
        """Refuse an actor the interrupt's access rules do not admit (PermissionError)."""
        problem = actor_problem(actor)
        if problem:
            raise ApplicationError(problem, type="ValueError", non_retryable=True)
        problem = access_problem(record, actor, self._options.started_by)
        if problem:
            raise ApplicationError(problem, type="PermissionError", non_retryable=True)

    async def _continue(
        self, request: ContinueRequest, *, awaited: bool = True, by_timer: bool = False
    ) -> Any:
        """Resume the interrupt ``request`` names; the record once its chain is done.

        ``awaited``: a caller waits for the record (the update, not the signal or a timer),
        so the record is carried over continue-as-new until that caller has it.
        ``by_timer``: the interrupt's timeout resumes it (whoever its assignees are).
        """
        if not self._check_continue(request, by_timer=by_timer):
            return copy.deepcopy(self._interrupts[request.interrupt_id])
        record = self._interrupts[request.interrupt_id]
        if record.get("sub_flow_frame_id"):
            # A child's interrupt projected here: the child resumes it (subflow_frames.py).
            return await self._continue_projected(request, record, awaited=awaited)
        timer = self._timers.pop(request.interrupt_id, None)
        if timer is not None and not timer.done() and not by_timer:
            timer.cancel()
        self._deadlines.pop(request.interrupt_id, None)
        origin = record["source_signal"]
        resume_to = record["resume_to"]
        self._mark_resumed(record, request)
        resume_context = {
            "interrupt_id": record["id"],
            "value": request.value,
            "interrupt": copy.deepcopy(record),
            "origin_signal": copy.deepcopy(origin),
        }
        if self._v3:
            # Kept packed (the answer once): queued and carried resume signals stay small.
            resume_context = pack_resume(resume_context)
        meta = {**origin["meta"], "resume": resume_context}
        answer = ["interrupt", record["id"]] if awaited else None
        if resume_to == "self":
            record["resume_count"] = int(record.get("resume_count") or 0) + 1
        self._on_interrupt_resumed(
            record,
            request.value,
            resume_request_id=request.resume_request_id,
            actor=record["resumed_by_principal"]["subject"],
        )
        self._notify_interrupt_end(record, INTERRUPT_TIMED_OUT if by_timer else INTERRUPT_RESUMED)
        if resume_to == "self":
            op = self._engine.ops[record["source_operator_id"]]
            signal = self._engine.make_signal(
                origin["trigger_event"],
                origin["value"],
                trigger_type=origin["trigger_type"],
                layer_marks=origin["layer_marks"],
                source="interrupt",
                meta=meta,
            )
            self._refresh_status()
            outcome = await self._external(signal, op=op, answer=answer)
        else:
            event = (
                resume_to["event"] if isinstance(resume_to, dict) else record["continuation_event"]
            )
            signal = self._engine.make_signal(
                event,
                request.value,
                layer_marks=origin["layer_marks"] if resume_to == "next" else [],
                source="interrupt",
                meta={**self._engine.child_meta(origin), "resume": resume_context},
            )
            self._refresh_status()
            outcome = await self._external(signal, answer=answer)
        if isinstance(outcome, Held):
            return outcome  # the resumed chain goes on in the next run
        return copy.deepcopy(self._interrupts[request.interrupt_id])

    def _mark_resumed(self, record: dict[str, Any], request: ContinueRequest) -> None:
        """Write ``request``'s resume into ``record`` (status, value, who, its ledger entry)."""
        if request.resume_request_id is not None:
            record.setdefault("resume_requests", {})[request.resume_request_id] = {
                "request_id": request.resume_request_id,
                "status": "accepted",
                "value": copy.deepcopy(request.value),
                "actor": request.actor,
                "accepted_at": workflow.now().timestamp(),
            }
            record["resume_request_id"] = request.resume_request_id
        record["status"] = "resumed"
        record["resumed_at"] = workflow.now().timestamp()
        record["resume_value"] = request.value
        record["response"] = request.value
        if request.actor is not None or request.resume_request_id is not None:
            principal = normalize_actor(request.actor)
            record["resumed_by"] = principal["subject"] if principal else None
        record["resumed_by_principal"] = resumed_by_principal(request.actor, record["resumed_at"])

    def _reject_signal_request(self, request: ContinueRequest, error: ApplicationError) -> None:
        """Keep a rejected ``continue_with`` signal (a signal has no caller to tell)."""
        self._rejected.append(
            {
                "interrupt_id": request.interrupt_id,
                "value": copy.deepcopy(request.value),
                "resume_request_id": request.resume_request_id,
                "actor": request.actor,
                "error_type": error.type,
                "error": error.message,
                "rejected_at": workflow.now().timestamp(),
            }
        )
        del self._rejected[:-MAX_REJECTED_REQUESTS]
        self._emit(
            "triggerflow.continue_rejected",
            f"TriggerFlow execution '{self._execution_id}' rejected continue_with for interrupt "
            f"'{request.interrupt_id}': {error.message}",
            lambda: copy.deepcopy(self._rejected[-1]),
            level="WARNING",
        )
