"""Flows the gateway tests start (importable: handlers are looked up by module and name)."""

from __future__ import annotations

from triggerflow_temporal import TriggerFlow

DECISION_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "comment": {"type": "string"}},
    "required": ["approved"],
}


async def ask(data):
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(
        type="approval",
        payload={"ticket": data.input},
        response_payload_schema=DECISION_SCHEMA,
    )


async def commit(data):
    await data.async_set_state("decision", data.input)


async def note(data):
    await data.async_append_state("notes", data.input)
    return {"noted": data.input}


approval = TriggerFlow(name="gw_approval")
approval.to(ask).to(commit)
approval.when("note").to(note)


async def shout(data):
    await data.async_set_state("shouted", str(data.input).upper())


quick = TriggerFlow(name="gw_quick")
quick.to(shout)


async def explode(data):
    raise ValueError(f"cannot handle {data.input!r}")


failing = TriggerFlow(name="gw_failing")
failing.to(explode)

ALL = [approval, quick, failing]


async def first(data):
    return await data.async_pause_for(type="review", payload={"step": 1}, interrupt_id="first")


async def second(data):
    await data.async_set_state("first_answer", data.input)
    return await data.async_pause_for(type="approval", payload={"step": 2}, interrupt_id="second")


async def done(data):
    await data.async_set_state("second_answer", data.input)


double = TriggerFlow(name="gw_double")
double.to(first).to(second).to(done)

ALL.append(double)


async def guarded_ask(data):
    return await data.async_pause_for(
        type="approval",
        payload={"amount": data.input},
        interrupt_id="sign-off",
        assignees=["bob"],
        candidate_groups=["finance"],
        forbid_initiator=True,
    )


guarded = TriggerFlow(name="gw_guarded")
guarded.to(guarded_ask).to(commit)

ALL.append(guarded)


async def wait_for_event(data):
    return await data.async_pause_for(
        type="approval", interrupt_id="by-event", resume_event="approve", assignees=["bob"]
    )


async def approved(data):
    await data.async_set_state("approved_with", data.input)


evented = TriggerFlow(name="gw_evented")
evented.to(wait_for_event)
evented.when("approve").to(approved)

ALL.append(evented)


async def wait_paid(data):
    return await data.async_pause_for(
        type="payment",
        interrupt_id="paid",
        correlation={"name": "invoice.paid", "key": data.input},
    )


async def booked(data):
    await data.async_set_state("paid_with", data.input)


invoice = TriggerFlow(name="gw_invoice")
invoice.to(wait_paid).to(booked)

ALL.append(invoice)


# A flow no gateway test worker serves (not in ALL): its executions wait for a worker.
unserved = TriggerFlow(name="gw_unserved")
unserved.to(shout)


# The approver pages (links, inbox): a schema with an enum, an integer, an optional
# boolean and a rule HTML cannot express (rejecting needs a comment), a deadline, and
# assignees / candidate groups taken from the input.
REVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "description": "Approve or reject the refund."},
        "comment": {"type": "string", "description": "Why (required when you reject)."},
        "risk": {
            "type": "string",
            "enum": ["low", "medium", "high"],
            "description": "Your assessment of the risk.",
        },
        "cap": {"type": "integer", "minimum": 0, "description": "Largest amount you approve."},
        "notify": {"type": "boolean", "title": "Tell the customer"},
    },
    "required": ["approved", "risk"],
    "if": {"properties": {"approved": {"const": False}}, "required": ["approved"]},
    "then": {"required": ["comment"], "properties": {"comment": {"minLength": 1}}},
}


async def review_ask(data):
    request = data.input or {}
    rules = {key: request[key] for key in ("assignees", "candidate_groups") if request.get(key)}
    return await data.async_pause_for(
        type="approval",
        interrupt_id="review",
        payload={
            "title": request.get("title", "Refund"),
            "amount": request.get("amount", 0),
            "evidence": request.get("evidence", []),
        },
        response_payload_schema=REVIEW_SCHEMA,
        timeout=request.get("timeout", 86400),
        **rules,
    )


review = TriggerFlow(name="gw_review")
review.to(review_ask).to(commit)

ALL.append(review)
