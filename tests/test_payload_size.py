"""Compact payloads (issue 18, runtime version 4): the packed FlowSpec in start inputs, the
compact ChunkInput / ChunkOutput, and the compile cache. Byte bounds, never timings.

What must not change: handlers get the same ``data`` answers from a compact input as from
the full one, an activity scheduled by an earlier runtime (the full ChunkInput) still runs,
and an execution keeps the graph it started with (replay, continue-as-new).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer

from triggerflow_temporal import FlowSpec, TriggerFlow, TriggerFlowPlugin
from triggerflow_temporal.chunk.activity import make_chunk_activity
from triggerflow_temporal.spec.chunk_io import (
    COMPACT_RESULT_KEY,
    ChunkInput,
    ChunkOutput,
    pack_chunk_input,
    pack_chunk_output,
    pack_continue_result,
    unpack_chunk_input,
    unpack_continue_result,
)
from triggerflow_temporal.spec.spec_codec import (
    PACKED_KEY,
    PackedSpecError,
    compact_dataclass,
    unpack_spec_json,
)
from triggerflow_temporal.spec.wire import ExecutionOptions, WorkflowInput
from triggerflow_temporal.testing import start_dev_server, start_local_runtime

TEN_BYTES = "0123456789"


# ------------------------------------------------------------------------ handlers
def _answers(data: Any) -> dict[str, Any]:
    """What a handler can read about its run, minus the per-execution ids."""
    resume = data.resume.to_dict() if data.resume else None
    if resume is not None:
        interrupt = dict(resume["interrupt"])
        for key in ("created_at", "resumed_at", "source_execution_id"):
            interrupt.pop(key, None)
        principal = interrupt.get("resumed_by_principal")
        if isinstance(principal, dict):
            interrupt["resumed_by_principal"] = {k: v for k, v in principal.items() if k != "at"}
        resume["interrupt"] = interrupt
    return {
        "value": data.value,
        "trigger_event": data.trigger_event,
        "trigger_type": data.trigger_type,
        "signal_id": data.signal_id,
        "signal_source": data.signal_source,
        "signal_meta": {k: v for k, v in data.signal_meta.items() if k != "resume"},
        "meta_keys": list(data.signal_meta),
        "layer_mark": data.layer_mark,
        "upper_layer_mark": data.upper_layer_mark,
        "flow_name": data.flow_name,
        "chunk_name": data.chunk_name,
        "run_id": data.run_id,
        "tenant": data.tenant,
        "is_resume": data.is_resume,
        "resume": resume,
        "state": data.get_state(),
        "resources": sorted(data.resources),
        "interventions": data.get_interventions(),
    }


async def first(data):
    await data.async_set_state("first", _answers(data))
    await data.async_emit("Side", {"n": 1})
    return data.value


async def second(data):
    await data.async_set_state("second", _answers(data))
    return [1, 2]


async def item(data):
    await data.async_append_state("items", _answers(data))
    return data.value


async def on_side(data):
    await data.async_set_state("side", _answers(data))


async def ask(data):
    await data.async_set_state("asked", _answers(data))
    return await data.async_pause_for(type="approval", payload={"p": 1}, interrupt_id="approve")


async def after(data):
    await data.async_set_state("after", _answers(data))


answers_flow = TriggerFlow(name="payload-answers")
answers_flow.to(first).to(second).for_each().to(item).end_for_each()
answers_flow.when("Side").to(on_side)

resume_flow = TriggerFlow(name="payload-resume")
resume_flow.to(ask).to(after)


# ------------------------------------------------------------------------ helpers
def _activity_inputs(history: Any) -> list[dict[str, Any]]:
    """(activity type, decoded input, input bytes) of every chunk activity scheduled."""
    found = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            payload = attrs.input.payloads[0]
            found.append(
                {
                    "type": attrs.activity_type.name,
                    "input": json.loads(payload.data),
                    "bytes": len(payload.data),
                    "retry": attrs.retry_policy,
                }
            )
    return found


def _bytes_without_state(found: dict[str, Any]) -> int:
    """The size of a chunk input without its state (the test's handlers store a lot)."""
    return len(json.dumps({k: v for k, v in found["input"].items() if k != "state"}))


def _activity_results(history: Any) -> list[bytes]:
    return [
        e.activity_task_completed_event_attributes.result.payloads[0].data
        for e in history.events
        if e.HasField("activity_task_completed_event_attributes")
    ]


def _start_input(history: Any) -> dict[str, Any]:
    started = history.events[0].workflow_execution_started_event_attributes
    return json.loads(started.input.payloads[0].data)


async def _run_v3(client: Any, flow: TriggerFlow, value: Any, **options: Any) -> str:
    """Start ``flow`` as a runtime-version-3 execution (the full ChunkInput on the wire)."""
    plugin = TriggerFlowPlugin.of_client(client, flow.name)
    assert plugin is not None
    workflow_id = f"v3-{flow.name}-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        flow.name,
        WorkflowInput(
            spec=flow.compile().to_json(),
            options=ExecutionOptions(runtime_version=3, **options),
            start={"value": value},
        ),
        id=workflow_id,
        task_queue=plugin.task_queue_for(flow.name),
        result_type=dict,
    )
    return workflow_id


