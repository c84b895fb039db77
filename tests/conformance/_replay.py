"""Run conformance cases for their histories, and replay histories (shared with
tests/histories/record.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.worker import Replayer

from triggerflow_temporal import TriggerFlowPlugin

from . import (
    test_01_sequence_chain,
    test_02_state_api,
    test_03_if_condition,
    test_04_match,
    test_05_batch,
    test_06_for_each,
    test_07_when_events,
    test_08_collect,
    test_09_side_branch,
)
from ._expected import ReplayCase

MODULES = [
    test_01_sequence_chain,
    test_02_state_api,
    test_03_if_condition,
    test_04_match,
    test_05_batch,
    test_06_for_each,
    test_07_when_events,
    test_08_collect,
    test_09_side_branch,
]

HISTORIES_DIR = Path(__file__).resolve().parent.parent / "histories"

# Cases whose histories are checked in (tests/histories/<workflow id>.json): one per
# operator family, plus the hidden path, external updates and a failed execution.
RECORDED = {
    "c01-seq-hidden",
    "c02-state",
    "c03-if-raises",
    "c04-hit-all-two",
    "c05-batch-limited",
    "c06-nested",
    "c07-when",
    "c08-collect-when",
}


def all_flows() -> list[Any]:
    """Every conformance flow (flow names are unique across the modules)."""
    return [flow for module in MODULES for flow in module.FLOWS]


def all_cases() -> list[ReplayCase]:
    """Every replay case of every module."""
    return [case for module in MODULES for case in module.REPLAY_CASES]


async def run_case(case: ReplayCase, client: Client, workflow_id: str | None = None) -> str:
    """Run ``case`` to completion on a worker serving its flow; return the workflow id."""
    workflow_id = workflow_id or f"replay-{case.name}-{uuid.uuid4().hex[:8]}"
    if case.hidden:
        execution = case.flow.create_execution(
            execution_id=workflow_id, auto_close=True, auto_close_timeout=0.0, hidden=True
        )
        await _start(execution, case)
    else:
        execution = case.flow.create_execution(execution_id=workflow_id, auto_close=False)
        await _start(execution, case)
        for event, value in case.emits:
            await execution.async_emit(event, value)
        await execution.async_close()
    try:
        await client.get_workflow_handle(workflow_id).result()
    except WorkflowFailureError:
        if case.raises is None:
            raise
    return workflow_id


async def _start(execution: Any, case: ReplayCase) -> None:
    if case.raises is None:
        await execution.async_start(case.value)
        return
    try:
        await execution.async_start(case.value)
    except case.raises:
        return
    raise AssertionError(f"{case.name}: async_start did not raise {case.raises.__name__}")


async def fetch_history(client: Client, workflow_id: str) -> WorkflowHistory:
    """The complete history of a finished workflow."""
    return await client.get_workflow_handle(workflow_id).fetch_history()


async def replay(history: WorkflowHistory, plugin: TriggerFlowPlugin) -> None:
    """Replay ``history`` with ``plugin``; raises on nondeterminism (a failed workflow task).

    A workflow that failed by design (a chunk or condition error) replays fine.
    """
    replayer = Replayer(workflows=[], plugins=[plugin])
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
