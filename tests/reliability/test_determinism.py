"""Determinism: recorded histories of every flow replay on the current interpreter, and an
execution keeps the graph it started with when a new version of its flow is deployed.

A change to the interpreter that would break running executions fails
``test_recorded_history_replays``. Record missing histories with
``python tests/histories/record_flows.py`` (see tests/reliability/_catalogue.py).
"""

from __future__ import annotations

import functools
import json
import tempfile
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conformance._replay import replay
from triggerflow_temporal import FlowSpec, TriggerFlowPlugin
from triggerflow_temporal.testing import start_local_runtime

from . import _catalogue as catalogue
from .flows import versioned_flows

# Versions 1-2 (executions started before the upgrade), then every later version's set
# (flows-v3, flows-v4, ...): executions of each may still be running after an upgrade.
FLOW_HISTORIES = sorted(catalogue.FLOW_HISTORIES_DIR.glob("*.json")) + sorted(
    catalogue.HISTORIES_DIR.glob("flows-v*/*.json")
)


@functools.cache
def _plugin() -> TriggerFlowPlugin:
    found = catalogue.entries(Path(tempfile.mkdtemp(prefix="catalogue-")))
    return TriggerFlowPlugin(catalogue.served_flows(found), catalogue.RESOURCES)


def _load(path: Path) -> WorkflowHistory:
    # Recorded under workflow id "history-<entry name>" (child ids derive from it).
    data = json.loads(path.read_text(encoding="utf-8"))
    return WorkflowHistory.from_json(f"history-{path.stem}", data)


def test_every_flow_in_tests_and_examples_has_a_recorded_history():
    recorded = catalogue.history_workflow_types()
    defined = catalogue.literal_flow_names()
    missing = {
        name: where
        for name, where in defined.items()
        if name not in recorded and name not in catalogue.EXEMPT
    }
    assert not missing, (
        f"Flows without a checked-in history: {missing}. Add an Entry to "
        "tests/reliability/_catalogue.py and run python tests/histories/record_flows.py."
    )
    stale = sorted(set(catalogue.EXEMPT) - set(defined))
    assert not stale, f"EXEMPT lists flows no test defines any more: {stale}"
    entries = catalogue.entries(Path(tempfile.mkdtemp(prefix="catalogue-")))
    files = {path.stem for path in FLOW_HISTORIES}
    unrecorded = [e.name for e in entries if e.name not in files and e.flow.name not in recorded]
    assert not unrecorded, f"Catalogue entries without a history: {unrecorded}"


@pytest.mark.parametrize("path", FLOW_HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_recorded_history_replays(path):
    history = _load(path)
    kinds = {event.WhichOneof("attributes") for event in history.events}
    assert "workflow_execution_started_event_attributes" in kinds
    assert kinds & {
        "workflow_execution_completed_event_attributes",
        "workflow_execution_failed_event_attributes",
    }, "record finished executions only"
    await replay(history, _plugin())


async def test_replay_notices_a_different_command_sequence():
    # The check above can fail: the same history with one chunk's activity renamed no
    # longer matches what the interpreter schedules.
    path = catalogue.FLOW_HISTORIES_DIR / "rel-approval.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    scheduled = [
        e for e in data["events"] if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]
    scheduled[-1]["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "x.y"
    history = WorkflowHistory.from_json("tampered", data)
    result = await Replayer(workflows=[], plugins=[_plugin()]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


async def test_executions_keep_their_graph_when_a_new_version_is_deployed(temporal_env):
    v1, v2 = versioned_flows()
    assert v1.blueprint_hash != v2.blueprint_hash
    queue = f"rel-versions-{uuid.uuid4().hex[:8]}"
    async with start_local_runtime([v1], client=temporal_env.client, task_queue=queue):
        old = v1.create_execution(auto_close=False)
        await old.async_start("old")
        assert list(await old.async_get_pending_interrupts()) == ["v-approve"]
    # Deploy: the worker now serves both graphs of the flow; new executions use v2.
    plugin = TriggerFlowPlugin([v1, v2])
    async with start_local_runtime(
        [v1, v2], plugin=plugin, client=temporal_env.client, task_queue=queue
    ) as client:
        new = v2.create_execution(auto_close=False)
        await new.async_start("new")
        old = v2.get_execution(execution_id=old.id)
        await old.async_continue_with("v-approve", {"approved": "old"})
        await new.async_continue_with("v-approve", {"approved": "new"})
        old_info, new_info = await old.async_get_info(), await new.async_get_info()
        old_snapshot, new_snapshot = await old.async_close(), await new.async_close()
        histories = [await client.get_workflow_handle(e.id).fetch_history() for e in (old, new)]
    assert old_info["blueprint_hash"] == v1.blueprint_hash
    assert new_info["blueprint_hash"] == v2.blueprint_hash
    assert old_snapshot == {"decisions": [{"approved": "old"}]}
    assert new_snapshot == {"audited": {"approved": "new"}, "decisions": [{"approved": "new"}]}
    for history in histories:
        await replay(history, plugin)
    # The graph travels with the execution: a worker that only has v2 replays v1 runs.
    await replay(histories[0], TriggerFlowPlugin(list(versioned_flows()[1:])))


async def test_executions_leave_the_specs_they_share_as_decoded():
    # FlowSpec.from_json hands every execution of one packed spec the same object. Replay
    # each recorded version-4 execution (bindings, joins, sub-flows, pauses, interventions)
    # and check that none of them changed a spec it shared: a fresh decode still equals it.
    from triggerflow_temporal.spec import flow_spec

    flow_spec._DECODED.clear()
    for path in sorted(catalogue.HISTORIES_DIR.glob("flows-v4/*.json")):
        if not path.stem.startswith(("long-", "rel-", "gw_", "notify-")):  # the slow ones
            await replay(_load(path), _plugin())
    shared = dict(flow_spec._DECODED)
    assert len(shared) > 40, len(shared)
    for (name, blueprint_hash, text), spec in shared.items():
        fresh = FlowSpec._decode(
            {"version": 1, "name": name, "blueprint_hash": blueprint_hash, "packed": text}
        )
        assert fresh.to_json() == spec.to_json(), name