# ------------------------------------------------------------ the packed FlowSpec
def test_every_catalogue_flow_packs_and_unpacks_to_the_same_spec(tmp_path: Path):
    from .reliability import _catalogue as catalogue  # it imports this module

    flows = catalogue.served_flows(catalogue.entries(tmp_path))
    assert len(flows) > 50
    for flow in flows:
        spec = flow.compile()
        packed = spec.to_packed()
        assert PACKED_KEY in packed, flow.name  # never the full-form fallback
        again = FlowSpec.from_json(json.loads(json.dumps(packed)))
        assert again == spec, flow.name
        assert again.blueprint_hash == spec.blueprint_hash
        # Children travel packed inside their parent: a workflow re-sends them as received.
        for name, child in again.sub_flows.items():
            assert child.to_packed() == packed_child(packed, name)


def packed_child(packed: dict[str, Any], name: str) -> dict[str, Any]:
    return unpack_spec_json(packed)["sub_flows"][name]


def test_the_packed_spec_of_a_10_chunk_chain_is_a_fraction_of_the_full_one():
    flow = TriggerFlow(name="payload-chain")
    process: Any = flow
    for i in range(10):
        process = process.to(flow.chunk(first, name=f"c{i}"))
    spec = flow.compile()
    full = len(json.dumps(spec.to_json(), separators=(",", ":")))
    packed = len(json.dumps(spec.to_packed(), separators=(",", ":")))
    assert full > 5000
    assert packed < 900, packed
    assert packed < full / 6


def test_decoded_specs_are_shared_but_large_packed_texts_are_not_kept(monkeypatch):
    from triggerflow_temporal.spec import flow_spec

    packed = json.loads(json.dumps(resume_flow.compile().to_packed()))
    flow_spec._DECODED.clear()
    first = FlowSpec.from_json(packed)
    assert FlowSpec.from_json(json.loads(json.dumps(packed))) is first  # one decode, shared
    monkeypatch.setattr(flow_spec, "MAX_DECODED_PACKED_CHARS", len(packed[PACKED_KEY]) - 1)
    flow_spec._DECODED.clear()
    again = FlowSpec.from_json(packed)
    assert again == first and again is not FlowSpec.from_json(packed)
    assert not flow_spec._DECODED


def test_a_corrupt_or_oversized_packed_spec_is_refused():
    spec = answers_flow.compile().to_packed()
    with pytest.raises(ValueError):
        FlowSpec.from_json({**spec, PACKED_KEY: "not base64!"})
    with pytest.raises(ValueError):
        FlowSpec.from_json({**spec, PACKED_KEY: base64.b64encode(b"junk").decode()})
    # A decompression bomb (a hostile snapshot's spec) stops at the expansion limit.
    bomb = base64.b64encode(zlib.compress(b" " * (40 * 1024 * 1024), 9)).decode()
    with pytest.raises(PackedSpecError, match="expands to more than"):
        FlowSpec.from_json({**spec, PACKED_KEY: bomb})
    # A packed body that decodes to another graph fails the hash check.
    other = resume_flow.compile().to_packed()
    with pytest.raises(ValueError, match="hash mismatch"):
        FlowSpec.from_json({**spec, PACKED_KEY: other[PACKED_KEY]})


