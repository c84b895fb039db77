"""Every flow the tests and the examples run, with one scenario each, for recorded histories.

``tests/histories/record_flows.py`` runs each entry and writes
``tests/histories/flows/<entry name>.json``; ``test_determinism.py`` replays every file
with the current interpreter and checks that every flow defined in ``tests/`` and
``triggerflow_temporal/examples`` has a checked-in history.

Flows that a test builds inside its function are rebuilt here from the same module-level
handlers (the graph itself travels in the history, so replay only needs the handlers of
conditions and inline chunks by name).
"""

from __future__ import annotations

import ast
import asyncio
import gc
import json
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy

from tests import test_abandoned_instances as abandoned
from tests import test_access_rules as access
from tests import (
    test_cli,
    test_converter,
    test_durability,
    test_events,
    test_foreach_history_bound,
    test_hitl_ui,
    test_interventions,
    test_long_loop_yield,
    test_pause_branches,
    test_pause_resume,
    test_payload_size,
    test_persistence,
    test_reads_state,
    test_run_long,
    test_runtime,
    test_stream,
    test_time_skipping,
    test_tracing,
)
from tests import test_embedded_defaults as embedded_defaults
from tests import test_messages as messages
from tests import test_notify_flows as notify
from tests import test_sub_flow_pause_runs as sub_flow_pause_runs
from tests.conformance import _replay as conformance
from tests.conformance import (
    test_10_pause_resume_next,
    test_11_pause_resume_self,
    test_12_pause_resume_event,
    test_14_snapshot_shape,
    test_20_runtime_resources,
    test_23_runtime_stream,
)
from tests.conformance import test_contracts as contracts
from tests.conformance import test_dynamic_bindings as dynamic_bindings
from tests.conformance import test_intervention_policy as intervention_policy
from tests.conformance import test_sealing as sealing
from tests.conformance import test_snapshot_tree as snapshot_tree
from tests.conformance import test_sub_flow_mappings as sub_flow_mappings
from tests.conformance import test_sub_flow_pause as sub_flow_pause
from tests.gateway import flows as gateway
from tests.security import test_resources_hostile as security_resources
from tests.security import test_snapshot_hostile as security_snapshot
from tests.security import test_workflow_hostile as security_workflow
from triggerflow_temporal import TriggerFlow
from triggerflow_temporal.examples import approval as example_approval
from triggerflow_temporal.spec.wire import RUNTIME_VERSION

from . import bad_flows as bad
from . import flows as rel

REPO_ROOT = Path(__file__).resolve().parents[2]
HISTORIES_DIR = REPO_ROOT / "tests" / "histories"
FLOW_HISTORIES_DIR = HISTORIES_DIR / "flows"
# Histories recorded with the runtime version new executions start with (record_flows.py
# writes here); FLOW_HISTORIES_DIR keeps those of versions 1-2.
CURRENT_HISTORIES_DIR = HISTORIES_DIR / f"flows-v{RUNTIME_VERSION}"

# Flows that never run on Temporal: definition, compiler and flow-config tests.
EXEMPT = {
    "sm-invalid": "conformance sub-flow mappings: rejected specs, build only",
    "sm-invalid-child": "conformance sub-flow mappings: rejected specs, build only",
    "sm-loaded": "conformance sub-flow mappings: flow config round trip, compile only",
    "ct-empty": "conformance contracts: flow config export only",
    "ct-bad": "conformance contracts: rejected contract type",
    "ct-loaded": "conformance contracts: flow config load, compile only",
    "moved": "test_definition: hash and config tests only",
    "c": "test_definition: collect id stability, compile only",
    "lam": "test_definition: rejected lambda",
    "lamcond": "test_definition: rejected lambda condition",
    "clash": "test_definition: rejected closure names",
    "main-mod": "test_definition: rejected __main__ handler",
    "opts": "test_definition: rejected options",
    "empty": "test_definition: config load error",
    "x": "test_definition: config load error",
    "restored": "test_definition: blueprint round trip",
    "c08-bad": "conformance 08: rejected when({'collect': ...})",
    "lambda": "conformance 17: rejected lambda",
    "rel-config": "test_bad_input: corrupted flow configs, load only",
    "loaded": "test_bad_input: corrupted flow configs, load only",
    "text": "test_bad_input: unparsable flow text, load only",
    "agently-skip": "test_agently_compat: converted, not run",
    "agently-lambda-condition": "test_agently_compat: rejected lambda condition",
    "agently-main": "test_agently_compat: rejected __main__ handler",
    "agently-contract": "test_agently_compat: converted, not run (contract conversion)",
    "payload-chain": "test_payload_size: packed spec size, compile only",
    "payload-bad-value": "test_payload_size: chunk activity run directly",
    "payload-cache": "test_payload_size: compile cache, compile only",
    "payload-cache-child": "test_payload_size: compile cache, compile only",
    "payload-cache-parent": "test_payload_size: compile cache, compile only",
    "payload-cache-match": "test_payload_size: compile cache, compile only",
    "rs-compile": "test_reads_state: declaration checks and compiled spec, compile only",
}

Step = tuple[Any, ...]


