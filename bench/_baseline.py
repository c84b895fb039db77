"""Hand-written Temporal baseline: activities (workflows are in ``_baseline_workflows``).

The workflows import this module through the sandbox (``imports_passed_through``), the
pattern Temporal's samples recommend, so the baseline pays no avoidable re-import cost.
They use the same client, worker and worker settings as the TriggerFlow variants.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.common import RetryPolicy

# The same activity options the TriggerFlow plugin uses by default (5 min, 5 attempts).
START_TO_CLOSE = timedelta(minutes=5)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
CHAIN_LENGTH = 10


def _make_step(i: int) -> Any:
    @activity.defn(name=f"hw.c{i}")
    async def step(value: dict[str, Any]) -> dict[str, Any]:
        out = dict(value)
        out["i"] = out["i"] + 1
        return out

    return step


STEP_ACTIVITIES = [_make_step(i) for i in range(CHAIN_LENGTH)]


@activity.defn(name="hw.ask")
async def hw_ask(ticket: Any) -> dict[str, Any]:
    return {"type": "approval", "payload": {"ticket": ticket}}


@activity.defn(name="hw.commit")
async def hw_commit(decision: Any) -> Any:
    return decision


@activity.defn(name="hw.store_item")
async def hw_store_item(item: int) -> str:
    """Write a 10 KB record to the bench Workspace; return only its id."""
    from bench import _flows

    ref = await _flows.bench_workspace().ingest(
        _flows.item_text(item), "artifacts", "item", scope={"bench": "hw"}
    )
    return ref.id


@activity.defn(name="hw.store_item_inline")
async def hw_store_item_inline(item: int) -> str:
    """Return the 10 KB output itself."""
    from bench import _flows

    return _flows.item_text(item)


HW_ACTIVITIES = [*STEP_ACTIVITIES, hw_ask, hw_commit, hw_store_item, hw_store_item_inline]
