"""Replay: every conformance flow's history replays deterministically with the plugin that
served it, and every checked-in history (tests/histories/*.json) still replays with the
current interpreter, so a change that would break running executions fails here.

Regenerate the checked-in histories with ``python tests/histories/record.py``.
"""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin

from . import test_03_if_condition
from ._replay import (
    HISTORIES_DIR,
    MODULES,
    RECORDED,
    all_cases,
    all_flows,
    fetch_history,
    replay,
    run_case,
)


def test_every_conformance_flow_has_a_replay_case():
    covered = {id(case.flow) for case in all_cases()}
    missing = [flow.name for flow in all_flows() if id(flow) not in covered]
    assert not missing
    names = [flow.name for flow in all_flows()]
    assert len(names) == len(set(names))  # one plugin can serve them all
    assert RECORDED <= {case.name for case in all_cases()}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
async def test_live_histories_replay(runtime, module):
    plugin = TriggerFlowPlugin(module.FLOWS)
    async with runtime(module.FLOWS, plugin=plugin) as client:
        workflow_ids = [await run_case(case, client) for case in module.REPLAY_CASES]
        histories = [await fetch_history(client, wid) for wid in workflow_ids]
    for case, history in zip(module.REPLAY_CASES, histories, strict=True):
        kinds = {event.WhichOneof("attributes") for event in history.events}
        # Histories hold real work: chunk activities ran, or the start failed the workflow.
        if case.raises is None:
            assert "activity_task_scheduled_event_attributes" in kinds
        else:
            assert "workflow_execution_failed_event_attributes" in kinds
        await replay(history, plugin)


def _checked_in_histories() -> list[tuple[str, str]]:
    return sorted(
        (path.stem, path.read_text(encoding="utf-8")) for path in HISTORIES_DIR.glob("*.json")
    )


def test_checked_in_histories_exist():
    names = {stem for stem, _ in _checked_in_histories()}
    assert names == {f"history-{name}" for name in RECORDED}


@pytest.mark.parametrize(
    ("workflow_id", "text"), _checked_in_histories(), ids=lambda v: v if len(v) < 60 else ""
)
async def test_checked_in_history_replays(workflow_id, text):
    history = WorkflowHistory.from_json(workflow_id, json.loads(text))
    await replay(history, TriggerFlowPlugin(all_flows()))


# A condition with the same name as 03's gt10 whose answer differs: the replayed run takes
# another branch, schedules another activity, and the replayer must notice.
def gt10(data):
    return False


async def test_replay_detects_a_changed_branch(runtime):
    plugin = TriggerFlowPlugin([test_03_if_condition.flow])
    async with runtime([test_03_if_condition.flow], plugin=plugin) as client:
        case = next(c for c in test_03_if_condition.REPLAY_CASES if c.label == "big")
        history = await fetch_history(client, await run_case(case, client))
    await replay(history, plugin)
    changed = TriggerFlow(name=test_03_if_condition.flow.name)
    (
        changed.if_condition(gt10)
        .to(test_03_if_condition.big)
        .elif_condition(test_03_if_condition.gt5_returns_int)
        .to(test_03_if_condition.mid)
        .else_condition()
        .to(test_03_if_condition.other)
        .end_condition()
        .to(test_03_if_condition.after)
    )
    result = await Replayer(workflows=[], plugins=[TriggerFlowPlugin([changed])]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
