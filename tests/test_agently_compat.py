"""A live agently.TriggerFlow served by TriggerFlowPlugin (the optional ``agently`` extra).

Each runtime test builds the flow with Agently's own builder (tests/agently_flows.py), runs
it natively in-process, then serves the same agently object with TriggerFlowPlugin on the
dev server and runs it through ``TriggerFlow.from_agently(agently_flow)``: the close
snapshots must be equal. Hash tests build one graph with both builders.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

agently = pytest.importorskip("agently")

from triggerflow_temporal import FlowDefinitionError, TriggerFlow, TriggerFlowPlugin  # noqa: E402

from . import agently_flows as flows  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _quiet_agently() -> None:
    """Agently logs interrupts to the console at WARNING; keep the test output readable."""
    from agently.base import event_center

    for hooker in ("RuntimeConsoleSinkHooker", "RuntimeStorageSinkHooker"):
        try:
            event_center.unregister_hooker_plugin(hooker)
        except Exception:  # already unregistered
            pass


class MemorySnapshotStore:
    """The snapshot-store port native pause_for needs (kept in memory, no files)."""

    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}

    async def put_snapshot(self, run_id, state, *, step_id=None, **_: Any):
        self.saved[run_id] = json.loads(json.dumps(state, default=str))
        return {"run_id": run_id, "step_id": step_id}

    async def get_snapshot(self, run_id):
        return self.saved.get(run_id)

    async def delete_snapshot(self, run_id):
        self.saved.pop(run_id, None)
        return {"run_id": run_id, "deleted": True}


async def run_native(flow, value, *, emits=(), resume=None):
    """Run an agently flow in-process; return its close snapshot as JSON data."""
    execution = flow.create_execution(
        record_store=False,
        runtime_resources={"snapshot_store": MemorySnapshotStore()},
        auto_close=False,
    )
    await execution.async_start(value)
    for event, event_value in emits:
        await execution.async_emit(event, event_value)
    if resume is not None:
        interrupt_id = next(iter(execution.get_pending_interrupts()))
        await execution.async_continue_with(interrupt_id, resume)
    return json.loads(json.dumps(await execution.async_close()))


async def run_temporal(flow, value, *, emits=(), resume=None):
    """Run a converted flow on Temporal; return its close snapshot."""
    execution = flow.create_execution(auto_close=False)
    await execution.async_start(value)
    for event, event_value in emits:
        await execution.async_emit(event, event_value)
    if resume is not None:
        pending = await execution.async_get_pending_interrupts()
        await execution.async_continue_with(next(iter(pending)), resume)
    return json.loads(json.dumps(await execution.async_close()))


# ------------------------------------------------------------ served by the plugin
async def test_native_flow_runs_to_the_native_close_snapshot(runtime):
    agently_flow = flows.build_order(agently.TriggerFlow)
    rush = {"id": "O-1", "rush": True, "lines": [1, 2, 3]}
    standard = {"id": "O-2", "lines": [4]}
    native = [await run_native(agently_flow, rush), await run_native(agently_flow, standard)]
    assert native[0] == {"order_id": "O-1", "route": "rush", "quote": {"total": 18, "count": 3}}

    async with runtime([agently_flow]):
        flow = TriggerFlow.from_agently(agently_flow)
        got = [await run_temporal(flow, rush), await run_temporal(flow, standard)]
        hidden = await flow.async_start(rush)  # the hidden-execution sugar too
    assert got == native
    assert hidden == native[0]


async def test_pause_for_and_continue_with(runtime):
    agently_flow = flows.build_approval(agently.TriggerFlow)
    native = await run_native(agently_flow, "T-1", resume={"approved": True})
    assert native["commit_is_resume"] is True

    async with runtime([agently_flow]):
        flow = TriggerFlow.from_agently(agently_flow)
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("T-1")
        pending = await execution.async_get_pending_interrupts()
        (interrupt,) = pending.values()
        assert interrupt["type"] == "approval"
        assert interrupt["payload"] == {"ticket": "T-1"}
        assert await execution.async_get_status() == "waiting"
        await execution.async_continue_with(next(iter(pending)), {"approved": True})
        got = json.loads(json.dumps(await execution.async_close()))
    assert got == native


async def test_sub_flow_collect_when_and_hit_all(runtime):
    parent = flows.build_parent(agently.TriggerFlow)
    joins = flows.build_joins(agently.TriggerFlow)
    emits = [("poke", 5), ("a", 3)]
    native = [await run_native(parent, 4), await run_native(joins, 1, emits=emits)]
    assert native[1] == {
        "quote": {"left": "L", "right": "R"},
        "child_value": 10,
        "hits": ["L", "R"],
    }

    async with runtime([parent, joins]):
        got = [
            await run_temporal(TriggerFlow.from_agently(parent), 4),
            await run_temporal(TriggerFlow.from_agently(joins), 1, emits=emits),
        ]
    assert got == native


# ----------------------------------------------------------------- conversion
def test_conversion_is_cached_per_agently_object_and_attached_to_the_plugin():
    agently_flow = flows.build_order(agently.TriggerFlow, name="agently-cache")
    plugin = TriggerFlowPlugin(flows=[agently_flow])
    converted = TriggerFlow.from_agently(agently_flow)
    # The plugin served this very object, so create_execution() finds the plugin's client.
    assert plugin.flows["agently-cache"] == [converted]
    assert converted.bound_plugin is plugin
    assert TriggerFlow.from_agently(agently_flow) is converted
    # Flow-level resources and skip_exceptions come along.
    assert converted.get_runtime_resource("rate") == 3
    assert converted.skip_exceptions is False
    skipping = agently.TriggerFlow(name="agently-skip", skip_exceptions=True)
    skipping.to(flows.total)
    assert TriggerFlow.from_agently(skipping).skip_exceptions is True
    # A changed graph converts again.
    agently_flow.when("extra").to(flows.total)
    again = TriggerFlow.from_agently(agently_flow)
    assert again is not converted
    assert again.blueprint_hash != converted.blueprint_hash


def test_cli_load_flow_returns_the_converted_flow(tmp_path, monkeypatch):
    """worker.py / `triggerflow-temporal start` load flows by import path."""
    from triggerflow_temporal.cli.config import load_flow

    (tmp_path / "agently_cli_flows.py").write_text(
        "import agently\n"
        "from tests.agently_flows import build_approval\n"
        "flow = build_approval(agently.TriggerFlow, name='agently-cli')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_flow("agently_cli_flows:flow")
    assert isinstance(loaded, TriggerFlow)
    assert loaded is TriggerFlow.from_agently(sys.modules["agently_cli_flows"].flow)


@pytest.mark.parametrize(
    "build",
    [
        flows.build_order,
        flows.build_approval,
        flows.build_parent,
        flows.build_joins,
    ],
    ids=lambda build: build.__name__,
)
def test_blueprint_hash_equals_the_same_graph_built_here(build):
    converted = TriggerFlow.from_agently(build(agently.TriggerFlow))
    hand_written = build(TriggerFlow)
    assert converted.blueprint_hash == hand_written.blueprint_hash
    assert converted.get_flow_config() == hand_written.get_flow_config()


def test_blueprint_hash_survives_moving_the_handlers():
    from tests.flows import moved_a, moved_b

    def build(module):
        flow = agently.TriggerFlow(name="moved")
        flow.to(module.first).if_condition(module.is_big).to(module.second).end_condition()
        return flow

    a, b = build(moved_a), build(moved_b)
    # Natively the ids embed each handler's file and line...
    assert a.get_flow_config()["operators"][0]["id"] != b.get_flow_config()["operators"][0]["id"]
    # ...the converted flows have ids from structure and names only.
    assert TriggerFlow.from_agently(a).blueprint_hash == TriggerFlow.from_agently(b).blueprint_hash


# ------------------------------------------------------------------ errors
def test_lambda_chunk_fails_naming_the_chunk_and_the_fix():
    agently_flow = flows.build_lambda(agently.TriggerFlow)
    with pytest.raises(FlowDefinitionError) as error:
        TriggerFlowPlugin(flows=[agently_flow])
    message = str(error.value)
    assert "chunk '<lambda>' after chunk 'normalize_order' is a lambda" in message
    assert "define it with `def`" in message
    assert "name='step'" in message


def test_lambda_condition_fails():
    agently_flow = agently.TriggerFlow(name="agently-lambda-condition")
    agently_flow.if_condition(lambda data: data.value > 1).to(flows.total).end_condition()
    with pytest.raises(FlowDefinitionError, match="condition '<lambda>'.* is a lambda"):
        TriggerFlow.from_agently(agently_flow)


def test_closures_with_one_name_fail_naming_both():
    agently_flow = flows.build_clash(agently.TriggerFlow)
    with pytest.raises(FlowDefinitionError) as error:
        TriggerFlow.from_agently(agently_flow)
    message = str(error.value)
    assert "chunk 'step' after chunk 'step' is a second, different function named 'step'" in message
    assert "the first is tests.agently_flows.make_step.<locals>.step" in message
    assert "flow.to(fn, name='step_2')" in message


def test_condition_without_a_name_fails():
    agently_flow = flows.build_partial_condition(agently.TriggerFlow)
    with pytest.raises(FlowDefinitionError, match="a condition at the start is a callable without"):
        TriggerFlow.from_agently(agently_flow)


def test_main_module_handler_fails(monkeypatch):
    async def in_main(data):
        return data.input

    monkeypatch.setattr(in_main, "__module__", "__main__")
    agently_flow = agently.TriggerFlow(name="agently-main")
    agently_flow.to(in_main)
    with pytest.raises(FlowDefinitionError, match="'in_main'.*__main__"):
        TriggerFlowPlugin(flows=[agently_flow])


def test_not_an_agently_flow():
    with pytest.raises(FlowDefinitionError, match="takes an agently.TriggerFlow, got dict"):
        TriggerFlow.from_agently({"operators": []})


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "agently", None)  # import agently -> ImportError
    with pytest.raises(FlowDefinitionError, match=r'pip install "triggerflow-temporal\[agently\]"'):
        TriggerFlow.from_agently(object())


def test_the_contract_is_converted_and_checked():
    agently_flow = agently.TriggerFlow(name="agently-contract")
    agently_flow.set_contract(initial_input=int, meta={"owner": "ops"})
    agently_flow.to(flows.total)
    converted = TriggerFlow.from_agently(agently_flow)
    assert converted.get_contract().initial_input is int
    assert converted.get_contract_metadata() == agently_flow.get_contract_metadata()
    assert converted.contract.check("initial_input", "7") == 7
    with pytest.raises(ValueError, match="TriggerFlow contract validation failed"):
        converted.contract.check("initial_input", "x")
    # A new contract on the agently flow is a new conversion.
    agently_flow.set_contract(initial_input=str)
    assert TriggerFlow.from_agently(agently_flow).get_contract().initial_input is str


async def test_a_raw_agently_export_loads_and_runs_as_natively(runtime):
    # Without from_agently: Agently's own trigger_flow/v1 export, loaded by name. Chunks
    # after a case listen to Agently's "-Branch" events and sub-flow bindings use its
    # nested/None form; both must route as natively.
    order = flows.build_order(agently.TriggerFlow, name="agently-raw-order")
    parent = flows.build_parent(agently.TriggerFlow, name="agently-raw-parent")
    rush = {"id": "O-7", "rush": True, "lines": [2, 5]}
    native = [await run_native(order, rush), await run_native(parent, 4)]
    handlers = {
        fn.__name__: fn
        for fn in (
            flows.normalize_order,
            flows.rush,
            flows.standard,
            flows.price_line,
            flows.total,
            flows.count,
            flows.store_quote,
            flows.double,
            flows.remember,
            flows.prepare,
            flows.finish,
        )
    }
    loaded = [
        TriggerFlow.from_flow_config(
            source.get_flow_config(), handlers=handlers, conditions={"is_rush": flows.is_rush}
        )
        for source in (order, parent)
    ]
    loaded[0].update_runtime_resources(flows.RATE)
    async with runtime(loaded):
        got = [await run_temporal(loaded[0], rush), await run_temporal(loaded[1], 4)]
    assert got == native
