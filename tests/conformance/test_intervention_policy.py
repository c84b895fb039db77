"""intervention_policy: a worker-registered function choosing auto-mode interventions.

Native recording: native/intervention_policy.py (agently 4.1.4.10) ->
native/intervention_policy.json. Natively ``create_execution(intervention_mode="auto",
intervention_policy=fn)`` calls ``fn(context)`` before each operator (every kind) while
interventions are pending and inserts the ids it returns instead of selecting by target:
an id, a list (in its order), None (nothing), unknown ids skipped, a failure (raising, a
non-iterable answer) a WARNING ``triggerflow.intervention_rejected`` event with nothing
inserted; the flow goes on.

Here the policy is registered on the worker (``TriggerFlowPlugin(intervention_policies=
[...])``) under its ``module.qualname`` and runs as a local activity; the same scenarios
give the same calls, ledger, section and events. Where ours differs: a lambda (or a nested
or ``__main__`` function) is refused with a ValueError (natively accepted), a policy may be
named by its key, and a name no worker has fails the workflow task until one does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin
from triggerflow_temporal.interpreter.interventions import (
    InterventionLedger,
    policy_context,
)
from triggerflow_temporal.plugin.intervention_policies import (
    choose_ids,
    execution_policy,
    policy_key,
    register_policies,
)
from triggerflow_temporal.testing import start_dev_server, start_local_runtime

NATIVE = json.loads(
    (Path(__file__).parent / "native" / "intervention_policy.json").read_text(encoding="utf-8")
)


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


def policy_flow() -> TriggerFlow:
    """ip_a (pauses) -> ip_b -> if ip_gate: ip_c -> end: five operators after the pause."""
    flow = TriggerFlow(name="ip-policy")
    flow.to(ip_a).to(ip_b).if_condition(ip_gate).to(ip_c).end_condition().end()
    return flow


def planned_flow() -> TriggerFlow:
    flow = TriggerFlow(name="ip-planned")
    flow.to(ip_a).intervention_point(name="check", target="ip_c").to(ip_b).end()
    return flow


flow = policy_flow()
planned = planned_flow()
FLOWS = [flow, planned]


# ---------------------------------------------------------------- the policies
CALLS: list[list[Any]] = []
CONTEXTS: list[dict[str, Any]] = []


def note(context: dict[str, Any]) -> None:
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


POLICIES = [
    pick_last,
    pick_all_reversed,
    pick_none,
    pick_unknown_at_c,
    pick_raises,
    pick_not_iterable,
    pick_targeted_async,
]


# ------------------------------------------------------------------- recording
def shown(record: dict[str, Any]) -> dict[str, Any]:
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


def events_shown(
    events: list[Any], execution_id: str, by_id: dict[str, Any], operators: dict[str, Any]
) -> list[list[Any]]:
    """The intervention events: type, level and which record / operator (no ids)."""
    found = []
    for event in events:
        if event.execution_id != execution_id:
            continue
        payload = event.payload or {}
        entry: list[Any] = [event.event_type, event.level]
        if "intervention" in payload:
            entry.append(by_id.get(payload["intervention"]["id"]))
        else:
            entry.append(operators.get(payload.get("operator_id"), "?"))
            entry.append((event.message or "").replace(execution_id, "<id>"))
            entry.append([event.error["type"], event.error["message"]] if event.error else None)
        found.append(entry)
    return found


async def settled_events(events: list[Any], execution_id: str, count: int) -> list[Any]:
    """The execution's events once ``count`` of them arrived (hooks run asynchronously)."""
    for _ in range(200):
        mine = [e for e in events if e.execution_id == execution_id]
        if len(mine) >= count:
            return list(events)
        await asyncio.sleep(0.05)
    return list(events)


