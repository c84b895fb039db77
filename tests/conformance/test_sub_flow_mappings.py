"""Sub-flow mappings: to_sub_flow(capture=, write_back=) takes Agently's specs and applies
them with Agently's results.

Native recording: native/sub_flow_mappings.py (agently 4.1.4.10) ->
native/sub_flow_mappings.json. The same flows run here, each as a parent workflow with a
child workflow: nested and dotted paths into the child's input, runtime_data and resources,
write-back into the value and the parent's runtime_data, ``$final_result`` looked up first,
``None`` defaults, an empty capture, a missing path (Agently's KeyError), and the checks
of malformed specs with Agently's error types and messages.

Deviation (docs/triggerflow-on-temporal.md): ``flow_data`` scopes are refused when the flow
is built (flow_data is worker-local and not durable; natively they read and write the flow
objects' shared dicts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from triggerflow_temporal import FlowDefinitionError, TriggerFlow

NATIVE = json.loads(
    (Path(__file__).parent / "native" / "sub_flow_mappings.json").read_text(encoding="utf-8")
)


# --- child flows (as the native script) ----------------------------------------------------
async def sm_child_work(data):
    await data.async_set_state("seen_input", data.input)
    await data.async_set_state("seen_seed", data.get_state("seed"))
    await data.async_set_state("seen_deep", data.get_state("deep"))
    await data.async_set_state("total", 40 + 2)
    await data.async_set_state("extra", {"b": 2})
    return "child-return"


async def sm_child_final(data):
    await data.async_set_state("answer", "from-state")
    data.set_result({"answer": "from-final", "only_final": 1})


async def sm_child_resources(data):
    await data.async_set_state("limit", data.require_resource("limit"))
    await data.async_set_state("store", data.require_resource("store"))


# --- parent chunks -------------------------------------------------------------------------
async def sm_prepare(data):
    await data.async_set_state("seed_parent", {"n": 2})
    await data.async_set_state("merged", {"a": 1})
    return data.input


async def sm_after(data):
    await data.async_set_state("after", data.input)


child = TriggerFlow(name="sm-child")
child.to(sm_child_work)
final_child = TriggerFlow(name="sm-final-child")
final_child.to(sm_child_final)
resources_child = TriggerFlow(name="sm-resources-child")
resources_child.to(sm_child_resources)

nested = TriggerFlow(name="sm-nested")
nested.to(sm_prepare).to_sub_flow(
    child,
    capture={
        "input": {"doc.id": "value.id", "doc.all": "value"},
        "runtime_data": {"seed": "runtime_data.seed_parent", "deep.tag": "value.tag"},
    },
    write_back={
        "value": {"out.total": "result.total", "out.input": "result.seen_input"},
        "runtime_data": {"child_total": "result.total", "merged": "result.extra"},
    },
).to(sm_after)

final = TriggerFlow(name="sm-final")
final.to_sub_flow(
    final_child,
    capture={"input": "value.payload"},
    write_back={"value": "result.answer", "runtime_data": {"only": "result.only_final"}},
).to(sm_after)

passthrough = TriggerFlow(name="sm-passthrough")
passthrough.to_sub_flow(
    child, capture={}, write_back={"runtime_data": {"child_got": "result.seen_input"}}
).to(sm_after)

default = TriggerFlow(name="sm-default")
default.to_sub_flow(child, capture=None, write_back=None).to(sm_after)

missing = TriggerFlow(name="sm-missing")
missing.to_sub_flow(child, capture={"input": "value.missing"}).to(sm_after)

resources = TriggerFlow(name="sm-resources")
resources.to_sub_flow(
    resources_child,
    capture={"resources": {"limit": "value.limit", "store": "resources.db"}},
    write_back={"value": {"limit": "result.limit", "store": "result.store"}},
).to(sm_after)

CHILDREN = [child, final_child, resources_child]
PARENTS = [nested, final, passthrough, default, missing, resources]
FLOWS = [*CHILDREN, *PARENTS]

# (parent, start value, execution runtime resources) as the native script runs them.
CASES: dict[str, tuple[TriggerFlow, Any, dict[str, Any]]] = {
    "nested": (nested, {"id": 7, "tag": "t"}, {}),
    "final_result": (final, {"payload": {"q": 1}}, {}),
    "passthrough": (passthrough, "parent-value", {}),
    "default": (default, "plain", {}),
    "missing": (missing, {"present": 1}, {}),
    "resources": (resources, {"limit": 5}, {"db": "db-1"}),
}


async def run_case(flow: TriggerFlow, value: Any, resources: dict[str, Any], **kw: Any) -> Any:
    execution = flow.create_execution(auto_close=False, runtime_resources=resources, **kw)
    try:
        await execution.async_start(value)
    except Exception as error:  # the chunk's error type, rebuilt by the client
        await execution.async_close()
        return {"error": [type(error).__name__, str(error)]}
    return await execution.async_close()


async def test_sub_flow_mappings_have_native_results(runtime):
    got: dict[str, Any] = {}
    async with runtime(FLOWS):
        for label, (flow, value, resources_) in CASES.items():
            got[label] = await run_case(flow, value, resources_)
    error = got.pop("missing")["error"]
    expected = {k: v for k, v in NATIVE.items() if k not in ("invalid", "missing")}
    assert got == expected
    # The client rebuilds the KeyError with the text the workflow recorded, Agently's.
    native_type, native_text = NATIVE["missing"]["error"]
    assert error[0] == native_type
    assert native_text.strip('"') in error[1]


# Every malformed spec of the native script, with Agently's error type and message.
INVALID = {
    "spec_not_mapping": ("capture", "value"),
    "unknown_target_scope": ("capture", {"state": {"a": "value"}}),
    "string_for_runtime_data": ("capture", {"runtime_data": "value"}),
    "binding_not_mapping": ("capture", {"input": 3}),
    "source_not_string": ("capture", {"runtime_data": {"a": 1}}),
    "unknown_source_scope": ("capture", {"input": "state.x"}),
    "empty_source": ("capture", {"input": ""}),
    "bad_source_segment": ("capture", {"input": "value.a-b"}),
    "bad_target_segment": ("capture", {"runtime_data": {"a b": "value"}}),
    "empty_target": ("capture", {"runtime_data": {"": "value"}}),
    "target_conflict": ("capture", {"runtime_data": {"a": "value", "a.b": "value"}}),
    "write_back_source_scope": ("write_back", {"value": "value.x"}),
    "write_back_target_scope": ("write_back", {"input": "result"}),
    "write_back_string_runtime_data": ("write_back", {"runtime_data": "result"}),
    "write_back_resources_target": ("write_back", {"resources": {"a": "result"}}),
}


def test_malformed_specs_fail_as_natively():
    found = {}
    for label, (option, spec) in INVALID.items():
        invalid_child = TriggerFlow(name="sm-invalid-child")
        invalid_child.to(sm_child_work)
        parent = TriggerFlow(name="sm-invalid")
        try:
            parent.to_sub_flow(invalid_child, **{option: spec})
            found[label] = "accepted"
        except (TypeError, ValueError) as error:
            found[label] = [
                "ValueError" if isinstance(error, FlowDefinitionError) else type(error).__name__,
                str(error),
            ]
    assert found == NATIVE["invalid"]


@pytest.mark.parametrize(
    ("option", "spec"),
    [
        ("capture", {"flow_data": {"x": "value"}}),
        ("capture", {"input": "flow_data.x"}),
        ("write_back", {"flow_data": {"x": "result"}}),
    ],
)
def test_flow_data_scopes_are_refused(option, spec):
    # Deviation: natively accepted; here refused, with the reason and what to use instead.
    parent = TriggerFlow(name="sm-invalid")
    with pytest.raises(FlowDefinitionError, match="flow_data is worker-local"):
        parent.to_sub_flow(child, **{option: spec})


def test_specs_survive_the_flow_config_round_trip():
    config = nested.get_flow_config()
    op = next(o for o in config["operators"] if o["kind"] == "sub_flow")
    # Agently's nested form, as a native export writes it.
    assert op["options"]["capture"]["runtime_data"] == {
        "seed": "runtime_data.seed_parent",
        "deep.tag": "value.tag",
    }
    loaded = TriggerFlow(name="sm-loaded")
    for handler in (sm_prepare, sm_after, sm_child_work):
        loaded.register_chunk_handler(handler)
    loaded.load_flow_config(config)
    assert loaded.compile().blueprint_hash == nested.compile().blueprint_hash
    # The default keeps the flat form (and so the blueprint hash) earlier versions wrote.
    op = next(o for o in default.get_flow_config()["operators"] if o["kind"] == "sub_flow")
    assert (op["options"]["capture"], op["options"]["write_back"]) == (
        {"input": "value"},
        {"value": "result"},
    )


def test_the_earlier_flat_form_means_the_nested_one():
    from triggerflow_temporal.definition.sub_flow_bindings import compile_spec, import_spec

    flat = {"input.doc.id": "value.id", "runtime_data.seed": "runtime_data.seed_parent"}
    nested_spec = {
        "input": {"doc.id": "value.id"},
        "runtime_data": {"seed": "runtime_data.seed_parent"},
    }
    assert compile_spec(flat, mode="capture") == compile_spec(nested_spec, mode="capture")
    # An old export's flat spec loads in its flat form (the graph keeps its hash).
    assert import_spec(flat, mode="capture") == flat
    assert import_spec(None, mode="write_back") == {"value": "result"}
    assert import_spec({"input": "value"}, mode="capture") == {"input": "value"}
