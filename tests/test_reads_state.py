"""State sent as the keys a chunk reads (issue 18): ``flow.chunk(fn, reads_state=[...])``.

Only the declared state paths travel in a chunk's input (each ActivityTaskScheduled event
carried the whole state); reading another key raises ``StateNotSentError``; writes land in
the full state as before. Flows without the option keep their spec and blueprint hash.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from triggerflow_temporal import (
    ChunkData,
    FlowDefinitionError,
    FlowSpec,
    StateNotSentError,
    TriggerFlow,
)
from triggerflow_temporal.spec.chunk_io import ChunkInput
from triggerflow_temporal.spec.flow_spec import chunk_option_problems
from triggerflow_temporal.spec.state import path_covered, select_paths

CUSTOMER = {"name": "Ada", "tier": "gold"}
ORDER = {"total": 3, "items": ["a", "b"]}
BIG = "x" * 2000


# ------------------------------------------------------------------------ handlers
async def seed(data):
    await data.async_set_state("customer", CUSTOMER)
    await data.async_set_state("order", ORDER)
    await data.async_set_state("big", BIG)
    return data.value


def _refused(read: Any) -> str | None:
    """The StateNotSentError message ``read()`` raises, or None when it reads."""
    try:
        read()
    except StateNotSentError as error:
        return str(error)
    return None


def _probe(data: Any) -> dict[str, Any]:
    """What a chunk declared with reads_state sees; written to state ``seen.<chunk>``."""
    seen: dict[str, Any] = {
        "order.total": data.get_state("order.total"),
        "customer.name": data.state.get("customer.name"),
        "missing.declared": data.get_state("customer.nickname", "none"),
        "big_in_state": "big" in data.state,
        "keys": list(data.state),
        "refused": {
            "big": _refused(lambda: data.get_state("big")),
            "order": _refused(lambda: data.state["order"]),
            "order.items": _refused(lambda: data.state.get("order.items")),
            "whole": _refused(lambda: data.get_state()),
        },
    }
    # A key this run writes is readable; an append to an unsent list is not.
    data.set_state(f"note.{data.chunk_name}", {"n": 1})
    seen["note"] = data.get_state(f"note.{data.chunk_name}.n")
    data.append_state("log", data.chunk_name)
    seen["log_refused"] = _refused(lambda: data.get_state("log")) is not None
    data.set_state(f"seen.{data.chunk_name}", seen)
    return data.value


async def reader(data):
    return _probe(data)


async def local_reader(data):
    return _probe(data)


def inline_reader(data):
    return _probe(data)


async def whole(data):
    # No reads_state: the whole state, as always.
    await data.async_set_state("whole_keys", sorted(data.get_state()))
    return data.value


async def reads_undeclared(data):
    return data.get_state("b")


def make_flow() -> TriggerFlow:
    flow = TriggerFlow(name="reads-state")
    flow.to(seed).to(flow.chunk(reader, reads_state=["customer", "order.total"])).to(
        flow.chunk(
            local_reader,
            execute_in="local_activity",
            reads_state=["customer", "order.total"],
        )
    ).to(
        flow.chunk(inline_reader, execute_in="workflow", reads_state=["customer", "order.total"])
    ).to(whole)
    return flow


def make_undeclared_flow() -> TriggerFlow:
    flow = TriggerFlow(name="reads-state-undeclared")
    flow.to(flow.chunk(reads_undeclared, reads_state=["a"]))
    return flow


flow = make_flow()
undeclared_flow = make_undeclared_flow()


# ---------------------------------------------------------------------- definition
def test_declarations_are_checked_when_the_chunk_is_defined():
    f = TriggerFlow(name="rs-compile")
    for bad in ("customer", b"x", {"a"}, {"a": 1}, 3):
        with pytest.raises(TypeError, match="reads_state must be a list") as info:
            f.chunk(seed, reads_state=bad)  # pyright: ignore[reportArgumentType]
        assert "Chunk 'seed'" in str(info.value)
    with pytest.raises(TypeError, match="every entry must be a string"):
        f.chunk(seed, reads_state=["a", 1])  # pyright: ignore[reportArgumentType]
    for bad in ([""], ["a..b"], [".a"], ["a."]):
        with pytest.raises(FlowDefinitionError, match="non-empty key"):
            f.chunk(seed, reads_state=bad)
    with pytest.raises(FlowDefinitionError, match="Chunk 'decorated'"):

        @f.chunk(reads_state=[""])
        async def decorated(data):  # pragma: no cover - never defined
            return data

    chunk = f.chunk(seed, reads_state=("customer", "customer", "order.total"))
    assert chunk.reads_state == ["customer", "order.total"]  # a list, without duplicates
    with pytest.raises(TypeError, match="Chunk 'seed'"):
        chunk.options(reads_state="customer")  # pyright: ignore[reportArgumentType]
    assert chunk.reads_state == ["customer", "order.total"]  # unchanged by a refused call
    assert f.chunk(seed, reads_state=[]).reads_state == []  # the existing chunk, replaced
    assert TriggerFlow(name="rs-compile").chunk(seed).reads_state is None


def test_options_changes_the_declaration_and_the_compiled_spec():
    f = TriggerFlow(name="rs-compile")
    chunk = f.chunk(seed)
    f.to("seed")
    assert "reads_state" not in f.compile().chunks["seed"]
    chunk.options(reads_state=["order.total"])
    assert f.compile().chunks["seed"]["reads_state"] == ["order.total"]  # cache invalidated
    chunk.options(summary="s")  # left out: kept
    assert f.compile().chunks["seed"]["reads_state"] == ["order.total"]
    assert chunk.execute_in == "activity"
    chunk.options(reads_state=None)
    assert "reads_state" not in f.compile().chunks["seed"]


def test_compile_adds_the_key_only_when_declared_and_other_hashes_stay():
    def build(reads: list[str] | None, *, declare: bool) -> TriggerFlow:
        f = TriggerFlow(name="rs-compile")
        first = f.chunk(reader, reads_state=reads) if declare else f.chunk(reader)
        f.to(seed).to(first).to(whole)
        return f

    plain = build(None, declare=False).compile()
    explicit_none = build(None, declare=True).compile()
    declared = build(["customer"], declare=True).compile()
    none_sent = build([], declare=True).compile()
    assert plain.chunks == {
        "seed": {"execute_in": "activity", "activity": {}},
        "reader": {"execute_in": "activity", "activity": {}},
        "whole": {"execute_in": "activity", "activity": {}},
    }
    assert explicit_none.blueprint_hash == plain.blueprint_hash
    assert explicit_none.to_packed() == plain.to_packed()
    assert declared.chunks["reader"] == {
        "execute_in": "activity",
        "activity": {},
        "reads_state": ["customer"],
    }
    assert none_sent.chunks["reader"]["reads_state"] == []
    assert len({plain.blueprint_hash, declared.blueprint_hash, none_sent.blueprint_hash}) == 3
    # The packed spec keeps the option (a chunk in another shape is kept verbatim).
    for spec in (declared, none_sent):
        assert FlowSpec.from_json(spec.to_packed()) == spec
        assert FlowSpec.from_json(json.loads(json.dumps(spec.to_packed()))) == spec
    assert chunk_option_problems(declared) == []


def test_a_malformed_declaration_in_an_outside_spec_is_reported():
    spec = make_flow().compile()
    data = json.loads(json.dumps(spec.to_json()))  # to_json shares the spec's dicts
    data["chunks"]["reader"]["reads_state"] = "customer"
    data.pop("blueprint_hash")
    data["blueprint_hash"] = FlowSpec.hash_of(data["operators"], data["chunks"], {})
    problems = chunk_option_problems(FlowSpec.from_json(data))
    assert problems == [
        "chunk 'reader': reads_state must be a list of state keys, got str 'customer'"
    ]


def _with_handlers(target: TriggerFlow) -> TriggerFlow:
    for handler in (seed, reader, local_reader, inline_reader, whole):
        target.register_chunk_handler(handler)
    return target


def test_the_flow_config_round_trips_the_declaration():
    source = make_flow()
    config = source.get_flow_config()
    options = {
        op["name"]: op["options"]["temporal"] for op in config["operators"] if op["kind"] == "chunk"
    }
    assert options["reader"]["reads_state"] == ["customer", "order.total"]
    assert "reads_state" not in options["seed"]  # left out when not declared
    loaded = _with_handlers(TriggerFlow(name="reads-state"))
    loaded.load_flow_config(config)
    assert loaded.chunks["reader"].reads_state == ["customer", "order.total"]
    assert loaded.chunks["seed"].reads_state is None
    assert loaded.blueprint_hash == source.blueprint_hash
    bad = json.loads(json.dumps(config))
    next(op for op in bad["operators"] if op["name"] == "reader")["options"]["temporal"][
        "reads_state"
    ] = 7
    again = _with_handlers(TriggerFlow(name="reads-state"))
    with pytest.raises(FlowDefinitionError, match="reads_state must be a list"):
        again.load_flow_config(bad)
    # A blueprint shares the chunk objects: the declaration goes along.
    restored = TriggerFlow(name="reads-state", blueprint=source.save_blueprint())
    assert restored.blueprint_hash == source.blueprint_hash


# --------------------------------------------------------------- pure state helpers
def test_select_paths_keeps_nesting_and_leaves_missing_paths_out():
    state = {"customer": CUSTOMER, "order": ORDER, "big": BIG, "n": None}
    assert select_paths(state, ["customer", "order.total"]) == {
        "customer": CUSTOMER,
        "order": {"total": 3},
    }
    assert select_paths(state, ["order.missing", "nope", "big.x", "n"]) == {"n": None}
    assert select_paths(state, []) == {}
    assert select_paths(state, ["order.total", "order"]) == {"order": ORDER}  # covered
    assert select_paths({"a.b": 1, "a": {"b": 2}}, ["a.b"]) == {"a.b": 1, "a": {"b": 2}}
    assert state["order"] == ORDER  # not mutated
    assert path_covered("order.total.net", ["order.total"])
    assert not path_covered("order", ["order.total"])
    assert not path_covered("order.totals", ["order.total"])


def _data(state: dict[str, Any], reads: list[str] | None, chunk: str = "c") -> ChunkData:
    return ChunkData(
        ChunkInput(flow="f", chunk=chunk, execution_id="e", run_id="r", state=state),
        reads_state=reads,
    )


def test_the_data_object_refuses_reads_the_declaration_does_not_cover():
    sent = select_paths(
        {"customer": CUSTOMER, "order": ORDER, "big": BIG}, ["customer", "order.total"]
    )
    data = _data(sent, ["customer", "order.total"])
    assert data.reads_state == ["customer", "order.total"]
    assert data.get_state("customer.tier") == "gold"
    assert data.state["order.total"] == 3
    assert data.get_state("customer.nickname", "?") == "?"  # declared, absent: the default
    with pytest.raises(StateNotSentError) as info:
        data.get_state("big", "default")
    error = info.value
    assert isinstance(error, KeyError)
    assert (error.chunk_name, error.key, error.reads_state) == (
        "c",
        "big",
        ["customer", "order.total"],
    )
    assert str(error) == (
        "Chunk 'c' of flow 'f' read state key 'big', which was not sent to it: it declares "
        "reads_state=['customer', 'order.total']. Add 'big' to reads_state of chunk 'c', or "
        "drop reads_state to send the whole state."
    )
    with pytest.raises(StateNotSentError, match="Add 'order' to reads_state"):
        data.state["order"]  # a parent of a declared path
    with pytest.raises(StateNotSentError, match="the whole state"):
        data.state.to_dict()
    with pytest.raises(StateNotSentError):
        data.get_result()
    assert "order.total" in data.state and "big" not in data.state and "order" not in data.state
    assert list(data.state) == ["customer", "order"]
    with pytest.raises(KeyError) as missing:
        data.state["customer.nickname"]
    assert not isinstance(missing.value, StateNotSentError)
    # Writes are recorded as always; what this run wrote or deleted is readable.
    data.set_state("big", "small")
    data.del_state("gone")
    data.set_state("fresh.a", 1)
    data.append_state("log", 1)
    data.append_state("customer.tags", "vip")  # under a declared path: known
    assert data.get_state("big") == "small"
    assert data.get_state("gone", "absent") == "absent"
    assert data.state["fresh.a"] == 1
    assert data.get_state("customer.tags") == ["vip"]
    with pytest.raises(StateNotSentError, match="'fresh'"):
        data.get_state("fresh")
    with pytest.raises(StateNotSentError, match="'log'"):
        data.get_state("log")
    assert list(data.state) == ["customer", "order", "big", "fresh"]
    assert [op[0] for op in data.to_output(None).ops] == ["set", "del", "set", "append", "append"]


def test_nothing_is_refused_without_a_declaration_or_when_the_state_does_not_match_it():
    state = {"customer": CUSTOMER, "big": BIG}
    assert _data(state, None).get_state() == state
    # The worker declares reads_state but was sent more (the execution's spec sends the
    # whole state): permissive, nothing is refused.
    data = _data(state, ["customer"])
    assert data.reads_state is None
    assert data.get_state("big") == BIG
    empty = _data({}, [])
    assert empty.reads_state == []
    with pytest.raises(StateNotSentError):
        empty.get_state("anything")


def test_the_registry_looks_up_the_declaration_permissively():
    from triggerflow_temporal import TriggerFlowPlugin

    plugin = TriggerFlowPlugin([flow])
    registry = plugin.registry
    assert registry.reads_state("reads-state", "reader") == ["customer", "order.total"]
    assert registry.reads_state("reads-state", "seed") is None
    assert registry.reads_state("reads-state", "nope") is None
    assert registry.reads_state("other-flow", "reader") is None
    assert registry.reads_state("reads-state", "reader", flow.blueprint_hash) == [
        "customer",
        "order.total",
    ]


# ----------------------------------------------------------------------- on Temporal
def _scheduled_inputs(history: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            found[attrs.activity_type.name] = json.loads(attrs.input.payloads[0].data)
    return found


async def test_a_chunk_is_sent_only_the_keys_it_reads(runtime):
    async with runtime([flow]) as client:
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("go")
        state = await execution.async_get_state()
        await execution.async_close()
        history = await client.get_workflow_handle(execution.id).fetch_history()
    inputs = _scheduled_inputs(history)
    assert set(inputs) == {"reads-state.seed", "reads-state.reader", "reads-state.whole"}
    assert inputs["reads-state.reader"]["state"] == {"customer": CUSTOMER, "order": {"total": 3}}
    whole_state = inputs["reads-state.whole"]["state"]
    assert whole_state["big"] == BIG and whole_state["order"] == ORDER
    for chunk in ("reader", "local_reader", "inline_reader"):
        seen = state["seen"][chunk]
        assert seen["order.total"] == 3 and seen["customer.name"] == "Ada"
        assert seen["missing.declared"] == "none"
        assert seen["big_in_state"] is False
        # The earlier readers' writes under "note" and "seen" are not sent to later ones.
        assert seen["keys"] == ["customer", "order"], chunk
        refused = seen["refused"]
        assert f"Add 'big' to reads_state of chunk '{chunk}'" in refused["big"]
        assert "Add 'order' to reads_state" in refused["order"]
        assert "Add 'order.items' to reads_state" in refused["order.items"]
        assert "read the whole state" in refused["whole"]
        assert seen["note"] == 1 and seen["log_refused"] is True
    # Writes landed in the full state: nothing was lost by sending less.
    assert state["order"] == ORDER and state["big"] == BIG and state["customer"] == CUSTOMER
    assert state["log"] == ["reader", "local_reader", "inline_reader"]
    assert state["note"] == {c: {"n": 1} for c in ("reader", "local_reader", "inline_reader")}
    assert state["whole_keys"] == ["big", "customer", "log", "note", "order", "seen"]


async def test_reading_an_undeclared_key_fails_the_chunk_by_name(runtime):
    async with runtime([undeclared_flow]) as client:
        execution = undeclared_flow.create_execution(auto_close=False)
        # The client raises the package's own error type (as for ChunkOutputError).
        with pytest.raises(StateNotSentError) as info:
            await execution.async_start(None)
        assert await execution.async_get_status() == "failed"
        await execution.async_close()
        history = await client.get_workflow_handle(execution.id).fetch_history()
    message = str(info.value)
    assert "Chunk 'reads_undeclared' of flow 'reads-state-undeclared'" in message
    assert "Add 'b' to reads_state of chunk 'reads_undeclared'" in message
    started = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert [s.attempt for s in started] == [1]  # a KeyError: not retried