def test_compact_dataclass_leaves_out_defaults_and_decodes_to_the_same_object():
    from pydantic import TypeAdapter

    value = WorkflowInput(
        spec={"x": 1}, options=ExecutionOptions(runtime_version=4, hidden=True), start={"v": 1}
    )
    compact = compact_dataclass(value)
    assert compact == {
        "spec": {"x": 1},
        "options": {"hidden": True, "runtime_version": 4},
        "start": {"v": 1},
    }
    assert TypeAdapter(WorkflowInput).validate_python(compact) == value


# ------------------------------------------------------------- compact ChunkInput
def _inputs_for_round_trip() -> list[ChunkInput]:
    base = {"flow": "f", "chunk": "c", "execution_id": "e", "run_id": "run-9"}
    continuation = {
        "_triggerflow_parent_signal_id": "sig-5",
        "_triggerflow_aggregation_scope": "sig-1",
        "origin_chunk": {
            "chunk_id": "chunk-70e2e41fd3d56356",
            "chunk_name": "c1",
            "run_id": "run-6",
            "operator_kind": "chunk",
        },
    }
    record = {
        "id": "approve",
        "type": "approval",
        "exchange_kind": None,
        "payload": {"p": 1},
        "status": "resumed",
        "external_wait_request": {
            "request_id": "approve",
            "interrupt_id": "approve",
            "exchange_kind": None,
            "exchange_id": None,
            "callback_idempotency_key": None,
            "actor_id": None,
            "channel_id": None,
            "provider_id": None,
            "wait_mode": "disconnected",
            "hot_wait_timeout": None,
            "cold_persistence_policy": "persist",
            "request_payload_schema": None,
            "response_payload_schema": None,
            "dispatch_state": "exposed",
            "audit_metadata": {"type": "approval", "exchange_kind": None, "payload": {"p": 1}},
            "provider_metadata": {},
        },
        "resumed_by_principal": {"subject": None},
    }
    custom_wait = json.loads(json.dumps(record))
    custom_wait["external_wait_request"]["wait_mode"] = "hot"
    last_wait = {k: v for k, v in record.items() if k != "resumed_by_principal"}
    return [
        ChunkInput(**base, value=TEN_BYTES, trigger_event="START", signal={
            "id": "sig-1", "source": "start", "meta": {}, "layer_marks": []}),
        ChunkInput(**base, value={"i": 1}, trigger_event="Chunk[c1]-chunk-70e2e41fd3d56356",
                   signal={"id": "sig-8", "source": "chunk", "meta": continuation,
                           "layer_marks": ["m1", "m2"]}),
        # The origin names another chunk than the trigger event: sent as it is.
        ChunkInput(**base, trigger_event="Chunk[c2]-chunk-29753a742e977283", signal={
            "id": "sig-8", "source": "chunk", "meta": continuation, "layer_marks": []}),
        # Meta keys in another order, an extra key, a parent equal to the scope.
        ChunkInput(**base, trigger_event="Side", trigger_type="runtime_data", signal={
            "id": "s", "source": None, "meta": {
                "x": 1, "_triggerflow_aggregation_scope": "a",
                "_triggerflow_parent_signal_id": "a"}, "layer_marks": []}),
        ChunkInput(**base, trigger_event="Side", signal={
            "id": "s", "source": "chunk", "meta": {
                "_triggerflow_parent_signal_id": "a", "_triggerflow_aggregation_scope": "a",
                "origin_chunk": {"chunk_id": "x"}, "other": [1]}, "layer_marks": []}),
        ChunkInput(**base, value=None, state={"k": [1, {"a": None}]}, resources={"r": 1},
                   interventions=[{"id": "i1", "status": "inserted"}], blueprint_hash="h",
                   tenant="t", signal={"id": "s", "source": "interrupt", "meta": {},
                                       "layer_marks": []},
                   resume={"interrupt_id": "approve", "value": 1, "interrupt": record,
                           "origin_signal": {"id": "sig-1"}}),
        ChunkInput(**base, resume={"interrupt_id": "approve", "interrupt": custom_wait}),
        ChunkInput(**base, resume={"interrupt_id": "approve", "interrupt": last_wait}),
        ChunkInput(**base, tenant="", trigger_type="flow_data"),
    ]  # fmt: skip


