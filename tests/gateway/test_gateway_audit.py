"""The audit keeps what the gateway refused (issue 14): a refused resume or emit never reaches
the execution's history, and the audit still shows who was refused, for what and why.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from .conftest import auth, start


async def accepted_updates(client, execution_id: str) -> int:
    history = await client.get_workflow_handle(execution_id).fetch_history()
    return sum(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        for e in history.events
    )


async def audit(http, execution_id: str, who: str = "alice") -> list[dict]:
    response = await http.get(f"/v1/executions/{execution_id}/audit", headers=auth(who))
    assert response.status_code == 200, response.text
    return response.json()["entries"]


async def test_a_refused_resume_is_in_the_audit_not_in_history(http, gateway_client):
    view = await start(http, "gw_guarded", 250, who="alice")  # alice is the initiator
    execution_id = view["id"]
    before = await accepted_updates(gateway_client, execution_id)
    url = f"/v1/executions/{execution_id}/interrupts/sign-off/continue"
    refused = await http.post(url, json={"value": "mine"}, headers=auth("alice"))
    assert refused.status_code == 403, refused.text
    assert await accepted_updates(gateway_client, execution_id) == before
    entries = [e for e in await audit(http, execution_id) if e["action"] == "refused"]
    assert len(entries) == 1
    [entry] = entries
    assert entry["by"]["subject"] == "alice" and entry["by"]["method"] == "api_key"
    assert entry["interrupt_id"] == "sign-off"
    assert entry["detail"]["request"] == "continue" and entry["detail"]["status"] == 403
    assert "forbid_initiator" in entry["detail"]["reason"]
    # bob is the assignee: accepted, and the audit shows both, in order.
    accepted = await http.post(url, json={"value": "ok"}, headers=auth("bob"))
    assert accepted.status_code == 200, accepted.text
    actions = [
        (e["action"], (e["by"] or {}).get("subject")) for e in await audit(http, execution_id)
    ]
    assert ("refused", "alice") in actions and ("resumed", "bob") in actions
    assert actions.index(("refused", "alice")) < actions.index(("resumed", "bob"))


async def test_a_refused_emit_and_who_emitted_are_in_the_audit(http, gateway_client):
    view = await start(http, "gw_evented", None, who="alice")
    execution_id = view["id"]
    url = f"/v1/executions/{execution_id}/events"
    refused = await http.post(url, json={"event": "approve", "value": 1}, headers=auth("alice"))
    assert refused.status_code == 403, refused.text
    ok = await http.post(url, json={"event": "approve", "value": 2}, headers=auth("bob"))
    assert ok.status_code in (200, 202), ok.text
    entries = await audit(http, execution_id)
    refusals = [e for e in entries if e["action"] == "refused"]
    assert [(e["by"]["subject"], e["detail"]["event"]) for e in refusals] == [("alice", "approve")]
    emitted = [e for e in entries if e["action"] == "emitted"]
    assert [e["by"]["subject"] for e in emitted] == ["bob"]
