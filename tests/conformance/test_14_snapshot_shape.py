"""14: execution.async_save() has Agently's schema v2 structure.

Deviations (docs/triggerflow-on-temporal.md): no ``snapshot_store`` resource (Temporal
history is the store, design deviation 5), and one extra top-level section,
``temporal`` (the graph and options, so the snapshot loads from any process).
"""

from __future__ import annotations

import json

from triggerflow_temporal import TriggerFlow

from ._expected import load_expected, normalize


async def ask(data):
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(type="approval", interrupt_id="i", payload={"q": 1})


async def fin(data):
    await data.async_set_state("fin", data.input)


def tname(value):
    return type(value).__name__


async def test_snapshot_shape(runtime):
    flow = TriggerFlow(name="shape")
    flow.to(ask).to(fin)
    async with runtime([flow]):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("x")
        s = await execution.async_save()
        await execution.async_close(pending_interrupts="cancel")
    json.dumps(s)  # JSON-ready as it is
    got = normalize(
        {
            "top_level": {k: tname(v) for k, v in s.items()},
            "schema_version": s["schema_version"],
            "kind": s["kind"],
            "status": s["status"],
            "lifecycle_state": s["lifecycle_state"],
            "fingerprint_prefix": s["flow_definition_fingerprint"][:7],
            "runtime_data": s["runtime_data"],
            "interrupt_keys": sorted(s["interrupts"]["i"]),
            "external_wait_request_keys": sorted(s["interrupts"]["i"]["external_wait_request"]),
            "intervention": s["intervention"],
            "lease_keys": sorted(s["lease"]),
            "run_context_keys": sorted(s["run_context"]),
            "last_signal_keys": sorted(s["last_signal"]),
            "signal_net_keys": sorted(s["signal_net"]),
            "signal_attempt_keys": sorted(s["signal_net"]["signal_attempts"][0]),
            "snapshot_projection_keys": sorted(s["snapshot_projection"]),
            "result": s["result"],
            "resource_keys": s["resource_keys"],
            "resource_requirements": s["resource_requirements"],
            "compaction_keys": sorted(s["compaction"]),
            "resume_ledger": s["resume_ledger"],
            "has_checkpoint_section": "checkpoint" in s,
        }
    )
    expected = load_expected("14_snapshot_shape.py")
    # Deviation: no snapshot_store resource on Temporal.
    expected["resource_keys"] = []
    expected["resource_requirements"] = []
    # Deviation: the extra "temporal" section.
    expected["top_level"]["temporal"] = "dict"
    assert got == expected
    assert s["flow_definition_fingerprint"] == "sha256:" + flow.compile().blueprint_hash
    assert s["temporal"]["spec"]["name"] == "shape"
