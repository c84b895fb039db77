"""The plugin's payload converter: pydantic conversion with process-wide adapters for the
runtime's own types, per-instance adapters for everything else."""

from __future__ import annotations

from typing import Any

import pydantic

from triggerflow_temporal import TriggerFlow
from triggerflow_temporal.plugin.converter import (
    TriggerFlowPayloadConverter,
    _is_stable,  # pyright: ignore[reportPrivateUsage]
    _shared_adapter,  # pyright: ignore[reportPrivateUsage]
    triggerflow_data_converter,
)
from triggerflow_temporal.spec.chunk_io import ChunkInput, ChunkOutput
from triggerflow_temporal.spec.wire import ExecutionOptions, WorkflowInput


class Ticket(pydantic.BaseModel):
    id: str
    amount: float


def test_the_runtimes_types_share_one_adapter_across_converter_instances():
    value = WorkflowInput(spec={"name": "f"}, options=ExecutionOptions(tenant="t1"))
    first, second = TriggerFlowPayloadConverter(), TriggerFlowPayloadConverter()
    [payload] = first.to_payloads([value])
    _shared_adapter.cache_clear()
    assert first.from_payloads([payload], [WorkflowInput]) == [value]
    assert second.from_payloads([payload], [WorkflowInput]) == [value]
    info = _shared_adapter.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # built once, reused by the second instance


def test_user_types_stay_in_the_per_instance_cache():
    # A user's model may be re-created by the workflow sandbox per instance: pinning it in a
    # process-wide cache would leak every copy.
    converter = TriggerFlowPayloadConverter()
    [payload] = converter.to_payloads([Ticket(id="T-1", amount=2.5)])
    _shared_adapter.cache_clear()
    assert converter.from_payloads([payload], [Ticket]) == [Ticket(id="T-1", amount=2.5)]
    assert _shared_adapter.cache_info().currsize == 0
    assert not _is_stable(Ticket) and not _is_stable(dict[str, Ticket])
    assert _is_stable(dict[str, Any]) and _is_stable(ChunkOutput) and _is_stable(None)


def test_round_trips_as_the_pydantic_converter_does():
    converter = TriggerFlowPayloadConverter()
    chunk_input = ChunkInput(flow="f", chunk="c", execution_id="e", run_id="r", value=[1, "a"])
    values: list[Any] = [chunk_input, {"k": [1, 2.5, None]}, "text", None]
    payloads = converter.to_payloads(values)
    hints: list[type] = [ChunkInput, dict, str, type(None)]
    assert converter.from_payloads(payloads, hints) == values


async def test_the_plugin_installs_it_on_clients(runtime):
    async with runtime([flow]) as client:
        assert client.data_converter is triggerflow_data_converter
        execution = flow.create_execution(auto_close=False)
        await execution.async_start({"id": "T-9", "amount": 4})
        assert await execution.async_close() == {"ticket": {"id": "T-9", "amount": 4.0}}


async def keep_ticket(data: Any) -> None:
    # A user model validated in the chunk and stored as JSON data.
    await data.async_set_state("ticket", Ticket.model_validate(data.input).model_dump())


flow = TriggerFlow(name="converter")
flow.to(keep_ticket)
