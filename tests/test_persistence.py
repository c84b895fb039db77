"""async_save / async_load / history / fork on a real dev server (issue: HITL item 4)."""

from __future__ import annotations

import json

import pytest

from triggerflow_temporal import ExecutionStateError, SnapshotError, TriggerFlow


async def ask(data):
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(type="approval", interrupt_id="approve", payload=data.input)


async def commit(data):
    await data.async_set_state("decision", data.input)
    await data.async_append_state("commits", data.input)


approval = TriggerFlow(name="persist-approval")
approval.to(ask).to(commit)


async def step_a(data):
    await data.async_append_state("trail", f"a:{data.input}")
    return data.input + 1


async def step_b(data):
    await data.async_append_state("trail", f"b:{data.input}")
    return data.input * 10


async def step_c(data):
    await data.async_append_state("trail", f"c:{data.input}")
    await data.async_set_state("result", data.input)


chain = TriggerFlow(name="persist-chain")
chain.to(step_a).to(step_b).to(step_c)


async def fast(data):
    await data.async_append_state("ran", "fast")
    return f"fast:{data.input}"


async def slow_pause(data):
    await data.async_append_state("ran", "slow")
    return await data.async_pause_for(type="review", interrupt_id="slow")


async def joined(data):
    await data.async_set_state("joined", data.input)


batch_flow = TriggerFlow(name="persist-batch")
batch_flow.batch(fast, slow_pause).to(joined)


async def test_save_load_continue_on_a_copy(runtime):
    async with runtime([approval]):
        original = approval.create_execution(auto_close=False)
        await original.async_start("R-1")
        saved = await original.async_save()
        assert saved["status"] == "waiting" and saved["lifecycle_state"] == "open"
        assert saved["close_reason"] is None
        text = json.dumps(saved)  # JSON-ready; load also accepts the text

        # The original is still open: its id is taken, the error says what to do.
        with pytest.raises(ExecutionStateError, match="still open"):
            await approval.create_execution(auto_close=False).async_load(text)

        copy = approval.create_execution(auto_close=False, execution_id=f"{original.id}-copy")
        await copy.async_load(text)
        assert await copy.async_get_status() == "waiting"
        assert list(await copy.async_get_pending_interrupts()) == ["approve"]
        record = await copy.async_continue_with("approve", {"ok": 1})
        assert record["status"] == "resumed"
        snapshot = await copy.async_close()
        assert snapshot["decision"] == {"ok": 1} and snapshot["asked"] == "R-1"

        # The original is untouched by the copy and still waits.
        assert await original.async_get_status() == "waiting"
        await original.async_continue_with("approve", {"ok": 2})
        closed = await original.async_close()
        assert closed["decision"] == {"ok": 2}
        final = await original.async_save()
        assert final["lifecycle_state"] == "closed"
        assert final["close_reason"] == "manual"
        assert final["result"] == {"ready": False, "value": None}  # no end() sink, as natively

        # Once the saved workflow closed, loading with no id reuses the saved id.
        again = approval.create_execution(auto_close=False)
        await again.async_load(saved)
        assert again.id == original.id
        await again.async_continue_with("approve", {"ok": 3})
        assert (await again.async_close())["commits"] == [{"ok": 3}]


async def test_loading_a_closed_snapshot_keeps_it_closed(runtime):
    async with runtime([chain]):
        execution = chain.create_execution(auto_close=False)
        await execution.async_start(1)
        closed = await execution.async_close()
        saved = await execution.async_save()
        copy = chain.create_execution(execution_id=f"{execution.id}-closed")
        await copy.async_load(saved)
        assert await copy.async_get_lifecycle_state() == "closed"
        # As natively, every load writes the (here empty) ledger to "$interventions".
        assert await copy.async_result() == {**closed, "$interventions": {}}


async def test_join_progress_survives_save_and_load(runtime):
    async with runtime([batch_flow]):
        execution = batch_flow.create_execution(auto_close=False)
        await execution.async_start("R-1")
        saved = await execution.async_save()
        assert saved["durable_system_state"]["batch_states"], "partial batch progress is saved"
        copy = batch_flow.create_execution(auto_close=False, execution_id=f"{execution.id}-c")
        await copy.async_load(saved)
        await copy.async_continue_with("slow", "ok")
        snapshot = await copy.async_close()
        await execution.async_close(pending_interrupts="cancel")
    # Both branches ran once, before the save; after load the resume value fills the
    # paused branch's slot and the join fires with both results.
    assert sorted(snapshot["ran"]) == ["fast", "slow"]
    assert snapshot["joined"] == {"fast": "fast:R-1", "slow_pause": "ok"}


