"""The execution routes of the gateway API (``/v1/flows/...``, ``/v1/executions/...``).

Each route authenticates (dependency), checks tenancy through
:class:`~triggerflow_temporal.gateway._executions.ExecutionService`, parses its body with
the size cap already applied, and answers JSON or a problem document.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from triggerflow_temporal.plugin.links import ApprovalLinks

from . import _actions as actions
from ._approvals import execution_audit
from ._deps import Caller
from ._executions import ExecutionService
from ._http import body_doc, idempotency_key, read_model, traceparent
from ._links_pages import view_links
from ._listing import DEFAULT_LIMIT, build_query, list_executions
from ._models import (
    CloseBody,
    ContinueAnswer,
    ContinueBody,
    EmitAnswer,
    EmitBody,
    ExecutionPage,
    ExecutionView,
    StartBody,
    problems,
)
from ._problems import Problem

# Events the runtime raises itself (START, chunk continuations) are not for outside callers:
# emitting one would run a chain without its interrupt being resumed.
_INTERNAL_EVENT = re.compile(r"^START$|[\[\]]")


def executions_router(service: ExecutionService, links: ApprovalLinks | None = None) -> APIRouter:
    """The execution routes, bound to ``service`` (``links``: approval links, if configured)."""
    router = APIRouter(prefix="/v1", tags=["executions"])

    @router.post(
        "/flows/{flow}/executions",
        status_code=201,
        response_model=None,
        summary="Start an execution",
        responses={201: {"model": ExecutionView}, **problems(400, 401, 404, 409, 413, 503)},
        openapi_extra={
            **body_doc(StartBody),
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "A retry with the same key and body returns the first "
                    "execution; another body is 409.",
                }
            ],
        },
    )
    async def start(flow: str, request: Request, caller: Caller) -> JSONResponse:
        key = idempotency_key(request)
        body = await read_model(request, StartBody, required=False)
        view, replayed = await service.start(
            flow,
            caller,
            value=body.input,
            execution_id=body.execution_id,
            task_id=body.task_id,
            session_id=body.session_id,
            idempotency_key=key,
            traceparent=traceparent(request),
        )
        headers = {"Location": f"/v1/executions/{view['id']}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(view, status_code=201, headers=headers)

    @router.get(
        "/executions",
        summary="List this tenant's executions, newest first",
        responses={200: {"model": ExecutionPage}, **problems(400, 401, 501, 503)},
    )
    async def list_(
        caller: Caller,
        status: str | None = None,
        flow: str | None = None,
        interrupt_type: str | None = None,
        assigned_to: Annotated[
            str | None, Query(description="'me': interrupts this principal may resume")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = DEFAULT_LIMIT,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        query = build_query(
            caller,
            status=status,
            flow=flow,
            interrupt_type=interrupt_type,
            assigned_to=assigned_to,
        )
        return await list_executions(service.client, query, limit=limit, page_token=page_token)

    @router.get(
        "/executions/{execution_id}",
        summary="The execution view",
        responses={200: {"model": ExecutionView}, **problems(400, 401, 404, 503)},
    )
    async def get(
        execution_id: str,
        caller: Caller,
        include: Annotated[str | None, Query(description="'state' adds the state")] = None,
    ) -> dict[str, Any]:
        if include not in (None, "state"):
            raise Problem(400, f"include={include!r} is not supported; use include=state.")
        owned = await service.owned(execution_id, caller)
        return await service.view(
            owned, include_state=include == "state", links_for=view_links(links, caller, owned)
        )

    @router.post(
        "/executions/{execution_id}/interrupts/{interrupt_id}/continue",
        summary="Resume a waiting interrupt",
        responses={
            200: {"model": ContinueAnswer},
            **problems(400, 401, 403, 404, 409, 413, 422, 503),
        },
        openapi_extra={
            **body_doc(ContinueBody),
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Becomes the resume_request_id: same key and value, same "
                    "answer; another value, 409.",
                }
            ],
        },
    )
    async def continue_(
        execution_id: str, interrupt_id: str, request: Request, caller: Caller
    ) -> dict[str, Any]:
        key = idempotency_key(request)
        owned = await service.owned(execution_id, caller)
        body = await read_model(request, ContinueBody, required=False)
        return await actions.continue_interrupt(
            service, owned, interrupt_id, body.value, idempotency_key=key, principal=caller
        )

    @router.post(
        "/executions/{execution_id}/events",
        summary="Emit an event",
        responses={
            200: {"model": EmitAnswer},
            **problems(400, 401, 403, 404, 409, 413, 422, 503),
        },
        openapi_extra=body_doc(EmitBody),
    )
    async def emit(execution_id: str, request: Request, caller: Caller) -> dict[str, Any]:
        owned = await service.owned(execution_id, caller)
        body = await read_model(request, EmitBody)
        if _INTERNAL_EVENT.search(body.event):
            raise Problem(
                400,
                f"Event {body.event!r} is raised by the runtime itself (START or a chunk's "
                "continuation); resume interrupts with .../continue instead.",
            )
        return await actions.emit(service, owned, body.event, body.value, principal=caller)

    @router.post(
        "/executions/{execution_id}/close",
        summary="Close the execution",
        responses={200: {"model": ExecutionView}, **problems(400, 401, 404, 409, 413, 503)},
        openapi_extra=body_doc(CloseBody, required=False),
    )
    async def close(execution_id: str, request: Request, caller: Caller) -> dict[str, Any]:
        owned = await service.owned(execution_id, caller)
        body = await read_model(request, CloseBody, required=False)
        return await actions.close(
            service, owned, pending_interrupts=body.pending_interrupts, principal=caller
        )

    @router.get(
        "/executions/{execution_id}/audit",
        summary="Who started, resumed, emitted, was refused and closed, and when",
        responses=problems(401, 404, 503),
    )
    async def audit(execution_id: str, caller: Caller) -> dict[str, Any]:
        owned = await service.owned(execution_id, caller)
        return await execution_audit(service, owned)

    return router
