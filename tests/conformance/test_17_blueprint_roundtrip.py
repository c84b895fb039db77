"""17: save_blueprint/load_blueprint (live object) vs the serialisable trigger_flow/v1 config.

Each loaded flow runs on Temporal. The four flows renamed "source" by their config are
served by separate workers: one worker serves versions of a flow only when a handler name
means the same callable in all of them ("swapped" binds another callable to "normalize").
"""

from __future__ import annotations

import pytest

from triggerflow_temporal import TriggerFlow

from ._expected import load_expected, normalize


async def normalize_chunk(data):
    await data.async_set_state("normalized", data.input)
    return data.input


async def store_output(data):
    await data.async_set_state("output", data.input)


async def alt_normalize(data):
    await data.async_set_state("alt", data.input)
    return data.input


def registered_flow(name=None, *, swap=False):
    flow = TriggerFlow(name=name) if name else TriggerFlow()
    flow.register_chunk_handler(alt_normalize if swap else normalize_chunk, name="normalize")
    flow.register_chunk_handler(store_output)
    return flow


async def run(runtime, flow, value):
    async with runtime([flow]):
        return await flow.async_start(value)


async def test_blueprint_round_trip(runtime):
    source = registered_flow("source")
    source.to(normalize_chunk, name="normalize").to(store_output)

    blueprint = source.save_blueprint()
    from_object = TriggerFlow(name="restored").load_blueprint(blueprint)
    config = source.get_flow_config()

    with pytest.raises(ValueError) as missing:
        TriggerFlow(name="empty").load_flow_config(config)

    registered = registered_flow("registered").load_flow_config(config)
    json_flow = registered_flow().load_json_flow(source.get_json_flow())
    yaml_flow = registered_flow().load_yaml_flow(source.get_yaml_flow())
    swapped = registered_flow("swapped", swap=True).load_flow_config(config)

    lam = TriggerFlow(name="lambda")
    lam.to(lambda d: d.input)
    try:
        lam.get_flow_config()
        lambda_export = "ok"
    except ValueError as error:
        lambda_export = "ValueError:" + str(error).split("'")[0]

    got = normalize(
        {
            "blueprint_type": type(blueprint).__name__,
            "load_blueprint_object_result": await run(runtime, from_object, 5),
            "load_blueprint_keeps_flow_name": from_object.name,
            "missing_handler_error": str(missing.value),
            "config_loaded_result": await run(runtime, registered, 6),
            "config_loaded_flow_name": registered.name,
            "json_result": await run(runtime, json_flow, 7),
            "yaml_result": await run(runtime, yaml_flow, 8),
            "swapped_impl_result": await run(runtime, swapped, 9),
            "lambda_export": lambda_export,
            "fingerprint_preserved_by_config": registered.compile().blueprint_hash
            == source.compile().blueprint_hash,
        }
    )
    assert got == load_expected("17_blueprint_roundtrip.py")
