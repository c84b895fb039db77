"""Errors as RFC 9457 problem details (``application/problem+json``), gateway side.

Every refusal the gateway makes is a :class:`Problem`; :func:`problem_from_runtime` maps
the runtime's typed errors and Temporal's RPC failures to one, and the handlers installed by
:func:`install_problem_handlers` turn anything else (unknown route, bad query parameter,
unexpected exception) into one too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from triggerflow_temporal import (
    ChunkFailedError,
    ExecutionStateError,
    NoWorkerError,
    TriggerFlowError,
)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:triggerflow:gateway:problem:"
RETRY_AFTER_SECONDS = 5

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    501: "Not implemented",
    503: "Service unavailable",
}
_SLUGS = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-value",
    500: "internal",
    501: "not-implemented",
    503: "unavailable",
}

logger = logging.getLogger("triggerflow_temporal.gateway")


class Problem(Exception):
    """A refusal with its HTTP status; raised anywhere below a route, answered as a problem.

    Args:
        status: The HTTP status.
        detail: What went wrong, naming the culprit and the fix.
        slug: The last part of the problem ``type`` URI (default: by status).
        title: Short summary (default: by status).
        headers: Extra response headers (``WWW-Authenticate``, ``Retry-After``).
        extra: Extension members added to the body.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _SLUGS.get(status, "error")
        self.title = title or _TITLES.get(status, "Error")
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self, instance: str) -> dict[str, Any]:
        """The RFC 9457 document."""
        return {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extra,
        }


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    """``problem`` as an ``application/problem+json`` response."""
    return JSONResponse(
        problem.body(request.url.path),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


def unavailable(detail: str) -> Problem:
    """A 503 with ``Retry-After``."""
    return Problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def not_found(execution_id: str) -> Problem:
    """The one answer for an unknown execution and another tenant's (no existence leak)."""
    return Problem(
        404,
        f"No execution {execution_id!r} for this tenant. Check the id (GET /v1/executions "
        "lists this tenant's executions).",
    )


def problem_from_runtime(error: BaseException, *, execution_id: str | None = None) -> Problem:
    """Map a runtime or Temporal error to a problem, or re-raise it (a bug: 500).

    Mapping: ``NoWorkerError`` and an unreachable Temporal → 503; RPC ``NOT_FOUND`` → 404;
    ``PermissionError`` (a refusal of the ``continue_with`` validator for this actor) → 403;
    an unknown interrupt (``KeyError``) → 404; other ``ExecutionStateError`` → 409;
    RPC ``INVALID_ARGUMENT``, ``TypeError`` and ``ValueError`` → 400.
    """
    if isinstance(error, Problem):
        return error
    if isinstance(error, NoWorkerError):
        command = error.worker_command or "triggerflow-temporal worker"
        return unavailable(
            f"No worker serves flow {error.flow_name!r} on task queue {error.task_queue!r}; "
            f"the request waits for none. Start one: {command}."
        )
    if isinstance(error, RPCError):
        if error.status == RPCStatusCode.NOT_FOUND and execution_id is not None:
            return not_found(execution_id)
        if error.status in (
            RPCStatusCode.UNAVAILABLE,
            RPCStatusCode.DEADLINE_EXCEEDED,
            RPCStatusCode.RESOURCE_EXHAUSTED,
            RPCStatusCode.CANCELLED,
        ):
            return unavailable(f"Temporal did not answer ({_gist(error)}); retry shortly.")
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            return Problem(400, f"Temporal refused the request: {_gist(error)}.")
        raise error
    if isinstance(error, PermissionError):
        return Problem(403, f"This principal may not do this: {error}")
    if isinstance(error, ChunkFailedError):
        raise error  # callers decide: the request was accepted, the execution failed
    if isinstance(error, ExecutionStateError):
        text = str(error)
        if isinstance(error, KeyError) or text.startswith("No execution"):
            if execution_id is not None and text.startswith("No execution"):
                return not_found(execution_id)
            return Problem(404, text.strip("'\""))
        return Problem(409, text)
    if isinstance(error, TriggerFlowError):
        return Problem(400, str(error))
    if isinstance(error, (TypeError, ValueError)):
        return Problem(400, str(error))
    if isinstance(error, RuntimeError) and _unreachable(error):
        return unavailable(f"Temporal is unreachable ({_gist(error)}); retry shortly.")
    raise error


def _unreachable(error: BaseException) -> bool:
    text = str(error).lower()
    return any(
        marker in text
        for marker in ("failed client connect", "connection refused", "transport error", "tcp")
    )


def _gist(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with a problem document."""

    async def on_problem(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Problem)
        return problem_response(request, error)

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        detail = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404:
            detail = f"No route {request.method} {request.url.path}; see /docs."
        elif error.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs."
        problem = Problem(error.status_code, detail, headers=dict(error.headers or {}))
        return problem_response(request, problem)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        parts = []
        for item in error.errors()[:5]:
            where = ".".join(str(p) for p in item.get("loc", ()))
            parts.append(f"{where}: {item.get('msg')}")
        return problem_response(request, Problem(400, "Invalid request: " + "; ".join(parts)))

    async def on_error(request: Request, error: Exception) -> JSONResponse:
        try:
            problem = problem_from_runtime(error)
        except BaseException:
            logger.exception("Unhandled error on %s %s", request.method, request.url.path)
            problem = Problem(
                500,
                "The gateway failed on this request (a bug); its log has the details.",
            )
        return problem_response(request, problem)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_error)
