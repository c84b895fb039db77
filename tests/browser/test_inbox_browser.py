"""The approver pages in a real headless Chromium: the inbox and an approval link.

``TRIGGERFLOW_SCREENSHOTS=1`` also saves docs/images/inbox.png and
docs/images/inbox-detail.png (the screenshots in docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from playwright.async_api import Page

from tests.gateway.pages_support import WORKSPACE_TOKEN, link_token, start_review
from workspace import WorkspaceClient

from .conftest import USERS, key_headers

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SCREENSHOTS = os.environ.get("TRIGGERFLOW_SCREENSHOTS") == "1"


def detail_path(view: dict[str, Any]) -> str:
    return f"/inbox/{quote(view['id'], safe='')}/review"


async def status_of(api: httpx.AsyncClient, view: dict[str, Any], subject: str) -> str:
    response = await api.get(f"/v1/executions/{view['id']}", headers=key_headers(subject))
    assert response.status_code == 200, response.text
    return response.json()["status"]


async def settled(api: httpx.AsyncClient, view: dict[str, Any], subject: str) -> str:
    """The execution's status once it no longer runs a chunk (completes after a resume)."""
    status = ""
    for _ in range(100):
        status = await status_of(api, view, subject)
        if status not in ("running", "waiting"):
            return status
        await asyncio.sleep(0.1)
    return status


async def listed(page: Page, base: str, *ids: str) -> str:
    """The inbox's HTML once it lists every id (visibility is eventually consistent)."""
    content = ""
    for _ in range(100):
        response = await page.goto(f"{base}/inbox")
        assert response is not None and response.status == 200
        content = await page.content()
        if all(i in content for i in ids):
            return content
        await asyncio.sleep(0.2)
    raise AssertionError(f"the inbox never listed {ids}")


async def test_an_approver_logs_in_sees_only_theirs_is_refused_then_approves(stack, browser):
    base = stack["gateway"]
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        execution_id = f"gw_review-{uuid.uuid4().hex[:12]}"
        async with WorkspaceClient(stack["workspace"], WORKSPACE_TOKEN) as ws:
            invoice = await ws.ingest(
                "Invoice INV-2291\nCustomer: Acme Tools\nAmount: 1,240.00 EUR\nReason: damaged",
                "artifacts",
                "invoice",
                summary="Invoice INV-2291 (Acme Tools)",
                scope={"execution_id": execution_id},
            )
        mine = await start_review(
            api,
            key_headers("ike"),
            execution_id=execution_id,
            title="Refund R-2291 for Acme Tools",
            amount=1240,
            evidence=[invoice.id],
            assignees=["ivy"],
        )
        group = await start_review(
            api,
            key_headers("ike"),
            title="Refund R-2292",
            amount=80,
            candidate_groups=["reviewers"],
        )
        theirs = await start_review(
            api, key_headers("ike"), title="Refund R-2293", amount=15, assignees=["ike"]
        )
        foreign = await start_review(
            api, key_headers("uma"), title="Refund U-1", amount=99, assignees=["ivy"]
        )

        context = await browser.new_context(viewport={"width": 1100, "height": 800})
        page = await context.new_page()
        page.set_default_timeout(20_000)
        # Log in with the API key on the login page.
        await page.goto(f"{base}/inbox")
        assert page.url == f"{base}/inbox/login"
        await page.fill("input[name=credential]", USERS["ivy"][0])
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/inbox")
        cookies = await context.cookies()
        (cookie,) = [c for c in cookies if c["name"] == "tf_inbox"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/inbox"

        content = await listed(page, base, mine["id"], group["id"])
        assert theirs["id"] not in content and foreign["id"] not in content
        assert "Signed in as ivy" in content
        if SCREENSHOTS:
            IMAGES.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(IMAGES / "inbox.png"), full_page=True)

        # The detail page: payload, the invoice from the Workspace, the form.
        await page.click(f"a[href='{detail_path(mine)}']")
        await page.wait_for_url(f"{base}{detail_path(mine)}")
        text = await page.inner_text("main")
        assert "Refund R-2291 for Acme Tools" in text
        assert "Invoice INV-2291 (Acme Tools)" in text and "Customer: Acme Tools" in text
        await page.select_option("select[name=risk]", "medium")
        if SCREENSHOTS:
            await page.screenshot(path=str(IMAGES / "inbox-detail.png"), full_page=True)

        # Rejecting without a comment: the schema refuses it, the page says why.
        await page.select_option("select[name=risk]", "high")
        async with page.expect_navigation() as refused:
            await page.click("button[name=approved][value=false]")
        response = await refused.value
        assert response is not None and response.status == 422
        text = await page.inner_text("main")
        assert "This answer was not accepted." in text
        assert "'comment' is a required property" in text
        assert await status_of(api, mine, "ivy") == "waiting"

        # Approving: the execution completes, the page shows who answered and the audit.
        await page.select_option("select[name=risk]", "low")
        await page.fill("input[name=cap]", "1240")
        await page.fill("textarea[name=comment]", "Invoice checked")
        async with page.expect_navigation():
            await page.click("button[name=approved][value=true]")
        assert page.url == f"{base}{detail_path(mine)}"
        text = await page.inner_text("main")
        assert "Approved." in text and "answered by ivy (api_key)" in text
        assert "Audit trail" in text and "resumed" in text
        assert await settled(api, mine, "ivy") == "completed"
        view = (
            await api.get(f"/v1/executions/{mine['id']}?include=state", headers=key_headers("ivy"))
        ).json()
        assert view["state"]["decision"] == {
            "approved": True,
            "risk": "low",
            "cap": 1240,
            "comment": "Invoice checked",
        }
        # The other approval is still waiting (nothing else changed).
        assert await status_of(api, group, "ivy") == "waiting"
        await context.close()


async def test_an_approval_link_is_confirmed_once_then_says_already_used(stack, browser):
    base = stack["gateway"]
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        view = await start_review(
            api, key_headers("ike"), title="Refund R-3000", amount=42, assignees=["ivy"]
        )
        url = f"{base}/a/{link_token(view, 'ivy')}"
        context = await browser.new_context()  # no cookie, no Authorization: the link is all
        page = await context.new_page()
        page.set_default_timeout(20_000)
        opened = await page.goto(url)
        assert opened is not None and opened.status == 200
        assert "Refund R-3000" in await page.inner_text("main")
        assert await status_of(api, view, "ike") == "waiting"  # opening changed nothing
        await page.select_option("select[name=risk]", "medium")
        async with page.expect_navigation() as confirmed:
            await page.click("button[name=approved][value=true]")
        response = await confirmed.value
        assert response is not None and response.status == 200
        assert "Approved" in await page.inner_text("main")
        assert await settled(api, view, "ike") == "completed"
        again = await page.goto(url)
        assert again is not None and again.status == 409
        assert "already used" in await page.inner_text("main")
        await context.close()