def _same_order(a: Any, b: Any) -> bool:
    return json.dumps(a) == json.dumps(b)


@pytest.mark.parametrize("chunk_input", _inputs_for_round_trip())
def test_compact_chunk_input_round_trips_exactly(chunk_input: ChunkInput):
    wire = json.loads(json.dumps(pack_chunk_input(chunk_input, blueprint_hash=True)))
    assert "flow" not in wire and "execution_id" not in wire
    again = unpack_chunk_input(wire, flow="f", chunk="c", execution_id="e")
    assert again == chunk_input
    assert _same_order(dataclasses.asdict(again), dataclasses.asdict(chunk_input))
    # The full shape (what runtime versions 1-3 schedule) reads back as it was sent.
    full = json.loads(json.dumps(dataclasses.asdict(chunk_input)))
    assert unpack_chunk_input(full, flow="x", chunk="y", execution_id="z") == chunk_input


def test_the_blueprint_hash_travels_only_when_traced():
    chunk_input = _inputs_for_round_trip()[5]
    assert "blueprint_hash" not in pack_chunk_input(chunk_input)
    assert pack_chunk_input(chunk_input, blueprint_hash=True)["blueprint_hash"] == "h"


def test_compact_chunk_output_decodes_to_the_same_output():
    from pydantic import TypeAdapter

    adapter = TypeAdapter(ChunkOutput)
    for output in (
        ChunkOutput(),
        ChunkOutput(value=TEN_BYTES),
        ChunkOutput(value=0, ops=[["set", "k", 1, True]], pause={"type": "x"}),
    ):
        wire = json.loads(json.dumps(pack_chunk_output(output)))
        assert adapter.validate_python(wire) == output
    assert len(json.dumps(pack_chunk_output(ChunkOutput(value=TEN_BYTES)))) < 30


async def test_an_old_shape_chunk_input_still_runs_on_this_worker():
    plugin = TriggerFlowPlugin([answers_flow], {"shared": "flow-level"})
    run = make_chunk_activity(plugin.registry, answers_flow.name, "first")
    old = ChunkInput(
        flow=answers_flow.name,
        chunk="first",
        execution_id="old-execution",
        run_id="run-3",
        value=TEN_BYTES,
        trigger_event="START",
        signal={"id": "sig-1", "source": "start", "meta": {}, "layer_marks": []},
        blueprint_hash=answers_flow.compile().blueprint_hash,
    )
    raw = json.loads(json.dumps(dataclasses.asdict(old)))  # as recorded before version 4
    output = await ActivityEnvironment().run(run, raw)
    assert output["value"] == TEN_BYTES
    [set_op, emit_op] = output["ops"]
    assert set_op[1] == "first" and emit_op[:2] == ["emit", "Side"]
    answers = set_op[2]
    assert answers["value"] == TEN_BYTES and answers["chunk_name"] == "first"
    assert answers["flow_name"] == answers_flow.name and answers["signal_source"] == "start"
    # ...and the compact shape, whose execution id is the activity's workflow id.
    compact = pack_chunk_input(old)
    output = await ActivityEnvironment().run(run, compact)
    assert output["ops"][0][2] == answers


async def test_a_default_non_retryable_error_is_not_retried_from_a_compact_input():
    from temporalio.exceptions import ApplicationError

    flow = TriggerFlow(name="payload-bad-value")
    flow.to(raises_value_error)
    plugin = TriggerFlowPlugin([flow])
    run = make_chunk_activity(plugin.registry, flow.name, "raises_value_error")
    chunk_input = ChunkInput(flow=flow.name, chunk="raises_value_error", execution_id="e",
                             run_id="run-1")  # fmt: skip
    env = ActivityEnvironment()
    # The default policy arrives without its error types (version 4): the activity refuses.
    env.info = dataclasses.replace(env.info, retry_policy=None)
    with pytest.raises(ApplicationError) as compact:
        await env.run(run, pack_chunk_input(chunk_input))
    assert compact.value.non_retryable and compact.value.type == "ValueError"
    # A chunk's own policy (flagged) decides alone, as the full shape always did.
    with pytest.raises(ApplicationError) as own:
        await env.run(run, {**pack_chunk_input(chunk_input), "own_retry_policy": True})
    assert not own.value.non_retryable
    with pytest.raises(ApplicationError) as full:
        await env.run(run, dataclasses.asdict(chunk_input))
    assert not full.value.non_retryable  # the server matches the exact type from the policy