async def scenario(
    label: str,
    policy: Any,
    events: list[Any],
    *,
    mode: Any = "auto",
    flow_: TriggerFlow | None = None,
) -> dict[str, Any]:
    """As natively: start, pause, three interventions (untargeted, ip_c, nowhere), resume."""
    CALLS.clear()
    CONTEXTS.clear()
    kwargs: dict[str, Any] = {} if mode is ... else {"intervention_mode": mode}
    if policy is not None:
        kwargs["intervention_policy"] = policy
    execution = (flow_ or flow).create_execution(auto_close=False, **kwargs)
    await execution.async_start("x")
    calls_before_any = len(CALLS)
    records = [
        await execution.async_intervene({"p": 1}),
        await execution.async_intervene({"p": 2}, target="ip_c"),
        await execution.async_intervene({"p": 3}, target="nowhere"),
    ]
    by_id = {r["id"]: r["payload"] for r in records}
    await execution.async_continue_with("gate", "go")
    state = await execution.async_get_state()
    section = (await execution.async_save())["intervention"]
    await execution.async_close()
    ledger = await execution.async_get_interventions()
    operators: dict[str, Any] = {}
    for context in CONTEXTS:
        kind, name = context["operator_kind"], context["operator_name"]
        operators[context["operator_id"]] = [kind, name if kind == "chunk" else name.split(":")[0]]
    seen = await settled_events(events, execution.id, len(NATIVE[label]["events"]))
    return {
        "calls_before_any_pending": calls_before_any,
        "calls": list(CALLS),
        "seen": {k: state.get(k) for k in ("a_seen", "b_seen", "c_seen")},
        "ledger": [shown(r) for r in ledger],
        "section": {"mode": section["mode"], "policy": section["policy"]},
        "events": events_shown(seen, execution.id, by_id, operators),
        "_execution_id": execution.id,
    }


def context_facts(execution_id: str) -> dict[str, Any]:
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
        "execution_id_is_the_execution": context["execution_id"] == execution_id,
        "pending_keys": sorted(context["pending_interventions"][0]),
        "pending_statuses": sorted({p["status"] for p in context["pending_interventions"]}),
        "state_keys": sorted(context["state"]),
        "state_interventions_is_the_ledger": sorted(context["state"]["$interventions"])
        == sorted(p["id"] for p in context["pending_interventions"]),
    }


def without_id(found: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k != "_execution_id"}


# ------------------------------------------------------------------- the port
async def test_intervention_policy_as_natively(runtime):
    events: list[Any] = []
    async with runtime(FLOWS, intervention_policies=POLICIES) as client:
        plugin = TriggerFlowPlugin.of_client(client, flow.name)
        assert plugin is not None
        plugin.on_event(events.append, list(_INTERVENTION_EVENTS))
        got: dict[str, Any] = {}
        first = await scenario("pick_last", pick_last, events)
        got["context"] = context_facts(first["_execution_id"])
        got["pick_last"] = without_id(first)
        for policy in POLICIES[1:]:
            got[policy.__name__] = without_id(await scenario(policy.__name__, policy, events))
        got["builtin"] = without_id(await scenario("builtin", None, events))
        # A policy without a mode (the flow has no point: interventions are off).
        execution = flow.create_execution(auto_close=False, intervention_policy=pick_last)
        await execution.async_start("x")
        section = (await execution.async_save())["intervention"]
        await execution.async_close(pending_interrupts="cancel")
        got["no_mode"] = {"section": {"mode": section["mode"], "policy": section["policy"]}}
        got["planned"] = without_id(
            await scenario("planned", pick_last, events, mode=..., flow_=planned)
        )
    for name in [*(p.__name__ for p in POLICIES), "builtin", "no_mode", "planned", "context"]:
        assert got[name] == NATIVE[name], name
    # Natively a lambda is accepted (named "<lambda>"); here it is refused (below).
    assert NATIVE["lambda"] == {"policy": "<lambda>"}


async def load_scenario(policy: Any) -> dict[str, Any]:
    """As natively: saved waiting with two pending (policy pick_last), loaded with ``policy``."""
    source = flow.create_execution(
        auto_close=False, intervention_mode="auto", intervention_policy=pick_last
    )
    await source.async_start("x")
    await source.async_intervene({"p": 1})
    await source.async_intervene({"p": 2}, target="ip_c")
    saved = await source.async_save()
    await source.async_close(pending_interrupts="cancel")
    CALLS.clear()
    kwargs = {} if policy is None else {"intervention_policy": policy}
    loaded = flow.create_execution(auto_close=False, **kwargs)
    loaded = await loaded.async_load(saved, execution_id=f"{source.id}-copy")
    await loaded.async_continue_with("gate", "go")
    section = (await loaded.async_save())["intervention"]
    found = {
        "saved_section": {
            "mode": saved["intervention"]["mode"],
            "policy": saved["intervention"]["policy"],
        },
        "calls": list(CALLS),
        "ledger": [shown(r) for r in await loaded.async_get_interventions()],
        "section": {"mode": section["mode"], "policy": section["policy"]},
    }
    await loaded.async_close()
    return found


