"""A refund approval: normalize -> wait for a human decision -> apply it.

The decision may take days: the wait is a durable Temporal workflow state, visible in the
Temporal UI and resumable from any process with ``continue_with``.
"""

from __future__ import annotations

from typing import Any

from triggerflow_temporal import TriggerFlow


async def normalize(data: Any) -> dict[str, Any]:
    """Clean the request; keep the original in the Workspace when one is configured."""
    request = dict(data.input or {})
    refund = {
        "refund_id": str(request.get("refund_id", "")).strip().upper(),
        "amount": round(float(request.get("amount", 0)), 2),
        "reason": str(request.get("reason", "")).strip(),
    }
    try:
        workspace = data.workspace
    except RuntimeError:
        workspace = None
    if workspace is not None:
        ref = await workspace.ingest(
            request, collection="observations", kind="refund_request", summary=refund["refund_id"]
        )
        refund["request_ref"] = ref.id
    await data.async_set_state("refund", refund)
    return refund


async def request_approval(data: Any) -> Any:
    """Pause until a person approves or rejects the refund."""
    refund = data.input
    await data.async_set_state("approval_requested", True)
    return await data.async_pause_for(
        type="approval",
        interrupt_id=f"approve-{refund['refund_id']}",
        payload={"refund_id": refund["refund_id"], "amount": refund["amount"]},
    )


async def apply_decision(data: Any) -> str:
    """Record the decision that ``continue_with`` delivered."""
    decision = data.input or {}
    outcome = "refunded" if decision.get("approved") else "rejected"
    await data.async_set_state("decision", decision)
    await data.async_set_state("outcome", outcome)
    return outcome


refund_flow = TriggerFlow(name="refund_approval")
refund_flow.to(normalize).to(request_approval).to(apply_decision)