async def test_blueprint_mismatch_is_refused_unless_opted_in(runtime):
    changed = TriggerFlow(name="persist-approval")
    changed.to(ask).to(commit).to(step_c)
    async with runtime([approval, changed]):
        execution = approval.create_execution(auto_close=False)
        await execution.async_start("R-2")
        saved = await execution.async_save()
        target = changed.create_execution(auto_close=False, execution_id=f"{execution.id}-v2")
        with pytest.raises(SnapshotError, match="fingerprint mismatch"):
            await target.async_load(saved)
        # Opting in works when every operator the snapshot refers to still exists.
        await target.async_load(saved, allow_blueprint_change=True)
        await target.async_continue_with("approve", 5)
        snapshot = await target.async_close()
        assert snapshot["decision"] == 5 and snapshot["trail"] == ["c:None"]  # new graph ran
        await execution.async_close(pending_interrupts="cancel")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: "not json {", "not valid JSON"),
        (lambda s: [s], "must be the dict"),
        (lambda s: {**s, "kind": "something.else"}, "Not a TriggerFlow execution snapshot"),
        (lambda s: {**s, "schema_version": 7}, "Unsupported snapshot schema_version 7"),
        (lambda s: {k: v for k, v in s.items() if k != "interrupts"}, "no 'interrupts'"),
        (lambda s: {**s, "runtime_data": []}, "'runtime_data' must be a dict"),
        (lambda s: {k: v for k, v in s.items() if k != "temporal"}, "saved by native Agently"),
        (lambda s: {**s, "flow_definition_fingerprint": "md5:x"}, "must start with 'sha256:'"),
    ],
)
async def test_corrupted_or_foreign_snapshots_fail_clearly(runtime, mutate, message):
    async with runtime([approval]):
        execution = approval.create_execution(auto_close=False)
        await execution.async_start("R-3")
        saved = await execution.async_save()
        target = approval.create_execution(auto_close=False, execution_id=f"{execution.id}-x")
        with pytest.raises(SnapshotError, match=message):
            await target.async_load(mutate(saved))
        # Nothing was started under the target id; the original is intact.
        with pytest.raises(ExecutionStateError, match="No execution"):
            await target.async_get_status()
        assert await execution.async_get_status() == "waiting"
        await execution.async_close(pending_interrupts="cancel")


async def test_history_lists_state_after_each_chunk_and_forks(runtime):
    async with runtime([chain]):
        execution = chain.create_execution(auto_close=False)
        await execution.async_start(1)
        await execution.async_close()
        history = await execution.async_get_history()
        assert [(h["step"], h["chunk"]) for h in history] == [
            (1, "step_a"),
            (2, "step_b"),
            (3, "step_c"),
        ]
        assert history[0]["state"] == {"trail": ["a:1"]}
        assert history[1]["state"] == {"trail": ["a:1", "b:2"]}
        assert history[2]["state"]["result"] == 20

        # Time travel: fork from the state after step_a; step_b and step_c run again.
        fork = await execution.async_fork(1)
        assert fork.id != execution.id
        snapshot = await fork.async_close()
        assert snapshot["trail"] == ["a:1", "b:2", "c:20"]
        fork_history = await fork.async_get_history()
        assert [h["chunk"] for h in fork_history] == ["step_b", "step_c"]

        # The same through async_load(history, from_step=N) under a chosen id.
        other = chain.create_execution(auto_close=False, execution_id=f"{execution.id}-f2")
        await other.async_load(history, from_step=2)
        assert (await other.async_close())["trail"] == ["a:1", "b:2", "c:20"]
        with pytest.raises(SnapshotError, match="No step 9"):
            await chain.create_execution().async_load(history, from_step=9)


async def test_history_of_a_paused_execution_forks_into_a_waiting_copy(runtime):
    async with runtime([approval]):
        execution = approval.create_execution(auto_close=False)
        await execution.async_start("R-4")
        history = await execution.async_get_history()
        assert [(h["chunk"], h["paused"]) for h in history] == [("ask", True)]
        fork = await execution.async_fork(1)
        assert list(await fork.async_get_pending_interrupts()) == ["approve"]
        await fork.async_continue_with("approve", "yes")
        assert (await fork.async_close())["decision"] == "yes"
        await execution.async_close(pending_interrupts="cancel")


async def test_load_from_a_process_without_the_flow(runtime):
    """The CLI path: a snapshot embeds its graph, so no flow object is needed."""
    from triggerflow_temporal.client.persistence import load_execution, save_execution

    async with runtime([approval]) as client:
        execution = approval.create_execution(auto_close=False)
        await execution.async_start("R-5")
        saved = await save_execution(client, execution.id)
        new_id = await load_execution(client, saved, execution_id=f"{execution.id}-cli")
        copy = approval.get_execution(execution_id=new_id)
        await copy.async_continue_with("approve", "cli")
        assert (await copy.async_close())["decision"] == "cli"
        await execution.async_close(pending_interrupts="cancel")


async def test_load_replays_deterministically(runtime):
    from temporalio.worker import Replayer

    from triggerflow_temporal import TriggerFlowPlugin

    plugin = TriggerFlowPlugin([batch_flow])
    async with runtime([batch_flow], plugin=plugin) as client:
        execution = batch_flow.create_execution(auto_close=False)
        await execution.async_start("R-6")
        saved = await execution.async_save()
        copy = batch_flow.create_execution(auto_close=False, execution_id=f"{execution.id}-r")
        await copy.async_load(saved)
        await copy.async_continue_with("slow", "ok")
        await copy.async_close()
        await execution.async_close(pending_interrupts="cancel")
        history = await client.get_workflow_handle(copy.id).fetch_history()
    result = await Replayer(workflows=[], plugins=[plugin]).replay_workflow(history)
    assert result.replay_failure is None