@dataclass
class Entry:
    """One recorded execution: a flow, how to start it and what to send it.

    Steps: ``("start", value)``, ``("start_fails", value)``, ``("emit", event, value)``,
    ``("continue", interrupt_id, value)``, ``("set_state", key, value)``,
    ``("intervene", payload, kwargs)``, ``("wait_not_waiting",)``, ``("close",)`` or
    ``("close", kwargs)``. The execution is closed at the end unless it closed itself
    (``auto_close``) or failed.
    """

    name: str
    flow: TriggerFlow
    steps: list[Step]
    execution: dict[str, Any] = field(default_factory=lambda: {})
    before: Callable[[], None] | None = None
    serve: list[TriggerFlow] = field(default_factory=lambda: [])
    custom: Callable[[Entry, Client, str], Awaitable[None]] | None = None


def _flow(name: str, *handlers: Any, **kwargs: Any) -> TriggerFlow:
    flow = TriggerFlow(name=name, **kwargs)
    builder: Any = flow
    for handler in handlers:
        builder = builder.to(handler)
    return flow


def _runtime_flows() -> list[Entry]:
    r = test_runtime
    data_object = TriggerFlow(name="data-object")
    data_object.to(r.inspect_data)
    data_object.when("Side").to(r.on_side)
    custom = TriggerFlow(name="fails-custom")
    custom.chunk(r.fails_custom, retry_policy=RetryPolicy(maximum_attempts=1))
    custom.to("fails_custom")
    skips = TriggerFlow(name="skips", skip_exceptions=True)
    skips.to(r.side_fails)
    skips.to(r.survives)
    retries = TriggerFlow(name="retries")
    retries.chunk(
        r.flaky,
        retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=5),
        start_to_close_timeout=timedelta(seconds=10),
    )
    retries.to("flaky").to(r.survives)
    once = TriggerFlow(name="no-retries")
    once.chunk(r.flaky, retry_policy=RetryPolicy(maximum_attempts=1))
    once.to("flaky")
    child = _flow("child", r.child_step)
    parent = TriggerFlow(name="parent")
    parent.to_sub_flow(child).to(r.parent_after)

    def reset_flaky() -> None:
        r.CALLS["flaky"] = 0

    return [
        Entry("modes", r.make_modes_flow(), [("start", 2)]),
        Entry(
            "data-object",
            data_object,
            [("set_state", "cfg", {"level": 3}), ("start", "hello")],
            execution={"runtime_resources": {"tenant_db": "db-7"}},
        ),
        Entry("fails", _flow("fails", r.fails, r.never), [("start_fails", 8)]),
        Entry("fails-custom", custom, [("start_fails", None)]),
        Entry("skips", skips, [("start", 5)]),
        Entry("retries", retries, [("start", None)], before=reset_flaky),
        Entry("no-retries", once, [("start_fails", None)], before=reset_flaky),
        Entry("bad-output", _flow("bad-output", r.returns_object), [("start_fails", None)]),
        Entry("child", child, [("start", 41)]),
        Entry("parent", parent, [("start", 41)]),
        Entry(
            "after-close",
            _flow("after-close", r.survives),
            [("start", 1), ("close",), ("emit", "X", 1)],
        ),
        Entry(
            "auto-close",
            _flow("auto-close", r.survives),
            [("start", 3)],
            execution={"auto_close": True, "auto_close_timeout": 0.2},
        ),
        Entry("ws-ref", _flow("ws-ref", r.store_report), [("start", None)]),
    ]


def _pause_resume_flows() -> list[Entry]:
    p = test_pause_resume
    self_flow = _flow("self", p.gate, p.after)
    event = TriggerFlow(name="event")
    event.to(p.ask_event).to(p.successor)
    event.when("Approved").to(p.on_approved)
    reply = TriggerFlow(name="reply")
    reply.to(p.ask_reply)
    reply.when("Reply").to(p.on_reply)
    yes = {"approved": True}
    return [
        Entry("approval", p.approval, [("start", "T-1"), ("continue", None, yes)]),
        # The same run recorded after the pausing chunk's result began to carry the
        # worker's channel names (no plan local activity); "approval" keeps the older
        # history with the marker, which must replay too.
        Entry("approval-channels", p.approval, [("start", "T-1"), ("continue", None, yes)]),
        Entry("self", self_flow, [("start", "doc"), ("continue", "gate-1", {"ok": True})]),
        Entry("guard", _flow("guard", p.always_pause), [("start", None), ("continue", "loop", 1)]),
        Entry(
            "resume-context",
            _flow("resume-context", p.ask, p.read_resume),
            [("start", "T-2"), ("continue", None, yes)],
        ),
        Entry("event", event, [("start", None), ("continue", "i1", "yes")]),
        Entry("reply", reply, [("start", None), ("emit", "Reply", "hello")]),
        Entry(
            "reject",
            _flow("reject", p.ask_schema, p.record_decision),
            [("start", None), ("continue", "approve", yes), ("continue", "approve", yes)],
        ),
        Entry(
            "race",
            _flow("race", p.ask_schema, p.record_decision),
            [("start", None), ("continue", "approve", yes)],
        ),
        Entry(
            "timeout",
            _flow("timeout", p.ask_with_timeout, p.record_decision),
            [("start", None), ("wait_not_waiting",)],
        ),
        Entry(
            "replay-approval",
            _flow("replay-approval", p.ask_schema, p.record_decision),
            [("start", None), ("continue", "approve", yes)],
        ),
    ]


