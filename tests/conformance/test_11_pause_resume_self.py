"""11: pause_for(resume_to="self"): continue_with re-dispatches the chunk's original
signal; the chunk sees data.is_resume=True and data.resume.value. max_resumes defaults to
1: pausing again from the resumed run fails the execution and continue_with raises.

pause_for needs no snapshot store here (design.md section 4, deviation 5), which the
output does not show. One field differs from native and no decided deviation covers it:
``guard_error``. Natively ``str(error)`` is the bare pause_for message; here the client
raises a ``ChunkFailedError`` that is also a ``RuntimeError`` and whose text names the chunk
and flow before the original message, as design.md section 3 specifies for chunk failures
("the original exception type ... with the original message kept in its text"). The
native message is compared exactly as ``error.error_message`` and must appear in the text.
"""

from __future__ import annotations

# The handlers are the ones tests/test_pause_resume.py exercises beyond the native output.
from tests.test_pause_resume import after, always_pause, gate
from triggerflow_temporal import ChunkFailedError, TriggerFlow

from ._expected import load_expected, normalize

flow = TriggerFlow(name="c11-self")
flow.to(gate).to(after)

guard_flow = TriggerFlow(name="c11-guard")
guard_flow.to(always_pause)

FLOWS = [flow, guard_flow]


async def _guard_error(guard):
    """Start the guard execution and resume it once: the resumed run pauses again."""
    await guard.async_start(None)
    try:
        await guard.async_continue_with("loop", 1)
    except RuntimeError as error:
        return error
    return None


async def test_11_pause_resume_self(runtime):
    expected = load_expected("11_pause_resume_self.py")
    async with runtime(FLOWS):
        execution = flow.create_execution(auto_close=False)
        await execution.async_start("doc")
        interrupt = await execution.async_get_interrupt("gate-1")
        first = {
            "resume_to": interrupt["resume_to"],
            "max_resumes": interrupt["max_resumes"],
            "resume_count": interrupt["resume_count"],
        }
        returned = await execution.async_continue_with("gate-1", {"ok": True})
        snapshot = await execution.async_close()

        guard = guard_flow.create_execution(auto_close=False)
        error = await _guard_error(guard)
        result = {
            "first_pause": first,
            "resume_count_after": returned["resume_count"],
            "snapshot": snapshot,
            "guard_status": await guard.async_get_status(),
            "guard_pending": await guard.async_get_pending_interrupts(),
            "guard_interrupt_status": (await guard.async_get_interrupt("loop"))["status"],
        }
        # Native leaves the failed guard execution open; closing it here only keeps the
        # dev server tidy and happens after everything compared was read.
        await guard.async_close()
    # Chunk failures carry the chunk and flow in their text (design.md section 3; module
    # docstring): the native message is the original message, kept in the text.
    native_guard_error = expected.pop("guard_error")
    assert isinstance(error, ChunkFailedError)
    assert error.error_type == "RuntimeError"
    assert error.error_message == native_guard_error
    assert native_guard_error in str(error)
    assert normalize(result) == expected
