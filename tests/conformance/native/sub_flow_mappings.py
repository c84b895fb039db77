"""Native recording: what to_sub_flow(capture=, write_back=) accepts and what it does.

Run with agently==4.1.4.10: ``python sub_flow_mappings.py > sub_flow_mappings.json``.
tests/conformance/test_sub_flow_mappings.py runs the same flows on Temporal.
"""

from _common import make_execution, out, run
from agently import TriggerFlow


# --- child flows -------------------------------------------------------------------------
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


# --- parent chunks -----------------------------------------------------------------------
async def sm_prepare(data):
    await data.async_set_state("seed_parent", {"n": 2})
    await data.async_set_state("merged", {"a": 1})
    return data.input


async def sm_after(data):
    await data.async_set_state("after", data.input)


def nested_flows():
    child = TriggerFlow(name="sm-child")
    child.to(sm_child_work)
    parent = TriggerFlow(name="sm-nested")
    parent.to(sm_prepare).to_sub_flow(
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
    return parent


def final_flows():
    child = TriggerFlow(name="sm-final-child")
    child.to(sm_child_final)
    parent = TriggerFlow(name="sm-final")
    parent.to_sub_flow(
        child,
        capture={"input": "value.payload"},
        write_back={"value": "result.answer", "runtime_data": {"only": "result.only_final"}},
    ).to(sm_after)
    return parent


def passthrough_flows():
    child = TriggerFlow(name="sm-child")
    child.to(sm_child_work)
    parent = TriggerFlow(name="sm-passthrough")
    parent.to_sub_flow(
        child, capture={}, write_back={"runtime_data": {"child_got": "result.seen_input"}}
    ).to(sm_after)
    return parent


def default_flows():
    child = TriggerFlow(name="sm-child")
    child.to(sm_child_work)
    parent = TriggerFlow(name="sm-default")
    parent.to_sub_flow(child, capture=None, write_back=None).to(sm_after)
    return parent


def missing_flows():
    child = TriggerFlow(name="sm-child")
    child.to(sm_child_work)
    parent = TriggerFlow(name="sm-missing")
    parent.to_sub_flow(child, capture={"input": "value.missing"}).to(sm_after)
    return parent


def resources_flows():
    child = TriggerFlow(name="sm-resources-child")
    child.to(sm_child_resources)
    parent = TriggerFlow(name="sm-resources")
    parent.to_sub_flow(
        child,
        capture={"resources": {"limit": "value.limit", "store": "resources.db"}},
        write_back={"value": {"limit": "result.limit", "store": "result.store"}},
    ).to(sm_after)
    return parent


async def run_flow(flow, value, **kwargs):
    execution = make_execution(flow, auto_close=False, **kwargs)
    try:
        await execution.async_start(value)
    except Exception as error:
        return {"error": [type(error).__name__, str(error)]}
    return await execution.async_close()


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


def invalid_errors():
    found = {}
    for label, (option, spec) in INVALID.items():
        child = TriggerFlow(name="sm-invalid-child")
        child.to(sm_child_work)
        parent = TriggerFlow(name="sm-invalid")
        try:
            parent.to_sub_flow(child, **{option: spec})
            parent.create_execution(record_store=False)
            found[label] = "accepted"
        except Exception as error:
            found[label] = [type(error).__name__, str(error)]
    return found


async def main():
    out(
        {
            "nested": await run_flow(nested_flows(), {"id": 7, "tag": "t"}),
            "final_result": await run_flow(final_flows(), {"payload": {"q": 1}}),
            "passthrough": await run_flow(passthrough_flows(), "parent-value"),
            "default": await run_flow(default_flows(), "plain"),
            "missing": await run_flow(missing_flows(), {"present": 1}),
            "resources": await run_flow(
                resources_flows(), {"limit": 5}, runtime_resources={"db": "db-1"}
            ),
            "invalid": invalid_errors(),
        }
    )


if __name__ == "__main__":
    run(main)
