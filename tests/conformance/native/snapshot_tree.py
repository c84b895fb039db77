"""Native recording: the key/type tree of execution.save() (schema v2) of a flow that
pauses, is resumed with a resume_request_id, runs on and pauses again; and of the same
execution once that second interrupt is resumed and the execution closed.

Run with agently==4.1.4.10: ``python snapshot_tree.py > snapshot_tree.json``.
tests/conformance/test_snapshot_tree.py compares our async_save() with it.
"""

from _common import make_execution, out, run
from _tree import key_type_tree
from agently import TriggerFlow


async def ledger_ask(data):
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(type="approval", interrupt_id="i", payload={"q": 1})


async def ledger_fin(data):
    await data.async_set_state("fin", data.input)
    return data.input


async def ledger_confirm(data):
    return await data.async_pause_for(type="confirm", interrupt_id="j", payload={"q": 2})


async def ledger_done(data):
    await data.async_set_state("done", data.input)


async def main():
    flow = TriggerFlow(name="c-snapshot-ledger")
    flow.to(ledger_ask).to(ledger_fin).to(ledger_confirm).to(ledger_done)
    execution = make_execution(flow, auto_close=False)
    await execution.async_start("x")
    await execution.async_continue_with("i", {"ok": True}, resume_request_id="r-1", actor="alice")
    waiting = execution.save()
    await execution.async_continue_with("j", "yes", resume_request_id="r-2")
    await execution.async_close()
    closed = execution.save()
    out(
        {
            "waiting": key_type_tree(waiting),
            "closed": key_type_tree(closed),
            "waiting_resume_ledger": {
                interrupt_id: {
                    request_id: {k: v for k, v in entry.items() if not k.endswith("_at")}
                    for request_id, entry in requests.items()
                }
                for interrupt_id, requests in waiting["resume_ledger"].items()
            },
        }
    )


run(main)
