"""Hand-written Temporal baseline workflows (plain ``@workflow.defn`` code)."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from bench._baseline import RETRY, START_TO_CLOSE, hw_ask, hw_commit

# The keys a listable approval upserts (the same names TriggerFlow registers).
HW_STATUS = SearchAttributeKey.for_keyword("TriggerFlowStatus")
HW_PENDING = SearchAttributeKey.for_keyword_list("TriggerFlowPendingInterruptTypes")


@workflow.defn(name="hw_chain")
class HwChain:
    """``n`` activities (``hw.c0`` ... ``hw.c<n-1>``) in sequence, passing a small dict."""

    @workflow.run
    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        value = request["value"]
        for i in range(request["n"]):
            if request.get("local"):
                value = await workflow.execute_local_activity(
                    f"hw.c{i}", value, start_to_close_timeout=START_TO_CLOSE, retry_policy=RETRY
                )
            else:
                value = await workflow.execute_activity(
                    f"hw.c{i}", value, start_to_close_timeout=START_TO_CLOSE, retry_policy=RETRY
                )
        return value


@workflow.defn(name="hw_approval")
class HwApproval:
    """Update ``start`` runs ``hw.ask`` and waits; update ``approve`` runs ``hw.commit``.

    Mirrors an ``auto_close=False`` TriggerFlow execution: open until the ``close`` update.
    """

    # HwApprovalVisible's search-attribute upserts; none here.
    VISIBLE = False

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}
        self._closed = False

    def _show(self, status: str, pending: list[str] | None = None) -> None:
        if not self.VISIBLE:
            return
        updates: list[Any] = [HW_STATUS.value_set(status)]
        if pending is not None:
            updates.append(HW_PENDING.value_set(pending))
        workflow.upsert_search_attributes(updates)

    @workflow.run
    async def run(self, ticket: Any) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self._closed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._show("completed")
        return self._state

    @workflow.update(name="start")
    async def start(self, ticket: Any) -> None:
        request = await workflow.execute_activity(
            hw_ask, ticket, start_to_close_timeout=START_TO_CLOSE, retry_policy=RETRY
        )
        self._state["asked"] = ticket
        self._pending["approval"] = request
        self._show("waiting", ["approval"])

    @workflow.update(name="approve")
    async def approve(self, decision: Any) -> dict[str, Any]:
        record = self._pending.pop("approval")
        self._show("running", [])
        self._state["decision"] = await workflow.execute_activity(
            hw_commit, decision, start_to_close_timeout=START_TO_CLOSE, retry_policy=RETRY
        )
        return record

    @workflow.update(name="close")
    async def close(self) -> dict[str, Any]:
        self._closed = True
        return self._state

    @workflow.query(name="state")
    def state(self) -> dict[str, Any]:
        return self._state

    @workflow.query(name="pending")
    def pending(self) -> dict[str, Any]:
        return self._pending


@workflow.defn(name="hw_approval_visible")
class HwApprovalVisible(HwApproval):
    """:class:`HwApproval` listable as an expert would make it: "everything waiting for
    approval" is one visibility query. Started with a status (``bench/hitl.py``'s
    ``hwv`` variant), it upserts the status and the pending types when they change, as
    TriggerFlow does: at the pause, at the resume, and at the close.
    """

    VISIBLE = True

    @workflow.run
    async def run(self, ticket: Any) -> dict[str, Any]:
        return await super().run(ticket)


@workflow.defn(name="hw_foreach")
class HwForEach:
    """One activity per item, all at once (as ``for_each`` without a concurrency limit)."""

    @workflow.run
    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        name = "hw.store_item_inline" if request.get("inline") else "hw.store_item"
        refs = await asyncio.gather(
            *(
                workflow.execute_activity(
                    name, item, start_to_close_timeout=START_TO_CLOSE, retry_policy=RETRY
                )
                for item in request["items"]
            )
        )
        return {"count": len(refs), "first": refs[0][:40] if refs else None}


HW_WORKFLOWS = [HwChain, HwApproval, HwApprovalVisible, HwForEach]
