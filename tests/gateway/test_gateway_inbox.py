"""The inbox pages over HTTP: login cookie, CSRF, the list, the detail, the schema form."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from triggerflow_temporal.gateway._config import GatewayConfigError, parse_config
from triggerflow_temporal.gateway._html import SchemaForm
from triggerflow_temporal.gateway._inbox_auth import COOKIE, encode_cookie
from workspace import WorkspaceClient

from . import flows
from .conftest import KEYS, auth, bearer, observed, token
from .pages_support import (
    WORKSPACE_TOKEN,
    control_names,
    free_port,
    hidden_value,
    link_token,
    pages_app,
    start_review,
    workspace_service,
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def workspace_url() -> AsyncIterator[str]:
    async with workspace_service() as (url, _store):
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def inbox(gateway_client: Client, workspace_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with links and the Workspace configured, in-process."""
    transport = httpx.ASGITransport(app=pages_app(gateway_client, workspace_url))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


class User:
    """A JWT principal of its own tenant, logged in to the inbox."""

    def __init__(self, subject: str, tenant: str, groups: list[str]) -> None:
        self.subject = subject
        self.tenant = tenant
        self.jwt = token(subject, tenant=tenant, groups=groups, jti=uuid.uuid4().hex)
        self.cookie = ""

    @property
    def api(self) -> dict[str, str]:
        return bearer(self.jwt)

    @property
    def session(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.cookie}"}

    async def login(self, http: httpx.AsyncClient) -> None:
        response = await http.post("/inbox/login", data={"credential": self.jwt})
        assert response.status_code == 303, response.text
        self.cookie = cookie_value(response)


def cookie_value(response: httpx.Response) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE)]
    return header.split(";")[0].split("=", 1)[1]


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def listing(http: httpx.AsyncClient, user: User, *want: str) -> str:
    """The inbox page of ``user`` once it shows every id of ``want`` (visibility lags)."""
    page = ""
    for _ in range(100):
        response = await http.get("/inbox", headers=user.session)
        assert response.status_code == 200, response.text
        page = response.text
        if all(w in page for w in want):
            return page
        await asyncio.sleep(0.1)
    raise AssertionError(f"the inbox never listed {want}: {page[-2000:]}")


def detail(view: dict[str, Any]) -> str:
    return f"/inbox/{quote(view['id'], safe='')}/review"


