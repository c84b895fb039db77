"""Overhead of triggerflow_temporal over hand-written Temporal code (issue 6, bench 1).

One dev server, one in-process worker serving both the hand-written baseline
(``bench/_baseline.py``: a workflow calling 10 activities in sequence) and the TriggerFlow
variants (``bench/_flows.py``: the same 10-step chain), measured side by side, interleaved
round by round. Then 200 concurrent executions of 5 steps (throughput), the history of one
execution per variant (where the time goes), and native Agently in-process as the floor.

    python bench/overhead.py            # full: 30 latency rounds, 200 concurrent x 3
    python bench/overhead.py --small    # quick: 8 rounds, 50 concurrent x 1
    python bench/overhead.py --tune     # worker-settings sweep (throughput), see RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.worker import UnsandboxedWorkflowRunner

from bench import _common, _flows
from bench._common import (
    WORKER_SETTINGS,
    BenchEnv,
    bench_env,
    cpu_seconds,
    dev_server,
    dev_server_pid,
    history_profile,
    log,
    machine_line,
    med,
    ms,
    print_table,
    ratio,
    run_native,
    timed,
)

Runner = Callable[[], Awaitable[Any]]


def hw_runner(b: BenchEnv, n: int, *, local: bool = False) -> Runner:
    async def run() -> Any:
        result = await b.client.execute_workflow(
            "hw_chain",
            {"value": {"i": 0}, "n": n, "local": local},
            id=f"hw-{uuid.uuid4().hex[:12]}",
            task_queue=b.task_queue,
            result_type=dict,
        )
        assert result["i"] == n, result
        return result

    return run


def tf_runner(flow: Any) -> Runner:
    async def run() -> Any:
        # The hidden-execution sugar: one workflow, closed when idle (auto_close_timeout=0),
        # returns the close snapshot; the equivalent of execute_workflow.
        return await flow.async_start({"i": 0})

    return run


def tf_execution_runner(flow: Any) -> Runner:
    async def run() -> Any:
        # The execution API most apps use: update-with-start, then the close update.
        execution = flow.create_execution(auto_close=False)
        await execution.async_start({"i": 0})
        return await execution.async_close()

    return run


def latency_variants(b: BenchEnv) -> dict[str, Runner]:
    n = _flows.CHAIN_LENGTH
    return {
        "hand-written, activities": hw_runner(b, n),
        "triggerflow, activity": tf_runner(_flows.CHAIN_FLOWS["activity"]),
        "triggerflow, activity, start+close API": tf_execution_runner(
            _flows.CHAIN_FLOWS["activity"]
        ),
        "triggerflow, activity, +1 KB state/chunk": tf_runner(_flows.STATEFUL_CHAIN_FLOW),
        "hand-written, local activities": hw_runner(b, n, local=True),
        "triggerflow, local_activity": tf_runner(_flows.CHAIN_FLOWS["local_activity"]),
        "triggerflow, workflow (inline)": tf_runner(_flows.CHAIN_FLOWS["workflow"]),
    }


BASELINE_OF = {
    "triggerflow, activity": "hand-written, activities",
    "triggerflow, activity, start+close API": "hand-written, activities",
    "triggerflow, activity, +1 KB state/chunk": "hand-written, activities",
    "triggerflow, local_activity": "hand-written, local activities",
    "triggerflow, workflow (inline)": "hand-written, local activities",
}


def throughput_variants(b: BenchEnv) -> dict[str, Runner]:
    n = _flows.THROUGHPUT_CHAIN_LENGTH
    return {
        "hand-written, activities": hw_runner(b, n),
        "triggerflow, activity": tf_runner(_flows.THROUGHPUT_FLOWS["activity"]),
        "hand-written, local activities": hw_runner(b, n, local=True),
        "triggerflow, local_activity": tf_runner(_flows.THROUGHPUT_FLOWS["local_activity"]),
        "triggerflow, workflow (inline)": tf_runner(_flows.THROUGHPUT_FLOWS["workflow"]),
    }


async def measure_latency(variants: dict[str, Runner], rounds: int) -> dict[str, list[float]]:
    for run in variants.values():  # warm up: sandbox imports, sticky cache, connections
        for _ in range(3):
            await run()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, run in variants.items():  # interleaved: noise hits every variant alike
            samples[name].append(await timed(run))
        if (r + 1) % 10 == 0:
            log(f"  latency round {r + 1}/{rounds}")
    return samples


async def measure_throughput(
    variants: dict[str, Runner],
    concurrent: int,
    repeats: int,
    cpu: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Executions per second; ``cpu`` collects [worker ms/wf, server ms/wf] per variant."""
    server = dev_server_pid()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(repeats):
        for name, run in variants.items():
            w0, s0 = cpu_seconds(os.getpid()), cpu_seconds(server) if server else float("nan")
            elapsed = await timed(
                lambda run=run: asyncio.gather(*(run() for _ in range(concurrent)))
            )
            w1, s1 = cpu_seconds(os.getpid()), cpu_seconds(server) if server else float("nan")
            rates[name].append(concurrent / elapsed)
            if cpu is not None:
                cpu.setdefault(name, [0.0, 0.0, 0])
                cpu[name][0] += (w1 - w0) * 1000
                cpu[name][1] += (s1 - s0) * 1000
                cpu[name][2] += concurrent
            log(f"  throughput {name} (repeat {rep + 1}): {concurrent / elapsed:.1f} wf/s")
    return rates


