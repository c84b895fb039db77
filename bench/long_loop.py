"""Long executions (issue 12): an emit loop of up to 100,000 iterations, a 1,000-chunk chain,
and thousands of pause/resume cycles with 100 KB values.

The loop is ``flow.to(tick); flow.when("again").to(tick)`` where ``tick`` sets ``n`` and
re-emits ``again`` with ``n + 1`` until a target (bench/soak_flows.py). It runs with its
chunk as a local activity, inline (``execute_in="workflow"``) and, smaller, as a regular
activity. Reported per variant: wall time, the cost per step in each tenth of the loop
(it must stay flat: no quadratic term), and every run of the execution (continue-as-new):
events, history bytes, the size of the run's input (its ``WorkflowExecutionStarted``
payload, i.e. the FlowSpec plus the carry) and how many steps it held. The state is
checked (``n == ticks == target``: nothing lost, nothing applied twice).

Per-step timing: every tick stamps the wall clock every ``N/100`` iterations in the worker
(this process; an inline tick the first time it runs). The cost per step of the first
tenth of the loop and of the last one, and their ratio, show whether a step costs more as
the loop goes on (state, carry or history growing with it: a quadratic term). The
``state`` query is sampled as well (every ``--poll`` seconds), the fallback when a loop
stamped too few ticks.

``--versions 3,4`` runs the loops as executions of each runtime version (set the way a
client of that version would: ``client.persistence.RUNTIME_VERSION``): version 3 yields
an inline loop with a 1 ms timer every 200 chunks, version 4 with a no-op local activity
every 50 (finding L4); version 3's inline loop runs ``--v3-inline-iterations`` at most.
``--no-suggestion`` starts the server with the continue-as-new suggestion out of reach, so
only the interpreter's ``MAX_RUN_EVENTS`` ends a run (finding L5: how far past it a run of
local activities goes).

One dev server (``start_dev_server()``: the fast dynamic config, and Temporal's default
continue-as-new suggestion thresholds, printed below), one in-process worker with the CLI
worker's defaults.

    python bench/long_loop.py                                  # 20,000 iterations, ~5 min
    python bench/long_loop.py --iterations 100000 --only local_activity,workflow
    python bench/long_loop.py --iterations 100000 --only workflow --versions 3,4
    python bench/long_loop.py --no-suggestion --iterations 30000 --only local_activity \
        --versions 3,4
    python bench/long_loop.py --only approvals --cycles 10000   # 10,000 resumes x 100 KB
    python bench/long_loop.py --small                           # ~1 min
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.worker import Replayer, Worker

from bench import soak_flows
from bench._common import (
    WORKER_SETTINGS,
    connect,
    cpu_seconds,
    dev_server_pid,
    log,
    machine_line,
    make_plugin,
    med,
    print_table,
    rss_mb,
)
from triggerflow_temporal.client import persistence as _persistence
from triggerflow_temporal.interpreter.workflow_base import FAST_YIELD_VERSION
from triggerflow_temporal.spec.wire import RUNTIME_VERSION
from triggerflow_temporal.testing import start_dev_server

# Temporal server defaults (go.temporal.io/server common/dynamicconfig/constants.go); the
# dev server of this bench does not override them.
SERVER_DEFAULTS = {
    "limit.historyCount.suggestContinueAsNew": 4 * 1024,
    "limit.historySize.suggestContinueAsNew": 4 * 1024 * 1024,
    "limit.historyCount.warn": 10 * 1024,
    "limit.historySize.warn": 10 * 1024 * 1024,
    "limit.historyCount.error": 50 * 1024,
    "limit.historySize.error": 50 * 1024 * 1024,
}
# --no-suggestion: thresholds no run of these loops reaches.
NO_SUGGESTION = {
    "limit.historyCount.suggestContinueAsNew": 1_000_000,
    "limit.historySize.suggestContinueAsNew": 1024 * 1024 * 1024,
}
# What the issue asks of every run.
RUN_EVENT_BOUND = 10_000
RUN_BYTES_BOUND = 10 * 1024 * 1024


def load_line() -> str:
    try:
        return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average n/a"


# ----------------------------------------------------------------------------- runs
async def first_event(client: Client, workflow_id: str, run_id: str) -> Any:
    response = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            maximum_page_size=1,
        )
    )
    return response.history.events[0]


async def run_chain(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    """Every run of ``workflow_id``, oldest first: events, bytes, input size, carried steps.

    Follows ``continued_execution_run_id`` back from the latest run (no visibility lag).
    """
    runs: list[dict[str, Any]] = []
    run_id: str | None = None
    while True:
        description = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        info = description.raw_description.workflow_execution_info
        event = await first_event(client, workflow_id, description.run_id)
        started = event.workflow_execution_started_event_attributes
        payload = started.input.payloads[0].data if started.input.payloads else b""
        try:
            carry = json.loads(payload).get("carry") or {}
        except (ValueError, AttributeError):
            carry = {}
        runs.append(
            {
                "run_id": description.run_id,
                "events": info.history_length,
                "bytes": info.history_size_bytes,
                "input_bytes": len(payload),
                "carry_bytes": len(json.dumps(carry, separators=(",", ":"))) if carry else 0,
                "steps_at_start": int(carry.get("steps") or 0),
                "status": description.status.name if description.status else "?",
                "start": description.start_time,
                "close": description.close_time,
            }
        )
        previous = started.continued_execution_run_id
        if not previous:
            return runs[::-1]
        run_id = previous


async def suggestion_points(
    client: Client, workflow_id: str, runs: list[dict[str, Any]], limit: int = 3
) -> list[dict[str, Any]]:
    """Where Temporal first suggested continue-as-new in the first ``limit`` closed runs."""
    points = []
    for run in runs[:-1][:limit]:
        history = await client.get_workflow_handle(
            workflow_id, run_id=run["run_id"]
        ).fetch_history()
        for event in history.events:
            if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                continue
            attrs = event.workflow_task_started_event_attributes
            if attrs.suggest_continue_as_new:
                points.append(
                    {
                        "event_id": event.event_id,
                        "size": attrs.history_size_bytes,
                        "run_events": len(history.events),
                    }
                )
                break
    return points


def run_rows(runs: list[dict[str, Any]], total_steps: int) -> list[dict[str, Any]]:
    """Steps held by each run (from the next run's carried step count)."""
    for index, run in enumerate(runs):
        end = runs[index + 1]["steps_at_start"] if index + 1 < len(runs) else total_steps
        run["steps"] = end - run["steps_at_start"]
    return runs


def run_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    events = [r["events"] for r in runs]
    sizes = [r["bytes"] for r in runs]
    inputs = [r["input_bytes"] for r in runs]
    carries = [r["carry_bytes"] for r in runs[1:]] or [0]
    return {
        "runs": len(runs),
        "events_max": max(events),
        "events_med": med(events),
        "kb_max": max(sizes) / 1024,
        "input_kb_first": inputs[0] / 1024,
        "input_kb_max": max(inputs) / 1024,
        "input_kb_med": med(inputs[1:] or inputs) / 1024,
        "carry_kb_max": max(carries) / 1024,
        "within_bounds": all(
            r["events"] <= RUN_EVENT_BOUND and r["bytes"] <= RUN_BYTES_BOUND for r in runs
        ),
    }


# ---------------------------------------------------------------------- progress
def time_at(samples: list[tuple[float, int]], target: int) -> float:
    """When the loop passed ``target`` (linear between the samples around it)."""
    previous = samples[0]
    for sample in samples:
        if sample[1] >= target:
            t0, n0 = previous
            t1, n1 = sample
            if n1 == n0:
                return t1
            return t0 + (t1 - t0) * (target - n0) / (n1 - n0)
        previous = sample
    return float("nan")


def deciles(samples: list[tuple[float, int]], total: int) -> list[float]:
    """Milliseconds per step in each tenth of the loop.

    The first tenth starts at the first sample (the first stamped tick when the loop was
    timed by stamps: the start of the execution is not a step).
    """
    samples = sorted(samples)
    points = [samples[0][1], *(total * d // 10 for d in range(1, 11))]
    cuts = [time_at(samples, n) for n in points]
    return [1000.0 * (cuts[d + 1] - cuts[d]) / max(1, points[d + 1] - points[d]) for d in range(10)]


@contextlib.contextmanager
def runtime_version(version: int) -> Any:
    """Start executions as a client of runtime ``version`` would."""
    saved = _persistence.RUNTIME_VERSION
    _persistence.RUNTIME_VERSION = version
    try:
        yield
    finally:
        _persistence.RUNTIME_VERSION = saved


class StateSampler:
    """Samples ``n`` from the execution's ``state`` query while the loop runs."""

    def __init__(self, execution: Any, every: float) -> None:
        self.execution = execution
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self.failures = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                state = await asyncio.wait_for(self.execution.async_get_state(), 30)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                continue
            n = (state or {}).get("n")
            if isinstance(n, int):
                self.samples.append((time.perf_counter(), n))


# --------------------------------------------------------------------------- loop
async def replay_runs(
    client: Client, workflow_id: str, runs: list[dict[str, Any]], plugin: Any
) -> int:
    """Replay every run of ``workflow_id`` with the interpreter; how many failed."""
    replayer = Replayer(workflows=[], plugins=[plugin])
    failures = 0
    for run in runs:
        history = await client.get_workflow_handle(
            workflow_id, run_id=run["run_id"]
        ).fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures += 1
            log(f"  run {run['run_id']} does not replay: {result.replay_failure}")
    return failures


async def run_loop(
    client: Client,
    execute_in: str,
    iterations: int,
    poll: float,
    version: int,
    replay_plugin: Any = None,
) -> dict[str, Any]:
    flow = soak_flows.LOOPS[execute_in]
    execution = flow.create_execution(
        execution_id=f"loop-{execute_in}-v{version}-{uuid.uuid4().hex[:6]}", auto_close=False
    )
    mark = max(1, iterations // 100)
    sampler = StateSampler(execution, poll)
    sampling = asyncio.ensure_future(sampler.run())
    log(f"loop ({execute_in}, runtime version {version}): {iterations} iterations, {execution.id}")
    began_cpu = cpu_seconds(os.getpid())
    began = time.perf_counter()
    try:
        with runtime_version(version):
            await execution.async_start({"n": 1, "target": iterations, "mark": mark})
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(os.getpid()) - began_cpu
    state = await execution.async_get_state()
    runs = run_rows(await run_chain(client, execution.id), iterations)
    points = await suggestion_points(client, execution.id, runs)
    await execution.async_close()
    replay_failures = None
    if replay_plugin is not None:
        runs_now = await run_chain(client, execution.id)  # the last run closed since
        replay_failures = await replay_runs(client, execution.id, runs_now, replay_plugin)
        log(f"  replayed {len(runs_now)} run(s): {replay_failures} failure(s)")
    stamps = soak_flows.PROGRESS.pop(execution.id, {})
    cpu_deciles: list[float] | None = None
    if len(stamps) >= 10:
        samples = [(t, n) for n, (t, _) in stamps.items()]
        # This process's CPU time per step: the worker, its chunks and the client, not the
        # server; steadier than the wall clock on a shared machine.
        cpu_deciles = deciles([(c, n) for n, (_, c) in stamps.items()], iterations)
        source = f"tick stamps every {mark}"
    else:
        samples = [(began, 0), *sampler.samples, (began + elapsed, iterations)]
        source = f"state query every {poll:g} s ({len(sampler.samples)} samples)"
    per_decile = deciles(samples, iterations)
    ok = state.get("n") == iterations and state.get("ticks") == iterations
    log(
        f"  {elapsed:.1f} s, {len(runs)} run(s), state n={state.get('n')} "
        f"ticks={state.get('ticks')} ({'ok' if ok else 'WRONG'}); {load_line()}"
    )
    return {
        "label": f"loop, {execute_in}, v{version}",
        "execute_in": execute_in,
        "version": version,
        "iterations": iterations,
        "elapsed": elapsed,
        "cpu": cpu,
        "state_ok": ok,
        "state": {k: state.get(k) for k in ("n", "ticks")},
        "runs": runs,
        "summary": run_summary(runs),
        "deciles": per_decile,
        "cpu_deciles": cpu_deciles,
        "replay_failures": replay_failures,
        "source": source,
        "points": points,
        "id": execution.id,
    }


async def run_chain_flow(client: Client) -> dict[str, Any]:
    execution = soak_flows.chain.create_execution(
        execution_id=f"chain-{uuid.uuid4().hex[:6]}", auto_close=False
    )
    log(f"chain of {soak_flows.CHAIN_LENGTH} local_activity chunks, {execution.id} ...")
    began = time.perf_counter()
    await execution.async_start(0)
    elapsed = time.perf_counter() - began
    snapshot = await execution.async_close()
    total = snapshot.get("total") if isinstance(snapshot, dict) else None
    runs = run_rows(await run_chain(client, execution.id), soak_flows.CHAIN_LENGTH + 1)
    markers = 0
    for run in runs:
        history = await client.get_workflow_handle(
            execution.id, run_id=run["run_id"]
        ).fetch_history()
        markers += sum(e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED for e in history.events)
    ok = total == soak_flows.CHAIN_LENGTH and markers == soak_flows.CHAIN_LENGTH
    log(f"  {elapsed:.1f} s, total={total}, {markers} markers, {len(runs)} run(s)")
    return {
        "label": f"chain of {soak_flows.CHAIN_LENGTH}, local_activity",
        "elapsed": elapsed,
        "ok": ok,
        "total": total,
        "markers": markers,
        "runs": runs,
        "summary": run_summary(runs),
    }


async def run_approvals(client: Client, cycles: int, value_kb: int) -> dict[str, Any]:
    execution = soak_flows.approvals.create_execution(
        execution_id=f"approvals-{uuid.uuid4().hex[:6]}", auto_close=False
    )
    blob = "x" * (value_kb * 1024)
    log(f"approvals: {cycles} pause/resume cycles with {value_kb} KB values, {execution.id} ...")
    began = time.perf_counter()
    await execution.async_start(0)
    times: list[float] = []
    report_every = max(1, cycles // 20)
    for index in range(cycles):
        t0 = time.perf_counter()
        await execution.async_continue_with(f"cycle-{index}", {"cycle": index + 1, "blob": blob})
        times.append(time.perf_counter() - t0)
        if (index + 1) % report_every == 0:
            log(
                f"  {index + 1}/{cycles} resumes, last {report_every}: median "
                f"{1000 * statistics.median(times[-report_every:]):.1f} ms; {load_line()}"
            )
    elapsed = time.perf_counter() - began
    state = await execution.async_get_state()
    pending = await execution.async_get_pending_interrupts()
    saved = await execution.async_save()
    runs = run_rows(await run_chain(client, execution.id), 0)
    points = await suggestion_points(client, execution.id, runs, limit=2)
    await execution.async_close(pending_interrupts="cancel")
    resolved = [i for i in saved["interrupts"].values() if i["status"] != "waiting"]
    ok = (
        state.get("cycle") == cycles
        and state.get("last_size") == len(blob)
        and "mismatch" not in state
        and list(pending) == [f"cycle-{cycles}"]
    )
    tenth = max(1, cycles // 10)
    per_decile = [
        1000.0 * statistics.median(times[d * tenth : (d + 1) * tenth] or [float("nan")])
        for d in range(10)
    ]
    log(f"  {elapsed:.1f} s, {len(runs)} run(s), state cycle={state.get('cycle')} ({ok})")
    return {
        "label": f"approvals, {value_kb} KB values",
        "cycles": cycles,
        "value_kb": value_kb,
        "elapsed": elapsed,
        "ok": ok,
        "state": {k: state.get(k) for k in ("cycle", "last_size", "mismatch")},
        "resolved_carried": len(resolved),
        "runs": runs,
        "summary": run_summary(runs),
        "deciles": per_decile,
        "points": points,
    }


# -------------------------------------------------------------------------- report
def print_thresholds(no_suggestion: bool) -> None:
    values = {**SERVER_DEFAULTS, **(NO_SUGGESTION if no_suggestion else {})}
    how = "set by --no-suggestion" if no_suggestion else "Temporal defaults, not set"
    print(f"\nContinue-as-new and history limits of the dev server ({how}):\n")
    for key, value in values.items():
        shown = f"{value / 1024 / 1024:.0f} MiB" if "Size" in key else f"{value} events"
        print(f"- `{key}` = {shown}")
    from triggerflow_temporal.spec.limits import MAX_RUN_EVENTS

    print(
        f"- the interpreter also continues as new at {MAX_RUN_EVENTS} events "
        "(`_workflow_scheduler.MAX_RUN_EVENTS`), should a server never suggest it"
    )
    print(f"- what the issue asks of each run: <= {RUN_EVENT_BOUND} events, <= 10 MB")


def print_points(label: str, points: list[dict[str, Any]]) -> None:
    if not points:
        return
    text = "; ".join(
        f"event {p['event_id']} ({p['size'] / 1024:.0f} KB), run ended at {p['run_events']}"
        for p in points
    )
    print(f"- {label}: first suggestion {text}")


def start_and_end(per_decile: list[float] | None, *, all_tenths: bool = False) -> list[str]:
    """First tenth, last tenth (or every tenth) and the ratio of the two, formatted."""
    if not per_decile:
        return ["n/a"] * (11 if all_tenths else 3)
    first, last = per_decile[0], per_decile[-1]
    shown = per_decile if all_tenths else [first, last]
    return [*(f"{x:.3f}" for x in shown), f"{last / first:.2f}x" if first else "n/a"]


def report(results: list[dict[str, Any]]) -> None:
    loops = [r for r in results if r["label"].startswith("loop")]
    if loops:
        rows = []
        for r in loops:
            s = r["summary"]
            rows.append(
                [
                    r["label"],
                    r["iterations"],
                    r["elapsed"],
                    r["iterations"] / r["elapsed"],
                    1000.0 * r["cpu"] / r["iterations"],
                    s["runs"],
                    s["events_max"],
                    s["events_med"],
                    s["kb_max"],
                    s["input_kb_max"],
                    "yes" if s["within_bounds"] else "NO",
                    "ok" if r["state_ok"] else f"WRONG {r['state']}",
                ]
            )
        print_table(
            [
                "variant",
                "iterations",
                "wall s",
                "steps/s",
                "process CPU ms/step",
                "runs",
                "events/run max",
                "events/run median",
                "history KB/run max",
                "run input KB max",
                "every run <= 10k events, 10 MB",
                "state n, ticks",
            ],
            rows,
            title="Emit loop",
        )
        print_table(
            ["variant", *(f"{d * 10}-{d * 10 + 10}%" for d in range(10)), "last/first", "timing"],
            [
                [
                    r["label"],
                    *[f"{x:.2f}" for x in r["deciles"]],
                    f"{r['deciles'][-1] / r['deciles'][0]:.2f}x" if r["deciles"][0] else "n/a",
                    r["source"],
                ]
                for r in loops
            ],
            title="Milliseconds per step in each tenth of the loop (flat = no quadratic term)",
        )
        print_table(
            [
                "variant",
                "iterations",
                "steps/s",
                "wall ms/step, first tenth",
                "last tenth",
                "last / first",
                "CPU ms/step, first tenth",
                "last tenth",
                "last / first",
                "runs",
                "events/run max",
            ],
            [
                [
                    r["label"],
                    r["iterations"],
                    r["iterations"] / r["elapsed"],
                    *start_and_end(r["deciles"]),
                    *start_and_end(r["cpu_deciles"]),
                    r["summary"]["runs"],
                    r["summary"]["events_max"],
                ]
                for r in loops
            ],
            title="Cost per step at the start and at the end of the loop (ratio 1 = constant)",
        )
        timed = [r for r in loops if r["cpu_deciles"]]
        if timed:
            print_table(
                ["variant", *(f"{d * 10}-{d * 10 + 10}%" for d in range(10)), "last/first"],
                [[r["label"], *start_and_end(r["cpu_deciles"], all_tenths=True)] for r in timed],
                title="CPU milliseconds of this process (worker, chunks, client) per step, "
                "in each tenth of the loop",
            )
        by_version: dict[str, dict[int, dict[str, Any]]] = {}
        for r in loops:
            by_version.setdefault(r["execute_in"], {})[r["version"]] = r
        compared = {k: v for k, v in by_version.items() if len(v) > 1}
        if compared:
            rows = []
            for execute_in, runs in compared.items():
                old, new = runs[min(runs)], runs[max(runs)]
                old_rate = old["iterations"] / old["elapsed"]
                new_rate = new["iterations"] / new["elapsed"]
                rows.append(
                    [
                        execute_in,
                        f"v{old['version']}: {old_rate:.0f} ({old['iterations']} steps)",
                        f"v{new['version']}: {new_rate:.0f} ({new['iterations']} steps)",
                        f"{new_rate / old_rate:.1f}x",
                        f"{old['summary']['events_max']} / {new['summary']['events_max']}",
                    ]
                )
            print_table(
                ["loop", "steps/s before", "steps/s after", "after / before", "events/run max"],
                rows,
                title="Runtime versions compared",
            )
        for r in loops:
            print_table(
                ["run", "events", "history KB", "input KB (spec + carry)", "carry KB", "steps"],
                [
                    [
                        i + 1,
                        run["events"],
                        run["bytes"] / 1024,
                        run["input_bytes"] / 1024,
                        run["carry_bytes"] / 1024,
                        run["steps"],
                    ]
                    for i, run in enumerate(r["runs"])
                ],
                title=f"Runs of {r['label']} ({r['iterations']} iterations, {r['id']})",
            )
        print()
        for r in loops:
            print_points(r["label"], r["points"])
            if r["replay_failures"] is not None:
                print(
                    f"- {r['label']}: {len(r['runs'])} run(s) replayed, "
                    f"{r['replay_failures']} failure(s)"
                )
    for r in results:
        if r["label"].startswith("chain"):
            s = r["summary"]
            print_table(
                ["variant", "wall s", "ms/chunk", "runs", "events per run", "markers", "total"],
                [
                    [
                        r["label"],
                        r["elapsed"],
                        1000.0 * r["elapsed"] / soak_flows.CHAIN_LENGTH,
                        s["runs"],
                        " / ".join(str(x["events"]) for x in r["runs"]),
                        r["markers"],
                        f"{r['total']} ({'ok' if r['ok'] else 'WRONG'})",
                    ]
                ],
                title="Long chain",
            )
        if r["label"].startswith("approvals"):
            s = r["summary"]
            runs = r["runs"]
            carries = [x["carry_bytes"] / 1024 for x in runs[1:]] or [0.0]
            inputs = [x["input_bytes"] / 1024 for x in runs[1:]] or [0.0]
            print_table(
                [
                    "variant",
                    "cycles",
                    "wall s",
                    "runs",
                    "events/run max",
                    "events/run median",
                    "history KB/run max",
                    "run input KB max / median / last",
                    "carry KB max / median / last",
                    "resolved interrupts carried",
                    "history KB per cycle",
                    "state",
                ],
                [
                    [
                        r["label"],
                        r["cycles"],
                        r["elapsed"],
                        s["runs"],
                        s["events_max"],
                        s["events_med"],
                        s["kb_max"],
                        f"{max(inputs):.0f} / {med(inputs):.0f} / {inputs[-1]:.0f}",
                        f"{max(carries):.0f} / {med(carries):.0f} / {carries[-1]:.0f}",
                        r["resolved_carried"],
                        sum(x["bytes"] for x in runs) / 1024 / r["cycles"],
                        "ok" if r["ok"] else f"WRONG {r['state']}",
                    ]
                ],
                title="Pause/resume cycles (carry bounded)",
            )
            print_table(
                ["variant", *(f"{d * 10}-{d * 10 + 10}%" for d in range(10))],
                [[r["label"], *[f"{x:.1f}" for x in r["deciles"]]]],
                title="Median resume round trip (ms) in each tenth of the cycles",
            )
            step = max(1, len(runs) // 12)
            sampled = runs[::step] + ([runs[-1]] if (len(runs) - 1) % step else [])
            print_table(
                ["run", "events", "history KB", "input KB", "carry KB"],
                [
                    [
                        runs.index(x) + 1,
                        x["events"],
                        x["bytes"] / 1024,
                        x["input_bytes"] / 1024,
                        x["carry_bytes"] / 1024,
                    ]
                    for x in sampled
                ],
                title=f"Runs of {r['label']} (every {step}th of {len(runs)})",
            )
            print()
            print_points(r["label"], r["points"])


# ---------------------------------------------------------------------------- main
async def run_main(args: argparse.Namespace) -> int:
    only = set(args.only.split(",")) if args.only else None
    wanted = [
        v
        for v in ("local_activity", "workflow", "activity", "chain", "approvals")
        if only is None or v in only
    ]
    iterations = 2000 if args.small else args.iterations
    versions = [int(v) for v in args.versions.split(",")]
    activity_iterations = 500 if args.small else args.activity_iterations
    cycles = 50 if args.small else args.cycles
    print(f"# bench/long_loop.py {' '.join(sys.argv[1:])}\n\n{machine_line()} · {load_line()}")
    print(f"\nWorker settings: {WORKER_SETTINGS}, in process.")
    print_thresholds(args.no_suggestion)
    # A long approvals run writes GBs of history (each resume's value is in it twice): keep
    # the dev server's database on disk instead of in memory.
    history_mb = cycles * args.value_kb * 2.5 / 1024 if "approvals" in wanted else 0
    tmp = tempfile.mkdtemp(prefix="tf-long-") if history_mb > 500 or args.db_file else None
    database = os.path.join(tmp, "temporal.db") if tmp else None
    if database:
        print(f"\nDev server database on disk ({database}): ~{history_mb:.0f} MB of history.")
    results: list[dict[str, Any]] = []
    failed = False
    try:
        extra = [
            arg
            for key, value in (NO_SUGGESTION.items() if args.no_suggestion else ())
            for arg in ("--dynamic-config-value", f"{key}={value}")
        ]
        async with start_dev_server(database_file=database, extra_args=extra) as env:
            server = dev_server_pid()
            task_queue = f"long-{uuid.uuid4().hex[:8]}"
            plugin = make_plugin(soak_flows.LONG_FLOWS)
            client = connect(env, plugin, task_queue)
            async with Worker(client, task_queue=task_queue, **WORKER_SETTINGS):
                warm = soak_flows.loop_local.create_execution(auto_close=False)
                await warm.async_start({"n": 1, "target": 3})
                await warm.async_close()
                for variant in wanted:
                    try:
                        if variant in soak_flows.LOOPS:
                            n = activity_iterations if variant == "activity" else iterations
                            for version in versions:
                                if variant == "workflow" and version < FAST_YIELD_VERSION:
                                    m = min(n, args.v3_inline_iterations)
                                else:
                                    m = n
                                replaying = plugin if args.replay else None
                                results.append(
                                    await run_loop(
                                        client, variant, m, args.poll, version, replaying
                                    )
                                )
                        elif variant == "chain":
                            results.append(await run_chain_flow(client))
                        else:
                            results.append(await run_approvals(client, cycles, args.value_kb))
                    except Exception as error:  # report and go on with the next variant
                        failed = True
                        log(f"{variant} FAILED: {type(error).__name__}: {error}")
                        print(f"\n**{variant} FAILED**: `{type(error).__name__}: {error}`")
                print(
                    f"\nWorker (this process) RSS {rss_mb(os.getpid()):.0f} MB; dev server RSS "
                    f"{rss_mb(server) if server else float('nan'):.0f} MB; {load_line()}"
                )
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    bad = [r["label"] for r in results if not (r.get("state_ok") or r.get("ok"))]
    bad += [r["label"] for r in results if r.get("replay_failures")]
    bad += [r["label"] for r in results if not r["summary"]["within_bounds"]]
    if bad or failed:
        print(f"\n**Not as expected**: {', '.join(bad) or 'see the failures above'}")
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="quick mode (~1 min)")
    parser.add_argument(
        "--iterations", type=int, default=20_000, help="loop iterations (local_activity, workflow)"
    )
    parser.add_argument(
        "--activity-iterations", type=int, default=2_000, help="loop iterations as activities"
    )
    parser.add_argument("--cycles", type=int, default=200, help="pause/resume cycles")
    parser.add_argument("--value-kb", type=int, default=100, help="size of each resume value")
    parser.add_argument(
        "--only", help="comma list of: local_activity, workflow, activity, chain, approvals"
    )
    parser.add_argument("--poll", type=float, default=0.5, help="state sampling period (s)")
    parser.add_argument(
        "--versions",
        default=str(RUNTIME_VERSION),
        help="runtime versions the loops run at, e.g. 3,4 (default: this client's)",
    )
    parser.add_argument(
        "--v3-inline-iterations",
        type=int,
        default=20_000,
        help="cap of the inline loop at runtime version 3 (~200 steps/s: its yield timer)",
    )
    parser.add_argument(
        "--replay", action="store_true", help="replay every run of each loop execution"
    )
    parser.add_argument(
        "--no-suggestion",
        action="store_true",
        help="server thresholds out of reach: only MAX_RUN_EVENTS ends a run",
    )
    parser.add_argument(
        "--db-file", action="store_true", help="dev server database on disk (auto if large)"
    )
    args = parser.parse_args()
    code = asyncio.run(run_main(args))
    # temporalio's native threads can abort a finishing interpreter (sdk-python#300); the
    # dev server and the worker are stopped by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
