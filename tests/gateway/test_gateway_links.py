"""Approval links: ``GET /a/{token}`` changes nothing, ``POST /a/{token}`` decides once."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from triggerflow_temporal.gateway._links_pages import RedactLinkTokens
from triggerflow_temporal.plugin.links import ApprovalLinks

from . import flows
from .conftest import auth, observed
from .pages_support import LINK_BASE, control_names, link_token, links, pages_app, start_review

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pages(gateway_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with approval links configured, in-process."""
    transport = httpx.ASGITransport(app=pages_app(gateway_client))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def review_for(pages: httpx.AsyncClient, *assignees: str, **more: Any) -> dict[str, Any]:
    return await start_review(
        pages,
        auth("alice"),
        title="Refund R-7 <b>bold</b>",
        amount=120,
        assignees=list(assignees) or ["bob"],
        **more,
    )


async def unchanged(client: Client, view: dict[str, Any]) -> None:
    seen = await observed(client, view["id"])
    assert seen["status"] == "waiting"
    assert seen["pending"] == ["review"]
    assert seen["resume_requests"] == {"review": []}


def assert_page(response: httpx.Response, status: int, *texts: str) -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    for text in texts:
        assert text in response.text, (text, response.text[:800])


async def test_get_shows_the_request_and_a_form_and_changes_nothing(pages, gateway_client):
    view = await review_for(pages)
    token = link_token(view, "bob")
    for _ in range(3):  # a link scanner, a preview, the approver
        response = await pages.get(f"/a/{token}")
        assert_page(response, 200, "gw_review", view["id"], "review", "bob")
        # Every value is escaped: the payload's markup is text.
        assert "Refund R-7 &lt;b&gt;bold&lt;/b&gt;" in response.text
        assert "<b>bold</b>" not in response.text
        assert {"approved", "comment", "risk", "cap", "notify"} <= control_names(response.text)
        assert "<form method='post'" in response.text
    await unchanged(gateway_client, view)


async def test_post_decides_once_then_the_link_is_used(pages, gateway_client):
    view = await review_for(pages)
    token = link_token(view, "bob")
    claims = links().verify(token)
    decided = await pages.post(
        f"/a/{token}", content="approved=true&risk=low&cap=90&comment=", headers=FORM
    )
    assert_page(decided, 200, "Approved")
    seen = await observed(gateway_client, view["id"])
    assert seen["status"] == "completed"
    assert seen["state"]["decision"] == {"approved": True, "risk": "low", "cap": 90}
    record = await flows.review.get_execution(
        client=gateway_client, execution_id=view["id"]
    ).async_get_interrupt("review")
    assert list(record["resume_requests"]) == [f"link:{claims.token_id}"]
    principal = record["resumed_by_principal"]
    assert (principal["subject"], principal["tenant"], principal["method"]) == (
        "bob",
        "acme",
        "link",
    )
    assert principal["groups"] == []
    # Reused: GET and POST both say so (409) and change nothing.
    again = await pages.get(f"/a/{token}")
    assert_page(again, 409, "already used")
    repost = await pages.post(f"/a/{token}", content="approved=false&risk=high", headers=FORM)
    assert_page(repost, 409, "already used")
    record = await flows.review.get_execution(
        client=gateway_client, execution_id=view["id"]
    ).async_get_interrupt("review")
    assert record["resume_value"] == {"approved": True, "risk": "low", "cap": 90}
    # The audit says a link answered it.
    audit = (await pages.get(f"/v1/executions/{view['id']}/audit", headers=auth("alice"))).json()
    resumed = [e for e in audit["entries"] if e["action"] == "resumed"]
    assert resumed[0]["by"]["method"] == "link" and resumed[0]["by"]["subject"] == "bob"


def mutations(token: str) -> list[str]:
    head, body, signature = token.split(".")

    def flip(text: str, at: int) -> str:
        return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]

    return [
        f"{flip(head, 3)}.{body}.{signature}",
        f"{head}.{flip(body, len(body) // 2)}.{signature}",
        f"{head}.{body}.{flip(signature, 5)}",
        token[:-1],
        token + "x",
        f"{head}.{body}.",
        f"{head}.{body}",
        "not-a-token",
    ]


async def test_any_change_to_the_token_is_refused_and_changes_nothing(pages, gateway_client):
    view = await review_for(pages)
    token = link_token(view, "bob")
    for changed in mutations(token):
        shown = await pages.get(f"/a/{changed}")
        assert 400 <= shown.status_code < 500, (changed, shown.status_code)
        assert shown.headers["content-type"].startswith("text/html")
        posted = await pages.post(f"/a/{changed}", content="approved=true&risk=low", headers=FORM)
        assert 400 <= posted.status_code < 500, (changed, posted.status_code)
        assert "not valid" in posted.text or "not found" in posted.text.lower()
    other_key = ApprovalLinks(LINK_BASE, b"another-secret-" + b"x" * 32)
    forged = other_key.token(
        execution_id=view["id"],
        interrupt_id="review",
        round=0,
        payload=view["pending_interrupts"][0]["payload"],
        subject="bob",
        tenant="acme",
    )
    assert_page(await pages.get(f"/a/{forged}"), 400, "not valid")
    assert_page(
        await pages.post(f"/a/{forged}", content="approved=true&risk=low", headers=FORM),
        400,
        "not valid",
    )
    await unchanged(gateway_client, view)
    # The genuine token still works afterwards.
    assert_page(await pages.get(f"/a/{token}"), 200, "review")


