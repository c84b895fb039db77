"""Acting on an owned execution: resume an interrupt, emit an event, close (gateway side).

Each action is one call of the runtime's public execution API. When the runtime refuses a
resume, the interrupt's own record (not the error's wording) tells which refusal it was:
unknown interrupt (404), ``Idempotency-Key`` reused with another value (409), not waiting
(409), value failing ``response_payload_schema`` (422); a ``PermissionError`` from the
update validator is the actor being refused (403).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from triggerflow_temporal import ChunkFailedError, ExecutionStateError
from triggerflow_temporal.interpreter.interrupt_records import check_response

from ._auth import Principal
from ._executions import ExecutionService, Owned
from ._problems import Problem, problem_from_runtime
from ._views import interrupt_view

# How long a resume that found the execution no longer open waits for it to complete.
CLOSING_WAIT_SECONDS = 10.0


async def continue_interrupt(
    service: ExecutionService,
    owned: Owned,
    interrupt_id: str,
    value: Any,
    *,
    idempotency_key: str | None,
    principal: Principal,
) -> dict[str, Any]:
    """Resume ``interrupt_id`` with ``value`` as ``principal``.

    The ``Idempotency-Key`` is the ``resume_request_id``: the same key and value get the
    same answer (also after the execution closed), the same key with another value 409.

    Returns:
        ``{"execution_id", "status", "interrupt"}``.

    Raises:
        Problem: 403 the runtime refused this actor; 404 unknown interrupt; 409 not
            waiting, closed, key reused; 422 the value fails the interrupt's
            ``response_payload_schema``.
    """
    request_id = idempotency_key or f"gateway-{uuid.uuid4().hex}"
    if not owned.running:
        return await _closed_answer(service, owned, interrupt_id, value, idempotency_key)
    try:
        record = await owned.execution.async_continue_with(
            interrupt_id,
            value,
            resume_request_id=request_id,
            actor=service.actor(principal),
        )
    except ChunkFailedError:
        # Resumed; the chain it ran failed (the status says so).
        (record,) = await service.ask(owned, ("async_get_interrupt", interrupt_id))
    except (ExecutionStateError, PermissionError, KeyError, ValueError) as error:
        problem = await _refusal(service, owned, interrupt_id, value, request_id, error)
        await service.record_refusal(
            owned, principal, "continue", problem.status, problem.detail, interrupt_id=interrupt_id
        )
        raise problem from None
    except Exception as error:
        raise problem_from_runtime(error, execution_id=owned.id) from None
    if record is None:  # the execution closed before the update reached it
        return await _closed_answer(service, owned, interrupt_id, value, idempotency_key)
    return await _answer(service, owned, record)


async def _answer(
    service: ExecutionService, owned: Owned, record: Mapping[str, Any]
) -> dict[str, Any]:
    status = await service.status(owned)
    return {"execution_id": owned.id, "status": status, "interrupt": interrupt_view(record)}


async def _closed_answer(
    service: ExecutionService,
    owned: Owned,
    interrupt_id: str,
    value: Any,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """A closed execution answers only a repeat of a resume it accepted."""
    if owned.running:  # it stopped taking resumes while this request ran; it closes soon,
        # and then one shared query on the closed run answers every such request.
        owned = await service.refreshed(owned, until_closed=CLOSING_WAIT_SECONDS)
    (record,) = await service.ask(owned, ("async_get_interrupt", interrupt_id))
    if record is None:
        raise _no_interrupt(owned.id, interrupt_id)
    entry = (record.get("resume_requests") or {}).get(idempotency_key or "")
    if entry is None:
        raise _closed(owned.id)
    if entry.get("value") != value:
        raise _key_reused(idempotency_key or "", interrupt_id)
    return await _answer(service, owned, record)


async def _refusal(
    service: ExecutionService,
    owned: Owned,
    interrupt_id: str,
    value: Any,
    request_id: str,
    error: BaseException,
) -> Problem:
    """Why the runtime refused a resume (from the refusal, else the interrupt's record).

    The validator's refusals are told apart by type (``PermissionError``: this actor,
    ``KeyError``: unknown interrupt) and, for its ``ValueError``s, by the reason it names;
    only a refusal that names none costs a query (queries are the fragile part during a
    burst of refused updates: Temporal clears queries buffered behind them).
    """
    if isinstance(error, PermissionError):
        return Problem(403, f"This principal may not resume {interrupt_id!r}: {error}")
    if isinstance(error, KeyError):
        return _no_interrupt(owned.id, interrupt_id)
    text = str(error)
    if "conflicting resume_request_id" in text:
        return _key_reused(request_id, interrupt_id)
    if "is not waiting" in text:
        return _not_waiting(owned.id, interrupt_id, text)
    if "response_payload_schema" in text:
        return Problem(422, text)
    (record,) = await service.ask(owned, ("async_get_interrupt", interrupt_id))
    if record is None:
        return _no_interrupt(owned.id, interrupt_id)
    entry = (record.get("resume_requests") or {}).get(request_id)
    if entry is not None and entry.get("value") != value:
        return _key_reused(request_id, interrupt_id)
    if record.get("status") != "waiting":
        return _not_waiting(owned.id, interrupt_id, f"status {record.get('status')!r}")
    problem = schema_problem(record, value)
    if problem is not None:
        return Problem(422, problem)
    if isinstance(error, ValueError):
        return Problem(422, f"The runtime refused the value: {error}")
    return problem_from_runtime(error, execution_id=owned.id)


def schema_problem(record: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` fails the interrupt's ``response_payload_schema`` (None: it passes).

    The runtime's own check (the one its validator runs), with the fix for an HTTP caller.
    """
    if not (record.get("external_wait_request") or {}).get("response_payload_schema"):
        return None
    problem = check_response(dict(record), value)
    if problem is None or "response_payload_schema" not in problem:
        return None
    return f"{problem}. Send a value that matches it (GET the execution for the schema)."