async def raises_value_error(data):
    raise ValueError("bad input")


# ------------------------------------------------------------ end to end (v3 vs v4)
async def test_compact_inputs_give_handlers_the_same_answers_as_full_ones(runtime):
    async with runtime([answers_flow, resume_flow], {"shared": "flow-level"}) as client:
        v4 = await answers_flow.async_start(TEN_BYTES, client=client)
        v3_id = await _run_v3(client, answers_flow, TEN_BYTES, auto_close_timeout=0.0)
        v3 = await client.get_workflow_handle(v3_id).result()
        execution = resume_flow.create_execution(auto_close=False)
        await execution.async_start(TEN_BYTES)
        await execution.async_continue_with("approve", {"ok": True})
        resumed_v4 = await execution.async_close()
        old_id = await _run_v3(client, resume_flow, TEN_BYTES, auto_close=False)
        old = resume_flow.get_execution(client=client, execution_id=old_id)
        for _ in range(200):  # started without an update: wait until it has paused
            if await old.async_get_status() == "waiting":
                break
            await asyncio.sleep(0.05)
        await old.async_continue_with("approve", {"ok": True})
        resumed_v3 = await old.async_close()
        v4_history = await client.get_workflow_handle(execution.id).fetch_history()
        v3_history = await client.get_workflow_handle(old_id).fetch_history()
    assert v4 == v3
    assert v4["first"]["value"] == TEN_BYTES and len(v4["items"]) == 2
    assert v4["items"][0]["layer_mark"] and v4["second"]["signal_meta"]["origin_chunk"]
    assert resumed_v4 == resumed_v3
    assert resumed_v4["after"]["is_resume"] and resumed_v4["after"]["resume"]["interrupt"]
    # v3 sent the full ChunkInput; v4 the compact one, a fraction of it.
    old_inputs, new_inputs = _activity_inputs(v3_history), _activity_inputs(v4_history)
    assert all("flow" in i["input"] for i in old_inputs)
    assert all("flow" not in i["input"] for i in new_inputs)
    assert new_inputs[0]["bytes"] < 120 < old_inputs[0]["bytes"] / 3, new_inputs[0]
    resumed = [i for i in new_inputs if i["type"].endswith(".after")][0]
    old_resumed = [i for i in old_inputs if i["type"].endswith(".after")][0]
    assert _bytes_without_state(resumed) < _bytes_without_state(old_resumed) / 2
    assert "external_wait_request" not in resumed["input"]["resume"]["interrupt"]
    # The default retry policy goes without its error types (the activity applies them).
    assert list(old_inputs[0]["retry"].non_retryable_error_types)
    assert not list(new_inputs[0]["retry"].non_retryable_error_types)
    # Outputs are compact for both: the worker returns them so, whatever the version.
    assert all(b'"pause":null' not in r for r in _activity_results(v3_history))


async def test_a_ten_byte_value_costs_a_small_chunk_input_and_output(runtime):
    flow = TriggerFlow(name="payload-chain3")
    flow.to(flow.chunk(echo, name="a")).to(flow.chunk(echo, name="b")).to(
        flow.chunk(echo, name="c")
    )
    async with runtime([flow]) as client:
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(TEN_BYTES)
        assert await execution.async_close() == {}
        history = await client.get_workflow_handle(execution.id).fetch_history()
    inputs = _activity_inputs(history)
    assert [i["input"]["value"] for i in inputs] == [TEN_BYTES] * 3
    # ~600 B each before version 4 (bench/RESULTS.md, F6).
    assert all(i["bytes"] < 200 for i in inputs), [i["bytes"] for i in inputs]
    assert all(len(r) < 30 for r in _activity_results(history))
    start = _start_input(history)
    assert PACKED_KEY in start["spec"] and "operators" not in start["spec"]
    assert "restore" not in start and "carry" not in start  # defaults left out
    assert len(json.dumps(start)) < 800


