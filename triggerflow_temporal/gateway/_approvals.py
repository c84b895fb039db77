"""What the approver pages share with the API: read an interrupt, decide it, the audit.

Gateway side. A decision from a page goes through
:func:`~triggerflow_temporal.gateway._actions.continue_interrupt`, the same path as
``POST /v1/executions/{id}/interrupts/{iid}/continue``: same tenancy check, same actor,
same refusals. Before that, the value is checked with the runtime's own
``check_response`` so a value the schema refuses comes back to the form (422) without an
update being sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from triggerflow_temporal.interpreter.access import access_problem
from triggerflow_temporal.interpreter.interrupt_records import check_response

from . import _actions as actions
from ._audit import build_audit
from ._auth import Principal
from ._executions import ExecutionService, Owned
from ._http import read_body
from ._problems import Problem

MAX_FORM_FIELDS = 200


async def interrupt_record(service: ExecutionService, owned: Owned, interrupt_id: str) -> dict:
    """The interrupt's record (any status).

    Raises:
        Problem: 404 when the execution has no such interrupt.
    """
    (record,) = await service.ask(owned, ("async_get_interrupt", interrupt_id))
    if not isinstance(record, dict):
        raise Problem(
            404, f"Execution {owned.id!r} has no interrupt {interrupt_id!r}.", slug="not-found"
        )
    return record


def initiator(owned: Owned) -> Any:
    """Who started the execution (the gateway's memo), for ``forbid_initiator``."""
    return (owned.memo or {}).get("started_by")


def may_resume(record: Mapping[str, Any], principal: Principal, owned: Owned) -> str | None:
    """Why ``principal`` may not resume ``record`` (None: it may); the runtime's own rule."""
    return access_problem(dict(record), principal.as_actor(), initiator(owned))


def schema_refusal(record: Mapping[str, Any], value: Any) -> str | None:
    """Why the interrupt would refuse ``value`` (its ``response_payload_schema``, size)."""
    return check_response(dict(record), value)


async def decide(
    service: ExecutionService,
    owned: Owned,
    record: Mapping[str, Any],
    value: Any,
    *,
    principal: Principal,
    request_id: str,
) -> dict[str, Any]:
    """Resume the interrupt with ``value`` as ``principal`` (the API's continue path).

    Returns:
        ``{"execution_id", "status", "interrupt"}``.

    Raises:
        Problem: 422 the value fails the schema (nothing is sent); the continue path's
            403/404/409/422/503 otherwise.
    """
    problem = schema_refusal(record, value)
    if problem is not None:
        raise Problem(422, problem)
    return await actions.continue_interrupt(
        service,
        owned,
        str(record.get("id")),
        value,
        idempotency_key=request_id,
        principal=principal,
    )


async def execution_audit(service: ExecutionService, owned: Owned) -> dict[str, Any]:
    """``GET /v1/executions/{id}/audit``'s answer for ``owned``."""
    (snapshot,) = await service.ask(owned, ("async_save",))
    return build_audit(owned.id, owned.memo, snapshot, await service.refusals(owned))


async def read_form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body as name -> values (size cap applies).

    Raises:
        Problem: 400 for another content type, bad encoding or too many fields.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Problem(
            400,
            "This page takes the form it shows (application/x-www-form-urlencoded), got "
            f"{content_type or 'no content type'}.",
        )
    raw = await read_body(request)
    try:
        pairs: Sequence[tuple[str, str]] = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "The form could not be read (not UTF-8, or too many fields).") from None
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form
