"""Approval links: ``GET /a/{token}`` shows the request, ``POST /a/{token}`` decides it.

Gateway side. The token (minted by :class:`~triggerflow_temporal.plugin.links.ApprovalLinks`
with the ``links`` secret the worker shares) is the only credential: no ``Authorization``.
It is checked before anything is shown: signature and expiry, then the execution must
belong to the token's tenant (else the same 404 as an unknown one), the interrupt must be
waiting in the round the token names (``resume_count``) with the payload it was minted for
(``payload_hash``), and the token's subject must be allowed by the interrupt's access rules.

GET changes nothing, so link scanners and previews are harmless. POST resumes through
the API's continue path with the actor ``{subject, tenant, groups: [], method: "link"}``
and ``resume_request_id = "link:<jti>"``; after that the interrupt is no longer waiting, so
the link answers "already used" (409). Expired: 410. Changed, cut short or signed with
another key: 400. Another tenant's or an unknown execution or interrupt: 404.

CSRF: the POST needs nothing but the token, which is itself the secret and is in the URL
the form posts back to; a page elsewhere cannot forge that POST without already holding
the link, and holding the link is the permission. The pages send ``Referrer-Policy:
no-referrer`` and load nothing from elsewhere, so the token does not leak through a
``Referer`` header, and ``frame-ancestors 'none'`` keeps them out of frames (no
click-jacking). Tokens never reach the logs: the access log shows ``/a/<token>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from triggerflow_temporal.plugin.links import ApprovalLinks, LinkClaims, LinkError, payload_hash

from ._approvals import decide, interrupt_record, may_resume, read_form
from ._auth import Principal
from ._config_types import GatewayConfig
from ._executions import ExecutionService, Owned
from ._html import SchemaForm, esc, html_response, json_block, message_page, moment, page
from ._problems import Problem

logger = logging.getLogger("triggerflow_temporal.gateway")

LINK_METHOD = "link"


def approval_links(config: GatewayConfig) -> ApprovalLinks | None:
    """The gateway's :class:`ApprovalLinks` from ``links:`` (None when not configured)."""
    if config.links is None:
        return None
    return ApprovalLinks(
        config.links.base_url, config.links.secret, ttl_seconds=config.links.ttl_seconds
    )


def view_links(
    links: ApprovalLinks | None, principal: Principal, owned: Owned
) -> Callable[[Mapping[str, Any]], dict[str, str]] | None:
    """For the execution view: ``{subject: url}`` of the caller's own link, else ``{}``.

    A link is minted only for the requesting principal, only when it is one of the waiting
    interrupt's ``assignees`` and the runtime's access rules let it resume; links of other
    subjects are never handed out.
    """
    if links is None:
        return None

    def for_record(record: Mapping[str, Any]) -> dict[str, str]:
        if record.get("status") != "waiting":
            return {}
        rules = record.get("access") or {}
        if principal.subject not in (rules.get("assignees") or []):
            return {}
        if may_resume(record, principal, owned) is not None:
            return {}
        token = links.token(
            execution_id=owned.id,
            interrupt_id=str(record.get("id")),
            round=int(record.get("resume_count") or 0),
            payload=record.get("payload"),
            subject=principal.subject,
            tenant=owned.tenant,
            deadline=record.get("deadline"),
        )
        return {principal.subject: links.url(token)}

    return for_record


class RedactLinkTokens(logging.Filter):
    """Keeps approval-link tokens out of uvicorn's access log (``/a/<token>``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the request path argument; never drops a record."""
        if isinstance(record.args, tuple):
            record.args = tuple(
                "/a/<token>" if isinstance(arg, str) and arg.startswith("/a/") else arg
                for arg in record.args
            )
        return True


def install_log_redaction() -> None:
    """Add :class:`RedactLinkTokens` to ``uvicorn.access`` (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactLinkTokens) for f in access.filters):
        access.addFilter(RedactLinkTokens())


class _PageError(Exception):
    def __init__(self, status: int, title: str, message: str, more: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.more = more

    def response(self) -> HTMLResponse:
        return message_page(self.title, self.message, status=self.status, more=self.more)


class _Link:
    """A checked link: its claims, the execution, the waiting interrupt's record."""

    def __init__(
        self, claims: LinkClaims, principal: Principal, owned: Owned, record: dict[str, Any]
    ) -> None:
        self.claims = claims
        self.principal = principal
        self.owned = owned
        self.record = record

    @property
    def form(self) -> SchemaForm:
        wait = self.record.get("external_wait_request") or {}
        return SchemaForm(wait.get("response_payload_schema"))


def _answered(record: Mapping[str, Any]) -> str:
    who = record.get("resumed_by")
    when = moment(record.get("resumed_at"), empty="")
    if record.get("status") == "resumed" and who:
        return f"<p class='muted'>Answered by {esc(who)} {when}.</p>"
    return f"<p class='muted'>Status: {esc(record.get('status'))}.</p>"


def _used(record: Mapping[str, Any] | None = None) -> _PageError:
    return _PageError(
        409,
        "This approval link was already used",
        "This request was already answered (or withdrawn), so this link is already used and "
        "changes nothing now. Open the inbox to see what is waiting for you.",
        _answered(record) if record else "",
    )


def _from_problem(problem: Problem) -> _PageError:
    if problem.status == 404:
        return _PageError(
            404,
            "Request not found",
            "This approval link points at a request that does not exist or is not yours to answer.",
        )
    if problem.status == 409:
        return _used()
    if problem.status == 403:
        return _PageError(403, "You may not answer this request", problem.detail)
    if problem.status == 503:
        return _PageError(
            503, "Try again shortly", "The approval service is busy or unreachable right now."
        )
    return _PageError(problem.status, "This request could not be completed", problem.detail)