async def echo(data):
    return data.value


# ------------------------------------------------------------- continue-as-new
async def tick(data):
    await data.async_append_state("ticks", data.input)


ticker = TriggerFlow(name="payload-ticker")
ticker.when("tick").to(tick)


async def test_continue_as_new_carries_the_packed_spec_it_started_with():
    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"]
    async with start_dev_server(extra_args=extra) as env:
        plugin = TriggerFlowPlugin([ticker])
        async with start_local_runtime([ticker], plugin=plugin, client=env.client) as client:
            execution = ticker.create_execution(auto_close=False)
            await execution.async_start(None)
            for i in range(25):
                await execution.async_emit("tick", i)
            snapshot = await execution.async_close()
            histories = []
            run_id = (await client.get_workflow_handle(execution.id).describe()).run_id
            while run_id:
                history = await client.get_workflow_handle(
                    execution.id, run_id=run_id
                ).fetch_history()
                histories.append(history)
                started = history.events[0].workflow_execution_started_event_attributes
                run_id = started.continued_execution_run_id
    assert snapshot == {"ticks": list(range(25))}
    assert len(histories) > 1
    specs = [_start_input(h)["spec"] for h in histories]
    assert all(spec == specs[0] for spec in specs)  # the same text in every run
    assert PACKED_KEY in specs[0]
    assert any(
        h.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        for h in histories
    )
    for history in histories:
        result = await Replayer(workflows=[], plugins=[plugin]).replay_workflow(history)
        assert result.replay_failure is None


# ------------------------------------------------------------------ compile cache
def test_the_compiled_spec_is_cached_until_the_flow_changes():
    flow = TriggerFlow(name="payload-cache")
    flow.to(first)
    spec = flow.compile()
    assert flow.compile() is spec
    assert flow.create_execution()._setup.spec() is spec  # no compile per handle
    assert flow.blueprint_hash == spec.blueprint_hash

    flow.to(second)  # a new operator
    grown = flow.compile()
    assert grown is not spec and len(grown.operators) == len(spec.operators) + 1
    assert flow.compile() is grown

    flow.chunks["second"].options(execute_in="local_activity")  # a chunk changed in place
    moved = flow.compile()
    assert moved.chunks["second"]["execute_in"] == "local_activity"
    assert moved.blueprint_hash != grown.blueprint_hash

    flow.chunks["first"].declare_emits("Extra")
    assert flow.compile() is not moved

    flow.name = "payload-cache-renamed"
    assert flow.compile().name == "payload-cache-renamed"


def test_a_match_case_or_a_sub_flow_change_invalidates_the_cache():
    child = TriggerFlow(name="payload-cache-child")
    child.to(first)
    parent = TriggerFlow(name="payload-cache-parent")
    parent.to_sub_flow(child)
    before = parent.compile()
    child.to(second)  # the child grows: the parent's spec embeds it
    after = parent.compile()
    assert after.sub_flows["payload-cache-child"] != before.sub_flows["payload-cache-child"]
    assert after.blueprint_hash != before.blueprint_hash

    routed = TriggerFlow(name="payload-cache-match")
    process = routed.match().case(is_small).to(first)
    one_case = routed.compile()
    process.case(is_large).to(second)  # a case added to the live route record
    two_cases = routed.compile()
    assert two_cases.blueprint_hash != one_case.blueprint_hash
    process.end_match()
    assert routed.compile().blueprint_hash != two_cases.blueprint_hash


def is_small(data):
    return data.value < 10


def is_large(data):
    return data.value >= 10


# --------------------------------------------------------------- search attributes
def _upserts(history: Any) -> list[dict[str, Any]]:
    found = []
    for event in history.events:
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes
            found.append(
                {
                    name: json.loads(payload.data) if payload.data else None
                    for name, payload in fields.search_attributes.indexed_fields.items()
                }
            )
    return found