def _durability_flows() -> list[Entry]:
    d = test_durability

    def no_hang() -> None:
        d.ATTEMPTS["slow"] = 1  # the first attempt hangs by design; record a later one

    ticker = TriggerFlow(name="ticker")
    ticker.when("tick").to(d.tick)
    return [
        Entry("restart", d.restart_flow(), [("start", 1)], before=no_hang),
        Entry("ticker", ticker, [("start", None), ("emit", "tick", 0), ("emit", "tick", 1)]),
    ]


def _persistence_and_hitl_flows() -> list[Entry]:
    shape = TriggerFlow(name="shape")
    shape.to(test_14_snapshot_shape.ask).to(test_14_snapshot_shape.fin)
    r20 = test_20_runtime_resources
    res = TriggerFlow(name="res")
    res.update_runtime_resources(policy="flow-policy", shared="flow-shared")
    res_load = _flow("res-load", r20.ask, r20.fin)
    b = test_pause_branches
    iv = test_interventions
    ps = test_persistence
    return [
        Entry("shape", shape, [("start", "x")]),
        Entry(
            "res",
            res,
            [("start", None)],
            execution={"runtime_resources": {"policy": "exec-policy", "db": "db-0"}},
        ),
        Entry(
            "res-load",
            res_load,
            [("start", None), ("continue", "i", 1)],
            execution={"runtime_resources": {"db": "db-1"}},
        ),
        Entry(
            "ui-approval",
            test_hitl_ui.flow,
            [("start", None), ("continue", "approve", {"approved": True})],
        ),
        Entry(
            "iv-planned",
            iv.planned,
            [
                ("start", "doc"),
                ("intervene", {"hint": "be strict"}, {"author": "alice", "target": "review"}),
                ("intervene", {"hint": "elsewhere"}, {"target": "nowhere"}),
                ("continue", "gate", "go"),
            ],
        ),
        Entry(
            "iv-auto",
            iv.auto,
            [("start", "doc"), ("intervene", "tighten", {}), ("continue", "gate", "go")],
            execution={"intervention_mode": "auto"},
        ),
        Entry(
            "pb-for-each",
            b.for_each_flow,
            [("start", [1, 2, 3])] + [("continue", f"item-{i}", f"a{i}") for i in (3, 1, 2)],
        ),
        Entry("pb-one-pauses", b.one_pauses, [("start", "x"), ("continue", "left", "L")]),
        Entry(
            "pb-both-pause",
            b.both_pause,
            [("start", "x"), ("continue", "right", "R"), ("continue", "left", "L")],
        ),
        Entry("persist-approval", ps.approval, [("start", "p"), ("continue", "approve", "ok")]),
        Entry("persist-chain", ps.chain, [("start", 1)]),
        Entry("persist-batch", ps.batch_flow, [("start", "b"), ("continue", "slow", "done")]),
        Entry(
            "month-long-approval",
            test_time_skipping.flow,
            [("start", "day-0"), ("continue", "approve", {"approved": True})],
        ),
    ]


def _example_flows() -> list[Entry]:
    return [
        Entry("converter", test_converter.flow, [("start", {"id": "T-9", "amount": 4})]),
        Entry(
            "refund_approval",
            example_approval.refund_flow,
            [
                ("start", {"refund_id": "r-1", "amount": "42.5", "reason": "broken"}),
                ("continue", "approve-R-1", {"approved": True, "by": "history"}),
            ],
        ),
    ]


async def _start_chain(entry: Entry, client: Client, workflow_id: str) -> None:
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    await execution.async_start({"dir": str(REPO_ROOT), "blocks": []})
    await execution.async_close()


def _reliability_flows(tmp_dir: Path) -> list[Entry]:
    gate_dir = tmp_dir / "gate"
    gate_dir.mkdir(parents=True, exist_ok=True)
    (gate_dir / "release").write_text("")
    v1, v2 = rel.versioned_flows()
    old, _new = bad.rolling_flows()
    renamed = TriggerFlow(name="rel-approval-renamed")
    renamed.to(rel.ask_approval).to(rel.record_decision)
    yes = {"approved": True}
    entries = [
        Entry("rel-chain", rel.build_chain(), [], custom=_start_chain),
        Entry("rel-gated", rel.gated, [("start", {"dir": str(gate_dir)})]),
        Entry("rel-timed", rel.timed, [("start", {"timeout": 0.3}), ("wait_not_waiting",)]),
        Entry(
            "rel-approval", rel.approval, [("start", {"ticket": 1}), ("continue", "approve", yes)]
        ),
        Entry("rel-listener", rel.listener, [("start", None), ("emit", "Ping", 1)]),
        Entry(
            "rel-half-failed",
            rel.half_failed_flow(),
            [("start_fails", {"ticket": 4}), ("continue", "approve", yes)],
        ),
        Entry(
            "rel-approval-renamed",
            renamed,
            [("start", {"ticket": 2}), ("continue", "approve", yes)],
        ),
        Entry("rel-versioned-v1", v1, [("start", 1), ("continue", "v-approve", yes)]),
        Entry("rel-versioned-v2", v2, [("start", 2), ("continue", "v-approve", yes)]),
        Entry("rel-good", bad.good_flow(), [("start", "fine")]),
        Entry("rel-growing-state", bad.growing_state_flow(), [("start", 0.001)]),
        Entry("rel-under-limit", bad.under_limit_flow(), [("start", 0.001)]),
        Entry("rel-big-join", bad.big_join_flow(), [("start", [1, 2])]),
        Entry("rel-rolling", old, [("start", "x")]),
    ]
    entries += [
        Entry(bad.non_json_flow(h).name, bad.non_json_flow(h), [("start_fails", None)])
        for h in bad.NON_JSON_WRITERS
    ]
    entries += [
        Entry(bad.oversized_flow(h).name, bad.oversized_flow(h), [("start", 0.001)])
        for h in bad.OVERSIZED
    ]
    # Not recorded: bad.schema_flow(...) flows, whose pause is meant to become an error
    # (test_pause_violating_its_own_schema_fails_the_chunk); their names are computed, so
    # the literal-name coverage check does not ask for them.
    entries += [
        Entry(
            bad.workspace_flow(name).name,
            bad.workspace_flow(name),
            [("start", {"content": "a report"})],
        )
        for name in bad.WORKSPACE_ERRORS
    ]
    return entries


