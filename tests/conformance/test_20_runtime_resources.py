"""20: runtime resources; snapshots keep resource keys only; re-injection after load.

Deviations: no ``snapshot_store`` resource (history is the store), and a loaded copy of an
execution that is still open gets its own id (Temporal ids are unique among running
workflows; design.md section 3).
"""

from __future__ import annotations

from triggerflow_temporal import TriggerFlow

from ._expected import load_expected, normalize


async def use(data):
    await data.async_set_state("policy", data.require_resource("policy"))


async def ask(data):
    return await data.async_pause_for(type="t", interrupt_id="i")


async def fin(data):
    await data.async_set_state("db_used", data.require_resource("db"))


async def test_runtime_resources_and_reinjection(runtime):
    flow = TriggerFlow(name="res")
    flow.update_runtime_resources(policy="flow-policy", shared="flow-shared")
    g = TriggerFlow(name="res-load")
    g.to(ask).to(fin)
    res = {}
    async with runtime([flow, g]):
        e = flow.create_execution(
            auto_close=False, runtime_resources={"policy": "exec-policy", "db": "db-0"}
        )
        await e.async_start(None)
        saved = await e.async_save()
        res["resource_keys"] = saved["resource_keys"]
        res["requirements"] = [[r["key"], r["source"]] for r in saved["resource_requirements"]]
        res["snapshot"] = await e.async_close()
        res["flow_level_local_after"] = flow.get_runtime_resource("local")

        e1 = g.create_execution(auto_close=False, runtime_resources={"db": "db-1"})
        await e1.async_start(None)
        saved = await e1.async_save()
        assert "db-1" not in repr(saved)  # keys only, never the values
        e2 = g.create_execution(auto_close=False)
        report = e2.inspect_load(saved)
        res["inspect_load"] = [report["status"], report["ready"], report["missing_resource_keys"]]
        try:
            await e2.async_load(saved, validate_resources=True)
            res["validate_resources"] = "loaded"
        except RuntimeError as error:
            res["validate_resources"] = "RuntimeError:" + str(error).split("; ")[-1]
        e3 = g.create_execution(auto_close=False, execution_id=f"{e1.id}-e3")
        await e3.async_load(saved, runtime_resources={"db": "db-2"})
        await e3.async_continue_with("i", 1)
        res["reinjected_snapshot"] = await e3.async_close()
        e4 = g.create_execution(auto_close=False, execution_id=f"{e1.id}-e4")
        await e4.async_load(saved)
        try:
            await e4.async_continue_with("i", 1)
            res["not_reinjected"] = "ok"
        except KeyError:
            res["not_reinjected"] = ["KeyError", await e4.async_get_status()]
        await e1.async_close(pending_interrupts="cancel")
        await e4.async_close()
    expected = load_expected("20_runtime_resources.py")
    expected["resource_keys"].remove("snapshot_store")
    expected["requirements"].remove(["snapshot_store", "execution"])
    assert normalize(res) == expected