# ------------------------------------------------------------------------ emit, close
async def emit(
    service: ExecutionService, owned: Owned, event: str, value: Any, *, principal: Principal
) -> dict[str, Any]:
    """Dispatch ``event`` with ``value``; answers the handlers' results and the status.

    The principal goes along as ``actor``: an event that resumes an interrupt is checked
    against that interrupt's access rules.

    Raises:
        Problem: 403 the event would resume an interrupt this principal may not; 409
            closed; 422 the value would resume an interrupt whose
            ``response_payload_schema`` it fails; 400 other refusals.
    """
    if not owned.running:
        raise _closed(owned.id)
    options = {"actor": service.actor(principal)} if service.emits_with_actor else {}
    try:
        results = await owned.execution.async_emit(event, value, **options)
    except ChunkFailedError:
        results = None
    except ExecutionStateError as error:
        if isinstance(error, PermissionError):
            problem = Problem(403, f"This principal may not emit {event!r} here: {error}")
            await service.record_refusal(owned, principal, "emit", 403, problem.detail, event=event)
            raise problem from None
        if isinstance(error, ValueError):
            status = 422 if "response_payload_schema" in str(error) else 400
            raise Problem(status, str(error)) from None
        raise problem_from_runtime(error, execution_id=owned.id) from None
    except Exception as error:
        raise problem_from_runtime(error, execution_id=owned.id) from None
    status = await service.status(owned)
    return {"execution_id": owned.id, "event": event, "results": results, "status": status}


async def close(
    service: ExecutionService, owned: Owned, *, pending_interrupts: str, principal: Principal
) -> dict[str, Any]:
    """Close the execution; the view with ``state`` = the close snapshot.

    Raises:
        Problem: 409 interrupts wait and ``pending_interrupts`` is ``error``.
    """
    try:
        snapshot = await owned.execution.async_close(
            reason=close_reason(principal), pending_interrupts=pending_interrupts
        )
    except Exception as error:
        raise problem_from_runtime(error, execution_id=owned.id) from None
    view = await service.view(await service.refreshed(owned))
    view["state"] = snapshot
    return view


def close_reason(principal: Principal) -> str:
    """The ``close_reason`` the gateway records: who closed it and how authenticated."""
    return f"closed via gateway by={principal.subject} method={principal.method}"


def _closed(execution_id: str) -> Problem:
    return Problem(
        409,
        f"Execution {execution_id!r} is closed; it accepts no events and no resumes.",
    )


def _not_waiting(execution_id: str, interrupt_id: str, why: str) -> Problem:
    return Problem(
        409,
        f"Interrupt {interrupt_id!r} of execution {execution_id!r} is not waiting ({why}): it "
        "was resumed or cancelled already.",
    )


def _no_interrupt(execution_id: str, interrupt_id: str) -> Problem:
    return Problem(
        404,
        f"Execution {execution_id!r} has no interrupt {interrupt_id!r}; GET the execution for "
        "its pending_interrupts.",
    )


def _key_reused(key: str, interrupt_id: str) -> Problem:
    return Problem(
        409,
        f"Idempotency-Key {key!r} was already used on interrupt {interrupt_id!r} with another "
        "value; resend the same value to get its answer, or use a new key.",
    )