def _conformance_flows() -> list[Entry]:
    entries = []
    seen: set[str] = set()
    for case in conformance.all_cases():
        if case.flow.name in seen:
            continue
        seen.add(case.flow.name)

        async def run(entry: Entry, client: Client, workflow_id: str, case: Any = case) -> None:
            await conformance.run_case(case, client, workflow_id=workflow_id)

        entries.append(Entry(case.flow.name, case.flow, [], custom=run))
    return entries


def _conformance_pause_and_stream_flows() -> list[Entry]:
    # Conformance ports whose scenarios need continue_with or a stream consumer, which a
    # ReplayCase cannot express (so they are not in conformance.all_cases()).
    c10 = test_10_pause_resume_next
    c11 = test_11_pause_resume_self
    c12 = test_12_pause_resume_event
    c23 = test_23_runtime_stream
    stream = TriggerFlow(name="stream")
    stream.to(c23.produce).to(c23.ask).to(c23.finish)
    return [
        Entry("c10-approval", c10.flow, [("start", "T-1"), ("continue", None, {"approved": True})]),
        Entry("c11-self", c11.flow, [("start", "doc"), ("continue", "gate-1", {"ok": True})]),
        # The resumed run pauses again: the resume fails the execution (max_resumes=1).
        Entry("c11-guard", c11.guard_flow, [("start", None), ("continue", "loop", 1)]),
        Entry("c12-event", c12.flow, [("start", None), ("continue", "i1", "yes")]),
        Entry("c12-reply", c12.reply_flow, [("start", None), ("emit", "Reply", "hello")]),
        Entry("stream", stream, [], custom=_stream_pause_resume),
    ]


async def _until(check: Callable[[], Awaitable[bool]], what: str, attempts: int = 500) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def _finish(client: Client, workflow_id: str) -> None:
    try:
        await client.get_workflow_handle(workflow_id).result()
    except WorkflowFailureError:
        pass


async def _stream_pause_resume(entry: Entry, client: Client, workflow_id: str) -> None:
    # As test_23: the consumer starts the execution lazily and reads until it closes.
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    items: list[Any] = []

    async def consume() -> None:
        async for item in execution.get_async_runtime_stream("in", timeout=None):
            items.append(item)

    consumer = asyncio.create_task(consume())

    async def paused() -> bool:
        return len(items) >= 3  # the pause item is out: the execution is waiting

    await _until(paused, "the pause item")
    await execution.async_continue_with("i", "ok")
    await execution.async_close()
    await asyncio.wait_for(consumer, 30)
    await _finish(client, workflow_id)


async def _stream_stop(entry: Entry, client: Client, workflow_id: str) -> None:
    # As test_stream: the consumer starts the execution; the chunk stops the stream, the
    # next chunk's item is rejected; a second stop from the client is a no-op.
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    items = [item async for item in execution.get_async_runtime_stream("x", timeout=None)]
    assert items == ["last"], items

    async def after_stop() -> bool:
        return await execution.async_get_state("after_stop") is True

    await _until(after_stop, "put_after_stop")
    await execution.async_stop_stream()
    await execution.async_close()
    await _finish(client, workflow_id)


async def _stream_start_fails(entry: Entry, client: Client, workflow_id: str) -> None:
    # As test_stream: a consumer's own start fails, and the consumer raises its error.
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    try:
        async for _ in execution.get_async_runtime_stream(None, timeout=None):
            pass
    except ValueError:
        pass
    else:
        raise AssertionError(f"{entry.name}: the stream did not raise the start's error")
    await execution.async_close(pending_interrupts="cancel")
    await _finish(client, workflow_id)


