"""The resume ledger's pure rules (interpreter/resume_ledger.py), without Temporal.

The Temporal side (a resumed chain completes its request, snapshots and loads in both
ledger shapes) is tests/conformance/test_snapshot_tree.py.
"""

from __future__ import annotations

import pytest

from triggerflow_temporal import SnapshotError
from triggerflow_temporal.interpreter.resume_ledger import (
    collect_ledger,
    finish_resume,
    merge_ledger,
    native_interrupt,
    note_resume,
)


def _record(status: str = "resumed") -> dict:
    return {
        "id": "i",
        "status": status,
        "resume_request_id": "r",
        "response": 1,
        "external_wait_request": {"dispatch_state": "exposed", "actor_id": None},
        "resume_requests": {
            "r": {
                "request_id": "r",
                "status": "accepted",
                "value": 1,
                "actor": {"subject": "alice", "tenant": "t"},
                "accepted_at": 5.0,
            }
        },
    }


def _resume_signal() -> dict:
    return {
        "source": "interrupt",
        "meta": {"resume": {"interrupt_id": "i", "interrupt": {"resume_request_id": "r"}}},
    }


def test_a_finished_root_completes_its_request():
    interrupts = {"i": _record()}
    root: dict = {"signal_id": "s"}
    note_resume(root, _resume_signal())
    finish_resume(interrupts, {**root, "error": None}, 9.0)
    entry = interrupts["i"]["resume_requests"]["r"]
    assert entry["status"] == "completed" and entry["completed_at"] == 9.0
    assert entry["dispatched_at"] == 5.0 and entry["dispatch_attempts"] == 1


def test_a_failed_root_marks_its_request_dispatch_failed():
    interrupts = {"i": _record()}
    root: dict = {}
    note_resume(root, _resume_signal())
    finish_resume(interrupts, {**root, "error": {"message": "boom"}}, 9.0)
    entry = interrupts["i"]["resume_requests"]["r"]
    assert (entry["status"], entry["error"], entry["dispatch_failed_at"]) == (
        "dispatch_failed",
        "boom",
        9.0,
    )


def test_other_roots_leave_requests_alone():
    interrupts = {"i": _record()}
    root: dict = {}
    note_resume(root, {"source": "start", "meta": {}})
    assert root == {}
    finish_resume(interrupts, {"error": None}, 9.0)
    assert interrupts["i"]["resume_requests"]["r"]["status"] == "accepted"


def test_saved_interrupts_show_the_native_dispatch_state():
    saved = native_interrupt(_record())
    entry = saved["resume_requests"]["r"]
    assert entry["status"] == "dispatched" and entry["dispatch_attempts"] == 1
    wait = saved["external_wait_request"]
    assert (wait["dispatch_state"], wait["callback_idempotency_key"], wait["actor_id"]) == (
        "dispatched",
        "r",
        "alice",
    )
    assert saved["resume_claim"] is None
    assert collect_ledger({"i": saved}) == {"i": saved["resume_requests"]}
    # A waiting interrupt's request was not dispatched; nothing was claimed.
    waiting = native_interrupt({**_record("waiting"), "response": None})
    assert waiting["resume_requests"]["r"]["status"] == "accepted"


def test_merge_reads_both_ledger_shapes():
    native = {"interrupts": {"i": {"id": "i"}}, "resume_ledger": {"i": {"r": {"value": 2}}}}
    merge_ledger(native)
    assert native["interrupts"]["i"]["resume_requests"] == {"r": {"request_id": "r", "value": 2}}
    old = {
        "interrupts": {"i": {"id": "i"}, "j": {"id": "j", "resume_requests": {"q": {}}}},
        "resume_ledger": {
            "r": {"interrupt_id": "i", "request_id": "r", "status": "accepted", "value": 3},
            "q": {"interrupt_id": "j", "request_id": "q", "status": "accepted", "value": 4},
            "gone": {"interrupt_id": "x", "status": "accepted", "value": 5},
        },
    }
    merge_ledger(old)
    assert old["interrupts"]["i"]["resume_requests"]["r"]["value"] == 3
    # The record's own entry wins; one without a value compares as None, as natively.
    assert old["interrupts"]["j"]["resume_requests"] == {"q": {"value": None}}


@pytest.mark.parametrize(
    "ledger", [[], {"i": 1}, {"i": {"r": "x"}}], ids=["list", "entry", "request"]
)
def test_a_malformed_ledger_is_a_snapshot_error(ledger):
    with pytest.raises(SnapshotError, match="resume_ledger"):
        merge_ledger({"interrupts": {}, "resume_ledger": ledger})
    with pytest.raises(SnapshotError, match="resume_requests"):
        merge_ledger({"interrupts": {"i": {"id": "i", "resume_requests": [1]}}})