async def test_a_loaded_execution_uses_the_loading_handles_policy_as_natively(runtime):
    async with runtime(FLOWS, intervention_policies=POLICIES):
        with_policy = await load_scenario(pick_all_reversed)
        without_policy = await load_scenario(None)
    assert with_policy == NATIVE["load_with_policy"]
    # Without one the targets choose, and the saved name stays, as natively.
    assert without_policy == NATIVE["load_without_policy"]


_INTERVENTION_EVENTS = (
    "triggerflow.intervention_received",
    "triggerflow.intervention_inserted",
    "triggerflow.intervention_consumed",
    "triggerflow.intervention_expired",
    "triggerflow.intervention_rejected",
)


# ------------------------------------------------------ over continue-as-new
async def ip_tick(data):
    await data.async_append_state("ticks", [data.input, [i["payload"] for i in data.interventions]])


ticker = TriggerFlow(name="ip-ticker")
ticker.when("tick").to(ip_tick)


async def test_the_policy_chooses_after_continue_as_new():
    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"]
    async with start_dev_server(extra_args=extra) as env:
        async with start_local_runtime(
            [ticker], client=env.client, intervention_policies=[pick_last]
        ) as client:
            execution = ticker.create_execution(
                auto_close=False, intervention_mode="auto", intervention_policy=pick_last
            )
            await execution.async_start(None)
            first_run = (await client.get_workflow_handle(execution.id).describe()).run_id
            for i in range(12):
                await execution.async_emit("tick", i)
            last_run = (await client.get_workflow_handle(execution.id).describe()).run_id
            CALLS.clear()
            await execution.async_intervene("one")
            await execution.async_intervene("two")
            await execution.async_emit("tick", 12)  # pick_last: "two"
            await execution.async_emit("tick", 13)  # then "one"
            section = (await execution.async_save())["intervention"]
            snapshot = await execution.async_close()
    assert last_run != first_run
    assert snapshot["ticks"][-2:] == [[12, ["two"]], [13, ["one", "two"]]]
    # Called before each tick's chunk while something was pending, and only then.
    assert [call[2] for call in CALLS] == [["one", "two"], ["one"]]
    assert section["policy"] == "pick_last"


# --------------------------------------------------------- refusals and names
def test_a_lambda_or_nested_or_main_policy_is_refused_when_the_execution_is_created():
    with pytest.raises(ValueError, match="lambda or a nested function") as caught:
        flow.create_execution(intervention_mode="auto", intervention_policy=lambda c: None)
    assert "TriggerFlowPlugin(intervention_policies=[...])" in str(caught.value)

    def nested(context):
        return None

    with pytest.raises(ValueError, match="lambda or a nested function"):
        flow.create_execution(intervention_mode="auto", intervention_policy=nested)
    nested.__module__ = "__main__"
    nested.__qualname__ = "nested"
    with pytest.raises(ValueError, match="defined in __main__"):
        flow.create_execution(intervention_mode="auto", intervention_policy=nested)
    with pytest.raises(TypeError, match="takes a function registered on the worker"):
        flow.create_execution(intervention_mode="auto", intervention_policy=42)
    with pytest.raises(ValueError, match="empty name"):
        flow.create_execution(intervention_mode="auto", intervention_policy=" ")


def test_a_policy_is_recorded_by_its_module_qualname():
    key = f"{__name__}.pick_last"
    assert policy_key(pick_last) == key
    assert execution_policy(pick_last) == key
    assert execution_policy(key) == key  # a name is taken as given
    assert execution_policy(None) is None
    execution = flow.create_execution(intervention_mode="auto", intervention_policy=pick_last)
    assert execution._setup.workflow_input().options.intervention_policy == key
    plain = flow.create_execution()
    assert plain._setup.workflow_input().options.intervention_policy is None


def test_plugin_registration_checks_its_policies():
    assert register_policies([pick_last, pick_none]) == {
        f"{__name__}.pick_last": pick_last,
        f"{__name__}.pick_none": pick_none,
    }
    with pytest.raises(TypeError, match="takes a list of functions"):
        TriggerFlowPlugin([flow], intervention_policies=pick_last)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lambda or a nested function"):
        TriggerFlowPlugin([flow], intervention_policies=[lambda c: None])
    with pytest.raises(TypeError, match="takes functions"):
        TriggerFlowPlugin([flow], intervention_policies=["tests.pick"])  # type: ignore[list-item]


