"""Definition API, compiler and flow config: pure Python, no server."""

from __future__ import annotations

import json

import pytest

from tests.flows import moved_a, moved_b
from triggerflow_temporal import FlowDefinitionError, FlowSpec, TriggerFlow, TriggerFlowPlugin


def build(module) -> TriggerFlow:
    flow = TriggerFlow(name="moved")
    flow.to(module.first).if_condition(module.is_big).to(module.second).end_condition()
    return flow


def test_same_definition_built_twice_has_same_hash_and_ids():
    a, b = build(moved_a), build(moved_a)
    assert a.compile().blueprint_hash == b.compile().blueprint_hash
    assert list(a.graph.operators) == list(b.graph.operators)


def test_hash_survives_moving_handlers_to_another_module():
    assert build(moved_a).blueprint_hash == build(moved_b).blueprint_hash


def test_hash_ignores_flow_name_but_not_structure():
    a = build(moved_a)
    renamed = build(moved_a)
    renamed.name = "other-name"
    assert a.blueprint_hash == renamed.blueprint_hash
    longer = build(moved_a)
    longer.to(moved_a.second)
    assert longer.blueprint_hash != a.blueprint_hash


def test_spec_is_json_round_trippable_and_hash_checked():
    spec = build(moved_a).compile()
    data = json.loads(json.dumps(spec.to_json()))
    assert FlowSpec.from_json(data) == spec
    data["operators"][0]["name"] = "tampered"
    with pytest.raises(ValueError, match="hash mismatch"):
        FlowSpec.from_json(data)


def test_collect_ids_are_stable():
    def make():
        flow = TriggerFlow(name="c")
        flow.to(moved_a.first).collect("pair", "l")
        flow.to(moved_b.second).collect("pair", "r")
        return flow

    assert make().blueprint_hash == make().blueprint_hash


def test_lambda_chunk_is_rejected_naming_the_fix():
    flow = TriggerFlow(name="lam")
    flow.to(lambda d: d.input)
    with pytest.raises(FlowDefinitionError, match="lambda.*name="):
        flow.compile()
    with pytest.raises(ValueError, match="^Cannot export TriggerFlow config because operator "):
        flow.get_flow_config()


def test_lambda_condition_is_rejected():
    flow = TriggerFlow(name="lamcond")
    flow.if_condition(lambda d: True).to(moved_a.first).end_condition()
    with pytest.raises(FlowDefinitionError, match="lambda as a match/if condition"):
        flow.compile()


def test_clashing_closure_names_are_rejected_naming_the_chunk():
    def factory(n):
        async def step(data):
            return n

        return step

    flow = TriggerFlow(name="clash")
    flow.to(factory(1))
    with pytest.raises(FlowDefinitionError, match="chunk name 'step' is already bound"):
        flow.to(factory(2))
    flow.to(factory(3), name="step_3")  # an explicit name is the documented fix
    assert "step_3" in flow.chunks


def test_main_module_handler_is_rejected():
    async def handler(data):
        return data.input

    handler.__module__ = "__main__"
    flow = TriggerFlow(name="main-mod")
    flow.to(handler)
    with pytest.raises(FlowDefinitionError, match="defined in __main__.*worker"):
        TriggerFlowPlugin([flow])


def test_bad_options_are_rejected():
    flow = TriggerFlow(name="opts")
    with pytest.raises(FlowDefinitionError, match="execute_in='thread'"):
        flow.chunk(moved_a.first, execute_in="thread")
    with pytest.raises(FlowDefinitionError, match="unknown activity option"):
        flow.chunk(moved_a.first, start_to_close=5)
    with pytest.raises(FlowDefinitionError, match="concurrency"):
        flow.batch(moved_a.first, concurrency=-1)
    with pytest.raises(FlowDefinitionError, match=r"\.end_for_each\(\) without \.for_each"):
        flow.to(moved_a.first).end_for_each()
    with pytest.raises(FlowDefinitionError, match="no chunk named 'missing'"):
        flow.to("missing")


