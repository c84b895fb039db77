"""Native recording: ``create_execution(intervention_mode="auto", intervention_policy=fn)``.

What the policy is handed (its ``context``), when it is called (before each operator's
dispatch, every kind, only while interventions are pending), and what its return does:
an id, a list (inserted in the order given), None (nothing), an unknown id (skipped), a
non-iterable (a ``TypeError``, as if it raised), raising (a WARNING
``triggerflow.intervention_rejected`` event, nothing inserted, the flow goes on), an async
policy, and that a policy ignores targets. Also the builtin auto selection's name
(``"builtin"``), a policy without auto mode (never called) and a lambda (accepted).

Run with agently==4.1.4.10: ``python intervention_policy.py > intervention_policy.json``.
tests/conformance/test_intervention_policy.py runs the same flows on Temporal.
"""

import asyncio

from _common import make_execution, out, run
from agently import Agently, TriggerFlow

EVENTS = []


async def record_event(event):
    if event.event_type.startswith("triggerflow.intervention_"):
        EVENTS.append(event)


Agently.event_center.register_hook(record_event, hook_name="ip-recorder")


# ------------------------------------------------------------------- the flows
def ip_gate(data):
    return True


async def ip_a(data):
    await data.async_set_state("a_seen", [i["payload"] for i in data.interventions])
    return await data.async_pause_for(type="gate", interrupt_id="gate")


async def ip_b(data):
    await data.async_set_state("b_seen", [i["payload"] for i in data.interventions])
    return data.input


async def ip_c(data):
    await data.async_set_state("c_seen", [i["payload"] for i in data.interventions])
    return data.input


def policy_flow():
    """ip_a (pauses) -> ip_b -> if ip_gate: ip_c -> end: five operators after the pause."""
    flow = TriggerFlow(name="ip-policy")
    flow.to(ip_a).to(ip_b).if_condition(ip_gate).to(ip_c).end_condition().end()
    return flow


def planned_flow():
    flow = TriggerFlow(name="ip-planned")
    flow.to(ip_a).intervention_point(name="check", target="ip_c").to(ip_b).end()
    return flow


# ---------------------------------------------------------------- the policies
CALLS = []
CONTEXTS = []
EXECUTION_IDS = []


def note(context):
    """Remember the call: operator kind and name, pending payloads, latest version."""
    CONTEXTS.append(context)
    name = context["operator_name"]
    if context["operator_kind"] != "chunk":
        name = name.split(":")[0]  # "match:<group id>": the id differs by build
    CALLS.append(
        [
            context["operator_kind"],
            name,
            [p["payload"] for p in context["pending_interventions"]],
            context["latest_inserted_version"],
        ]
    )


def pick_last(context):
    note(context)
    return context["pending_interventions"][-1]["id"]


def pick_all_reversed(context):
    note(context)
    return [p["id"] for p in context["pending_interventions"]][::-1]


def pick_none(context):
    note(context)
    return None


def pick_unknown_at_c(context):
    note(context)
    if context["operator_name"] != "ip_c":
        return []
    return ("no-such-intervention", context["pending_interventions"][0]["id"])


def pick_raises(context):
    note(context)
    raise RuntimeError("policy down")


def pick_not_iterable(context):
    note(context)
    return 5


async def pick_targeted_async(context):
    note(context)
    await asyncio.sleep(0)
    return [p["id"] for p in context["pending_interventions"] if p["target"] == "ip_c"]


# ------------------------------------------------------------------- recording
def shown(record, execution_id):
    """A ledger record without ids and clocks: payload, status and where it went."""
    insertion = record["insertion"]
    if insertion is not None:
        kind = insertion["operator_kind"]
        name = insertion["operator_name"]
        insertion = {
            "mode": insertion["mode"],
            "operator_kind": kind,
            "operator_name": name if kind == "chunk" else name.split(":")[0],
            "policy": insertion.get("policy", "<absent>"),
            "signal_value": insertion["signal"]["value"],
        }
    return {"payload": record["payload"], "status": record["status"], "insertion": insertion}


def events_shown(execution, by_id, operators):
    """The intervention events: type, level and which record / operator (no ids)."""
    found = []
    for event in EVENTS:
        if event.meta.get("execution_id") != execution.id:
            continue
        payload = event.payload or {}
        entry = [event.event_type, event.level]
        if "intervention" in payload:
            entry.append(by_id.get(payload["intervention"]["id"]))
        else:
            entry.append(operators.get(payload.get("operator_id"), "?"))
            entry.append((event.message or "").replace(execution.id, "<id>"))
            entry.append([event.error.type, event.error.message] if event.error else None)
        found.append(entry)
    return found


