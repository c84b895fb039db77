"""Snapshot input: ``async_save`` / ``async_load`` with corrupted, foreign and mismatched
snapshots (design.md section 3).

Each bad snapshot raises ``SnapshotError`` (a ``ValueError``) naming the problem, creates
no workflow under the target id and leaves the saved execution untouched. The valid cases
(save shape, load and resume, load into a renamed flow) show the checks can pass.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from triggerflow_temporal import ExecutionStateError, SnapshotError, TriggerFlow

from ._support import expect_raises
from .flows import approval, ask_approval, audit_decision, record_decision

# A snapshot written by native Agently 4.1.4.10 (shared/reference/triggerflow-semantics.md
# section 4.1): right shape, but no Temporal section.
NATIVE_SNAPSHOT: dict[str, Any] = {
    "schema_version": 2,
    "kind": "triggerflow.execution_snapshot",
    "snapshot_id": "0" * 32,
    "created_at": 1.0,
    "execution_id": "native-1",
    "flow_name": "rel-approval",
    "flow_definition_fingerprint": "sha256:30135dbd3ea6",
    "status": "waiting",
    "lifecycle_state": "open",
    "state_version": 3,
    "owner_id": None,
    "lease": {"owner_id": None, "lease_ttl": None, "lease_until": None, "heartbeat_at": None},
    "run_context": {"run_id": "1" * 32, "execution_id": "native-1", "meta": {}},
    "runtime_data": {"normalized": "R-2048"},
    "flow_data": {},
    "interrupts": {},
    "intervention": {"mode": None, "policy": None, "version": 0, "ledger": {}},
    "sub_flow_frames": {},
    "last_signal": {},
    "signal_net": {"version": 1, "bindings": [], "accepted_signal_ids": []},
    "snapshot_projection": {"version": 1},
    "snapshot_retention_policy": None,
    "result": {"ready": False, "value": None},
    "durable_system_state": {},
    "resource_requirements": [],
    "resource_keys": [],
    "managed_resource_keys": [],
    "execution_resource_requirement_ids": [],
    "resume_ledger": {},
    "compaction": {},
    "auto_close": False,
    "auto_close_timeout": 10.0,
    "started_at": 1.0,
    "last_activity_at": 1.0,
    "sealed_at": None,
    "closed_at": None,
    "close_reason": None,
    "lease_ttl": None,
    "lease_until": None,
    "heartbeat_at": None,
    "pending_task_count": 0,
}


def _edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """A corruption that edits a deep copy of the snapshot in place."""

    def apply(saved: dict[str, Any]) -> Any:
        edited = copy.deepcopy(saved)
        change(edited)
        return edited

    return apply


def _scramble_temporal_section(saved: dict[str, Any]) -> None:
    system = saved["durable_system_state"]["temporal"]
    for key in list(system):
        system[key] = "garbage"


def _bad_options(saved: dict[str, Any]) -> None:
    saved["temporal"]["options"] = {"auto_close_timeout": "soon", "concurrency": -3}


def _break_interrupt(saved: dict[str, Any]) -> None:
    record = saved["interrupts"]["approve"]
    record["id"] = "someone-else"


CORRUPTIONS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("json-garbage", lambda saved: "{not json", "JSON"),
    ("truncated-json", lambda saved: json.dumps(saved)[: len(json.dumps(saved)) // 2], "JSON"),
    ("a-list", lambda saved: [saved], "dict"),
    ("none", lambda saved: None, "dict"),
    ("wrong-kind", _edit(lambda s: s.update(kind="triggerflow.flow_config")), "kind"),
    ("future-schema", _edit(lambda s: s.update(schema_version=99)), "schema_version"),
    ("no-runtime-data", _edit(lambda s: s.pop("runtime_data")), "runtime_data"),
    ("runtime-data-list", _edit(lambda s: s.update(runtime_data=[1])), "runtime_data"),
    (
        "bad-fingerprint",
        _edit(lambda s: s.update(flow_definition_fingerprint="md5:abc")),
        "fingerprint",
    ),
    ("interrupt-id-mismatch", _edit(_break_interrupt), "interrupt"),
    ("native-agently", lambda saved: copy.deepcopy(NATIVE_SNAPSHOT), "temporal"),
    ("scrambled-temporal-section", _edit(_scramble_temporal_section), "temporal|snapshot"),
    ("bad-options", _edit(_bad_options), "option|auto_close_timeout|concurrency"),
]


async def _paused(runtime_client: Any) -> tuple[Any, dict[str, Any]]:
    execution = approval.create_execution(auto_close=False)
    await execution.async_start({"ticket": "S-1"})
    return execution, await execution.async_save()


async def _absent(client: Any, execution_id: str) -> bool:
    return [w async for w in client.list_workflows(f"WorkflowId = '{execution_id}'")] == []


async def _still_resumable(execution: Any, *, loaded: bool = False) -> None:
    await execution.async_continue_with("approve", {"approved": True})
    expected: dict[str, Any] = {"decisions": [{"approved": True}]}
    if loaded:
        expected["$interventions"] = {}  # native: every load writes the (empty) ledger
    assert await execution.async_close() == expected


async def test_save_returns_json_ready_schema_v2_snapshot(runtime):
    async with runtime([approval]):
        execution, saved = await _paused(None)
        state = await execution.async_get_state()
        await _still_resumable(execution)
    assert json.loads(json.dumps(saved)) == saved
    assert saved["schema_version"] == 2
    assert saved["kind"] == "triggerflow.execution_snapshot"
    assert saved["execution_id"] == execution.id
    assert saved["flow_name"] == "rel-approval"
    assert saved["flow_definition_fingerprint"] == f"sha256:{approval.blueprint_hash}"
    assert (saved["status"], saved["lifecycle_state"]) == ("waiting", "open")
    assert saved["runtime_data"] == state
    assert saved["interrupts"]["approve"]["status"] == "waiting"


async def test_load_restores_a_paused_execution_under_a_new_id(runtime):
    async with runtime([approval]) as client:
        execution, saved = await _paused(client)
        copy_id = f"copy-{uuid.uuid4().hex[:8]}"
        restored = approval.create_execution(execution_id=copy_id, auto_close=False)
        await restored.async_load(saved)
        assert restored.id == copy_id
        assert list(await restored.async_get_pending_interrupts()) == ["approve"]
        await _still_resumable(restored, loaded=True)
        await _still_resumable(execution)  # the original is independent


async def test_load_into_a_renamed_flow_of_the_same_structure(runtime):
    renamed = TriggerFlow(name="rel-approval-renamed")
    renamed.to(ask_approval).to(record_decision)
    assert renamed.blueprint_hash == approval.blueprint_hash
    async with runtime([approval, renamed]):
        execution, saved = await _paused(None)
        restored = renamed.create_execution(
            execution_id=f"renamed-{uuid.uuid4().hex[:8]}", auto_close=False
        )
        await restored.async_load(saved)
        await _still_resumable(restored, loaded=True)
        await _still_resumable(execution)


async def test_load_into_a_different_blueprint_is_rejected(runtime):
    other = TriggerFlow(name="rel-approval")
    other.to(ask_approval).to(audit_decision).to(record_decision)
    async with runtime([approval]) as client:
        execution, saved = await _paused(client)
        target = f"other-{uuid.uuid4().hex[:8]}"
        load = other.create_execution(client=client, execution_id=target).async_load(saved)
        error = await expect_raises(load, SnapshotError, "(?i)fingerprint|blueprint")
        assert isinstance(error, ValueError)
        assert await _absent(client, target)
        await _still_resumable(execution)


async def test_load_under_the_id_of_an_open_execution_is_rejected(runtime):
    async with runtime([approval]):
        execution, saved = await _paused(None)
        load = approval.create_execution(execution_id=execution.id).async_load(saved)
        await expect_raises(load, ExecutionStateError, execution.id)
        await _still_resumable(execution)


@pytest.mark.parametrize(
    ("corrupt", "culprit"),
    [(c, m) for _, c, m in CORRUPTIONS],
    ids=[name for name, _, _ in CORRUPTIONS],
)
async def test_corrupted_or_foreign_snapshot_is_a_snapshot_error(runtime, corrupt, culprit):
    async with runtime([approval]) as client:
        execution, saved = await _paused(client)
        bad = corrupt(saved)
        target = f"bad-{uuid.uuid4().hex[:8]}"
        load = approval.create_execution(execution_id=target).async_load(bad)
        error = await expect_raises(load, SnapshotError, f"(?i){culprit}")
        assert isinstance(error, ValueError)
        assert await _absent(client, target)
        assert await execution.async_get_state() == saved["runtime_data"]
        assert list(await execution.async_get_pending_interrupts()) == ["approve"]
        await _still_resumable(execution)
