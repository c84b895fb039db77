"""The mailbox workflow: messages meet the pauses that wait for them (workflow side).

Deterministic: the mailbox keeps its waiters, its buffered messages and the message ids it
has seen as data, serializes ``deliver`` and ``register`` (one update at a time), and asks
an activity to resume an interrupt (``continue_with`` with ``resume_request_id =
"message:<id>"``, so a retried activity resumes once). See :mod:`..spec.mailbox`.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from ..spec.mailbox import (
    DELIVER_UPDATE,
    MAILBOX_IDLE_SECONDS,
    MAILBOX_WORKFLOW,
    MAX_BUFFERED_MESSAGES,
    MAX_MESSAGE_TTL,
    MAX_SEEN_MESSAGES,
    REGISTER_UPDATE,
    RESUME_ACTIVITY,
    WAITERS_QUERY,
    MailboxInput,
    Message,
    ResumeOrder,
    Waiter,
)

# A resume is an update on another execution: retried while Temporal is unreachable, not
# when the interrupt refuses it (then the activity reports it and the waiter is dropped).
_RESUME_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=20)


@workflow.defn(name=MAILBOX_WORKFLOW)
class MailboxWorkflow:
    """One mailbox: (tenant, message name, correlation key)."""

    @workflow.init
    def __init__(self, input: MailboxInput) -> None:
        self._input = input
        self._waiters: list[dict[str, Any]] = copy.deepcopy(input.waiters)
        self._buffer: list[dict[str, Any]] = copy.deepcopy(input.buffer)
        self._seen: dict[str, dict[str, Any]] = copy.deepcopy(input.seen)
        self._lock = asyncio.Lock()
        self._tick = 0
        self._last_activity = workflow.now().timestamp()

    @workflow.run
    async def run(self, input: MailboxInput) -> None:
        """Live while anything waits or is buffered, and a day idle to remember ids."""
        while True:
            tick = self._tick
            self._expire()
            deadline = self._next_deadline()
            try:
                await workflow.wait_condition(
                    lambda tick=tick: (
                        self._tick != tick or workflow.info().is_continue_as_new_suggested()
                    ),
                    timeout=timedelta(seconds=max(deadline, 1.0)),
                )
            except asyncio.TimeoutError:
                pass
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry())
            self._expire()
            idle = workflow.now().timestamp() - self._last_activity
            if not self._waiters and not self._buffer and idle >= MAILBOX_IDLE_SECONDS:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return

    # ----------------------------------------------------------------- updates
    @workflow.update(name=DELIVER_UPDATE)
    async def deliver(self, message: Message) -> dict[str, Any]:
        """Resume the waiters with ``message``, else buffer it; the first answer per id."""
        async with self._lock:
            self._touch()
            seen = self._seen.get(message.message_id)
            if seen is not None:
                return copy.deepcopy(seen)
            delivered: list[dict[str, str]] = []
            for waiter in list(self._waiters):
                if await self._resume(waiter, message):
                    delivered.append(waiter)
                self._waiters.remove(waiter)
            answer: dict[str, Any] = {
                "delivered_to": [
                    {"execution_id": w["execution_id"], "interrupt_id": w["interrupt_id"]}
                    for w in delivered
                ],
                "buffered": not delivered,
            }
            if not delivered:
                self._buffer.append(
                    {
                        "message_id": message.message_id,
                        "value": message.value,
                        "actor": message.actor,
                        "expires_at": workflow.now().timestamp() + message.ttl_seconds,
                    }
                )
            self._remember(message.message_id, answer)
            return copy.deepcopy(answer)

    @deliver.validator
    def _validate_deliver(self, message: Message) -> None:
        if not isinstance(message.message_id, str) or not message.message_id:
            raise ValueError("A message needs a non-empty message_id.")
        ttl = message.ttl_seconds
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl:
            raise ValueError(f"ttl_seconds must be a positive number, got {ttl!r}.")
        if ttl > MAX_MESSAGE_TTL:
            raise ValueError(f"ttl_seconds is at most {MAX_MESSAGE_TTL:.0f} (30 days).")
        if message.message_id not in self._seen and len(self._buffer) >= MAX_BUFFERED_MESSAGES:
            raise ApplicationError(
                f"The mailbox of {self._input.name!r} holds {MAX_BUFFERED_MESSAGES} messages "
                "no pause has taken yet; retry later or give them a shorter ttl_seconds.",
                type="MailboxFullError",
                non_retryable=True,
            )

    @workflow.update(name=REGISTER_UPDATE)
    async def register(self, waiter: Waiter) -> dict[str, Any]:
        """A pause waits here; a buffered message resumes it at once (exactly once)."""
        async with self._lock:
            self._touch()
            entry = {"execution_id": waiter.execution_id, "interrupt_id": waiter.interrupt_id}
            self._expire()
            while self._buffer:
                buffered = self._buffer.pop(0)
                message = Message(
                    message_id=buffered["message_id"],
                    value=buffered["value"],
                    actor=buffered.get("actor"),
                )
                if await self._resume(entry, message):
                    self._remember(
                        message.message_id,
                        {"delivered_to": [entry], "buffered": False},
                        replace=True,
                    )
                    return {"delivered": message.message_id}
                # The interrupt refused it (no longer waiting, not allowed): keep the
                # message for the next pause and drop nothing else.
                self._buffer.insert(0, buffered)
                return {"delivered": None}
            if entry not in self._waiters:
                self._waiters.append(entry)
                del self._waiters[: -max(1, self._input.max_waiters)]
            return {"delivered": None}

    @workflow.query(name=WAITERS_QUERY)
    def waiters(self) -> list[dict[str, Any]]:
        """The pauses waiting here, oldest first."""
        return copy.deepcopy(self._waiters)

    # ------------------------------------------------------------------- inner
    async def _resume(self, waiter: dict[str, Any], message: Message) -> bool:
        result = await workflow.execute_activity(
            RESUME_ACTIVITY,
            ResumeOrder(
                execution_id=waiter["execution_id"],
                interrupt_id=waiter["interrupt_id"],
                message_id=message.message_id,
                value=message.value,
                actor=message.actor,
            ),
            result_type=bool,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_RESUME_RETRY,
            summary=f"resume {waiter['execution_id']}/{waiter['interrupt_id']}",
        )
        return bool(result)

    def _touch(self) -> None:
        self._tick += 1
        self._last_activity = workflow.now().timestamp()

    def _expire(self) -> None:
        now = workflow.now().timestamp()
        self._buffer = [m for m in self._buffer if m["expires_at"] > now]

    def _next_deadline(self) -> float:
        now = workflow.now().timestamp()
        deadlines = [m["expires_at"] - now for m in self._buffer]
        deadlines.append(self._last_activity + MAILBOX_IDLE_SECONDS - now)
        return min(deadlines)

    def _remember(self, message_id: str, answer: dict[str, Any], *, replace: bool = False) -> None:
        if replace or message_id not in self._seen:
            self._seen[message_id] = copy.deepcopy(answer)
        while len(self._seen) > MAX_SEEN_MESSAGES:
            del self._seen[next(iter(self._seen))]

    def _carry(self) -> MailboxInput:
        return MailboxInput(
            tenant=self._input.tenant,
            name=self._input.name,
            key=self._input.key,
            waiters=self._waiters,
            buffer=self._buffer,
            seen=self._seen,
            max_waiters=self._input.max_waiters,
        )
