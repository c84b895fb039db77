"""Routes that do not name an execution: messages, webhooks, health (gateway side)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client

from ._auth import Principal
from ._config_types import GatewayConfig, WebhookSender
from ._deps import Caller
from ._http import body_doc, parse_json, read_body, read_model
from ._messages import DEFAULT_TTL_SECONDS, MessageRouter
from ._models import MessageAnswer, MessageBody, problems
from ._problems import Problem, problem_from_runtime, unavailable
from ._webhooks import ReplayGuard, verify

READY_TIMEOUT_SECONDS = 3.0
logger = logging.getLogger("triggerflow_temporal.gateway")


def _no_router() -> Problem:
    return Problem(
        501,
        "This gateway has no message router: correlated messages need the runtime's "
        "mailbox (create_app(..., message_router=...)); see docs/gateway.md.",
    )


async def _deliver(
    router: MessageRouter | None,
    principal: Principal,
    *,
    name: str,
    key: str,
    value: Any,
    message_id: str,
    ttl_seconds: int | None,
) -> dict[str, Any]:
    if router is None:
        raise _no_router()
    try:
        answer: Mapping[str, Any] = await router.deliver(
            principal.tenant,
            name,
            key,
            value,
            message_id,
            ttl_seconds or DEFAULT_TTL_SECONDS,
            principal.as_actor(),
        )
    except Problem:
        raise
    except Exception as error:
        try:
            problem = problem_from_runtime(error)
        except Exception:
            logger.exception("The message router failed on message %r", message_id)
            problem = unavailable(
                f"The message router failed ({type(error).__name__}: {error}); nothing was "
                "delivered. Retry with the same message_id."
            )
        raise problem from None
    return {
        "delivered_to": list(answer.get("delivered_to") or []),
        "buffered": bool(answer.get("buffered")),
    }


def ingress_router(config: GatewayConfig, message_router: MessageRouter | None) -> APIRouter:
    """``POST /v1/messages`` and ``POST /v1/webhooks/{sender}``."""
    router = APIRouter(prefix="/v1", tags=["messages"])
    guard = ReplayGuard()

    @router.post(
        "/messages",
        status_code=202,
        summary="Deliver a correlated message",
        responses={202: {"model": MessageAnswer}, **problems(400, 401, 413, 501, 503)},
        openapi_extra=body_doc(MessageBody),
    )
    async def message(request: Request, caller: Caller) -> JSONResponse:
        body = await read_model(request, MessageBody)
        answer = await _deliver(
            message_router,
            caller,
            name=body.name,
            key=str(body.correlation_key),
            value=body.value,
            message_id=body.message_id,
            ttl_seconds=body.ttl_seconds,
        )
        return JSONResponse(answer, status_code=202)

    @router.post(
        "/webhooks/{sender}",
        status_code=202,
        summary="A third party's webhook (Standard Webhooks signature)",
        responses={
            200: {"model": MessageAnswer, "description": "a repeated webhook-id: not delivered"},
            202: {"model": MessageAnswer},
            **problems(400, 401, 404, 409, 413, 501, 503),
        },
    )
    async def webhook(sender: str, request: Request) -> JSONResponse:
        found: WebhookSender | None = config.webhooks.get(sender)
        if found is None:
            raise Problem(404, f"No webhook sender {sender!r} is configured on this gateway.")
        raw = await read_body(request)
        webhook_id = verify(found, request.headers, raw)
        payload = parse_json(raw)
        try:
            key = found.correlation_key.find(payload)
        except KeyError as error:
            raise Problem(400, f"The webhook has no correlation key: {error.args[0]}.") from None
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise Problem(
                400,
                f"The correlation key at {found.correlation_key.text} is a "
                f"{type(key).__name__}; it must be a string or an integer.",
            )
        keep = 2 * found.tolerance_seconds
        claim = guard.claim(sender, webhook_id, keep)
        if claim == "done":
            duplicate = {"delivered_to": [], "buffered": False, "duplicate": True}
            return JSONResponse(duplicate, status_code=200)
        if claim == "busy":
            raise Problem(
                409,
                f"Webhook {webhook_id!r} is being delivered by another request; retry later.",
                headers={"Retry-After": "1"},
            )
        principal = Principal(
            subject=f"webhook:{sender}", tenant=found.tenant, groups=(), method="webhook"
        )
        try:
            answer = await _deliver(
                message_router,
                principal,
                name=found.message_name,
                key=str(key),
                value=payload,
                message_id=f"webhook:{sender}:{webhook_id}",
                ttl_seconds=found.ttl_seconds,
            )
        except BaseException:
            guard.release(sender, webhook_id)
            raise
        guard.delivered(sender, webhook_id, keep)
        return JSONResponse(answer, status_code=202)

    return router


def health_router(client: Client) -> APIRouter:
    """``GET /healthz`` (the process answers) and ``GET /readyz`` (Temporal answers too)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: Temporal answers", responses=problems(503))
    async def readyz() -> dict[str, str]:
        try:
            healthy = await asyncio.wait_for(
                client.service_client.check_health(
                    timeout=timedelta(seconds=READY_TIMEOUT_SECONDS)
                ),
                READY_TIMEOUT_SECONDS + 1,
            )
        except Exception as error:
            raise unavailable(
                f"Temporal does not answer: {str(error).splitlines()[0][:200]}."
            ) from None
        if not healthy:
            raise unavailable("Temporal reports it is not serving.")
        return {"status": "ready", "namespace": client.namespace}

    return router
