"""The execution endpoints on a real Temporal dev server and worker (in-process ASGI)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from . import flows as gateway_flows
from .conftest import auth, bearer, observed, start, token
from .test_gateway_http_layer import assert_problem

TENANT = SearchAttributeKey.for_keyword("TriggerFlowTenant")
VIEW_KEYS = {
    "id",
    "flow",
    "blueprint",
    "status",
    "lifecycle",
    "tenant",
    "started_by",
    "started_at",
    "pending_interrupts",
}
INTERRUPT_KEYS = {
    "id",
    "type",
    "payload",
    "request_payload_schema",
    "response_payload_schema",
    "assignees",
    "candidate_groups",
    "deadline",
    "links",
}


def fresh_tenant() -> dict[str, str]:
    """JWT headers of a principal in a tenant no other test uses."""
    return bearer(token("lee", tenant=f"t-{uuid.uuid4().hex[:10]}", groups=["ops"]))


async def listed(
    http: httpx.AsyncClient, headers: dict[str, str], query: str = "", want: int = 0
) -> list[dict[str, Any]]:
    """``GET /v1/executions`` until it shows ``want`` rows (visibility is eventually consistent)."""
    rows: list[dict[str, Any]] = []
    for _ in range(50):
        response = await http.get(f"/v1/executions?{query}", headers=headers)
        assert response.status_code == 200, response.text
        rows = response.json()["executions"]
        if len(rows) >= want:
            return rows
        await asyncio.sleep(0.1)
    return rows


# ----------------------------------------------------------------------------- start
async def test_start_answers_201_with_the_execution_view(http, gateway_client: Client):
    response = await http.post(
        "/v1/flows/gw_approval/executions",
        json={"input": "T-7", "task_id": "task-7"},
        headers={**auth("alice"), "traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"},
    )
    assert response.status_code == 201, response.text
    view = response.json()
    assert VIEW_KEYS <= set(view)
    assert response.headers["location"] == f"/v1/executions/{view['id']}"
    assert response.headers["traceparent"].startswith("00-" + "ab" * 16)
    assert (view["flow"], view["status"], view["lifecycle"], view["tenant"]) == (
        "gw_approval",
        "waiting",
        "open",
        "acme",
    )
    assert view["started_by"] == {
        "subject": "alice",
        "tenant": "acme",
        "groups": ["ops"],
        "method": "api_key",
    }
    assert view["task_id"] == "task-7" and view["session_id"].startswith("session-")
    assert len(view["blueprint"]) == 64 and view["started_at"].endswith("Z")
    [interrupt] = view["pending_interrupts"]
    assert INTERRUPT_KEYS <= set(interrupt)
    assert (interrupt["type"], interrupt["payload"]) == ("approval", {"ticket": "T-7"})
    assert interrupt["response_payload_schema"]["required"] == ["approved"]
    described = await gateway_client.get_workflow_handle(view["id"]).describe()
    assert described.typed_search_attributes.get(TENANT) == "acme"
    again = await http.get(f"/v1/executions/{view['id']}", headers=auth("bob"))
    assert again.status_code == 200 and again.json()["pending_interrupts"] == [interrupt]
    with_state = await http.get(f"/v1/executions/{view['id']}?include=state", headers=auth("bob"))
    assert with_state.json()["state"] == {"asked": "T-7"}
    assert "state" not in again.json()
    assert_problem(
        await http.get(f"/v1/executions/{view['id']}?include=all", headers=auth("bob")), 400
    )


async def test_quick_and_failing_flows(http):
    done = await start(http, "gw_quick", "hi")
    assert (done["status"], done["lifecycle"], done["pending_interrupts"]) == (
        "completed",
        "closed",
        [],
    )
    failed = await start(http, "gw_failing", "x")
    assert failed["status"] == "failed" and failed["error"]["type"] == "ValueError"
    assert_problem(
        await http.post("/v1/flows/nope/executions", json={}, headers=auth("alice")), 404
    )


async def test_idempotency_key_makes_a_retry_return_the_first_execution(http):
    headers = {**auth("alice"), "Idempotency-Key": f"order-{uuid.uuid4()}"}
    body = {"input": "T-9", "session_id": "s-1"}
    first = await http.post("/v1/flows/gw_approval/executions", json=body, headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    retries = await asyncio.gather(
        *(
            http.post("/v1/flows/gw_approval/executions", json=body, headers=headers)
            for _ in range(5)
        )
    )
    for retry in retries:
        assert retry.status_code == 201, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json()["id"] == first.json()["id"]
        assert retry.json()["pending_interrupts"] == first.json()["pending_interrupts"]
    other_body = await http.post(
        "/v1/flows/gw_approval/executions", json={**body, "input": "T-10"}, headers=headers
    )
    assert "another request body" in assert_problem(other_body, 409)["detail"]
    # The same key in another tenant is another execution.
    elsewhere = await http.post(
        "/v1/flows/gw_approval/executions",
        json=body,
        headers={**auth("carol"), "Idempotency-Key": headers["Idempotency-Key"]},
    )
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]
    assert elsewhere.json()["tenant"] == "globex"


async def test_concurrent_first_starts_with_one_key_make_one_execution(http):
    headers = {**auth("alice"), "Idempotency-Key": f"burst-{uuid.uuid4()}"}
    answers = await asyncio.gather(
        *(
            http.post("/v1/flows/gw_approval/executions", json={"input": 1}, headers=headers)
            for _ in range(6)
        )
    )
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") != "true" for a in answers) == 1


async def test_taken_and_malformed_execution_ids(http):
    execution_id = f"gw_approval-mine-{uuid.uuid4().hex[:8]}"
    body = {"input": 1, "execution_id": execution_id}
    first = await http.post("/v1/flows/gw_approval/executions", json=body, headers=auth("alice"))
    assert first.status_code == 201 and first.json()["id"] == execution_id
    for who in ("alice", "carol"):
        again = await http.post("/v1/flows/gw_quick/executions", json=body, headers=auth(who))
        assert "already used" in assert_problem(again, 409)["detail"]
    for bad in ("", "a b", "x" * 201, "-lead", "semi;colon"):
        response = await http.post(
            "/v1/flows/gw_quick/executions", json={"execution_id": bad}, headers=auth("alice")
        )
        assert_problem(response, 400)


# ------------------------------------------------------------------------ tenancy
async def test_another_tenants_execution_is_404_everywhere_and_unchanged(http, gateway_client):
    view = await start(http)
    execution_id, interrupt_id = view["id"], view["pending_interrupts"][0]["id"]
    before = await observed(gateway_client, execution_id)
    unknown_id = "gw_approval-" + "0" * 24

    async def each(target: str) -> list[httpx.Response]:
        base = f"/v1/executions/{target}"
        carol = auth("carol")
        return [
            await http.get(base, headers=carol),
            await http.get(f"{base}?include=state", headers=carol),
            await http.get(f"{base}/audit", headers=carol),
            await http.post(
                f"{base}/interrupts/{interrupt_id}/continue",
                json={"value": {"approved": True}},
                headers={**carol, "Idempotency-Key": "x"},
            ),
            await http.post(f"{base}/events", json={"event": "note", "value": 1}, headers=carol),
            await http.post(f"{base}/close", json={"pending_interrupts": "cancel"}, headers=carol),
        ]

    theirs, unknown = await each(execution_id), await each(unknown_id)
    for mine, nobodys in zip(theirs, unknown, strict=True):
        problem = assert_problem(mine, 404)
        assert problem["detail"] == assert_problem(nobodys, 404)["detail"].replace(
            unknown_id, execution_id
        )
        assert set(mine.headers) == set(nobodys.headers)
    listing = await listed(http, auth("carol"), "flow=gw_approval&limit=200")
    assert execution_id not in {row["id"] for row in listing}
    assert await observed(gateway_client, execution_id) == before


# ---------------------------------------------------------------------- continue
async def test_continue_idempotency_and_conflicts(http, gateway_client):
    view = await start(http, "gw_double", "D-1")
    execution_id = view["id"]
    url = f"/v1/executions/{execution_id}/interrupts/{{}}/continue"
    alice = {**auth("alice"), "Idempotency-Key": "k-first"}
    first = await http.post(url.format("first"), json={"value": "A"}, headers=alice)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["status"] == "waiting" and answer["execution_id"] == execution_id
    assert answer["interrupt"]["status"] == "resumed"
    assert answer["interrupt"]["resumed_by"] == "alice"  # Agently's meaning: the subject
    assert answer["interrupt"]["resumed_by_principal"] == {
        "subject": "alice",
        "tenant": "acme",
        "groups": ["ops"],
        "method": "api_key",
        "at": answer["interrupt"]["resumed_by_principal"]["at"],
    }
    same = await http.post(url.format("first"), json={"value": "A"}, headers=alice)
    assert same.status_code == 200 and same.json()["interrupt"] == answer["interrupt"]
    before = await observed(gateway_client, execution_id)
    reused = await http.post(url.format("first"), json={"value": "B"}, headers=alice)
    assert "another value" in assert_problem(reused, 409)["detail"]
    again = await http.post(
        url.format("first"), json={"value": "C"}, headers={**auth("bob"), "Idempotency-Key": "k2"}
    )
    assert "not waiting" in assert_problem(again, 409)["detail"]
    assert_problem(await http.post(url.format("nope"), json={"value": 1}, headers=alice), 404)
    assert await observed(gateway_client, execution_id) == before
    bob = {**auth("bob"), "Idempotency-Key": "k-second"}
    second = await http.post(url.format("second"), json={"value": {"n": 2}}, headers=bob)
    assert second.status_code == 200 and second.json()["status"] == "completed"
    # Closed now: the same key and value still answer; anything else is a conflict.
    replay = await http.post(url.format("second"), json={"value": {"n": 2}}, headers=bob)
    assert replay.status_code == 200, replay.text
    assert replay.json()["interrupt"] == second.json()["interrupt"]
    assert_problem(await http.post(url.format("second"), json={"value": 3}, headers=bob), 409)
    closed = await http.post(
        url.format("second"), json={"value": 1}, headers={**auth("bob"), "Idempotency-Key": "z"}
    )
    assert "closed" in assert_problem(closed, 409)["detail"]
    emit = await http.post(
        f"/v1/executions/{execution_id}/events", json={"event": "x"}, headers=auth("bob")
    )
    assert_problem(emit, 409)
    final = (
        await http.get(f"/v1/executions/{execution_id}?include=state", headers=auth("bob"))
    ).json()
    assert final["state"] == {"first_answer": "A", "second_answer": {"n": 2}}
    audit = (await http.get(f"/v1/executions/{execution_id}/audit", headers=auth("bob"))).json()
    actions = [
        (e["action"], (e["by"] or {}).get("subject"), e.get("interrupt_id"))
        for e in audit["entries"]
    ]
    assert ("started", "alice", None) in actions
    assert ("resumed", "alice", "first") in actions and ("resumed", "bob", "second") in actions
    assert actions[0][0] == "started" and actions[-1][0] == "closed"
    assert [a for a in actions if a[0] == "resumed"] == [
        ("resumed", "alice", "first"),
        ("resumed", "bob", "second"),
    ]
    assert audit["gaps"]


async def test_a_value_that_fails_the_schema_is_422_and_changes_nothing(http, gateway_client):
    view = await start(http)
    execution_id, interrupt_id = view["id"], view["pending_interrupts"][0]["id"]
    before = await observed(gateway_client, execution_id)
    url = f"/v1/executions/{execution_id}/interrupts/{interrupt_id}/continue"
    for value in ({"approved": "yes"}, {}, [True], "approve", {"approved": True, "comment": 5}):
        response = await http.post(
            url, json={"value": value}, headers={**auth("alice"), "Idempotency-Key": "v"}
        )
        problem = assert_problem(response, 422)
        assert "response_payload_schema" in problem["detail"]
    assert await observed(gateway_client, execution_id) == before
    good = await http.post(
        url, json={"value": {"approved": True}}, headers={**auth("alice"), "Idempotency-Key": "v"}
    )
    assert good.status_code == 200 and good.json()["status"] == "completed"


# ------------------------------------------------------------------- emit and close
async def test_emit_returns_the_handlers_results(http, gateway_client):
    view = await start(http)
    response = await http.post(
        f"/v1/executions/{view['id']}/events",
        json={"event": "note", "value": "hello"},
        headers=auth("bob"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{"noted": "hello"}]
    assert response.json()["status"] == "waiting"
    assert (await observed(gateway_client, view["id"]))["state"]["notes"] == ["hello"]


async def test_close_refuses_waiting_interrupts_unless_cancelled(http, gateway_client):
    view = await start(http)
    execution_id = view["id"]
    before = await observed(gateway_client, execution_id)
    refused = await http.post(f"/v1/executions/{execution_id}/close", headers=auth("alice"))
    assert "still waiting" in assert_problem(refused, 409)["detail"]
    assert await observed(gateway_client, execution_id) == before
    closed = await http.post(
        f"/v1/executions/{execution_id}/close",
        json={"pending_interrupts": "cancel"},
        headers=auth("bob"),
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["lifecycle"], body["pending_interrupts"]) == (
        "cancelled",
        "closed",
        [],
    )
    assert body["state"] == {"asked": "T-1"}
    again = await http.post(f"/v1/executions/{execution_id}/close", headers=auth("bob"))
    assert again.status_code == 200 and again.json()["state"] == body["state"]
    audit = (await http.get(f"/v1/executions/{execution_id}/audit", headers=auth("bob"))).json()
    [closing] = [e for e in audit["entries"] if e["action"] == "closed"]
    assert closing["by"] == {"subject": "bob", "method": "api_key"}
    assert any(e["action"] == "interrupt_cancelled" for e in audit["entries"])


# ----------------------------------------------------------------------------- list
async def test_list_is_tenant_scoped_filtered_and_paged(http):
    headers = fresh_tenant()
    waiting = [(await start_as(http, headers, "gw_approval"))["id"] for _ in range(3)]
    review = (await start_as(http, headers, "gw_double"))["id"]
    done = (await start_as(http, headers, "gw_quick"))["id"]
    rows = await listed(http, headers, "limit=50", want=5)
    assert {row["id"] for row in rows} == {*waiting, review, done}
    assert {row["tenant"] for row in rows} == {rows[0]["tenant"]}
    # Newest first; the dev server's SQL visibility cannot sort, so Temporal's own order:
    # open executions by start time, newest first, then closed ones.
    open_rows = [r for r in rows if r["closed_at"] is None]
    assert rows[: len(open_rows)] == open_rows and rows[-1]["id"] == done
    starts = [r["started_at"] for r in open_rows]
    assert starts == sorted(starts, reverse=True)
    assert {r["id"] for r in await listed(http, headers, "status=waiting", 4)} == {*waiting, review}
    assert {r["id"] for r in await listed(http, headers, "status=completed", 1)} == {done}
    assert {r["id"] for r in await listed(http, headers, "flow=gw_double", 1)} == {review}
    assert {r["id"] for r in await listed(http, headers, "interrupt_type=review", 1)} == {review}
    assert {r["id"] for r in await listed(http, headers, "interrupt_type=approval", 3)} == set(
        waiting
    )
    seen: list[str] = []
    token_: str | None = None
    for _ in range(6):
        query = "limit=2" + (f"&page_token={token_}" if token_ else "")
        page = (await http.get(f"/v1/executions?{query}", headers=headers)).json()
        seen += [row["id"] for row in page["executions"]]
        token_ = page["next_page_token"]
        if not token_:
            break
    assert sorted(seen) == sorted({*waiting, review, done})
    first_page = (await http.get("/v1/executions?limit=2", headers=headers)).json()
    foreign = first_page["next_page_token"]
    assert foreign
    for bad in (foreign, "garbage", foreign[:-4] + "AAAA"):
        response = await http.get(
            f"/v1/executions?limit=2&status=waiting&page_token={bad}", headers=headers
        )
        assert_problem(response, 400)
    other = fresh_tenant()
    assert await listed(http, other) == []
    stolen = await http.get(f"/v1/executions?limit=2&page_token={foreign}", headers=other)
    assert_problem(stolen, 400)


async def start_as(http: httpx.AsyncClient, headers: dict[str, str], flow: str) -> dict[str, Any]:
    response = await http.post(f"/v1/flows/{flow}/executions", json={"input": 1}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_assigned_to_me_uses_the_assignee_search_attributes(http, gateway_client):
    headers = fresh_tenant()
    await start_as(http, headers, "gw_approval")
    assert len(await listed(http, headers, "status=waiting", 1)) == 1
    names = {"TriggerFlowAssignees", "TriggerFlowCandidateGroups"}
    service = gateway_client.operator_service
    namespace = gateway_client.namespace
    existing = await service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    if not names <= set(existing.custom_attributes):
        missing = await http.get("/v1/executions?assigned_to=me", headers=headers)
        assert "TriggerFlowAssignees" in assert_problem(missing, 501)["detail"]
        await service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST for name in names
                },
            )
        )
    for _ in range(50):  # the new attributes reach the visibility store shortly
        response = await http.get("/v1/executions?assigned_to=me&status=waiting", headers=headers)
        if response.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert response.status_code == 200, response.text
    # gw_approval's pause names nobody: anyone of the tenant may resume it, so it is
    # listed for this principal too (TriggerFlowAssignees holds "*").
    listed_ids = [e["id"] for e in response.json()["executions"]]
    assert len(listed_ids) == 1 and listed_ids[0].startswith("gw_approval-")


async def test_executions_the_gateway_does_not_own_are_404(http, gateway_client, flow_of):
    # Started without a tenant (as `triggerflow-temporal start` does without --tenant).
    untenanted = flow_of["gw_approval"].create_execution(client=gateway_client, auto_close=False)
    await untenanted.async_start("no tenant")
    # The right tenant, but a flow this gateway does not serve.
    unserved = gateway_flows.unserved.create_execution(
        client=gateway_client, auto_close=False, tenant="acme", task_queue="nobody-polls-this"
    )
    asyncio.ensure_future(unserved.async_start_settled("x")).add_done_callback(
        lambda task: task.cancelled() or task.exception()
    )
    for _ in range(50):
        try:
            await gateway_client.get_workflow_handle(unserved.id).describe()
            break
        except Exception:
            await asyncio.sleep(0.1)
    for execution_id in (untenanted.id, unserved.id):
        for who in ("alice", "carol"):
            response = await http.get(f"/v1/executions/{execution_id}", headers=auth(who))
            assert_problem(response, 404)
    await untenanted.async_close(pending_interrupts="cancel")
    await gateway_client.get_workflow_handle(unserved.id).terminate("test over")


async def test_access_rules_refuse_with_403_and_assigned_to_me_finds_them(http, gateway_client):
    tenant = f"t-{uuid.uuid4().hex[:10]}"

    def as_(sub: str, *groups: str) -> dict[str, str]:
        return bearer(token(sub, tenant=tenant, groups=list(groups)))

    bob_started = await start_as(http, as_("bob"), "gw_guarded")
    view = await start_as(http, as_("alice", "ops"), "gw_guarded")
    [interrupt] = view["pending_interrupts"]
    assert (
        interrupt["assignees"],
        interrupt["candidate_groups"],
        interrupt["forbid_initiator"],
    ) == (
        ["bob"],
        ["finance"],
        True,
    )
    before = await observed(gateway_client, view["id"])
    url = "/v1/executions/{}/interrupts/sign-off/continue"
    for execution_id, headers, why in [
        (view["id"], as_("alice", "finance"), "started this execution"),  # initiator, even in group
        (view["id"], as_("erin", "ops"), "may not resume"),  # neither assignee nor group
        (bob_started["id"], as_("bob"), "started this execution"),  # initiator, even assignee
    ]:
        response = await http.post(
            url.format(execution_id), json={"value": {"ok": 1}}, headers=headers
        )
        assert why in assert_problem(response, 403)["detail"]
    assert await observed(gateway_client, view["id"]) == before
    # Visibility: bob by name, finance by group; not alice's other groups, not another tenant.
    found = {r["id"] for r in await listed(http, as_("bob"), "assigned_to=me", 2)}
    assert found == {view["id"], bob_started["id"]}
    found = {r["id"] for r in await listed(http, as_("gus", "finance"), "assigned_to=me", 2)}
    assert found == {view["id"], bob_started["id"]}
    assert await listed(http, as_("hal", "ops"), "assigned_to=me") == []
    assert (
        await listed(
            http, bearer(token("bob", groups=["finance"])), "assigned_to=me&flow=gw_guarded"
        )
        == []
    )
    ok = await http.post(
        url.format(view["id"]), json={"value": {"ok": 2}}, headers=as_("gus", "finance")
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["interrupt"]["resumed_by"] == "gus"
    ok = await http.post(
        url.format(bob_started["id"]), json={"value": {"ok": 3}}, headers=as_("ivy", "finance")
    )
    assert ok.status_code == 200, ok.text


async def test_an_event_that_resumes_an_interrupt_is_checked_like_a_resume(http, gateway_client):
    view = await start(http, "gw_evented", None)
    events = f"/v1/executions/{view['id']}/events"
    before = await observed(gateway_client, view["id"])
    refused = await http.post(events, json={"event": "approve", "value": 1}, headers=auth("alice"))
    assert "may not" in assert_problem(refused, 403)["detail"]
    assert await observed(gateway_client, view["id"]) == before
    accepted = await http.post(events, json={"event": "approve", "value": 2}, headers=auth("bob"))
    assert accepted.status_code == 200, accepted.text
    state = (
        await http.get(f"/v1/executions/{view['id']}?include=state", headers=auth("bob"))
    ).json()
    assert state["state"] == {"approved_with": 2}