def test_policy_answers_are_read_as_natively():
    assert choose_ids(None) == []
    assert choose_ids("a") == ["a"]
    assert choose_ids(["a", 2]) == ["a", "2"]
    assert choose_ids(("a",)) == ["a"]
    assert choose_ids({"a": 1}) == ["a"]  # a dict gives its keys, as natively
    with pytest.raises(TypeError):
        choose_ids(5)


def test_ledger_inserts_the_choice_in_order_skipping_unknown_and_non_pending():
    ledger = InterventionLedger("auto", f"{__name__}.pick_last")
    for n in (1, 2, 3):
        ledger.append(
            intervention_id=f"i{n}",
            payload=n,
            author=None,
            note=None,
            target=None,
            metadata=None,
            now=0.0,
        )
    assert ledger.needs_policy()
    op = {"id": "op", "name": "ip_b", "kind": "chunk", "group_id": None, "group_kind": None}
    signal = {"id": "s", "value": 1, "layer_marks": [], "meta": {}}
    context = policy_context(
        ledger, execution_id="e", flow_name="f", op=op, signal=signal, state={"k": 1}
    )
    assert [p["id"] for p in context["pending_interventions"]] == ["i1", "i2", "i3"]
    assert context["latest_inserted_version"] == 0
    inserted = ledger.insert_chosen(["i3", "nope", "i1", "i3"], op, signal, 1.0)
    assert [r["id"] for r in inserted] == ["i3", "i1"]
    assert inserted[0]["insertion"]["policy"] == "pick_last"
    assert ledger.section()["policy"] == "pick_last"
    assert ledger.insert_chosen(["i1"], op, signal, 2.0) == []  # no longer pending
    context = policy_context(
        ledger, execution_id="e", flow_name="f", op=op, signal=signal, state={}
    )
    assert [p["id"] for p in context["pending_interventions"]] == ["i2"]
    assert context["latest_inserted_version"] == 3
    ledger.insert_chosen(["i2"], op, signal, 3.0)
    assert not ledger.needs_policy()  # nothing pending: the policy is not called
    # Without a policy auto mode is "builtin"; planned or off has none.
    assert InterventionLedger("auto").section()["policy"] == "builtin"
    assert InterventionLedger("planned").section()["policy"] is None
    assert not InterventionLedger("planned", "m.f").needs_policy()


# ------------------------------------------------------- a policy no worker has
async def test_an_unregistered_policy_holds_the_execution_until_a_worker_has_it(runtime):
    queue = f"ip-unregistered-{uuid.uuid4().hex[:8]}"
    eid = f"ip-unregistered-{uuid.uuid4().hex[:8]}"
    async with runtime(FLOWS, task_queue=queue) as client:  # registers no policy
        execution = flow.create_execution(
            client=client,
            execution_id=eid,
            auto_close=False,
            intervention_mode="auto",
            intervention_policy=pick_last,
        )
        await execution.async_start("x")
        await execution.async_intervene({"p": 1})
        resume = asyncio.ensure_future(execution.async_continue_with("gate", "go"))
        message = await _workflow_task_failure(client, eid)
        assert f"intervention policy '{__name__}.pick_last'" in message
        assert "unknown to this worker" in message
        assert "TriggerFlowPlugin(intervention_policies=[...])" in message
        assert not resume.done()
    # A worker that has it takes over: the execution goes on, nothing lost.
    async with start_local_runtime(
        FLOWS, task_queue=queue, client=client, intervention_policies=[pick_last]
    ) as fixed:
        handle = flow.get_execution(client=fixed, execution_id=eid)
        await asyncio.wait_for(resume, 60)
        state = await handle.async_get_state()
        await handle.async_close()
    assert state["b_seen"] == [{"p": 1}]


async def _workflow_task_failure(client: Any, workflow_id: str) -> str:
    """The message of the first workflow task failure of ``workflow_id`` (waits for it)."""
    for _ in range(300):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes.failure.message
        await asyncio.sleep(0.1)
    raise AssertionError("no workflow task failure")