async def test_search_attributes_are_upserted_only_when_a_visible_value_changes(runtime):
    async with runtime([resume_flow]) as client:
        execution = resume_flow.create_execution(auto_close=False)
        await execution.async_start(TEN_BYTES)
        await execution.async_set_state("note", 1)  # visible values unchanged
        await execution.async_continue_with("approve", {"ok": True})
        await execution.async_set_state("note", 2)
        await execution.async_close()
        history = await client.get_workflow_handle(execution.id).fetch_history()
    upserts = _upserts(history)
    if not upserts:
        pytest.skip("the namespace has no TriggerFlow search attributes")
    assert [u.get("TriggerFlowStatus") for u in upserts] == ["waiting", "running", "completed"]
    # Each upsert carries only what changed since the one before (the start set "created").
    visible: dict[str, Any] = {"TriggerFlowStatus": "created"}
    for upsert in upserts:
        for name, value in upsert.items():
            assert visible.get(name) != value, (name, value, upserts)
            visible[name] = value
    assert set(upserts[-1]) == {"TriggerFlowStatus"}  # nothing pending any more
    assert upserts[0]["TriggerFlowPendingInterruptTypes"] == ["approval"]


# ----------------------------------------------------------- continue_with's result
def _resumed_record(**changes: Any) -> dict[str, Any]:
    """An interrupt record as the interpreter holds it once resumed (keys in its order)."""
    record: dict[str, Any] = {
        "id": "approve",
        "type": "approval",
        "exchange_kind": None,
        "payload": {"p": 1},
        "resume_event": None,
        "resume_to": "next",
        "status": "resumed",
        "source_execution_id": "exec-1",
        "source_flow_name": "payload-resume",
        "source_operator_id": "chunk-1",
        "source_signal": {"id": "sig-1", "trigger_event": "START", "value": "x", "meta": {}},
        "continuation_event": "Chunk[ask]-chunk-1",
        "resume_count": 0,
        "max_resumes": None,
        "created_at": 1.5,
        "resumed_at": 2.5,
        "resume_value": {"ok": True},
        "external_wait_request": _inputs_for_round_trip()[5].resume["interrupt"][  # type: ignore[index]
            "external_wait_request"
        ],
        "response": {"ok": True},
        "resumed_by_principal": {
            "subject": None,
            "tenant": None,
            "groups": [],
            "method": "temporal_client",
            "at": 2.5,
        },
    }
    record["external_wait_request"] = {
        **record["external_wait_request"],
        "audit_metadata": {"type": "approval", "exchange_kind": None, "payload": {"p": 1}},
    }
    record.update(changes)
    return json.loads(json.dumps(record))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        # Resumed by a named principal (the gateway), a request id ledger appended.
        {
            "resumed_by_principal": {"subject": "ann", "tenant": "t", "groups": ["ops"],
                                     "method": "jwt", "at": 2.5},
            "resume_requests": {"r1": {"request_id": "r1", "status": "accepted"}},
        },
        # A child's interrupt projected here (another source execution), resumed twice.
        {"source_execution_id": "child-1", "resume_to": "self", "resume_count": 2},
        # The answer is not the value sent (a resume_event's emit value), a custom wait.
        {"resume_value": {"ok": False}, "response": None, "external_wait_request": {"x": 1}},
    ],
)  # fmt: skip
def test_the_compact_continue_result_rebuilds_the_record_exactly(changes: dict[str, Any]):
    record = _resumed_record(**changes)
    value = {"ok": True}
    wire = json.loads(json.dumps(pack_continue_result(record, execution_id="exec-1", value=value)))
    assert list(wire) == [COMPACT_RESULT_KEY]
    assert len(json.dumps(wire)) < len(json.dumps(record))
    again = unpack_continue_result(wire, execution_id="exec-1", value=value)
    assert _same_order(again, record)


def test_a_result_that_is_not_a_resumed_record_passes_as_it_is():
    marker = {"_triggerflow_settle": "root-1", "result": None}
    for result in (None, marker, ["x"], {"id": "only"}):
        assert pack_continue_result(result, execution_id="e", value=1) == result
        assert unpack_continue_result(result, execution_id="e", value=1) == result
    # A record the client could not rebuild in order (an unknown key where a left-out
    # field belongs) is sent whole.
    record = _resumed_record()
    moved = {"id": record["id"], "late": 1, **{k: v for k, v in record.items() if k != "id"}}
    shuffled = dict(reversed(list(moved.items())))
    assert pack_continue_result(shuffled, execution_id="exec-1", value={"ok": True}) == shuffled