async def test_without_credentials_the_inbox_asks_to_log_in(inbox):
    response = await inbox.get("/inbox")
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox/login"
    page = await inbox.get("/inbox/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "credential" in control_names(page.text)


async def test_login_verifies_and_sets_a_strict_cookie(inbox):
    key = KEYS["bob"][0]
    response = await inbox.post("/inbox/login", data={"credential": key})
    assert response.status_code == 303 and response.headers["location"] == "/inbox"
    (header,) = response.headers.get_list("set-cookie")
    attributes = {part.strip().lower() for part in header.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/inbox"} <= attributes
    assert "secure" not in attributes
    assert key not in header  # the cookie is encoded, never the key as typed
    behind_tls = await inbox.post(
        "/inbox/login", data={"credential": key}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "secure" in behind_tls.headers["set-cookie"].lower()
    # The cookie works; it is the API key's principal.
    page = await inbox.get("/inbox", headers={"Cookie": f"{COOKIE}={cookie_value(response)}"})
    assert page.status_code == 200 and "bob" in page.text
    # Refused: unknown key (401), not a credential (400), another site's form (403).
    unknown = await inbox.post("/inbox/login", data={"credential": "tfk-unknown-0123456789"})
    assert unknown.status_code == 401 and "set-cookie" not in unknown.headers
    assert "Not accepted" in unknown.text
    garbage = await inbox.post("/inbox/login", data={"credential": "<script>x</script>"})
    assert garbage.status_code == 400 and "<script>" not in garbage.text
    cross = await inbox.post(
        "/inbox/login", data={"credential": key}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403 and "set-cookie" not in cross.headers


async def test_a_cookie_that_no_longer_verifies_ends_the_session(inbox):
    expired = token("lee", tenant=tenant(), exp=int(time.time()) - 120)
    response = await inbox.get("/inbox", headers={"Cookie": f"{COOKIE}={encode_cookie(expired)}"})
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox/login?m=expired"
    mangled = await inbox.get("/inbox", headers={"Cookie": f"{COOKIE}=%%%"})
    assert mangled.headers["location"] == "/inbox/login?m=expired"


async def test_the_list_holds_only_this_principals_tenant_and_assignments(inbox):
    home, other = tenant(), tenant()
    lee = User("lee", home, ["reviewers"])
    kim = User("kim", home, [])
    stranger = User("lee", other, ["reviewers"])  # same subject, another tenant
    for user in (lee, kim):
        await user.login(inbox)
    mine = await start_review(inbox, kim.api, title="to lee", assignees=["lee"])
    group = await start_review(inbox, kim.api, title="to reviewers", candidate_groups=["reviewers"])
    anyone = await start_review(inbox, kim.api, title="to anyone")
    theirs = await start_review(inbox, kim.api, title="to someone else", assignees=["someone"])
    foreign = await start_review(inbox, stranger.api, title="other tenant", assignees=["lee"])
    page = await listing(inbox, lee, mine["id"], group["id"], anyone["id"])
    assert theirs["id"] not in page and foreign["id"] not in page
    # Newest first; each names its interrupt id and links to its detail page.
    positions = [page.index(v["id"]) for v in (anyone, group, mine)]
    assert positions == sorted(positions)
    for view in (mine, group, anyone):
        assert f"<a href='{detail(view)}'>review</a>" in page
    assert "to lee" in page and "amount: 0" in page
    kims = await listing(inbox, kim, anyone["id"])
    assert mine["id"] not in kims and group["id"] not in kims and theirs["id"] not in kims


async def test_the_detail_shows_payload_records_and_the_schema_form(
    inbox, workspace_url, gateway_client
):
    lee = User("lee", tenant(), ["reviewers"])
    await lee.login(inbox)
    execution_id = f"gw_review-{uuid.uuid4().hex[:12]}"
    async with WorkspaceClient(workspace_url, WORKSPACE_TOKEN) as ws:
        own = await ws.ingest(
            "Invoice 7: 120 EUR <script>alert(1)</script>",
            "artifacts",
            "invoice",
            summary="invoice of R-7",
            scope={"execution_id": execution_id},
        )
        elsewhere = await ws.ingest(
            "another execution's record", "artifacts", "note", scope={"execution_id": "x-1"}
        )
    view = await start_review(
        inbox,
        lee.api,
        execution_id=execution_id,
        title="R-7",
        amount=120,
        evidence=[own.id, f"see {elsewhere.id}", "rec_000000000000000000000000"],
        assignees=["lee"],
    )
    page = await inbox.get(detail(view), headers=lee.session)
    assert page.status_code == 200, page.text
    text = page.text
    assert "gw_review" in text and view["id"] in text
    assert "invoice of R-7" in text and "Invoice 7: 120 EUR" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "not shown: it belongs to another execution" in text
    assert "another execution&#x27;s record" not in text
    assert "not found in the Workspace" in text
    assert "Deadline" in text and "(in 23 h)" in text
    assert {"approved", "comment", "risk", "cap", "notify", "__csrf", "__rid"} <= control_names(
        text
    )
    assert "value='true' class='approve'" in text and "value='false' class='reject'" in text
    assert "Your assessment of the risk." in text  # descriptions are help text
    await_unchanged = await observed(gateway_client, view["id"])
    assert await_unchanged["status"] == "waiting"


async def test_without_a_reachable_workspace_records_are_not_available(gateway_client):
    closed = f"http://127.0.0.1:{free_port()}"
    for app in (pages_app(gateway_client), pages_app(gateway_client, closed)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            view = await start_review(
                http, auth("bob"), evidence=["rec_abcdef0123456789"], assignees=["bob"]
            )
            page = await http.get(detail(view), headers=auth("bob"))
            assert page.status_code == 200
            assert "rec_abcdef0123456789" in page.text and "not available" in page.text


async def answer(
    http: httpx.AsyncClient, view: dict[str, Any], user: User, form: dict[str, str], **headers: str
) -> httpx.Response:
    page = await http.get(detail(view), headers=user.session)
    fields = {
        "__csrf": hidden_value(page.text, "__csrf"),
        "__rid": hidden_value(page.text, "__rid"),
    }
    return await http.post(
        detail(view), data={**fields, **form}, headers={**user.session, **headers}
    )


async def test_posts_need_the_csrf_token_unless_authorization_is_sent(inbox, gateway_client):
    lee = User("lee", tenant(), [])
    await lee.login(inbox)
    view = await start_review(inbox, lee.api, assignees=["lee"])
    form = {"approved": "true", "risk": "low"}
    missing = await inbox.post(detail(view), data=form, headers=lee.session)
    assert missing.status_code == 403 and "not accepted" in missing.text
    wrong = await inbox.post(detail(view), data={**form, "__csrf": "0" * 64}, headers=lee.session)
    assert wrong.status_code == 403
    other = User("lee", lee.tenant, [])
    await other.login(inbox)  # another session of the same subject has another token
    page = await inbox.get(detail(view), headers=other.session)
    stolen = await inbox.post(
        detail(view),
        data={**form, "__csrf": hidden_value(page.text, "__csrf")},
        headers=lee.session,
    )
    assert stolen.status_code == 403
    cross = await answer(inbox, view, lee, form, **{"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    seen = await observed(gateway_client, view["id"])
    assert seen["status"] == "waiting" and seen["resume_requests"] == {"review": []}
    # With the Authorization header (a proxy in front) no CSRF token is needed.
    done = await inbox.post(detail(view), data=form, headers=lee.api)
    assert done.status_code == 303, done.text
    assert (await observed(gateway_client, view["id"]))["status"] == "completed"


async def test_the_form_converts_by_the_schema_and_shows_rejections(inbox, gateway_client):
    lee = User("lee", tenant(), ["reviewers"])
    await lee.login(inbox)
    view = await start_review(inbox, lee.api, title="R-9", candidate_groups=["reviewers"])
    no_comment = await answer(inbox, view, lee, {"approved": "false", "risk": "high"})
    assert no_comment.status_code == 422
    assert "This answer was not accepted." in no_comment.text
    assert "&#x27;comment&#x27; is a required property" in no_comment.text
    assert "value='high' selected" in no_comment.text  # what was typed stays
    not_a_number = await answer(
        inbox, view, lee, {"approved": "true", "risk": "low", "cap": "lots"}
    )
    assert not_a_number.status_code == 422 and "is not of type" in not_a_number.text
    assert (await observed(gateway_client, view["id"]))["resume_requests"] == {"review": []}
    page = await inbox.get(detail(view), headers=lee.session)
    fields = {
        "__csrf": hidden_value(page.text, "__csrf"),
        "__rid": hidden_value(page.text, "__rid"),
    }
    form = {**fields, "approved": "true", "risk": "low", "cap": " 250 ", "notify": "true"}
    form["comment"] = ""  # an empty optional field is left out
    done = await inbox.post(detail(view), data=form, headers=lee.session)
    assert done.status_code == 303 and done.headers["location"] == detail(view)
    seen = await observed(gateway_client, view["id"])
    assert seen["status"] == "completed"
    assert seen["state"]["decision"] == {
        "approved": True,
        "risk": "low",
        "cap": 250,
        "notify": True,
    }
    record = await flows.review.get_execution(
        client=gateway_client, execution_id=view["id"]
    ).async_get_interrupt("review")
    principal = record["resumed_by_principal"]
    assert (principal["subject"], principal["method"], principal["tenant"]) == (
        "lee",
        "jwt",
        lee.tenant,
    )
    assert list(record["resume_requests"]) == [fields["__rid"]]
    # The same form again (a double click) shows the outcome; another one is refused.
    twice = await inbox.post(detail(view), data=form, headers=lee.session)
    assert twice.status_code == 303
    late = await inbox.post(
        detail(view), data={**form, "__rid": "inbox-another-request"}, headers=lee.session
    )
    assert late.status_code == 409 and "already answered" in late.text
    # After the decision: the outcome and the execution's audit trail.
    outcome = await inbox.get(detail(view), headers=lee.session)
    assert outcome.status_code == 200
    assert "Approved." in outcome.text and "answered by lee (jwt)" in outcome.text
    assert "Audit trail" in outcome.text
    for action in ("started", "interrupt_created", "resumed", "closed"):
        assert f"<td>{action}</td>" in outcome.text


async def test_another_tenants_request_is_404(inbox):
    lee = User("lee", tenant(), [])
    other = User("lee", tenant(), [])
    await lee.login(inbox)
    view = await start_review(inbox, other.api, assignees=["lee"])
    page = await inbox.get(detail(view), headers=lee.session)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    posted = await answer_blind(inbox, view, lee)
    assert posted.status_code == 404 and "No execution" in posted.text
    unknown = await inbox.get(f"/inbox/{view['id']}/nope", headers=other.api)
    assert unknown.status_code == 404


async def answer_blind(http: httpx.AsyncClient, view: dict[str, Any], user: User) -> httpx.Response:
    """A well-formed answer (the session's CSRF token) to a page ``user`` never saw."""
    csrf = hidden_value((await http.get("/inbox", headers=user.session)).text, "__csrf")
    form = {"approved": "true", "risk": "low", "__csrf": csrf}
    return await http.post(detail(view), data=form, headers=user.session)


async def test_logout_clears_the_cookie_and_needs_the_csrf_token(inbox):
    lee = User("lee", tenant(), [])
    await lee.login(inbox)
    page = await inbox.get("/inbox", headers=lee.session)
    refused = await inbox.post("/inbox/logout", data={"x": "1"}, headers=lee.session)
    assert refused.status_code == 403
    out = await inbox.post(
        "/inbox/logout", data={"__csrf": hidden_value(page.text, "__csrf")}, headers=lee.session
    )
    assert out.status_code == 303 and out.headers["location"] == "/inbox/login?m=out"
    assert (
        'tf_inbox=""' in out.headers["set-cookie"]
        or "max-age=0" in out.headers["set-cookie"].lower()
    )
    note = await inbox.get("/inbox/login?m=out")
    assert "You are logged out." in note.text


# --------------------------------------------------------------------- the form, pure
SCHEMA = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "comment": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "level": {"enum": [1, 2, 3]},
        "colour": {"type": "string", "enum": ["red", "green"]},
        "urgent": {"type": "boolean"},
        "ok": {"type": "boolean"},
        "tags": {"type": "array"},
        "__csrf": {"type": "string"},
    },
    "required": ["approved", "ok"],
}


@pytest.mark.parametrize(
    ("form", "value"),
    [
        ({"approved": ["true"]}, {"approved": True, "ok": False}),
        ({"approved": ["false"], "ok": ["on"]}, {"approved": False, "ok": True}),
        (
            {"approved": ["true"], "count": ["7"], "ratio": ["0.25"], "level": ["2"]},
            {"approved": True, "ok": False, "count": 7, "ratio": 0.25, "level": 2},
        ),
        ({"count": ["7.5"], "ratio": ["nan"]}, {"ok": False, "count": "7.5", "ratio": "nan"}),
        (
            {"urgent": ["false"], "colour": ["green"]},
            {"ok": False, "urgent": False, "colour": "green"},
        ),
        ({"urgent": [""], "colour": [""], "comment": [""], "count": [""]}, {"ok": False}),
        (
            {"tags": ['["a", 1]'], "comment": ["a\r\nb"]},
            {"ok": False, "tags": ["a", 1], "comment": "a\nb"},
        ),
        ({"level": ["9"], "approved": ["maybe"]}, {"ok": False, "level": "9", "approved": "maybe"}),
        ({"__csrf": ["x"], "unknown": ["y"]}, {"ok": False}),
    ],
)
def test_form_strings_are_converted_by_the_schema_types(form, value):
    assert SchemaForm(SCHEMA).value(form) == value


def test_forms_of_other_schemas():
    assert SchemaForm(None).value({"approved": ["true"], "comment": ["fine"]}) == {
        "approved": True,
        "comment": "fine",
    }
    assert SchemaForm({"type": "integer"}).value({"value": ["12"]}) == 12
    assert SchemaForm({"type": "string"}).value({}) is None
    markup = SchemaForm(
        {
            "type": "object",
            "properties": {
                "x'><script>": {"type": "string", "description": "<img src=x onerror=1>"},
                "pick": {"enum": ["<b>", "a'b"], "title": "</label><script>"},
            },
        }
    ).render(hidden_fields={"__csrf": "'\"><x>"})
    assert "<script>" not in markup and "<img" not in markup and "<b>" not in markup
    assert "&lt;img src=x onerror=1&gt;" in markup and "a&#x27;b" in markup
    assert "value='&#x27;&quot;&gt;&lt;x&gt;'" in markup


# ------------------------------------------------------------- the workspace: section
def test_the_workspace_section_is_checked():
    env = {"WS_TOKEN": "w" * 24, "SHORT": "short"}
    parsed = parse_config(
        {"workspace": {"url": "http://ws:8080/", "token_env": "WS_TOKEN"}}, env=env
    )
    assert parsed.workspace is not None
    assert (parsed.workspace.url, parsed.workspace.token) == ("http://ws:8080", "w" * 24)
    assert "w" * 24 not in repr(parsed)
    no_token = parse_config({"workspace": {"url": "https://ws"}}, env=env).workspace
    assert no_token is not None and no_token.token is None
    assert parse_config({}, env=env).workspace is None
    for section, culprit in [
        ({"url": "ws:8080"}, "workspace.url"),
        ({"url": "http://ws", "token_env": "UNSET"}, "workspace.token_env"),
        ({"url": "http://ws", "token_env": "SHORT"}, "at least 16"),
        ({"url": "http://ws", "tokens": "x"}, "unknown key"),
        ("http://ws", "workspace must be a mapping"),
    ]:
        with pytest.raises(GatewayConfigError, match=culprit):
            parse_config({"workspace": section}, env=env)


async def test_a_withdrawn_request_takes_no_answer(inbox, gateway_client):
    lee = User("lee", tenant(), [])
    await lee.login(inbox)
    view = await start_review(inbox, lee.api, assignees=["lee"])
    form_page = await inbox.get(detail(view), headers=lee.session)
    closed = await inbox.post(
        f"/v1/executions/{view['id']}/close", json={"pending_interrupts": "cancel"}, headers=lee.api
    )
    assert closed.status_code == 200, closed.text
    page = await inbox.get(detail(view), headers=lee.session)
    assert page.status_code == 200 and "This request was withdrawn" in page.text
    assert "name='approved'" not in page.text and "Audit trail" in page.text
    late = await inbox.post(
        detail(view),
        data={
            "__csrf": hidden_value(form_page.text, "__csrf"),
            "__rid": hidden_value(form_page.text, "__rid"),
            "approved": "true",
            "risk": "low",
        },
        headers=lee.session,
    )
    assert late.status_code == 409
    # A link to it is used up as well.
    used = await inbox.get(f"/a/{link_token(view, 'lee')}")
    assert used.status_code == 409 and "already used" in used.text
    assert (await observed(gateway_client, view["id"]))["status"] == "cancelled"
