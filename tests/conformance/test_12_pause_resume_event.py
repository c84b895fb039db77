"""12: resume_to={"event": X}: continue_with emits event X with the payload (the paused
chunk's own .to() successor does not run). resume_event="X" without resume_to: an ordinary
emit of X (here an external execution.async_emit) also resolves the interrupt.

No deviation in the output; pause_for needs no snapshot store here (design.md section 4,
deviation 5), which the output does not show.
"""

from __future__ import annotations

# The handlers are the ones tests/test_pause_resume.py exercises beyond the native output.
from tests.test_pause_resume import (
    ask_event,
    ask_reply,
    on_approved,
    on_reply,
    successor,
)
from triggerflow_temporal import TriggerFlow

from ._expected import ReplayCase, load_expected, normalize

flow = TriggerFlow(name="c12-event")
flow.to(ask_event).to(successor)
flow.when("Approved").to(on_approved)

reply_flow = TriggerFlow(name="c12-reply")
reply_flow.to(ask_reply)
reply_flow.when("Reply").to(on_reply)

FLOWS = [flow, reply_flow]
# The reply interrupt resolves through an ordinary external emit, which ReplayCase can
# express; the "event" flow needs a continue_with step (see the port's report).
REPLAY_CASES = [ReplayCase(reply_flow, None, emits=[("Reply", "hello")])]


async def test_12_pause_resume_event(runtime):
    async with runtime(FLOWS):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start(None)
        await execution.async_continue_with("i1", "yes")
        snapshot = await execution.async_close()

        e2 = reply_flow.create_execution(auto_close=False)
        await e2.async_start(None)
        before = {
            "status": await e2.async_get_status(),
            "resume_to": (await e2.async_get_interrupt("i2"))["resume_to"],
        }
        await e2.async_emit("Reply", "hello")
        record = await e2.async_get_interrupt("i2")
        after = {
            "status": await e2.async_get_status(),
            "interrupt_status": record["status"],
            "resume_value": record["resume_value"],
        }
        result = {
            "resume_to_event": snapshot,
            "resume_event_before": before,
            "resume_event_after_external_emit": after,
            "resume_event_snapshot": await e2.async_close(),
        }
    assert normalize(result) == load_expected("12_pause_resume_event.py")
