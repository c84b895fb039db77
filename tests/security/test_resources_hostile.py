"""Execution runtime resources may add keys and override flow-level ones (as natively), but
never replace a worker resource (``TriggerFlowPlugin(runtime_resources=...)``): whoever
starts an execution is not trusted to swap the deployment's live objects for data
(issue 17). The chunk fails with a typed error naming the key and the fix, and its handler
never runs with the forged value.
"""

from __future__ import annotations

import pytest

from triggerflow_temporal import TriggerFlow
from triggerflow_temporal._errors import ResourceConflictError

SEEN: list[object] = []


class Database:
    """A live worker resource."""


async def query(data):
    SEEN.append(data.require_resource("db"))
    await data.async_set_state("extra", data.get_resource("extra"))


flow = TriggerFlow(name="sec-resources")
flow.to(query)


async def test_an_execution_cannot_replace_a_worker_resource(runtime):
    database = Database()
    SEEN.clear()
    async with runtime([flow], {"db": database}):
        forged = flow.create_execution(auto_close=False, runtime_resources={"db": "fake"})
        with pytest.raises(ResourceConflictError, match=r"resource 'db' would replace"):
            await forged.async_start(None)
        assert await forged.async_get_status() == "failed"
        assert SEEN == []  # the handler never saw the forged value
        await forged.async_close()
        # Adding a key of its own is fine, and the worker's object is what chunks get.
        fine = flow.create_execution(auto_close=False, runtime_resources={"extra": "mine"})
        await fine.async_start(None)
        assert (await fine.async_get_state())["extra"] == "mine"
        assert SEEN == [database]
        await fine.async_close()
