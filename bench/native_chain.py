"""Native Agently floor for bench/overhead.py (run with the agently venv's python).

In-process TriggerFlow of agently 4.1.4.10, no durability: the same 10-chunk chain
(copy a small dict, ``i += 1``), sequential latency and 200 concurrent 5-chunk executions.
Prints one JSON line. Not importable by the project (agently is not a dependency).

    /work/agently-venv/bin/python bench/native_chain.py --runs 30 --concurrent 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import warnings

warnings.simplefilter("ignore")

from agently import TriggerFlow  # noqa: E402  # pyright: ignore[reportMissingImports]
from agently.base import event_center  # noqa: E402  # pyright: ignore[reportMissingImports]

# Console/log sinks off: stdout carries only the JSON line (as shared/conformance does).
for _hooker in ("RuntimeConsoleSinkHooker", "RuntimeStorageSinkHooker"):
    event_center.unregister_hooker_plugin(_hooker)


async def step(data):
    out = dict(data.input)
    out["i"] = out["i"] + 1
    return out


def chain(n: int) -> TriggerFlow:
    flow = TriggerFlow(name=f"native_chain{n}")
    process = flow
    for i in range(n):
        process = process.to(step, name=f"c{i}")
    return flow


async def manual(flow: TriggerFlow, value) -> None:
    # No record store, no auto-close timer: start, then close (the pure in-process floor).
    execution = flow.create_execution(record_store=False, auto_close=False)
    await execution.async_start(value)
    await execution.async_close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--chain", type=int, default=10)
    parser.add_argument("--throughput-chain", type=int, default=5)
    args = parser.parse_args()
    flow = chain(args.chain)
    short = chain(args.throughput_chain)
    for _ in range(3):  # warm up
        await manual(flow, {"i": 0})
        await flow.async_start({"i": 0})
    lat_manual, lat_sugar = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        await manual(flow, {"i": 0})
        lat_manual.append(time.perf_counter() - start)
        start = time.perf_counter()
        await flow.async_start({"i": 0})
        lat_sugar.append(time.perf_counter() - start)
    start = time.perf_counter()
    await asyncio.gather(*(manual(short, {"i": 0}) for _ in range(args.concurrent)))
    tp_manual = args.concurrent / (time.perf_counter() - start)
    start = time.perf_counter()
    await asyncio.gather(*(short.async_start({"i": 0}) for _ in range(args.concurrent)))
    tp_sugar = args.concurrent / (time.perf_counter() - start)
    print(
        json.dumps(
            {
                "manual_ms": [x * 1000 for x in lat_manual],
                "sugar_ms": [x * 1000 for x in lat_sugar],
                "manual_median_ms": statistics.median(lat_manual) * 1000,
                "sugar_median_ms": statistics.median(lat_sugar) * 1000,
                "throughput_manual": tp_manual,
                "throughput_sugar": tp_sugar,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
