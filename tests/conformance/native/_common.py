"""Helpers of the native scripts in this folder (run with agently==4.1.4.10 installed).

As shared/conformance/agently-native/_common.py: Agently's console and log sinks are
silenced so stdout carries only the final JSON line, and executions opt out of the
on-disk RecordStore with an in-memory snapshot store (pause_for needs one).
"""

import asyncio
import json
import warnings

warnings.simplefilter("ignore")

from agently.base import event_center  # noqa: E402

for _hooker in ("RuntimeConsoleSinkHooker", "RuntimeStorageSinkHooker"):
    event_center.unregister_hooker_plugin(_hooker)


class MemorySnapshotStore:
    """Minimal TriggerFlow snapshot-store port (put/get/delete)."""

    def __init__(self):
        self.latest = {}

    async def put_snapshot(self, run_id, state, *, step_id=None, expected_state_version=None):
        self.latest[run_id] = json.loads(json.dumps(state))
        return {"run_id": run_id, "step_id": step_id}

    async def get_snapshot(self, run_id):
        return self.latest.get(run_id)

    async def delete_snapshot(self, run_id):
        self.latest.pop(run_id, None)
        return {"run_id": run_id, "deleted": True}


def make_execution(flow, *, runtime_resources=None, **kwargs):
    """An execution without the on-disk RecordStore, with an in-memory snapshot store."""
    resources = dict(runtime_resources or {})
    resources.setdefault("snapshot_store", MemorySnapshotStore())
    return flow.create_execution(record_store=False, runtime_resources=resources, **kwargs)


def out(obj):
    """Print the script's result: one JSON line."""
    print(json.dumps(obj, sort_keys=True, ensure_ascii=False))


def run(coro_fn):
    """Run the script's coroutine."""
    asyncio.run(coro_fn())