async def _stream_continue_as_new(entry: Entry, client: Client, workflow_id: str) -> None:
    """Tick with a subscriber connected until the server suggests continue-as-new.

    test_stream lowers the suggestion threshold on its own dev server; the recorder's server
    keeps the default (~4k events), so this ticks until a new run starts. The recorded
    history is the last run: it starts from the carried runtime (stream log included) and
    puts the second item with the next sequence number.
    """
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    await execution.async_start(None)
    handle = client.get_workflow_handle(workflow_id)
    first_run = (await handle.describe()).run_id
    entries: list[Any] = []

    async def consume() -> None:
        async for item in execution.get_async_runtime_stream_items(timeout=None):
            entries.append(item)

    consumer = asyncio.create_task(consume())
    await execution.async_emit("tick", 0)

    async def first_item() -> bool:
        return len(entries) == 1

    await _until(first_item, "item 0")
    await asyncio.sleep(0.3)  # past the poll interval: the next poll is waiting
    for i in range(1, 2000):
        await execution.async_emit("tick", 100 + i)  # no item: tick puts only 0 and 24
        if i % 20 == 0 and (await handle.describe()).run_id != first_run:
            break
    else:
        raise AssertionError(f"{entry.name}: no continue-as-new after 2000 ticks")
    await execution.async_emit("tick", 24)
    await execution.async_close()
    await asyncio.wait_for(consumer, 60)
    assert [(e.item, e.seq) for e in entries] == [(0, 0), (24, 1)], entries
    await _finish(client, workflow_id)


def _stream_events_tracing_and_cli_flows() -> list[Entry]:
    s = test_stream
    ev = test_events
    tr = test_tracing
    stream_iv = TriggerFlow(name="stream-iv")
    stream_iv.to(s.ask).intervention_point(name="point", target="review").to(s.review)
    stream_stop = TriggerFlow(name="stream-stop")
    stream_stop.to(s.put_then_stop).to(s.put_after_stop)
    stream_fail = TriggerFlow(name="stream-fail")
    stream_fail.to(s.fail)
    stream_can = TriggerFlow(name="stream-can")
    stream_can.when("tick").to(s.tick)
    events_fail = TriggerFlow(name="events-fail")
    events_fail.to(ev.a).to(ev.boom)
    events_ws = TriggerFlow(name="events-ws")
    events_ws.to(ev.keep_evidence)
    return [
        Entry(
            "stream-iv",
            stream_iv,
            [
                ("start", None),
                ("intervene", {"hint": "strict"}, {"target": "review"}),
                ("intervene", {"hint": "unused"}, {"target": "elsewhere"}),
                ("continue", "i", "go"),
            ],
        ),
        Entry("stream-stop", stream_stop, [], custom=_stream_stop),
        Entry("stream-fail", stream_fail, [], custom=_stream_start_fails),
        Entry("stream-can", stream_can, [], custom=_stream_continue_as_new),
        Entry("events-fail", events_fail, [("start_fails", None)]),
        Entry("events-ws", events_ws, [("start", "doc-1")]),
        # Recorded without an OTel provider: tracing adds no workflow commands.
        Entry("traced", tr.traced, [("start", "T-1")]),
        Entry(
            "traced_approval",
            tr.traced_approval,
            [("start", "T-2"), ("continue", None, {"approved": True})],
        ),
        # The calls the CLI test makes: start (no auto close, auto_close_timeout 0), emit,
        # close with a reason, then an emit after close (ignored).
        Entry(
            "cli-ping",
            test_cli.ping_flow,
            [
                ("start", "go"),
                ("emit", "ping", "cli"),
                ("close", {"reason": "done"}),
                ("emit", "ping", None),
            ],
            execution={"auto_close_timeout": 0.0},
        ),
    ]


def _foreach_history_bound_flows() -> list[Entry]:
    """One run each: pins the bounded fan-out (patch marker, default in-flight cap).

    Their continue-as-new runs are replayed by tests/test_foreach_history_bound.py itself.
    """
    fb = test_foreach_history_bound

    def open_gates() -> None:
        fb.RELEASE_SLOW.set()
        fb.OPEN_GATE.set()

    return [
        Entry(
            "fb-large",
            fb.large,
            [("start", list(range(150)))],
            execution={"auto_close": True, "auto_close_timeout": 0.0},
        ),
        Entry("fb-nested", fb.nested, [("start", [[1, 2], [3]])]),
        Entry("fb-after-pause", fb.after_pause, [("start", None), ("continue", "approve", [1, 2])]),
        Entry("fb-item-pauses", fb.item_pauses, [("start", [0, 1]), ("continue", "item-0", "r")]),
        Entry(
            "fb-close-held",
            fb.close_held,
            [("start", None), ("emit", "slow", None), ("emit", "go", [1, 2])],
            before=open_gates,
        ),
        Entry("fb-snapshot", fb.snapshot_flow, [("start", [0, 1, 2])], before=open_gates),
        Entry(
            "fb-big-carry",
            fb.big_carry,
            [("start", [1, 2])],
            execution={"auto_close": True, "auto_close_timeout": 0.0},
        ),
    ]