async def test_continue_with_returns_the_whole_record_from_a_compact_update_result(runtime):
    async with runtime([resume_flow]) as client:
        execution = resume_flow.create_execution(auto_close=False)
        await execution.async_start(TEN_BYTES)
        record = await execution.async_continue_with("approve", {"ok": (1, 2)})
        stored = await execution.async_get_interrupt("approve")
        await execution.async_close()
        history = await client.get_workflow_handle(execution.id).fetch_history()
    assert record is not None and record["status"] == "resumed"
    # What the client rebuilt is what the workflow holds (the tuple arrives as a list).
    assert _same_order(record, stored)
    assert record["resume_value"] == {"ok": [1, 2]}
    assert record["external_wait_request"]["interrupt_id"] == "approve"
    results = [
        json.loads(payload.data)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
        for payload in event.workflow_execution_update_completed_event_attributes.outcome
        .success.payloads
        if payload.data  # None travels as an empty binary/null payload
    ]  # fmt: skip
    compact = [r for r in results if isinstance(r, dict) and COMPACT_RESULT_KEY in r]
    assert len(compact) == 1, results
    # 1.2 KB as a whole record; the left-out fields are rebuilt by the client.
    assert len(json.dumps(compact[0])) < 0.6 * len(json.dumps(stored))
    for key in ("status", "external_wait_request", "resume_value", "response"):
        assert key not in compact[0][COMPACT_RESULT_KEY]


# ------------------------------------------------------------------ worker check
async def test_a_slow_call_of_a_flow_answered_recently_is_not_looked_at():
    from triggerflow_temporal.client import worker_check

    class NoDescribe:
        def get_workflow_handle(self, *_: Any) -> Any:
            raise AssertionError("described although calls of this flow were answered")

    client: Any = NoDescribe()
    key = (id(client), "payload-watch", "queue")
    answered = asyncio.get_running_loop().create_future()
    answered.set_result(None)
    worker_check._note_answered(key, answered)
    call = asyncio.get_running_loop().create_future()
    watcher = asyncio.ensure_future(worker_check._watch(call, client, "wid", key))
    await asyncio.sleep(0.05)
    call.set_result("answer")
    assert await watcher is None
    # Another queue (or flow) was not answered: that call is looked at.
    assert not worker_check._answered_recently((id(client), "payload-watch", "elsewhere"))


async def test_a_burst_of_slow_calls_of_one_flow_shares_its_looks(monkeypatch):
    from triggerflow_temporal.client import worker_check

    looks: list[str] = []
    release = asyncio.Event()

    async def verdict(client: Any, workflow_id: str) -> Any:
        looks.append(workflow_id)
        await release.wait()
        return worker_check._Verdict("ok", "queue", "payload-burst", last_poll_age=1.0)

    monkeypatch.setattr(worker_check, "_verdict", verdict)
    client: Any = object()
    key = (id(client), "payload-burst", "queue")
    burst = [asyncio.ensure_future(worker_check._look(client, f"wid-{i}", key)) for i in range(20)]
    await asyncio.sleep(0.01)
    release.set()
    verdicts = await asyncio.gather(*burst)
    assert len(looks) == 1 and all(v.kind == "ok" for v in verdicts)
    # A worker polls the queue: the calls of this flow are spared their looks for a while.
    assert worker_check._answered_recently(key)


async def test_a_burst_shares_a_look_that_found_nothing_waiting_without_marking_it(monkeypatch):
    from triggerflow_temporal.client import worker_check

    looks: list[str] = []
    release = asyncio.Event()

    async def verdict(client: Any, workflow_id: str) -> Any:
        looks.append(workflow_id)
        await release.wait()
        return worker_check._Verdict("ok", "queue", "payload-idle")  # no workflow task waited

    monkeypatch.setattr(worker_check, "_verdict", verdict)
    client: Any = object()
    key = (id(client), "payload-idle", "queue")
    burst = [asyncio.ensure_future(worker_check._look(client, f"wid-{i}", key)) for i in range(9)]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(*burst)
    assert len(looks) == 1
    assert not worker_check._answered_recently(key)  # no worker was seen polling