def test_flow_config_round_trip_keeps_hash_and_needs_registered_handlers():
    source = build(moved_a)
    config = source.get_flow_config()
    assert config["version"] == "trigger_flow/v1"
    assert json.loads(json.dumps(config)) == config
    with pytest.raises(
        FlowDefinitionError,
        match="Cannot load TriggerFlow config because chunk handler 'first' is not registered.",
    ):
        TriggerFlow(name="empty").load_flow_config(config)
    loaded = TriggerFlow.from_flow_config(
        config,
        handlers={"first": moved_b.first, "second": moved_b.second},
        conditions={"is_big": moved_b.is_big},
    )
    assert loaded.name == "moved"
    assert loaded.blueprint_hash == source.blueprint_hash
    missing_condition = TriggerFlow(name="x")
    missing_condition.register_chunk_handler(moved_a.first)
    missing_condition.register_chunk_handler(moved_a.second)
    with pytest.raises(FlowDefinitionError, match="condition handler 'is_big' is not registered"):
        missing_condition.load_flow_config(config)


def test_yaml_and_json_flow_round_trip():
    source = build(moved_a)
    for text, loader in (
        (source.get_json_flow(), "load_json_flow"),
        (source.get_yaml_flow(), "load_yaml_flow"),
    ):
        flow = TriggerFlow()
        flow.register_chunk_handler(moved_a.first)
        flow.register_chunk_handler(moved_a.second)
        flow.register_condition_handler(moved_a.is_big)
        getattr(flow, loader)(text)
        assert flow.blueprint_hash == source.blueprint_hash


def test_blueprint_object_round_trip_keeps_own_name():
    source = build(moved_a)
    restored = TriggerFlow(name="restored").load_blueprint(source.save_blueprint())
    assert restored.name == "restored"
    assert restored.blueprint_hash == source.blueprint_hash


def test_mermaid_shows_chunks_and_edges():
    text = build(moved_a).to_mermaid()
    assert text.startswith("flowchart TD")
    assert '["first"]' in text and '["second"]' in text
    assert "START -->" in text


def test_plugin_rejects_bad_arguments():
    with pytest.raises(FlowDefinitionError, match="list of flows"):
        TriggerFlowPlugin(build(moved_a))  # type: ignore[arg-type]
    with pytest.raises(FlowDefinitionError, match="at least one flow"):
        TriggerFlowPlugin([])
    with pytest.raises(FlowDefinitionError, match="unknown key"):
        TriggerFlowPlugin([build(moved_a)], default_activity_config={"bogus": 1})


def test_flow_workflows_run_outside_the_workflow_sandbox():
    # The sandbox re-imported modules per instance and restricted calls for nothing here
    # (handlers are the worker's own functions, the interpreter is passed through): ~15 %
    # of a worker's CPU. Determinism is proven by replaying histories instead.
    from temporalio.workflow import _Definition

    from triggerflow_temporal.interpreter.workflow import TriggerFlowWorkflow

    plugin = TriggerFlowPlugin([build(moved_a)])
    flows = [cls for cls in plugin.workflow_classes if issubclass(cls, TriggerFlowWorkflow)]
    definitions = [_Definition.must_from_class(cls) for cls in flows]
    assert [d.name for d in definitions] == ["moved"]
    assert all(d.sandboxed is False for d in definitions)


def test_create_execution_without_client_says_how_to_attach():
    flow = build(moved_a)
    execution = flow.create_execution()
    with pytest.raises(Exception, match="attach TriggerFlowPlugin"):
        _ = execution.handle
    with pytest.raises(TypeError, match="record_store"):
        flow.create_execution(record_store=False)
    with pytest.raises(TypeError, match="JSON-ready"):
        flow.create_execution(runtime_resources={"db": object()})


def test_flow_config_operator_kinds_are_the_ones_the_engine_runs():
    # The config loader refuses kinds outside OPERATOR_KINDS; a kind the engine gained but
    # the loader did not would make valid exported configs unloadable.
    from triggerflow_temporal.definition.flow_config import OPERATOR_KINDS
    from triggerflow_temporal.interpreter.legacy_engine import Engine

    engine_kinds = {name[len("_op_") :] for name in dir(Engine) if name.startswith("_op_")}
    assert OPERATOR_KINDS == engine_kinds | {"match_case"}