def _run_long_flows() -> list[Entry]:
    t = test_run_long
    blob = {"blob": "x" * 64}
    return [
        Entry("long-loop", t.loop, [("start", {"n": 1, "target": 30})]),
        Entry("long-fragile", t.fragile, [("start_fails", {"n": 1, "fail_at": 5})]),
        Entry("long-local-fragile", t.local_fragile, [("start_fails", {"n": 1, "fail_at": 5})]),
        Entry("long-chain", t.chain, [("start", 0)]),
        Entry("long-nested", t.nested, [("start", 1)]),
        Entry(
            "long-approvals",
            t.approvals,
            [("start", 0), ("continue", None, blob), ("continue", None, blob)],
        ),
        Entry("long-inline-loop", t.inline_loop, [("start", {"n": 1, "target": 450})]),
        # Ticks of 0.25 s: a workflow task (~8 s, the SDK's heartbeat) holds ~30 of them, so
        # the loop continues as new when recorded against a server with a low suggestion:
        # TRIGGERFLOW_TEMPORAL_ADDRESS=... of `temporal server start-dev --dynamic-config-value
        # limit.historyCount.suggestContinueAsNew=20` (one run, 40 markers, on the default).
        Entry(
            "long-local-loop",
            test_long_loop_yield.local_loop,
            [("start", {"n": 1, "target": 40, "pause": 0.25})],
        ),
        Entry("abandoned-bystander", abandoned.bystander_flow(), [("start", 1)]),
        Entry(
            "abandoned-victim",
            abandoned.victim_flow(),
            [("start", 0)],
            before=abandoned.RELEASE.set,
        ),
        Entry(
            "sec-resume-event",
            security_workflow.flow,
            [("start", None), ("emit", "forge", None), ("emit", "decided", {"approved": True})],
        ),
        Entry("sec-snapshot", security_snapshot.flow, [("start", "q"), ("continue", "gate", "y")]),
        Entry("access-rules", access.flow, [("start", None), ("continue", "gate", "ok")]),
        Entry("access-bad-pause", access.bad, [("start_fails", None)]),
        Entry("access-anyone", access.anyone, [("start", None), ("continue", "anyone", 1)]),
        Entry("msg-invoice", messages.flow, [("start", "inv-1"), ("continue", "paid", "ok")]),
        Entry(
            "gw_approval",
            gateway.approval,
            [("start", "t-1"), ("emit", "note", "n"), ("continue", None, {"approved": True})],
        ),
        Entry("gw_quick", gateway.quick, [("start", "hi")]),
        Entry("gw_failing", gateway.failing, [("start_fails", "x")]),
        Entry(
            "gw_double",
            gateway.double,
            [("start", None), ("continue", "first", "a"), ("continue", "second", "b")],
        ),
        Entry("gw_guarded", gateway.guarded, [("start", 100), ("continue", "sign-off", "ok")]),
        Entry("gw_evented", gateway.evented, [("start", None), ("emit", "approve", "yes")]),
        Entry("gw_invoice", gateway.invoice, [("start", "INV-1"), ("continue", "paid", 1)]),
        Entry("gw_unserved", gateway.unserved, [("start", "x")]),
        Entry(
            "sec-resources",
            security_resources.flow,
            [("start", None)],
            execution={"runtime_resources": {"db": "catalogue-db", "extra": "mine"}},
        ),
        Entry(
            "gw_review",
            gateway.review,
            [
                ("start", {"title": "R-1", "amount": 5, "assignees": ["bob"]}),
                ("continue", "review", {"approved": True, "risk": "low"}),
            ],
        ),
    ]


def _notify_flows() -> list[Entry]:
    """Reminders, escalation and notifications (issue 15; no channels when recorded)."""
    return [
        Entry(
            "notify-reminded",
            notify.reminded,
            [("start", None), ("continue", "refund", {"approved": True})],
        ),
        Entry("notify-timed", notify.timed, [("start", None), ("continue", "quick", "ok")]),
        Entry("notify-routed", notify.routed, [("start", None), ("continue", "ops-only", "ok")]),
        Entry("notify-failing", notify.failing, [("start_fails", None)]),
        Entry("notify-paced", notify.paced, [("start", None), ("continue", "paced", "ok")]),
        Entry(
            "notify-paced-escalation",
            notify.paced_escalation,
            [("start", None), ("continue", "esc", "ok")],
        ),
    ]


async def _sealing(entry: Entry, client: Client, workflow_id: str) -> None:
    # As test_sealing: seal, refused emit and continue_with, unseal, resume, close sealed.
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    await sealing.run_sealing(execution)
    await _finish(client, workflow_id)


async def _sealed_ticks(entry: Entry, client: Client, workflow_id: str) -> None:
    # A state write while sealed, then close(seal=False) after unsealing.
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    await execution.async_start(None)
    await execution.async_emit("tick", 0)
    await execution.async_seal()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await execution.async_emit("tick", 1)  # refused by the validator: not in history
    await execution.async_append_state("ticks", 2)
    await execution.async_unseal()
    await execution.async_emit("tick", 3)
    await execution.async_close(seal=False)
    await _finish(client, workflow_id)


def _sealing_flows() -> list[Entry]:
    """Sealing (issue 16): async_seal / async_unseal and close(seal=False)."""
    return [
        Entry("sl-seal", sealing.flow, [], custom=_sealing),
        Entry("sl-ticker", sealing.ticker, [], custom=_sealed_ticks),
    ]


# Intervention policies the recording worker serves (record_flows.py); a replay needs none:
# the policy's answers are local-activity markers in the history.
INTERVENTION_POLICIES = intervention_policy.POLICIES


