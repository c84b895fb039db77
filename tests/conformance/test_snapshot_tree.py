"""Snapshot tree: async_save() has native execution.save()'s keys and types at every depth.

Native recording: native/snapshot_tree.py (agently 4.1.4.10) -> native/snapshot_tree.json,
the key/type tree of the snapshot of a flow that paused, was resumed with a
resume_request_id, ran on and paused again ("waiting"), and of the same execution closed.

Deviations (docs/triggerflow-on-temporal.md, "Save, load, history and fork"), taken out
of both trees below and nothing else:
- the extra top-level ``temporal`` section and ``durable_system_state.temporal`` (the graph,
  options and Temporal-only runtime, so a snapshot loads from any process);
- ``resumed_by_principal`` on resumed interrupts (who resumed, how authenticated, when);
- no ``snapshot_store`` resource (Temporal history is the store, design deviation 5), so
  ``resource_keys`` and ``resource_requirements`` are empty here;
- ``signal_net.signal_attempts`` lists the external signals only (start, emits, resumes)
  and an attempt's ``meta`` is its signal's meta without the resume context: the attempts'
  own keys are compared, not their meta.

The loads below read the resume ledger in both shapes: Agently's
``{interrupt_id: {request_id: entry}}`` and the ``{request_id: {"interrupt_id", ...}}``
that snapshots saved by earlier versions of this package have.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from triggerflow_temporal import SnapshotError, TriggerFlow

from .native._tree import key_type_tree, tree_differences

NATIVE = json.loads(
    (Path(__file__).parent / "native" / "snapshot_tree.json").read_text(encoding="utf-8")
)


async def ledger_ask(data):
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(type="approval", interrupt_id="i", payload={"q": 1})


async def ledger_fin(data):
    await data.async_set_state("fin", data.input)
    return data.input


async def ledger_confirm(data):
    return await data.async_pause_for(type="confirm", interrupt_id="j", payload={"q": 2})


async def ledger_done(data):
    await data.async_set_state("done", data.input)


flow = TriggerFlow(name="c-snapshot-ledger")
flow.to(ledger_ask).to(ledger_fin).to(ledger_confirm).to(ledger_done)

FLOWS = [flow]


async def run_ledger_flow(execution: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The native script's calls: the waiting and the closed snapshot."""
    await execution.async_start("x")
    await execution.async_continue_with("i", {"ok": True}, resume_request_id="r-1", actor="alice")
    waiting = await execution.async_save()
    await execution.async_continue_with("j", "yes", resume_request_id="r-2")
    await execution.async_close()
    return waiting, await execution.async_save()


def _without_deviations(tree: dict[str, Any]) -> dict[str, Any]:
    tree = copy.deepcopy(tree)
    tree.pop("temporal", None)
    tree["durable_system_state"].pop("temporal", None)
    for record in tree["interrupts"].values():
        record.pop("resumed_by_principal", None)
    tree["resource_keys"] = []
    tree["resource_requirements"] = []
    attempts = {
        json.dumps({**attempt, "meta": "dict"}, sort_keys=True)
        for attempt in tree["signal_net"]["signal_attempts"]
    }
    tree["signal_net"]["signal_attempts"] = [json.loads(a) for a in sorted(attempts)]
    return tree


def _ledger_values(saved: dict[str, Any]) -> dict[str, Any]:
    return {
        interrupt_id: {
            request_id: {k: v for k, v in entry.items() if not k.endswith("_at")}
            for request_id, entry in requests.items()
        }
        for interrupt_id, requests in saved["resume_ledger"].items()
    }


async def test_snapshot_key_type_tree_is_native(runtime):
    async with runtime(FLOWS):
        waiting, closed = await run_ledger_flow(flow.create_execution(auto_close=False))
    json.dumps([waiting, closed])  # JSON-ready as they are
    for name, saved in (("waiting", waiting), ("closed", closed)):
        ours = _without_deviations(key_type_tree(saved))
        native = _without_deviations(NATIVE[name])
        assert tree_differences(ours, native) == [], name
        assert ours == native
    assert _ledger_values(waiting) == NATIVE["waiting_resume_ledger"]
    assert waiting["interrupts"]["i"]["external_wait_request"]["dispatch_state"] == "completed"
    assert closed["resume_ledger"]["j"]["r-2"]["status"] == "completed"
    assert closed["result"] == {"ready": False, "value": None}  # no end() sink: as natively
    # The deviations are what the docs say they are.
    assert set(waiting["durable_system_state"]) == {"temporal"}
    assert waiting["interrupts"]["i"]["resumed_by_principal"]["subject"] == "alice"


def _old_shape(saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` as an earlier version wrote its ledger: request id first, flat."""
    old = copy.deepcopy(saved)
    old["resume_ledger"] = {
        request_id: {"interrupt_id": interrupt_id, **entry}
        for interrupt_id, requests in saved["resume_ledger"].items()
        for request_id, entry in requests.items()
    }
    return old


async def _loads_and_guards_r1(saved: dict[str, Any], execution_id: str) -> None:
    """The loaded copy knows request r-1: a repeat is a no-op, another value a conflict."""
    copy_ = flow.create_execution(auto_close=False, execution_id=execution_id)
    await copy_.async_load(saved)
    assert list(await copy_.async_get_pending_interrupts()) == ["j"]
    repeated = await copy_.async_continue_with("i", {"ok": True}, resume_request_id="r-1")
    assert repeated["status"] == "resumed"
    with pytest.raises(ValueError, match="conflicting resume_request_id"):
        await copy_.async_continue_with("i", {"ok": False}, resume_request_id="r-1")
    await copy_.async_continue_with("j", "again", resume_request_id="r-2")
    resaved = await copy_.async_save()
    assert sorted(resaved["resume_ledger"]) == ["i", "j"]
    assert resaved["resume_ledger"]["j"]["r-2"]["status"] == "completed"
    assert (await copy_.async_close())["done"] == "again"


async def test_load_reads_the_native_and_the_old_ledger_shape(runtime):
    async with runtime(FLOWS):
        original = flow.create_execution(auto_close=False)
        waiting, _closed = await run_ledger_flow(original)
        await _loads_and_guards_r1(waiting, f"{original.id}-native")
        old = _old_shape(waiting)
        await _loads_and_guards_r1(old, f"{original.id}-old")
        # Only the ledger knows r-1: the interrupt records lost their requests.
        for record in old["interrupts"].values():
            record.pop("resume_requests", None)
        await _loads_and_guards_r1(old, f"{original.id}-ledger-only")
        for bad in ([], {"i": [1]}, {"i": {"r-1": "accepted"}}):
            broken = copy.deepcopy(waiting)
            broken["resume_ledger"] = bad
            with pytest.raises(SnapshotError, match="resume_ledger"):
                await flow.create_execution(execution_id=f"{original.id}-bad").async_load(broken)