async def profile(b: BenchEnv) -> list[list[Any]]:
    """History of one execution per variant: workflow tasks, events, payload bytes."""
    rows = []
    n = _flows.CHAIN_LENGTH
    cases: list[tuple[str, str]] = []
    wid = f"hw-prof-{uuid.uuid4().hex[:8]}"
    await b.client.execute_workflow(
        "hw_chain",
        {"value": {"i": 0}, "n": n, "local": False},
        id=wid,
        task_queue=b.task_queue,
        result_type=dict,
    )
    cases.append(("hand-written, activities", wid))
    wid = f"hw-prof-local-{uuid.uuid4().hex[:8]}"
    await b.client.execute_workflow(
        "hw_chain",
        {"value": {"i": 0}, "n": n, "local": True},
        id=wid,
        task_queue=b.task_queue,
        result_type=dict,
    )
    cases.append(("hand-written, local activities", wid))
    for label, flow in [
        ("triggerflow, activity", _flows.CHAIN_FLOWS["activity"]),
        ("triggerflow, activity, +1 KB state/chunk", _flows.STATEFUL_CHAIN_FLOW),
        (
            "triggerflow, activity, +1 KB state/chunk, reads_state=[]",
            _flows.STATEFUL_NO_READS_FLOW,
        ),
        ("triggerflow, local_activity", _flows.CHAIN_FLOWS["local_activity"]),
        ("triggerflow, workflow (inline)", _flows.CHAIN_FLOWS["workflow"]),
    ]:
        execution = flow.create_execution(auto_close=True, auto_close_timeout=0.0, hidden=True)
        await execution.async_start({"i": 0})
        cases.append((label, execution.id))
    execution = _flows.CHAIN_FLOWS["activity"].create_execution(auto_close=False)
    await execution.async_start({"i": 0})
    await execution.async_close()
    cases.append(("triggerflow, activity, start+close API", execution.id))
    for label, wid in cases:
        p = await history_profile(b.client, wid)
        rows.append(
            [
                label,
                p["events"],
                p["workflow_tasks"],
                p["activities"] or p["markers"],
                p["updates"],
                p["start_input_bytes"],
                p["activity_input_bytes"],
                p["activity_result_bytes"],
                p["history_json_bytes"],
            ]
        )
    return rows


async def run_main(args: argparse.Namespace) -> None:
    rounds, concurrent, repeats = (
        (8, 50, 1) if args.small else (args.rounds, args.concurrent, args.repeats)
    )
    print(f"# bench/overhead.py {'--small' if args.small else ''}\n\n{machine_line()}")
    print(
        f"\nWorker settings (both sides, one worker): {WORKER_SETTINGS}, sandboxed runner, "
        "pydantic data converter."
    )
    async with dev_server() as env:
        async with bench_env(env, _flows.ALL_FLOWS) as b:
            log(f"latency: {rounds} interleaved rounds")
            lat = await measure_latency(latency_variants(b), rounds)
            log("history profile")
            prof = await profile(b)
            log(f"throughput: {concurrent} concurrent x {repeats}")
            cpu: dict[str, list[float]] = {}
            tput = await measure_throughput(throughput_variants(b), concurrent, repeats, cpu)
    log("native Agently floor")
    native = run_native(
        "native_chain.py", "--runs", str(max(rounds, 10)), "--concurrent", str(concurrent)
    )

    rows = []
    for name, values in lat.items():
        base = BASELINE_OF.get(name)
        rows.append(
            [
                name,
                ms(min(values)),
                ms(med(values)),
                ratio(med(values), med(lat[base])) if base else "1.00x (baseline)",
                base or "",
            ]
        )
    if native:
        rows.append(
            [
                "native Agently, in process (start+close)",
                min(native["manual_ms"]),
                native["manual_median_ms"],
                "",
                "no durability (floor)",
            ]
        )
        rows.append(
            [
                "native Agently, flow.async_start",
                min(native["sugar_ms"]),
                native["sugar_median_ms"],
                "",
                "auto-close poll ~50 ms",
            ]
        )
    print_table(
        ["variant (10-step chain)", "min ms", "median ms", "median ratio", "vs"],
        rows,
        title=f"Latency, one execution at a time ({rounds} rounds, interleaved)",
    )
    rows = []
    for name, values in tput.items():
        base = BASELINE_OF.get(name)
        worker_ms, server_ms, count = cpu[name]
        total = (worker_ms + server_ms) / count
        base_total = (sum(cpu[base][:2]) / cpu[base][2]) if base else total
        rows.append(
            [
                name,
                min(values),
                med(values),
                ratio(med(values), med(tput[base])) if base else "1.00x (baseline)",
                worker_ms / count,
                server_ms / count,
                total,
                ratio(base_total, total) if base else "1.00x",
                base or "",
            ]
        )
    if native:
        rows.append(
            [
                "native Agently, in process (start+close)",
                "",
                native["throughput_manual"],
                "",
                "",
                "",
                "",
                "",
                "no durability (floor)",
            ]
        )
    print_table(
        [
            "variant (5-step chain)",
            "min wf/s",
            "median wf/s",
            "median ratio",
            "worker CPU ms/wf",
            "server CPU ms/wf",
            "total CPU ms/wf",
            "CPU-implied ratio",
            "vs",
        ],
        rows,
        title=f"Throughput, {concurrent} concurrent executions ({repeats} repeat(s))",
    )
    print_table(
        [
            "variant (10-step chain)",
            "events",
            "workflow tasks",
            "activities/markers",
            "updates",
            "start input B",
            "chunk input B (median)",
            "chunk result B (median)",
            "history JSON B",
        ],
        prof,
        title="History of one execution (where the time goes)",
    )


