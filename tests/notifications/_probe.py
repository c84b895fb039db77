"""A workflow that asks the worker's notification plan the way executions do (a local
activity, argument None), so tests see what a real worker answers."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from triggerflow_temporal.spec.notifications import PLAN_ACTIVITY


@workflow.defn(name="tests.notify-plan-probe")
class PlanProbe:
    @workflow.run
    async def run(self) -> list[str]:
        return await workflow.execute_local_activity(
            PLAN_ACTIVITY, None, result_type=list, start_to_close_timeout=timedelta(seconds=10)
        )