def _intervention_policy_flows() -> list[Entry]:
    """intervention_policy (issue 16): a worker-registered policy chooses (local activity)."""
    ip = intervention_policy
    scenario: list[Step] = [
        ("start", "x"),
        ("intervene", {"p": 1}, {}),
        ("intervene", {"p": 2}, {"target": "ip_c"}),
        ("intervene", {"p": 3}, {"target": "nowhere"}),
        ("continue", "gate", "go"),
    ]
    auto = {"intervention_mode": "auto"}
    return [
        Entry("ip-policy", ip.flow, scenario, {**auto, "intervention_policy": ip.pick_last}),
        Entry(
            "ip-policy-raises", ip.flow, scenario, {**auto, "intervention_policy": ip.pick_raises}
        ),
        Entry("ip-planned", ip.planned, scenario, {"intervention_policy": ip.pick_last}),
        Entry(
            "ip-ticker",
            ip.ticker,
            [("start", None), ("emit", "tick", 0), ("intervene", "one", {}), ("emit", "tick", 1)],
            {**auto, "intervention_policy": ip.pick_last},
        ),
    ]


def _payload_flows() -> list[Entry]:
    """Compact payloads (issue 18): data answers, a resume, a chain, continue-as-new."""
    p = test_payload_size
    chain3 = TriggerFlow(name="payload-chain3")
    chain3.to(chain3.chunk(p.echo, name="a")).to(chain3.chunk(p.echo, name="b")).to(
        chain3.chunk(p.echo, name="c")
    )
    return [
        Entry("pl-answers", p.answers_flow, [("start", p.TEN_BYTES)]),
        Entry("pl-resume", p.resume_flow, [("start", p.TEN_BYTES), ("continue", None, {"ok": 1})]),
        Entry("pl-chain3", chain3, [("start", p.TEN_BYTES)]),
        Entry("pl-ticker", p.ticker, [("start", None), ("emit", "tick", 0), ("emit", "tick", 1)]),
    ]


def _reads_state_flows() -> list[Entry]:
    """State sent as the keys a chunk reads (issue 18): activity, local and inline chunks."""
    rs = test_reads_state
    return [
        Entry("rs-reads-state", rs.flow, [("start", "go")]),
        Entry("rs-undeclared", rs.undeclared_flow, [("start_fails", None)]),
    ]


def entries(tmp_dir: Path) -> list[Entry]:
    """Every catalogue entry (``tmp_dir`` holds files some scenarios need)."""
    found = [
        *_runtime_flows(),
        *_pause_resume_flows(),
        *_durability_flows(),
        *_persistence_and_hitl_flows(),
        *_example_flows(),
        *_reliability_flows(tmp_dir),
        *_conformance_flows(),
        *_conformance_pause_and_stream_flows(),
        *_stream_events_tracing_and_cli_flows(),
        *_foreach_history_bound_flows(),
        *_run_long_flows(),
        *_notify_flows(),
        *_sealing_flows(),
        *_intervention_policy_flows(),
        *_payload_flows(),
        *_reads_state_flows(),
        *_agently_parity_flows(),
    ]
    names = [entry.name for entry in found]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    return found


def served_flows(found: list[Entry]) -> list[TriggerFlow]:
    """The flows one plugin serves to record or replay every entry."""
    flows: list[TriggerFlow] = []
    for entry in found:
        for flow in [entry.flow, *entry.serve]:
            if not any(flow is known for known in flows):
                flows.append(flow)
    return flows


RESOURCES = {"shared": "flow-level"}


async def run_entry(entry: Entry, client: Client, workflow_id: str) -> None:
    """Run ``entry``'s scenario to the end of its workflow."""
    if entry.before is not None:
        entry.before()
    if entry.custom is not None:
        await entry.custom(entry, client, workflow_id)
        return
    options = {"auto_close": False, **entry.execution}
    execution = entry.flow.create_execution(client=client, execution_id=workflow_id, **options)
    closed = False
    for step in entry.steps:
        kind = step[0]
        if kind == "start":
            await execution.async_start(step[1])
            closed = closed or bool(options["auto_close"])
        elif kind == "start_fails":
            try:
                await execution.async_start(step[1])
            except Exception:
                pass
            else:
                raise AssertionError(f"{entry.name}: start did not fail")
        elif kind == "emit":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                await execution.async_emit(step[1], step[2])
        elif kind == "continue":
            interrupt_id = step[1] or next(iter(await execution.async_get_pending_interrupts()))
            try:
                await execution.async_continue_with(interrupt_id, step[2])
            except (RuntimeError, ValueError):
                pass  # a resume that fails the execution by design (resume limit)
        elif kind == "set_state":
            await execution.async_set_state(step[1], step[2])
        elif kind == "intervene":
            await execution.async_intervene(step[1], **step[2])
        elif kind == "wait_not_waiting":
            for _ in range(200):
                if await execution.async_get_status() != "waiting":
                    break
                await asyncio.sleep(0.05)
        elif kind == "close":
            await execution.async_close(**(step[1] if len(step) > 1 else {}))
            closed = True
        else:
            raise ValueError(f"unknown step {kind!r}")
    if not closed:
        await execution.async_close(pending_interrupts="cancel")
    try:
        await client.get_workflow_handle(workflow_id).result()
    except WorkflowFailureError:
        pass


def history_workflow_types(*, recursive: bool = True) -> dict[str, Path]:
    """Workflow type -> first checked-in history of it (tests/histories[/**]/*.json)."""
    found: dict[str, Path] = {}
    paths = HISTORIES_DIR.rglob("*.json") if recursive else HISTORIES_DIR.glob("*.json")
    for path in sorted(paths):
        events = json.loads(path.read_text(encoding="utf-8"))["events"]
        name = events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
        found.setdefault(name, path)
    return found