TUNING: list[tuple[str, dict[str, Any]]] = [
    ("default 100/100/1000, 5/5 polls", {}),
    (
        "activities 20, wf tasks 20",
        {"max_concurrent_activities": 20, "max_concurrent_workflow_tasks": 20},
    ),
    (
        "activities 500, wf tasks 500",
        {"max_concurrent_activities": 500, "max_concurrent_workflow_tasks": 500},
    ),
    (
        "polls 2/2",
        {"max_concurrent_workflow_task_polls": 2, "max_concurrent_activity_task_polls": 2},
    ),
    (
        "polls 10/10",
        {"max_concurrent_workflow_task_polls": 10, "max_concurrent_activity_task_polls": 10},
    ),
    ("sticky cache 100 (< concurrency)", {"max_cached_workflows": 100}),
    # Without a cache every workflow task replays the history; local activities then run at
    # under 1 wf/s (a 200-execution burst takes ~5 min), so that cell is skipped.
    ("no sticky cache (0), local_activity skipped", {"max_cached_workflows": 0}),
    ("unsandboxed runner", {"workflow_runner": UnsandboxedWorkflowRunner()}),
]


async def run_tune(args: argparse.Namespace) -> None:
    concurrent, repeats = (50, 1) if args.small else (args.concurrent, args.tune_repeats)
    print(f"# bench/overhead.py --tune {'--small' if args.small else ''}\n\n{machine_line()}")
    results: list[list[Any]] = []
    default_tp: dict[str, float] = {}
    async with dev_server() as env:
        for label, settings in TUNING:
            saved = dict(_common.WORKER_SETTINGS)
            _common.WORKER_SETTINGS.update(settings)
            try:
                async with bench_env(env, _flows.ALL_FLOWS) as b:
                    n = _flows.THROUGHPUT_CHAIN_LENGTH
                    variants = {
                        "hand-written": hw_runner(b, n),
                        "triggerflow activity": tf_runner(_flows.THROUGHPUT_FLOWS["activity"]),
                        "triggerflow local_activity": tf_runner(
                            _flows.THROUGHPUT_FLOWS["local_activity"]
                        ),
                    }
                    if "local_activity skipped" in label:
                        del variants["triggerflow local_activity"]
                    for run in variants.values():
                        await run()
                    log(f"tuning: {label}")
                    cpu: dict[str, list[float]] = {}
                    tput = await measure_throughput(variants, concurrent, repeats, cpu)
            finally:
                _common.WORKER_SETTINGS.clear()
                _common.WORKER_SETTINGS.update(saved)
            row: list[Any] = [label]
            for name in ("hand-written", "triggerflow activity", "triggerflow local_activity"):
                if name not in tput:
                    row += ["skipped", "", ""]
                    continue
                values = tput[name]
                value = med(values)
                default_tp.setdefault(name, value)
                worker_ms, server_ms, count = cpu[name]
                row += [
                    value,
                    ratio(value, default_tp[name]),
                    f"{worker_ms / count:.0f}+{server_ms / count:.0f}",
                ]
            results.append(row)
    print_table(
        [
            "worker setting",
            "hand-written wf/s",
            "vs default",
            "CPU ms/wf worker+server",
            "tf activity wf/s",
            "vs default",
            "CPU ms/wf worker+server",
            "tf local_activity wf/s",
            "vs default",
            "CPU ms/wf worker+server",
        ],
        results,
        title=f"Worker tuning: throughput, {concurrent} concurrent 5-step executions",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="quick mode")
    parser.add_argument("--tune", action="store_true", help="worker-settings sweep")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tune-repeats", type=int, default=1, help="repeats per tuning row")
    parser.add_argument(
        "--patch-shared-type-adapters",
        action="store_true",
        help="experiment: share pydantic TypeAdapters across workflow instances",
    )
    args = parser.parse_args()
    if args.patch_shared_type_adapters:
        _common.patch_shared_type_adapters()
        print("EXPERIMENT: pydantic TypeAdapter cache shared across workflow instances")
    asyncio.run(run_tune(args) if args.tune else run_main(args))


if __name__ == "__main__":
    main()
