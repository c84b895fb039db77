"""10: pause_for (resume_to default "next"): the chunk returns the pause signal, its
continuation is not emitted, the execution is "waiting"; continue_with(id, payload) emits
the paused chunk's continuation with the payload, so the next chunk gets it as data.input.

No deviation in the output. Natively pause_for needs a ``snapshot_store`` resource (the
script's make_execution adds one); here it needs none (design.md section 4, deviation 5),
and the store never shows in this script's output.
"""

from __future__ import annotations

# The handlers are the ones tests/test_pause_resume.py exercises beyond the native output.
from tests.test_pause_resume import ask, commit
from triggerflow_temporal import TriggerFlow

from ._expected import load_expected, normalize

flow = TriggerFlow(name="c10-approval")
flow.to(ask).to(commit)

FLOWS = [flow]


async def test_10_pause_resume_next(runtime):
    async with runtime(FLOWS):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("T-1")
        pending = await execution.async_get_pending_interrupts()
        interrupt_id, interrupt = next(iter(pending.items()))
        waiting = {
            "status": await execution.async_get_status(),
            "is_waiting": await execution.async_is_waiting(),
            "pending_count": len(pending),
            "interrupt_keys": sorted(interrupt),
            "type": interrupt["type"],
            "payload": interrupt["payload"],
            "resume_to": interrupt["resume_to"],
            "interrupt_status": interrupt["status"],
            "source_signal_event": interrupt["source_signal"]["trigger_event"],
            "continuation_is_chunk_trigger": interrupt["continuation_event"].startswith(
                "Chunk[ask]-"
            ),
            "dispatch_state": interrupt["external_wait_request"]["dispatch_state"],
            "state_while_waiting": await execution.async_get_state(),
        }
        returned = await execution.async_continue_with(interrupt_id, {"approved": True})
        record = await execution.async_get_interrupt(interrupt_id)
        after = {
            "continue_returns_interrupt_status": returned["status"],
            "status": await execution.async_get_status(),
            "pending_count": len(await execution.async_get_pending_interrupts()),
            "interrupt_status": record["status"],
            "resume_value": record["resume_value"],
        }
        snapshot = await execution.async_close()
    result = {"waiting": waiting, "after_continue": after, "close_snapshot": snapshot}
    assert normalize(result) == load_expected("10_pause_resume_next.py")