async def scenario(policy, *, mode="auto", flow=None):
    """Start, pause, three interventions (untargeted, for ip_c, for nowhere), resume."""
    CALLS.clear()
    CONTEXTS.clear()
    kwargs = {} if mode is ... else {"intervention_mode": mode}
    if policy is not None:
        kwargs["intervention_policy"] = policy
    flow = flow or policy_flow()
    execution = make_execution(flow, auto_close=False, **kwargs)
    EXECUTION_IDS.append(execution.id)
    await execution.async_start("x")
    calls_before_any = len(CALLS)
    records = [
        await execution.async_intervene({"p": 1}),
        await execution.async_intervene({"p": 2}, target="ip_c"),
        await execution.async_intervene({"p": 3}, target="nowhere"),
    ]
    by_id = {r["id"]: r["payload"] for r in records}
    await execution.async_continue_with("gate", "go")
    state = execution.get_state()
    section = execution.save()["intervention"]
    await execution.async_close()
    operators = {}
    for context in CONTEXTS:
        kind, name = context["operator_kind"], context["operator_name"]
        operators[context["operator_id"]] = [kind, name if kind == "chunk" else name.split(":")[0]]
    return {
        "calls_before_any_pending": calls_before_any,
        "calls": list(CALLS),
        "seen": {k: state.get(k) for k in ("a_seen", "b_seen", "c_seen")},
        "ledger": [shown(r, execution.id) for r in execution.get_interventions()],
        "section": {"mode": section["mode"], "policy": section["policy"]},
        "events": events_shown(execution, by_id, operators),
    }


async def load_scenario(policy):
    """Saved while waiting with two pending (chosen by pick_last), loaded with ``policy``."""
    source = make_execution(
        policy_flow(), auto_close=False, intervention_mode="auto", intervention_policy=pick_last
    )
    await source.async_start("x")
    await source.async_intervene({"p": 1})
    await source.async_intervene({"p": 2}, target="ip_c")
    saved = source.save()
    await source.async_close(pending_interrupts="cancel")
    CALLS.clear()
    kwargs = {} if policy is None else {"intervention_policy": policy}
    loaded = make_execution(policy_flow(), auto_close=False, **kwargs)
    await loaded.async_load(saved)
    await loaded.async_continue_with("gate", "go")
    section = loaded.save()["intervention"]
    found = {
        "saved_section": {
            "mode": saved["intervention"]["mode"],
            "policy": saved["intervention"]["policy"],
        },
        "calls": list(CALLS),
        "ledger": [shown(r, loaded.id) for r in loaded.get_interventions()],
        "section": {"mode": section["mode"], "policy": section["policy"]},
    }
    await loaded.async_close()
    return found


def context_facts():
    """The first context pick_last got: its keys and the shape of each part."""
    context = CONTEXTS[0]
    signal = context["signal"]
    return {
        "keys": sorted(context),
        "operator_keys": sorted(context["operator"]),
        "operator_fields_repeat_the_operator": all(
            context[f"operator_{key}"] == context["operator"][key] for key in ("id", "name", "kind")
        )
        and all(context[key] == context["operator"][key] for key in ("group_id", "group_kind")),
        "signal_keys": sorted(signal),
        "signal": {
            "value": signal["value"],
            "source": signal["source"],
            "trigger_type": signal["trigger_type"],
            "layer_marks": signal["layer_marks"],
            "resumed_interrupt": (signal["meta"].get("resume") or {}).get("interrupt_id"),
        },
        "flow_name": context["flow_name"],
        "execution_id_is_the_execution": context["execution_id"] == EXECUTION_IDS[0],
        "pending_keys": sorted(context["pending_interventions"][0]),
        "pending_statuses": sorted({p["status"] for p in context["pending_interventions"]}),
        "state_keys": sorted(context["state"]),
        "state_interventions_is_the_ledger": sorted(context["state"]["$interventions"])
        == sorted(p["id"] for p in context["pending_interventions"]),
    }


async def main():
    found = {}
    found["pick_last"] = await scenario(pick_last)
    context = context_facts()
    found["pick_all_reversed"] = await scenario(pick_all_reversed)
    found["pick_none"] = await scenario(pick_none)
    found["pick_unknown_at_c"] = await scenario(pick_unknown_at_c)
    found["pick_raises"] = await scenario(pick_raises)
    found["pick_not_iterable"] = await scenario(pick_not_iterable)
    found["pick_targeted_async"] = await scenario(pick_targeted_async)
    found["builtin"] = await scenario(None)
    # A policy without a mode (the flow has no point: interventions are off): kept by name.
    execution = make_execution(policy_flow(), auto_close=False, intervention_policy=pick_last)
    await execution.async_start("x")
    section = execution.save()["intervention"]
    await execution.async_close(pending_interrupts="cancel")
    found["no_mode"] = {"section": {"mode": section["mode"], "policy": section["policy"]}}
    # Planned mode: the policy is never called; the point inserts without a policy name.
    found["planned"] = await scenario(pick_last, mode=..., flow=planned_flow())
    # Loaded with another policy: it chooses. Loaded without one: the builtin selection
    # chooses, and the saved policy's name stays (in the section and the insertions).
    found["load_with_policy"] = await load_scenario(pick_all_reversed)
    found["load_without_policy"] = await load_scenario(None)
    # A lambda is accepted natively and named by its __name__.
    execution = make_execution(
        policy_flow(),
        auto_close=False,
        intervention_mode="auto",
        intervention_policy=lambda c: None,
    )
    found["lambda"] = {"policy": execution.save()["intervention"]["policy"]}
    found["context"] = context
    out(found)


if __name__ == "__main__":
    run(main)