async def _check(links: ApprovalLinks | None, service: ExecutionService, token: str) -> _Link:
    if links is None:
        raise _PageError(
            404, "Approval links are off", "This gateway has no approval links configured."
        )
    try:
        claims = links.verify(token)
    except LinkError as error:
        if error.reason == "expired":
            raise _PageError(
                410,
                "This approval link has expired",
                "This approval link has expired and changes nothing. Ask for a new one, or "
                "answer the request in the inbox.",
            ) from None
        raise _PageError(
            400,
            "This approval link is not valid",
            "This approval link is not valid: it was changed or cut short. Open it exactly as "
            "you received it.",
        ) from None
    if not claims.tenant:
        raise _from_problem(Problem(404, "no tenant"))
    principal = Principal(
        subject=claims.subject, tenant=claims.tenant, groups=(), method=LINK_METHOD
    )
    try:
        owned = await service.owned(claims.execution_id, principal)
        record = await interrupt_record(service, owned, claims.interrupt_id)
    except Problem as problem:
        raise _from_problem(problem) from None
    if record.get("status") != "waiting" or not owned.running:
        raise _used(record)
    if int(record.get("resume_count") or 0) != claims.round:
        raise _used(record)
    if payload_hash(record.get("payload")) != claims.payload_hash:
        raise _PageError(
            409,
            "This request has changed",
            "The request this link was made for has changed since; this link changes nothing. "
            "Ask for a new one.",
        )
    refusal = may_resume(record, principal, owned)
    if refusal is not None:
        raise _PageError(403, "You may not answer this request", refusal)
    return _Link(claims, principal, owned, record)


def _request_page(link: _Link, *, status: int = 200, form_html: str = "") -> HTMLResponse:
    record = link.record
    flow = link.owned.flow.name
    body = (
        f"<h1>Approval request: {esc(record.get('type') or 'approval')}</h1>"
        "<div class='card'><dl>"
        f"<dt>Flow</dt><dd>{esc(flow)}</dd>"
        f"<dt>Execution</dt><dd><code>{esc(link.owned.id)}</code></dd>"
        f"<dt>Request</dt><dd><code>{esc(record.get('id'))}</code></dd>"
        f"<dt>For</dt><dd>{esc(link.claims.subject)}</dd>"
        f"<dt>Asked</dt><dd>{moment(record.get('created_at'))}</dd>"
        f"<dt>Deadline</dt><dd>{moment(record.get('deadline'))}</dd>"
        f"<dt>Link valid until</dt><dd>{moment(link.claims.expires_at)}</dd>"
        "</dl></div>"
        f"<h2>Payload</h2>{json_block(record.get('payload'))}"
        "<h2>Your answer</h2>"
        "<p class='muted'>Nothing is decided until you press a button below.</p>"
        f"{form_html or link.form.render()}"
    )
    header = f"<span class='who'>Answering as {esc(link.claims.subject)}</span>"
    return html_response(page("Approval request", body, header=header), status)


def links_router(service: ExecutionService, links: ApprovalLinks | None) -> APIRouter:
    """``GET /a/{token}`` and ``POST /a/{token}`` (HTML pages, no Authorization)."""
    router = APIRouter(tags=["approval links"])

    @router.get(
        "/a/{token}",
        response_class=HTMLResponse,
        summary="An approval link: the request and a confirm form (changes nothing)",
    )
    async def show(token: str) -> HTMLResponse:
        try:
            link = await _check(links, service, token)
            return _request_page(link)
        except _PageError as error:
            return error.response()
        except Exception:
            logger.exception("The approval link page failed")  # no token in the message
            return message_page("Something went wrong", _BUG, status=500)

    @router.post(
        "/a/{token}",
        response_class=HTMLResponse,
        summary="An approval link: decide (resumes the interrupt once)",
    )
    async def answer(token: str, request: Request) -> HTMLResponse:
        try:
            link = await _check(links, service, token)
            try:
                submitted = await read_form(request)
            except Problem as problem:
                raise _PageError(400, "The form could not be read", problem.detail) from None
            form = link.form
            value = form.value(submitted)
            try:
                answer = await decide(
                    service,
                    link.owned,
                    link.record,
                    value,
                    principal=link.principal,
                    request_id=link.claims.resume_request_id,
                )
            except Problem as problem:
                if problem.status == 422:
                    markup = form.render(submitted=submitted, error=problem.detail)
                    return _request_page(link, status=422, form_html=markup)
                raise _from_problem(problem) from None
            return _outcome(link, value, answer)
        except _PageError as error:
            return error.response()
        except Exception:
            logger.exception("The approval link decision failed")  # no token in the message
            return message_page("Something went wrong", _BUG, status=500)

    return router


_BUG = "The gateway failed on this request (a bug); its log has the details. Nothing changed."


def _outcome(link: _Link, value: Any, answer: Mapping[str, Any]) -> HTMLResponse:
    decided = value.get("approved") if isinstance(value, Mapping) else None
    verdict = "Approved" if decided is True else "Rejected" if decided is False else "Answered"
    more = (
        "<div class='card'><dl>"
        f"<dt>Request</dt><dd><code>{esc(link.record.get('id'))}</code></dd>"
        f"<dt>Execution</dt><dd><code>{esc(link.owned.id)}</code></dd>"
        f"<dt>Execution status</dt><dd>{esc(answer.get('status'))}</dd>"
        f"<dt>Answered by</dt><dd>{esc(link.claims.subject)} (approval link)</dd>"
        f"</dl></div><h2>Your answer</h2>{json_block(value)}"
    )
    return message_page(
        f"{verdict}: thank you",
        f"{verdict}. Your answer was recorded; this link is now used up.",
        status=200,
        more=more,
    )
