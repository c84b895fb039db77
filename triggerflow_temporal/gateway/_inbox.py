"""The approver's inbox: ``/inbox`` and ``/inbox/{execution_id}/{interrupt_id}`` (HTML).

Gateway side. The list holds the waiting interrupts the principal may resume: its tenant's
executions that ``GET /v1/executions?status=waiting&assigned_to=me`` lists (the same
visibility query), then, per execution, its pending interrupts that the runtime's access
rules let this principal resume (assigned to it, to one of its groups, or to anyone; not
its own when ``forbid_initiator``), newest first. Each names its interrupt id and links to
its detail page: payload, deadline, the Workspace records the payload refers to, and the
form built from ``response_payload_schema``. Submitting resumes through the API's continue
path with the principal as actor; the browser is then sent back to the detail page (so a
reload does not post again), which shows who answered and the execution's audit trail.

Authentication and CSRF: :mod:`._inbox_auth`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ._approvals import (
    decide,
    execution_audit,
    interrupt_record,
    may_resume,
    read_form,
)
from ._auth import Principal
from ._executions import ExecutionService, Owned
from ._html import (
    SchemaForm,
    esc,
    html_response,
    json_block,
    message_page,
    moment,
    page,
    summary,
)
from ._inbox_auth import (
    CSRF_FIELD,
    Forbidden,
    InboxAuth,
    LoginRequired,
    Session,
    check_post,
    clear_cookie,
    is_https,
    login_cookie,
    redirect,
    refuse_cross_site,
    valid_credential,
    who,
)
from ._listing import build_query, list_executions
from ._problems import Problem
from ._workspace_refs import RecordView, WorkspaceRecords, record_refs

logger = logging.getLogger("triggerflow_temporal.gateway")

INBOX_LIMIT = 50
RID_FIELD = "__rid"
_RID = re.compile(r"^inbox-[A-Za-z0-9_-]{8,64}$")
_LOGIN_REASONS = {
    "expired": "Your session ended (the credential expired or is no longer accepted). "
    "Log in again.",
    "out": "You are logged out.",
}
_CROSS_SITE = (
    "This form was not accepted: it came from another site or from an old page. Reload the "
    "page and try again. Nothing changed."
)


def detail_path(execution_id: str, interrupt_id: str) -> str:
    """The detail page of one interrupt."""
    return f"/inbox/{quote(execution_id, safe='')}/{quote(interrupt_id, safe='')}"


def inbox_router(
    service: ExecutionService, auth: InboxAuth, workspace: WorkspaceRecords
) -> APIRouter:
    """The inbox pages."""
    router = APIRouter(tags=["inbox"])
    pages = _Pages(service, auth, workspace)

    @router.get("/inbox", response_class=HTMLResponse, summary="The approver's inbox")
    async def inbox(request: Request, page_token: str | None = None) -> Response:
        return await pages.guarded(request, lambda s: pages.listing(s, page_token))

    @router.get("/inbox/login", response_class=HTMLResponse, summary="Inbox login page")
    async def login_page(request: Request, m: str | None = None) -> Response:
        return await pages.login_page(request, _LOGIN_REASONS.get(m or ""))

    @router.post("/inbox/login", response_class=HTMLResponse, summary="Log in to the inbox")
    async def login(request: Request) -> Response:
        return await pages.login(request)

    @router.post("/inbox/logout", response_class=HTMLResponse, summary="Log out of the inbox")
    async def logout(request: Request) -> Response:
        return await pages.logout(request)

    @router.get(
        "/inbox/{execution_id}/{interrupt_id:path}",
        response_class=HTMLResponse,
        summary="One waiting interrupt: payload, records, the answer form",
    )
    async def detail(request: Request, execution_id: str, interrupt_id: str) -> Response:
        return await pages.guarded(request, lambda s: pages.detail(s, execution_id, interrupt_id))

    @router.post(
        "/inbox/{execution_id}/{interrupt_id:path}",
        response_class=HTMLResponse,
        summary="Answer one interrupt (the API's continue path)",
    )
    async def answer(request: Request, execution_id: str, interrupt_id: str) -> Response:
        return await pages.guarded(
            request, lambda s: pages.answer(request, s, execution_id, interrupt_id)
        )

    return router


class _Pages:
    def __init__(
        self, service: ExecutionService, auth: InboxAuth, workspace: WorkspaceRecords
    ) -> None:
        self.service = service
        self.auth = auth
        self.workspace = workspace

    # --------------------------------------------------------------------- plumbing
    async def guarded(self, request: Request, render: Any) -> Response:
        """Resolve the session, run ``render(session)``; errors become pages."""
        try:
            session = await self.auth.session(request)
        except LoginRequired as required:
            target = "/inbox/login" + (f"?m={required.reason}" if required.reason else "")
            response = redirect(target)
            if required.reason:
                clear_cookie(response, secure=is_https(request))
            return response
        except Problem as problem:
            return _problem_page(problem, "")
        try:
            return await render(session)
        except Forbidden:
            return message_page("Not accepted", _CROSS_SITE, status=403, header=who(session))
        except Problem as problem:
            return _problem_page(problem, who(session))
        except Exception:
            logger.exception("An inbox page failed")
            return message_page(
                "Something went wrong",
                "The gateway failed on this page (a bug); its log has the details. Nothing "
                "changed.",
                status=500,
                header=who(session),
            )

    # ------------------------------------------------------------------------ login
    async def login_page(
        self, request: Request, note: str | None, *, error: str | None = None, status: int = 200
    ) -> Response:
        if not self.auth.authenticator.required:
            return message_page(
                "No login needed",
                "This gateway has no authentication configured (loopback only): the inbox acts "
                "as the anonymous principal of tenant 'default'.",
                status=200,
                more="<p><a href='/inbox'>Open the inbox</a></p>",
            )
        parts = ["<h1>Log in to the inbox</h1>"]
        if note:
            parts.append(f"<div class='ok' role='status'>{esc(note)}</div>")
        if error:
            parts.append(f"<div class='error' role='alert'>{esc(error)}</div>")
        parts.append(
            "<form method='post' action='/inbox/login' class='card'>"
            "<div class='field'><label for='credential'>API key or JWT</label>"
            "<input type='password' id='credential' name='credential' required "
            "autocomplete='off' spellcheck='false'>"
            "<div class='help'>Paste the bearer credential you use with the API. It is kept "
            "in a cookie only this inbox receives (HttpOnly, SameSite=Strict).</div></div>"
            "<div class='buttons'><button type='submit' class='primary'>Log in</button></div>"
            "</form><p class='muted'>Behind an authenticating proxy (oauth2-proxy) you need "
            "no login: the proxy passes your Authorization header.</p>"
        )
        return html_response(page("Log in", "".join(parts)), status)

    async def login(self, request: Request) -> Response:
        try:
            refuse_cross_site(request)
            form = await read_form(request)
        except Forbidden:
            return message_page("Not accepted", _CROSS_SITE, status=403)
        except Problem as problem:
            return _problem_page(problem, "")
        credential = (form.get("credential") or [""])[-1].strip()
        if credential.lower().startswith("bearer "):
            credential = credential[len("bearer ") :].strip()
        if not valid_credential(credential):
            return await self.login_page(
                request, None, error="That is not an API key or a JWT.", status=400
            )
        try:
            principal = await self.auth.login(credential)
        except Problem as problem:
            if problem.status != 401:
                return _problem_page(problem, "")
            return await self.login_page(
                request, None, error=f"Not accepted: {problem.detail}", status=401
            )
        logger.info("inbox login: subject %s of tenant %s", principal.subject, principal.tenant)
        response = redirect("/inbox")
        login_cookie(response, credential, secure=is_https(request))
        return response

    async def logout(self, request: Request) -> Response:
        async def out(session: Session) -> Response:
            check_post(request, session, await read_form(request))
            response = redirect("/inbox/login?m=out")
            clear_cookie(response, secure=is_https(request))
            return response

        return await self.guarded(request, out)

    # ---------------------------------------------------------------------- listing
    async def listing(self, session: Session, page_token: str | None) -> Response:
        principal = session.principal
        query = build_query(principal, status="waiting", assigned_to="me")
        found = await list_executions(
            self.service.client, query, limit=INBOX_LIMIT, page_token=page_token
        )
        rows = found["executions"]
        groups = await asyncio.gather(*(self._mine(row["id"], principal) for row in rows))
        items = [item for group in groups for item in group]
        items.sort(key=lambda item: -(float(item[1].get("created_at") or 0)))
        now = time.time()
        table = "".join(_row(owned, record, now) for owned, record in items)
        if items:
            body = (
                "<table><thead><tr><th>Request</th><th>Type</th><th>Flow</th><th>Payload</th>"
                "<th>Age</th><th>Deadline</th></tr></thead>"
                f"<tbody>{table}</tbody></table>"
            )
        else:
            body = "<div class='card'>Nothing is waiting for you.</div>"
        more = ""
        if found.get("next_page_token"):
            more = (
                f"<p><a href='/inbox?page_token={quote(found['next_page_token'], safe='')}'>"
                "Older requests</a></p>"
            )
        intro = (
            f"<h1>Waiting for you <span class='muted'>({len(items)})</span></h1>"
            "<p class='muted'>Requests of your tenant assigned to you, to one of your groups "
            "or to anyone, newest first.</p>"
        )
        return html_response(page("Inbox", intro + body + more, header=who(session)))

    async def _mine(self, execution_id: str, principal: Principal) -> list[tuple[Owned, dict]]:
        try:
            owned = await self.service.owned(execution_id, principal)
            (pending,) = await self.service.ask(owned, ("async_get_pending_interrupts",))
        except Problem:  # closed meanwhile, a flow this gateway does not serve, no worker
            return []
        return [
            (owned, record)
            for record in (pending or {}).values()
            if record.get("status") == "waiting" and may_resume(record, principal, owned) is None
        ]

    # ----------------------------------------------------------------------- detail
    async def detail(
        self,
        session: Session,
        execution_id: str,
        interrupt_id: str,
        *,
        submitted: Mapping[str, list[str]] | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        owned = await self.service.owned(execution_id, session.principal)
        record = await interrupt_record(self.service, owned, interrupt_id)
        waiting = record.get("status") == "waiting" and owned.running
        parts = [
            f"<p><a href='/inbox'>← Inbox</a></p><h1>{esc(record.get('type') or 'request')}: "
            f"<code>{esc(interrupt_id)}</code></h1>",
            _facts(owned, record),
            f"<h2>Payload</h2>{json_block(record.get('payload'))}",
            await self._records(owned, record, session.principal),
        ]
        if waiting:
            refusal = may_resume(record, session.principal, owned)
            if refusal is not None:
                parts.append(f"<div class='error' role='alert'>{esc(refusal)}</div>")
                status = 403
            else:
                wait = record.get("external_wait_request") or {}
                rid = (submitted or {}).get(RID_FIELD, [""])[-1]
                form = SchemaForm(wait.get("response_payload_schema"))
                parts.append("<h2>Your answer</h2>")
                parts.append(
                    form.render(
                        submitted=submitted,
                        error=error,
                        hidden_fields={
                            CSRF_FIELD: session.csrf,
                            RID_FIELD: rid if _RID.match(rid) else _new_rid(),
                        },
                    )
                )
        else:
            parts.append(_answered(record))
            audit = await execution_audit(self.service, owned)
            parts.append(_audit_table(audit))
        title = f"{record.get('type') or 'request'} {interrupt_id}"
        return html_response(page(title, "".join(parts), header=who(session)), status)

    async def _records(self, owned: Owned, record: Mapping[str, Any], principal: Principal) -> str:
        refs = record_refs(record.get("payload"))
        if not refs:
            return ""
        views, problem = await self.workspace.fetch(
            refs, execution_id=owned.id, tenant=principal.tenant
        )
        head = "<h2>Workspace records</h2>"
        if problem is not None:
            ids = ", ".join(f"<code>{esc(r)}</code>" for r in refs)
            return f"{head}<div class='card'><p>{ids}</p><p class='muted'>{esc(problem)}</p></div>"
        return head + "".join(_record_card(view) for view in views)

    async def answer(
        self, request: Request, session: Session, execution_id: str, interrupt_id: str
    ) -> Response:
        submitted = await read_form(request)
        check_post(request, session, submitted)
        owned = await self.service.owned(execution_id, session.principal)
        record = await interrupt_record(self.service, owned, interrupt_id)
        rid = (submitted.get(RID_FIELD) or [""])[-1]
        rid = rid if _RID.match(rid) else _new_rid()
        done = detail_path(execution_id, interrupt_id)
        if record.get("status") != "waiting" or not owned.running:
            if rid in (record.get("resume_requests") or {}):
                return redirect(done)  # this very form was sent twice: show the outcome
            raise Problem(
                409,
                f"Request {interrupt_id!r} was already answered or withdrawn; nothing changed.",
            )
        wait = record.get("external_wait_request") or {}
        value = SchemaForm(wait.get("response_payload_schema")).value(submitted)
        try:
            await decide(
                self.service,
                owned,
                record,
                value,
                principal=session.principal,
                request_id=rid,
            )
        except Problem as problem:
            if problem.status != 422:
                raise
            return await self.detail(
                session,
                execution_id,
                interrupt_id,
                submitted=submitted,
                error=problem.detail,
                status=422,
            )
        return redirect(done)


def _new_rid() -> str:
    return f"inbox-{secrets.token_urlsafe(12)}"


_PROBLEM_TITLES = {
    400: "The request could not be read",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Already answered",
    422: "Not accepted",
    501: "The inbox cannot list here",
    503: "Try again shortly",
}


def _problem_page(problem: Problem, header: str) -> HTMLResponse:
    title = _PROBLEM_TITLES.get(problem.status, "Something went wrong")
    more = "<p><a href='/inbox'>Back to the inbox</a></p>"
    if problem.status == 401:
        more = "<p><a href='/inbox/login'>Log in</a></p>"
    response = message_page(title, problem.detail, status=problem.status, header=header, more=more)
    if "Retry-After" in problem.headers:
        response.headers["Retry-After"] = problem.headers["Retry-After"]
    return response


def _row(owned: Owned, record: Mapping[str, Any], now: float) -> str:
    interrupt_id = str(record.get("id"))
    return (
        f"<tr><td><a href='{esc(detail_path(owned.id, interrupt_id))}'>{esc(interrupt_id)}</a>"
        f"<div class='muted'><code>{esc(owned.id)}</code></div></td>"
        f"<td>{esc(record.get('type'))}</td><td>{esc(owned.flow.name)}</td>"
        f"<td>{esc(summary(record.get('payload')))}</td>"
        f"<td>{moment(record.get('created_at'), now=now, compact=True)}</td>"
        f"<td>{moment(record.get('deadline'), now=now, compact=True)}</td></tr>"
    )


def _facts(owned: Owned, record: Mapping[str, Any]) -> str:
    rules = record.get("access") or {}
    assignees = ", ".join(rules.get("assignees") or []) or "anyone of the tenant"
    groups = ", ".join(rules.get("candidate_groups") or []) or "none"
    return (
        "<div class='card'><dl>"
        f"<dt>Flow</dt><dd>{esc(owned.flow.name)}</dd>"
        f"<dt>Execution</dt><dd><code>{esc(owned.id)}</code></dd>"
        f"<dt>Status</dt><dd>{esc(record.get('status'))}</dd>"
        f"<dt>Asked</dt><dd>{moment(record.get('created_at'))}</dd>"
        f"<dt>Deadline</dt><dd>{moment(record.get('deadline'))}</dd>"
        f"<dt>Assignees</dt><dd>{esc(assignees)}</dd>"
        f"<dt>Candidate groups</dt><dd>{esc(groups)}</dd>"
        "</dl></div>"
    )


def _record_card(view: RecordView) -> str:
    head = f"<h3><code>{esc(view.id)}</code></h3>"
    if view.ref is None:
        return f"<div class='card'>{head} <span class='muted'>{esc(view.problem)}</span></div>"
    ref = view.ref
    facts = (
        f"<dl><dt>Kind</dt><dd>{esc(ref.get('collection'))} / {esc(ref.get('kind'))}</dd>"
        f"<dt>Summary</dt><dd>{esc(ref.get('summary') or '')}</dd>"
        f"<dt>Size</dt><dd>{esc(ref.get('size'))} bytes</dd>"
        f"<dt>Stored</dt><dd>{moment(ref.get('created_at'))}</dd></dl>"
    )
    if view.problem:
        content = f"<p class='muted'>{esc(view.problem)}</p>"
    else:
        content = (
            json_block(view.content)
            if not isinstance(view.content, str)
            else (f"<pre>{esc(view.content)}</pre>")
        )
        if view.more:
            content += "<p class='muted'>… (the record goes on)</p>"
    return f"<div class='card'>{head}{facts}{content}</div>"


def _answered(record: Mapping[str, Any]) -> str:
    status = record.get("status")
    if status != "resumed":
        why = "withdrawn" if status == "cancelled" else "no longer open"
        return (
            f"<div class='ok' role='status'>This request was {why} (status "
            f"{esc(status)}); it takes no answer.</div>"
        )
    principal = record.get("resumed_by_principal") or {}
    by = record.get("resumed_by") or principal.get("subject") or "the runtime"
    method = principal.get("method")
    how = f" ({method})" if method else ""
    value = record.get("resume_value")
    verdict = ""
    if isinstance(value, Mapping) and isinstance(value.get("approved"), bool):
        verdict = "Approved. " if value["approved"] else "Rejected. "
    return (
        f"<div class='ok' role='status'>{esc(verdict)}This request was answered by "
        f"{esc(by)}{esc(how)} {moment(record.get('resumed_at'))}.</div>"
        f"<h2>Answer</h2>{json_block(value)}"
    )


def _audit_table(audit: Mapping[str, Any]) -> str:
    rows = []
    for entry in audit.get("entries") or []:
        by = entry.get("by") or {}
        who_text = by.get("subject") or "—"
        if by.get("method"):
            who_text += f" ({by['method']})"
        rows.append(
            f"<tr><td>{moment(entry.get('at'))}</td><td>{esc(entry.get('action'))}</td>"
            f"<td>{esc(who_text)}</td><td>{esc(entry.get('interrupt_id') or '')}</td>"
            f"<td>{esc(summary(entry.get('detail') or {}, 160))}</td></tr>"
        )
    return (
        "<h2>Audit trail</h2><table><thead><tr><th>When</th><th>What</th><th>Who</th>"
        f"<th>Request</th><th>Detail</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