async def test_an_expired_link_is_410_and_changes_nothing(pages, gateway_client):
    view = await review_for(pages)
    token = link_token(view, "bob", deadline=time.time() - 5)
    assert_page(await pages.get(f"/a/{token}"), 410, "expired")
    posted = await pages.post(f"/a/{token}", content="approved=true&risk=low", headers=FORM)
    assert_page(posted, 410, "expired")
    await unchanged(gateway_client, view)


async def test_another_tenants_or_unknown_execution_is_404(pages, gateway_client):
    view = await review_for(pages)
    foreign = link_token(view, "bob", tenant="globex")
    unknown = link_token(view, "bob", execution_id="gw_review-nothing-here")
    no_interrupt = link_token(view, "bob", interrupt_id="nope")
    no_tenant = link_token(view, "bob", tenant=None)
    for token in (foreign, unknown, no_interrupt, no_tenant):
        assert_page(await pages.get(f"/a/{token}"), 404, "not")
        posted = await pages.post(f"/a/{token}", content="approved=true&risk=low", headers=FORM)
        assert_page(posted, 404)
    await unchanged(gateway_client, view)


async def test_another_round_or_payload_is_409(pages, gateway_client):
    view = await review_for(pages)
    later_round = link_token(view, "bob", round=1)
    other_payload = link_token(view, "bob", payload={"title": "something else"})
    assert_page(await pages.get(f"/a/{later_round}"), 409, "already used")
    assert_page(await pages.get(f"/a/{other_payload}"), 409, "changed")
    for token in (later_round, other_payload):
        posted = await pages.post(f"/a/{token}", content="approved=true&risk=low", headers=FORM)
        assert posted.status_code == 409
    await unchanged(gateway_client, view)


async def test_a_value_the_schema_rejects_rerenders_the_form(pages, gateway_client):
    view = await review_for(pages)
    token = link_token(view, "bob")
    # Rejecting needs a comment (a rule of the schema, not of the HTML form).
    refused = await pages.post(f"/a/{token}", content="approved=false&risk=high", headers=FORM)
    assert_page(refused, 422, "not accepted", "comment")
    assert "name='approved'" in refused.text and "value='high' selected" in refused.text
    wrong_type = await pages.post(
        f"/a/{token}", content="approved=true&risk=low&cap=lots", headers=FORM
    )
    assert_page(wrong_type, 422, "not of type")
    assert "value='lots'" in wrong_type.text
    await unchanged(gateway_client, view)
    rejected = await pages.post(
        f"/a/{token}", content="approved=false&risk=high&comment=too+risky", headers=FORM
    )
    assert_page(rejected, 200, "Rejected")
    seen = await observed(gateway_client, view["id"])
    assert seen["state"]["decision"] == {"approved": False, "risk": "high", "comment": "too risky"}


async def test_a_link_for_a_subject_the_rules_refuse_is_403(pages, gateway_client):
    view = await review_for(pages, "bob")
    token = link_token(view, "dana")
    assert_page(await pages.get(f"/a/{token}"), 403, "may not")
    posted = await pages.post(f"/a/{token}", content="approved=true&risk=low", headers=FORM)
    assert_page(posted, 403)
    await unchanged(gateway_client, view)


async def test_the_view_hands_out_only_the_callers_own_link(pages, http, gateway_client):
    view = await review_for(pages, "bob", "dana")
    path = f"/v1/executions/{view['id']}"
    as_bob = (await pages.get(path, headers=auth("bob"))).json()
    (interrupt,) = as_bob["pending_interrupts"]
    assert list(interrupt["links"]) == ["bob"]
    url = interrupt["links"]["bob"]
    assert url.startswith(f"{LINK_BASE}/a/")
    claims = links().verify(url.rsplit("/", 1)[1])
    assert (claims.execution_id, claims.interrupt_id, claims.subject, claims.tenant) == (
        view["id"],
        "review",
        "bob",
        "acme",
    )
    assert claims.round == 0
    # It expires with the pause (timeout 86400 s), before the 7-day default.
    deadline = datetime.fromisoformat(interrupt["deadline"].replace("Z", "+00:00")).timestamp()
    assert deadline - 1 <= claims.expires_at <= deadline
    # alice may not resume it (not an assignee, no matching group): no link, not even bob's.
    as_alice = (await pages.get(path, headers=auth("alice"))).json()
    assert as_alice["pending_interrupts"][0]["links"] == {}
    # The start answer (alice) and a gateway without links configured: none either.
    assert view["pending_interrupts"][0]["links"] == {}
    plain = (await http.get(path, headers=auth("bob"))).json()
    assert plain["pending_interrupts"][0]["links"] == {}
    # An interrupt anyone may resume names no assignee: no link for anyone.
    anyone = await start_review(pages, auth("alice"), title="open")
    as_bob = (await pages.get(f"/v1/executions/{anyone['id']}", headers=auth("bob"))).json()
    assert as_bob["pending_interrupts"][0]["links"] == {}
    # The link from the view opens the page (relative to the gateway).
    shown = await pages.get(urlsplit(url).path)
    assert_page(shown, 200, view["id"])
    await unchanged(gateway_client, view)


def test_tokens_never_reach_the_access_log():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/a/eyJ.secret.sig", "1.1", 200),
        None,
    )
    assert RedactLinkTokens().filter(record)
    assert "secret" not in record.getMessage()
    assert "/a/<token>" in record.getMessage()


@pytest.mark.parametrize("method", ["get", "post"])
async def test_links_off_is_a_page_too(http, method):
    response = await getattr(http, method)("/a/whatever")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
