"""Hostile snapshots (issue 17): a snapshot's ``temporal`` section is checked before any
workflow is started from it. An edited spec (unknown activity options, a spec that does not
match its hashes) is refused with a typed error naming the problem, and no execution starts;
before this, such a snapshot loaded and then failed every workflow task of the new execution.
"""

from __future__ import annotations

import copy
import uuid

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from triggerflow_temporal import SnapshotError, TriggerFlow
from triggerflow_temporal.client.persistence import load_execution
from triggerflow_temporal.spec.flow_spec import FlowSpec


async def ask(data):
    return await data.async_pause_for(type="approval", interrupt_id="gate")


async def after(data):
    await data.async_set_state("answer", data.input)


flow = TriggerFlow(name="sec-snapshot")
flow.to(ask).to(after)


def rehash(saved: dict) -> dict:
    """Recompute every hash of an edited spec, as a careful forger would."""
    spec = saved["temporal"]["spec"]
    digest = FlowSpec.hash_of(tuple(spec["operators"]), spec["chunks"], {})
    spec["blueprint_hash"] = digest
    saved["temporal"]["blueprint_hash"] = digest
    saved["flow_definition_fingerprint"] = f"sha256:{digest}"
    return saved


async def assert_not_started(client: Client, execution_id: str) -> None:
    with pytest.raises(RPCError):
        await client.get_workflow_handle(execution_id).describe()


async def saved_snapshot(client: Client) -> dict:
    execution = flow.create_execution(client=client, auto_close=False)
    await execution.async_start("question")
    saved = await execution.async_save()
    await execution.async_close(pending_interrupts="cancel")
    return saved


async def test_an_unknown_activity_option_in_a_rehashed_spec_is_refused(runtime):
    async with runtime([flow]) as client:
        saved = await saved_snapshot(client)
        forged = copy.deepcopy(saved)
        chunk = next(iter(forged["temporal"]["spec"]["chunks"]))
        forged["temporal"]["spec"]["chunks"][chunk]["activity"] = {"bogus_timeout": 5}
        target = f"forged-{uuid.uuid4().hex[:8]}"
        with pytest.raises(SnapshotError, match=r"unknown activity options \['bogus_timeout'\]"):
            await load_execution(client, rehash(forged), execution_id=target)
        await assert_not_started(client, target)


async def test_a_malformed_activity_option_is_refused(runtime):
    async with runtime([flow]) as client:
        saved = await saved_snapshot(client)
        forged = copy.deepcopy(saved)
        chunk = next(iter(forged["temporal"]["spec"]["chunks"]))
        forged["temporal"]["spec"]["chunks"][chunk]["activity"] = {"retry_policy": {"x": 1}}
        target = f"forged-{uuid.uuid4().hex[:8]}"
        with pytest.raises(SnapshotError, match="malformed activity options"):
            await load_execution(client, rehash(forged), execution_id=target)
        await assert_not_started(client, target)


async def test_a_spec_edited_without_its_hashes_is_refused(runtime):
    async with runtime([flow]) as client:
        saved = await saved_snapshot(client)
        forged = copy.deepcopy(saved)
        chunk = next(iter(forged["temporal"]["spec"]["chunks"]))
        forged["temporal"]["spec"]["chunks"][chunk]["execute_in"] = "workflow"
        target = f"forged-{uuid.uuid4().hex[:8]}"
        with pytest.raises(SnapshotError, match="not an intact flow spec"):
            await load_execution(client, forged, execution_id=target)
        # The spec rehashed but the fingerprint left alone: the hashes disagree.
        spec = forged["temporal"]["spec"]
        spec["blueprint_hash"] = FlowSpec.hash_of(tuple(spec["operators"]), spec["chunks"], {})
        with pytest.raises(SnapshotError, match="hashes disagree"):
            await load_execution(client, forged, execution_id=target)
        await assert_not_started(client, target)


async def test_the_unedited_snapshot_still_loads_and_resumes(runtime):
    async with runtime([flow]) as client:
        saved = await saved_snapshot(client)
        target = f"loaded-{uuid.uuid4().hex[:8]}"
        await load_execution(client, rehash(copy.deepcopy(saved)), execution_id=target)
        execution = flow.get_execution(client=client, execution_id=target)
        assert list(await execution.async_get_pending_interrupts()) == ["gate"]
        await execution.async_continue_with("gate", "yes")
        assert (await execution.async_get_state())["answer"] == "yes"
        await execution.async_close()


KEY = "snapshot-key-" + "k" * 32


async def test_with_a_snapshot_key_only_signed_unedited_snapshots_load(runtime):
    async with runtime([flow], snapshot_key=KEY) as client:
        saved = await saved_snapshot(client)
        assert saved["signature"].startswith("hmac-sha256:")
        # Edited after saving (the state), or re-signed with another key: refused.
        edited = copy.deepcopy(saved)
        edited["state"] = {"answer": "forged"}
        target = f"signed-{uuid.uuid4().hex[:8]}"
        with pytest.raises(SnapshotError, match="signature does not match"):
            await flow.create_execution(execution_id=target).async_load(edited)
        unsigned = {k: v for k, v in saved.items() if k != "signature"}
        with pytest.raises(SnapshotError, match="not signed"):
            await flow.create_execution(execution_id=target).async_load(unsigned)
        report = flow.create_execution().inspect_load(edited)
        assert report["status"] == "invalid_snapshot"
        await assert_not_started(client, target)
        # The snapshot as saved loads and resumes.
        loaded = flow.create_execution(execution_id=target)
        await loaded.async_load(saved)
        await loaded.async_continue_with("gate", "signed")
        assert (await loaded.async_get_state())["answer"] == "signed"
        await loaded.async_close()
