"""Native recording: flow.set_contract(initial_input=, stream=, result=, meta=).

What is validated where (the start input, stream items, set_result values), with which
error, what a chunk receives, and the contract in the flow config export.

Run with agently==4.1.4.10: ``python contracts.py > contracts.json``.
tests/conformance/test_contracts.py runs the same flows on Temporal.
"""

import json

from _common import make_execution, out, run
from agently import TriggerFlow
from pydantic import BaseModel


class CtTicket(BaseModel):
    id: int
    note: str = "none"


class CtOutcome(BaseModel):
    ok: bool


def jsonable(value):
    return json.loads(json.dumps(value, default=lambda o: o.model_dump(mode="json")))


async def ct_take(data):
    await data.async_set_state("input", jsonable(data.input))
    await data.async_set_state("input_type", type(data.input).__name__)
    ticket = jsonable(data.input)
    await data.async_put_into_stream(ticket["id"])
    if ticket["note"] == "bad-stream":
        await data.async_put_into_stream("not-a-number")
    if ticket["note"] == "bad-result":
        data.set_result({"ok": "maybe"})
    else:
        data.set_result({"ok": "yes"})
    return ticket["id"]


def typed_flow():
    flow = TriggerFlow(name="ct-typed")
    flow.set_contract(initial_input=CtTicket, stream=int, result=CtOutcome, meta={"owner": "ops"})
    flow.to(ct_take)
    return flow


async def run_case(value):
    flow = typed_flow()
    execution = make_execution(flow, auto_close=False)
    items = []

    try:
        await execution.async_start(value)
    except Exception as error:
        return {"error": [type(error).__name__, str(error)], "status": execution.get_status()}
    snapshot = await execution.async_close()
    async for item in execution.get_async_runtime_stream(timeout=0.1):
        items.append(item)
    return {"snapshot": jsonable(snapshot), "stream": items}


def contract_api():
    flow = typed_flow()
    spec = flow.get_contract()
    found = {
        "get_contract": {
            "initial_input": spec.initial_input.__name__,
            "stream": spec.stream.__name__,
            "result": spec.result.__name__,
            "meta": spec.meta,
        },
        "metadata_is_config_contract": flow.get_contract_metadata()
        == flow.get_flow_config()["contract"],
        "config_contract": flow.get_flow_config()["contract"],
        "returns_flow": flow.set_contract(meta={"owner": "ops"}) is flow,
    }
    flow.set_contract(initial_input=None, stream=None, result=None, meta=None)
    found["cleared_config_contract"] = flow.get_flow_config()["contract"]
    empty = TriggerFlow(name="ct-empty")
    found["no_contract_config"] = empty.get_flow_config()["contract"]
    try:
        TriggerFlow(name="ct-bad").set_contract(initial_input=5)
        found["bad_contract"] = "accepted"
    except Exception as error:
        found["bad_contract"] = [type(error).__name__, str(error)]
    return found


async def main():
    out(
        {
            "valid": await run_case({"id": "7"}),
            "invalid_input": await run_case({"id": "x"}),
            "bad_stream": await run_case({"id": 8, "note": "bad-stream"}),
            "bad_result": await run_case({"id": 9, "note": "bad-result"}),
            "api": contract_api(),
        }
    )


if __name__ == "__main__":
    run(main)