def literal_flow_names() -> dict[str, str]:
    """``TriggerFlow(name="...")`` literals in tests/ and the examples: name -> file."""
    roots = [REPO_ROOT / "tests", REPO_ROOT / "triggerflow_temporal" / "examples"]
    names: dict[str, str] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            tree = _parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and _callee(node) == "TriggerFlow"):
                    continue
                for keyword in node.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        names.setdefault(str(keyword.value.value), str(path.relative_to(REPO_ROOT)))
    return names


def _parse(source: str) -> ast.Module:
    """``ast.parse`` with no garbage collection during it.

    On CPython 3.11 a collection inside ``ast.parse`` that finalizes an object whose
    finalizer logs a traceback (an asyncio task or future whose error nobody retrieved)
    parses again from within the parse (3.11's traceback carets use ``ast.parse``), and
    the outer parse fails with ``SystemError: AST constructor recursion depth mismatch``.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source)
    finally:
        if enabled:
            gc.enable()


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _agently_parity_flows() -> list[Entry]:
    """Issue 16 (Agently parity): resume ledger in snapshots, sub-flow mappings, contracts."""
    sm = sub_flow_mappings
    return [
        Entry("c-snapshot-ledger", snapshot_tree.flow, [], custom=_snapshot_ledger),
        Entry("sm-child", sm.child, [("start", "alone")]),
        Entry("sm-final-child", sm.final_child, [("start", None)]),
        Entry(
            "sm-resources-child",
            sm.resources_child,
            [("start", None)],
            execution={"runtime_resources": {"limit": 1, "store": "s"}},
        ),
        Entry("sm-nested", sm.nested, [("start", {"id": 7, "tag": "t"})]),
        Entry("sm-final", sm.final, [("start", {"payload": {"q": 1}})]),
        Entry("sm-passthrough", sm.passthrough, [("start", "parent-value")]),
        Entry("sm-default", sm.default, [("start", "plain")]),
        Entry("sm-missing", sm.missing, [("start_fails", {"present": 1})]),
        Entry(
            "sm-resources",
            sm.resources,
            [("start", {"limit": 5})],
            execution={"runtime_resources": {"db": "db-1"}},
        ),
        # Contracts: the coerced start value, and a refused result failing the chunk.
        Entry("ct-typed", contracts.flow, [("start", {"id": "7"})]),
        Entry(
            "ct-typed-bad-result",
            contracts.flow,
            [("start_fails", {"id": 9, "note": "bad-result"})],
        ),
        *_sub_flow_pause_flows(),
        Entry("db-bindings", dynamic_bindings.flow, [], custom=_dynamic_bindings),
        # issue 18: the embedded stack's defaults (tests/test_embedded_defaults.py).
        Entry("embedded_defaults", embedded_defaults.flow, [("start", 1)]),
    ]


# execution.on() handlers the recording worker serves (record_flows.py).
EVENT_HANDLERS = dynamic_bindings.HANDLERS


async def _dynamic_bindings(entry: Entry, client: Client, workflow_id: str) -> None:
    # As test_dynamic_bindings: one binding before the start, one added live, one removed.
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    execution.on("ping", dynamic_bindings.db_on_ping, binding_id="first")
    await execution.async_start(1)
    await execution.async_emit("ping", 2)
    await execution.async_on("ping", dynamic_bindings.db_on_ping_again, binding_id="second")
    await execution.async_emit("ping", 3)
    await execution.async_off("first")
    await execution.async_emit("ping", 4)
    await execution.async_close()
    await _finish(client, workflow_id)


def _sub_flow_pause_flows() -> list[Entry]:
    """Pauses inside sub-flows: projected, continued through the parent, cancelled."""
    sp = sub_flow_pause
    runs = sub_flow_pause_runs
    lasting = {"auto_close": False}
    return [
        Entry("sp-child", sp.sp_child, [("start", 3), ("continue", None, "ok")], lasting),
        Entry("sp-middle", sp.sp_middle, [("start", 4), ("continue", None, "ok")], lasting),
        Entry("sp-parent", sp.sp_parent, [("start", 5), ("continue", None, "yes")], lasting),
        Entry("sp-deep", sp.sp_deep, [("start", 2), ("continue", None, "deep")], lasting),
        Entry("sr-child", runs.sr_child, [("start", None), ("continue", None, "ok")], lasting),
        Entry("sr-parent", runs.sr_parent, [("start", None), ("continue", None, "yes")], lasting),
        Entry(
            "sr-twice",
            runs.sr_twice,
            [("start", None), ("continue", None, "one"), ("continue", None, "two")],
            lasting,
        ),
        Entry(
            "sr-twice-child",
            runs.sr_twice_child,
            [("start", None), ("continue", None, "one"), ("continue", None, "two")],
            lasting,
        ),
        Entry(
            "sp-parent-cancel",
            sp.sp_parent,
            [("start", 1), ("close", {"pending_interrupts": "cancel"})],
            lasting,
        ),
    ]


async def _snapshot_ledger(entry: Entry, client: Client, workflow_id: str) -> None:
    # As test_snapshot_tree: resumes with resume_request_ids, saves, closes.
    execution = entry.flow.create_execution(
        client=client, execution_id=workflow_id, auto_close=False
    )
    await snapshot_tree.run_ledger_flow(execution)
    await _finish(client, workflow_id)
