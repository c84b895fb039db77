"""Contracts: flow.set_contract(initial_input=, stream=, result=, meta=) checks what
natively is checked, with Agently's errors, and is exported in the flow config.

Native recording: native/contracts.py (agently 4.1.4.10) -> native/contracts.json. The
start input is checked by the client before anything is sent (natively when the execution
starts: the execution then exists and stays ``running``); stream items and ``set_result``
values are checked in the chunk, whose ``ValueError`` fails the execution as natively.

Deviations (docs/triggerflow-on-temporal.md): a chunk receives the validated start value as
JSON data (a model arrives as its dict; natively as the model instance), and a refused
start creates no execution.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from triggerflow_temporal import TriggerFlow

NATIVE = json.loads(
    (Path(__file__).parent / "native" / "contracts.json").read_text(encoding="utf-8")
)


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


def typed_flow() -> TriggerFlow:
    flow = TriggerFlow(name="ct-typed")
    flow.set_contract(initial_input=CtTicket, stream=int, result=CtOutcome, meta={"owner": "ops"})
    flow.to(ct_take)
    return flow


flow = typed_flow()
FLOWS = [flow]


async def run_case(value: Any) -> dict[str, Any]:
    execution = flow.create_execution(auto_close=False)
    try:
        await execution.async_start(value)
    except ValueError as error:
        found: dict[str, Any] = {"error": ["ValueError", str(error)]}
        try:
            found["status"] = await execution.async_get_status()
            await execution.async_close()
        except Exception as missing:  # a refused start sent nothing: there is no execution
            found["status"] = type(missing).__name__
        return found
    snapshot = await execution.async_close()
    items = [item async for item in execution.get_async_runtime_stream(timeout=None)]
    return {"snapshot": snapshot, "stream": items}


async def test_contract_checks_as_natively(runtime):
    async with runtime(FLOWS):
        got = {
            label: await run_case(value)
            for label, value in (
                ("valid", {"id": "7"}),
                ("invalid_input", {"id": "x"}),
                ("bad_stream", {"id": 8, "note": "bad-stream"}),
                ("bad_result", {"id": 9, "note": "bad-result"}),
            )
        }
    valid = NATIVE["valid"]
    # Deviation: the chunk gets the validated value as JSON data, not the model instance.
    assert valid["snapshot"].pop("input_type") == "CtTicket"
    assert got["valid"]["snapshot"].pop("input_type") == "dict"
    assert got["valid"] == valid  # "7" coerced to 7, the default filled, result and stream
    # The client refuses the start with Agently's text, before anything is sent.
    invalid = got["invalid_input"]
    assert invalid["error"] == NATIVE["invalid_input"]["error"]
    assert NATIVE["invalid_input"]["status"] == "running"  # natively the execution exists
    assert invalid["status"] == "ExecutionStateError"  # here there is none
    # A chunk's refused stream item or result fails the execution with Agently's text.
    for label in ("bad_stream", "bad_result"):
        error_type, text = NATIVE[label]["error"]
        assert got[label]["error"][0] == error_type
        assert text in got[label]["error"][1]
        assert got[label]["status"] == NATIVE[label]["status"] == "failed"


def test_contract_api_and_flow_config_as_natively():
    typed = typed_flow()
    spec = typed.get_contract()
    native = NATIVE["api"]
    assert {
        "initial_input": spec.initial_input.__name__,
        "stream": spec.stream.__name__,
        "result": spec.result.__name__,
        "meta": spec.meta,
    } == native["get_contract"]
    assert typed.get_flow_config()["contract"] == native["config_contract"]
    assert typed.get_contract_metadata() == typed.get_flow_config()["contract"]
    assert typed.set_contract(meta={"owner": "ops"}) is typed
    typed.set_contract(initial_input=None, stream=None, result=None, meta=None)
    assert typed.get_flow_config()["contract"] == native["cleared_config_contract"] == {}
    assert TriggerFlow(name="ct-empty").get_flow_config()["contract"] == {}
    with pytest.raises(TypeError) as bad:
        TriggerFlow(name="ct-bad").set_contract(initial_input=5)
    assert ["TypeError", str(bad.value)] == native["bad_contract"]


def test_a_loaded_config_describes_the_contract_without_checking_it():
    # As natively: load_flow_config keeps the contract section; the types are not loaded.
    loaded = TriggerFlow(name="ct-loaded")
    loaded.register_chunk_handler(ct_take)
    loaded.load_flow_config(flow.get_flow_config())
    assert loaded.get_contract_metadata() == flow.get_contract_metadata()
    assert loaded.get_contract().initial_input is None
    assert loaded.contract.check("initial_input", {"id": "x"}) == {"id": "x"}
    assert loaded.compile().blueprint_hash == flow.compile().blueprint_hash
