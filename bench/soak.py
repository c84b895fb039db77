"""Soak: many long executions on three worker processes that are killed and restarted in turn.

Each execution (flow ``bench-soak-*``, bench/soak_flows.py) runs ``--cycles`` cycles of
``--ticks`` loop ticks (an emit loop) followed by an approval chunk that pauses; this
process resumes every pause with a value of ``--value-kb`` KB (a regular activity then
checks it). ``--executions`` executions run at once, served by ``--workers``
``triggerflow-temporal worker`` subprocesses on one task queue against one dev server
(``start_dev_server()``, 127.0.0.1, the fast dynamic config and Temporal's default
continue-as-new thresholds). A chaos loop SIGKILLs one worker (its whole process group)
every ``--kill-every`` seconds, in turn, and starts it again at once.

The loop chunk runs inline by default (``--tick-in workflow``: thousands of steps per
execution for little CPU, and every kill makes another worker replay the run); the ask and
decide chunks are regular activities (10 s start-to-close, so a killed attempt is retried
soon). ``--tick-in activity`` makes every tick an activity (~40 steps/s on the shared 2-core
machine: use fewer ticks); ``--tick-in local_activity`` keeps a workflow task open for up to
8 s of ticks, which a kill throws away (see bench/RESULTS.md).

At the end every execution is checked: its state holds exactly ``ticks == cycles * ticks``,
``tick_sum == cycles * ticks * (ticks + 1) / 2``, ``cycles == cycles``, ``done`` and no
mismatched answer; it is closed and its workflow COMPLETED. Only effects the workflow
applied to its state are counted: activities are at-least-once (a chunk whose worker died
runs again), but a chunk's recorded state writes are applied once per chunk run, so a
count or sum that is off means the runtime lost or duplicated a step (on replay, across
continue-as-new, or a resume delivered twice). Resumes carry a ``resume_request_id`` and are
retried on client errors, so a retried resume must not count twice either.

Figures: events per run (max / median), run input size (FlowSpec + carry, max), history
bytes per run, number of runs, worker RSS (max per process, sampled from /proc every
second), throughput (steps/s), kills performed, workflow-task timeouts and failures,
activities that needed a retry, and a replay of every history with ``--replay``.

    python bench/soak.py                     # 40 executions x 15 cycles x 500 ticks, ~5 min
    python bench/soak.py --small             # 6 x 4 x 300, a kill every 3 s, ~1 min
    python bench/soak.py --tick-in activity --executions 12 --cycles 6 --ticks 150

It stops by itself: when every execution is done, or after ``--minutes`` (then the ones
not finished are reported as failures). Everything it starts (the dev server, the workers'
process groups) is stopped on exit, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402

from bench import soak_flows  # noqa: E402
from bench._common import (  # noqa: E402
    cpu_seconds,
    dev_server_pid,
    log,
    machine_line,
    med,
    print_table,
    rss_mb,
)
from bench.long_loop import RUN_BYTES_BOUND, RUN_EVENT_BOUND, load_line, run_chain  # noqa: E402
from triggerflow_temporal import TriggerFlowPlugin  # noqa: E402
from triggerflow_temporal.testing import start_dev_server  # noqa: E402

READY_LINE = "worker: serving"


# --------------------------------------------------------------------------- workers
@dataclass
class WorkerProc:
    """One worker slot: the current process and what its predecessors measured."""

    slot: int
    command: list[str]
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    started_at: float = 0.0
    ready_at: float | None = None
    generation: int = 0
    # pid -> max RSS MB / last CPU seconds seen
    rss: dict[int, float] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    ready_times: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.generation += 1
        self.log_path = self.log_dir / f"worker-{self.slot}-{self.generation}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=str(ROOT),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # its own process group: killed as a whole
            )
        self.started_at = time.monotonic()
        self.ready_at = None

    def kill(self) -> None:
        """SIGKILL the process group and reap it."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        self.sample()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_ready(self) -> bool:
        if self.ready_at is not None:
            return True
        if self.log_path is None:
            return False
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return False
        if READY_LINE in text:
            self.ready_at = time.monotonic()
            self.ready_times.append(self.ready_at - self.started_at)
            return True
        return False

    def sample(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        pid = self.proc.pid
        rss = rss_mb(pid)
        if rss == rss:  # not NaN
            self.rss[pid] = max(self.rss.get(pid, 0.0), rss)
        cpu = cpu_seconds(pid)
        if cpu == cpu:
            self.cpu[pid] = cpu


def worker_command(address: str, task_queue: str, tick_in: str) -> list[str]:
    script = Path(sys.executable).parent / "triggerflow-temporal"
    base = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from triggerflow_temporal.cli import main; main()"]
    )
    return [
        *base,
        "worker",
        soak_flows.SOAK_PATHS[tick_in],
        "--address",
        address,
        "--task-queue",
        task_queue,
    ]


async def wait_ready(workers: list[WorkerProc], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(w.check_ready() for w in workers):
            return
        for w in workers:
            if not w.alive() and w.ready_at is None:
                text = w.log_path.read_text(errors="replace") if w.log_path else ""
                raise RuntimeError(f"worker {w.slot} exited at start:\n{text[-3000:]}")
        await asyncio.sleep(0.2)
    raise RuntimeError(f"workers not polling after {seconds:.0f} s")


# ---------------------------------------------------------------------------- chaos
@dataclass
class Chaos:
    workers: list[WorkerProc]
    every: float
    kills: int = 0
    log: list[str] = field(default_factory=list)

    async def run(self, done: asyncio.Event) -> None:
        slot = 0
        began = time.monotonic()
        while not done.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), self.every)
            if done.is_set():
                return
            worker = self.workers[slot]
            was_ready = worker.check_ready()
            worker.kill()
            self.kills += 1
            worker.start()
            self.log.append(
                f"{time.monotonic() - began:6.1f} s: killed worker {worker.slot} "
                f"({'polling' if was_ready else 'still starting'}), restarted"
            )
            slot = (slot + 1) % len(self.workers)


async def sample_forever(workers: list[WorkerProc], server: int | None, out: dict[str, float]):
    while True:
        for w in workers:
            w.sample()
            w.check_ready()
        if server:
            rss = rss_mb(server)
            if rss == rss:
                out["server_rss"] = max(out.get("server_rss", 0.0), rss)
        await asyncio.sleep(1.0)


# ------------------------------------------------------------------------ executions
@dataclass
class Outcome:
    execution_id: str
    cycles_done: int = 0
    state: dict[str, Any] | None = None
    closed: bool = False
    status: str = "?"
    errors: list[str] = field(default_factory=list)
    none_answers: int = 0
    resume_ms: list[float] = field(default_factory=list)
    finished_at: float | None = None


async def with_retry(call: Any, outcome: Outcome, what: str, budget: float = 300.0) -> Any:
    """Await ``call()``; on a client error, record it and try again (same request id).

    Transient refusals are expected while workers die (e.g. ``Unable to perform workflow
    execution update due to Workflow Task in failed state`` until another worker completes
    the task): retried with backoff for up to ``budget`` seconds.
    """
    began = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            outcome.errors.append(f"{what} attempt {attempt}: {type(error).__name__}: {error}")
            if time.monotonic() - began > budget:
                raise
            await asyncio.sleep(min(5.0, 0.5 * attempt))


async def drive(
    flow: Any, client: Client, outcome: Outcome, cycles: int, ticks: int, blob: str
) -> None:
    execution = flow.create_execution(client, execution_id=outcome.execution_id, auto_close=False)
    start = {"cycle": 1, "n": 1, "len": ticks, "cycles": cycles, "size": len(blob)}
    await with_retry(lambda: execution.async_start(start), outcome, "start")
    for cycle in range(1, cycles + 1):
        began = time.perf_counter()
        answer = await with_retry(
            lambda cycle=cycle: execution.async_continue_with(
                f"cycle-{cycle}",
                {"cycle": cycle, "blob": blob},
                resume_request_id=f"{outcome.execution_id}-c{cycle}",
            ),
            outcome,
            f"resume {cycle}",
        )
        outcome.resume_ms.append(1000 * (time.perf_counter() - began))
        if answer is None:
            outcome.none_answers += 1
        outcome.cycles_done = cycle
    outcome.state = await with_retry(execution.async_get_state, outcome, "state")
    await with_retry(execution.async_close, outcome, "close")
    outcome.closed = True
    outcome.finished_at = time.monotonic()


def expected_state(cycles: int, ticks: int, size: int) -> dict[str, Any]:
    return {
        "ticks": cycles * ticks,
        "tick_sum": cycles * ticks * (ticks + 1) // 2,
        "cycles": cycles,
        "done": True,
        "bad": None,
    }


def state_problems(state: dict[str, Any] | None, expected: dict[str, Any]) -> list[str]:
    if state is None:
        return ["no state (not finished)"]
    return [
        f"{key}={state.get(key)!r} (expected {value!r})"
        for key, value in expected.items()
        if state.get(key) != value
    ]


# --------------------------------------------------------------------------- history
async def scan_histories(
    client: Client, execution_id: str, runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """Chaos seen in an execution's histories: task timeouts and failures, retries."""
    found: dict[str, Any] = {
        "wft_timed_out": 0,
        "wft_failed": 0,
        "activity_timed_out": 0,
        "activity_retries": 0,
        "failures": [],
        "histories": [],
    }
    for run in runs:
        history = await client.get_workflow_handle(
            execution_id, run_id=run["run_id"]
        ).fetch_history()
        found["histories"].append(history)
        for event in history.events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                found["wft_timed_out"] += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                found["wft_failed"] += 1
                attrs = event.workflow_task_failed_event_attributes
                found["failures"].append(
                    f"{execution_id} run {run['run_id']} event {event.event_id}: "
                    f"{attrs.cause} {attrs.failure.message[:300]}"
                )
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                found["activity_timed_out"] += 1
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                if event.activity_task_started_event_attributes.attempt > 1:
                    found["activity_retries"] += 1
    return found


async def replay_all(histories: list[Any]) -> list[str]:
    from temporalio.worker import Replayer

    replayer = Replayer(workflows=[], plugins=[TriggerFlowPlugin(list(soak_flows.SOAKS.values()))])
    failures = []
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures.append(f"{history.workflow_id}: {result.replay_failure}")
    return failures


def worker_log_findings(log_dir: Path) -> dict[str, Any]:
    """Counts of notable lines in every worker log (all generations)."""
    patterns = {
        "nondeterminism": re.compile(r"[Nn]ondeterminism|TMPRL1100"),
        "failed activation / workflow task": re.compile(
            r"Failed activation|Failing workflow task|workflow task failed", re.I
        ),
        "Traceback": re.compile(r"^Traceback", re.M),
    }
    counts = {name: 0 for name in patterns}
    examples: dict[str, str] = {}
    for path in sorted(log_dir.glob("worker-*.log")):
        text = path.read_text(errors="replace")
        for name, pattern in patterns.items():
            hits = pattern.findall(text)
            counts[name] += len(hits)
            if hits and name not in examples:
                match = pattern.search(text)
                assert match is not None
                line_start = text.rfind("\n", 0, match.start()) + 1
                line_end = text.find("\n", match.end())
                line = re.sub(r"\x1b\[[0-9;]*m", "", text[line_start:line_end])
                examples[name] = f"{path.name}: {line[:1500]}"
    return {"counts": counts, "examples": examples}


# ---------------------------------------------------------------------------- main
async def run_main(args: argparse.Namespace) -> int:
    if args.small:
        # Short enough for a smoke test, with kills still landing in it.
        args.executions, args.cycles, args.ticks = 6, 4, 300
        args.kill_every = min(args.kill_every, 3.0)
    # SIGTERM cancels the run like Ctrl-C does, so the cleanup below runs.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    steps_per_execution = args.cycles * (args.ticks + 2)
    print(f"# bench/soak.py {' '.join(sys.argv[1:])}\n\n{machine_line()} · {load_line()}")
    print(
        f"\n{args.executions} executions x {args.cycles} cycles x ({args.ticks} ticks "
        f"({args.tick_in}) + ask + decide (activities)) = {steps_per_execution} steps each, "
        f"{args.executions * steps_per_execution} in all; resume values {args.value_kb} KB; "
        f"{args.workers} worker processes (`triggerflow-temporal worker`, CLI defaults), one "
        f"killed (SIGKILL) and restarted every {args.kill_every:g} s; "
        f"deadline {args.minutes:g} min."
    )
    flow = soak_flows.SOAKS[args.tick_in]
    blob = "x" * (args.value_kb * 1024)
    expected = expected_state(args.cycles, args.ticks, len(blob))
    tag = uuid.uuid4().hex[:6]
    task_queue = f"soak-{tag}"
    log_dir = Path(tempfile.mkdtemp(prefix="tf-soak-"))
    workers: list[WorkerProc] = []
    outcomes = [Outcome(f"soak-{tag}-{i:03d}") for i in range(args.executions)]
    chaos: Chaos | None = None
    measured: dict[str, float] = {}
    elapsed = float("nan")
    failed_run = False
    scan: list[dict[str, Any]] = []
    all_runs: dict[str, list[dict[str, Any]]] = {}
    statuses: dict[str, str] = {}
    replay_failures: list[str] | None = None
    try:
        log("starting the Temporal dev server ...")
        async with start_dev_server() as env:
            address = env.client.service_client.config.target_host
            server = dev_server_pid()
            command = worker_command(address, task_queue, args.tick_in)
            log(f"dev server at {address}; starting {args.workers} workers: {' '.join(command)}")
            workers = [WorkerProc(i, command, log_dir) for i in range(args.workers)]
            for w in workers:
                w.start()
            await wait_ready(workers, 120)
            ready = [f"{t:.1f}" for w in workers for t in w.ready_times]
            log(f"workers polling (start to polling: {', '.join(ready)} s)")
            plugin = TriggerFlowPlugin(list(soak_flows.SOAKS.values()), task_queue=task_queue)
            client = await Client.connect(address, namespace="default", plugins=[plugin])
            done = asyncio.Event()
            chaos = Chaos(workers, args.kill_every)
            sampler = asyncio.ensure_future(sample_forever(workers, server, measured))
            chaos_task = asyncio.ensure_future(chaos.run(done))
            began = time.monotonic()
            tasks = [
                asyncio.ensure_future(drive(flow, client, o, args.cycles, args.ticks, blob))
                for o in outcomes
            ]
            progress = asyncio.ensure_future(report_progress(outcomes, args.cycles, chaos, began))
            try:
                finished, pending = await asyncio.wait(tasks, timeout=args.minutes * 60)
            finally:
                elapsed = time.monotonic() - began
                done.set()
                progress.cancel()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await asyncio.gather(chaos_task, return_exceptions=True)
            for task, outcome in zip(tasks, outcomes, strict=True):
                if task.cancelled():
                    outcome.errors.append(
                        f"not finished within {args.minutes:g} min (cycle {outcome.cycles_done})"
                    )
                elif task.exception() is not None:
                    error = task.exception()
                    outcome.errors.append(f"gave up: {type(error).__name__}: {error}")
            log(f"soak done in {elapsed:.0f} s, {chaos.kills} kills; collecting histories ...")
            await asyncio.sleep(1.0)
            for o in outcomes:
                handle = client.get_workflow_handle(o.execution_id)
                try:
                    description = await handle.describe()
                    statuses[o.execution_id] = (
                        description.status.name if description.status else "?"
                    )
                    o.status = statuses[o.execution_id]
                    runs = await run_chain(client, o.execution_id)
                except Exception as error:
                    o.errors.append(f"describe: {type(error).__name__}: {error}")
                    continue
                all_runs[o.execution_id] = runs
                if args.scan:
                    scan.append(await scan_histories(client, o.execution_id, runs))
            sampler.cancel()
            if args.replay and scan:
                log("replaying every history ...")
                replay_failures = await replay_all([h for s in scan for h in s["histories"]])
    except (KeyboardInterrupt, asyncio.CancelledError):
        failed_run = True
        log("interrupted: cleaning up")
        raise
    finally:
        for w in workers:
            w.kill()
        if not args.keep_logs and not failed_run and not any(o.errors for o in outcomes):
            findings = worker_log_findings(log_dir) if log_dir.exists() else None
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            findings = worker_log_findings(log_dir) if log_dir.exists() else None
            log(f"worker logs kept in {log_dir}")
    return report(
        args,
        outcomes,
        expected,
        elapsed,
        chaos,
        workers,
        measured,
        all_runs,
        scan,
        findings,
        replay_failures,
        steps_per_execution,
    )


async def report_progress(outcomes: list[Outcome], cycles: int, chaos: Chaos, began: float):
    while True:
        await asyncio.sleep(30)
        done = sum(o.cycles_done for o in outcomes)
        log(
            f"  {time.monotonic() - began:5.0f} s: {done}/{len(outcomes) * cycles} resumes done, "
            f"{sum(o.closed for o in outcomes)} executions finished, {chaos.kills} kills; "
            f"{load_line()}"
        )


def report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    expected: dict[str, Any],
    elapsed: float,
    chaos: Chaos | None,
    workers: list[WorkerProc],
    measured: dict[str, float],
    all_runs: dict[str, list[dict[str, Any]]],
    scan: list[dict[str, Any]],
    findings: dict[str, Any] | None,
    replay_failures: list[str] | None,
    steps_per_execution: int,
) -> int:
    runs = [r for rs in all_runs.values() for r in rs]
    events = [r["events"] for r in runs] or [0]
    inputs = [r["input_bytes"] for r in runs] or [0]
    carries = [r["carry_bytes"] for rs in all_runs.values() for r in rs[1:]] or [0]
    sizes = [r["bytes"] for r in runs] or [0]
    problems: dict[str, list[str]] = {}
    for o in outcomes:
        found = state_problems(o.state, expected)
        if not o.closed:
            found.append("not closed")
        if o.status != "COMPLETED":
            found.append(f"workflow {o.status}")
        if found:
            problems[o.execution_id] = found
    steps_done = sum(
        (o.state or {}).get("ticks", 0) + 2 * ((o.state or {}).get("cycles", 0)) for o in outcomes
    )
    resume_ms = [x for o in outcomes for x in o.resume_ms]
    client_errors = [e for o in outcomes for e in o.errors]
    none_answers = sum(o.none_answers for o in outcomes)
    per_execution = [len(r) for r in all_runs.values()] or [0]
    within = all(r["events"] <= RUN_EVENT_BOUND and r["bytes"] <= RUN_BYTES_BOUND for r in runs)
    print_table(
        ["figure", "value"],
        [
            [
                "executions: completed with exact counts / all",
                f"{len(outcomes) - len(problems)} / {len(outcomes)}",
            ],
            ["steps per execution (ticks + ask + decide)", steps_per_execution],
            ["steps applied (from state), all executions", steps_done],
            ["wall time (s)", elapsed],
            ["throughput (steps/s)", steps_done / elapsed if elapsed == elapsed else "n/a"],
            [
                "resume round trip p50 / p95 / max (ms)",
                " / ".join(f"{x:.0f}" for x in pct3(resume_ms)),
            ],
            ["kills performed (SIGKILL)", chaos.kills if chaos else 0],
            ["runs (all executions)", len(runs)],
            ["runs per execution max / median", f"{max(per_execution)} / {med(per_execution):.0f}"],
            ["events per run max / median", f"{max(events)} / {med(events):.0f}"],
            [
                "history KB per run max / median",
                f"{max(sizes) / 1024:.0f} / {med(sizes) / 1024:.0f}",
            ],
            [
                "run input KB (spec + carry) max / median",
                f"{max(inputs) / 1024:.0f} / {med(inputs) / 1024:.0f}",
            ],
            ["carry KB max", f"{max(carries) / 1024:.0f}"],
            ["every run <= 10,000 events and 10 MB", "yes" if within else "NO"],
            ["dev server RSS max (MB)", measured.get("server_rss", float("nan"))],
            ["client errors retried (see below)", len(client_errors)],
            ['resumes answered None ("not open", see below)', none_answers],
        ],
        title="Soak",
    )
    rows = []
    for w in workers:
        for generation, (pid, rss) in enumerate(w.rss.items(), 1):
            rows.append([w.slot, generation, pid, rss, w.cpu.get(pid, float("nan"))])
    if rows:
        per_process = [r[3] for r in rows]
        cpu_total = sum(r[4] for r in rows if r[4] == r[4])
        per_step = f"{1000 * cpu_total / steps_done:.1f} ms/step" if steps_done else "no step done"
        print(
            f"\nWorker RSS: max {max(per_process):.0f} MB, median of the per-process maxima "
            f"{statistics.median(per_process):.0f} MB over {len(rows)} processes; worker CPU "
            f"{sum(r[4] for r in rows if r[4] == r[4]):.0f} s in all "
            f"({per_step}). "
            "Start to polling: median "
            f"{med([t for w in workers for t in w.ready_times]):.1f} s."
        )
        longest = sorted(rows, key=lambda r: -r[3])[:6]
        print_table(
            ["worker slot", "generation", "pid", "RSS max MB", "CPU s"],
            longest,
            title="Largest worker processes (RSS max, from /proc every second)",
        )
    if scan:
        print(
            "\nIn the histories: "
            f"{sum(s['wft_timed_out'] for s in scan)} workflow tasks timed out, "
            f"{sum(s['wft_failed'] for s in scan)} failed, "
            f"{sum(s['activity_timed_out'] for s in scan)} activity attempts timed out, "
            f"{sum(s['activity_retries'] for s in scan)} activities completed on a retry "
            "(attempt > 1; SIGKILLed while running)."
        )
        failures = [f for s in scan for f in s["failures"]]
        for line in failures[:8]:
            print(f"- workflow task failed: `{line}`")
    if replay_failures is not None:
        print(
            f"\nReplay of every history ({sum(len(s['histories']) for s in scan)}): "
            f"{len(replay_failures)} failures"
        )
        for line in replay_failures[:5]:
            print(f"- `{line[:500]}`")
    if findings:
        print(f"\nWorker logs: {findings['counts']}")
        for name, example in findings["examples"].items():
            print(f"- {name}: `{example}`")
    if chaos:
        print(f"\nChaos: {chaos.kills} kills; first: " + "; ".join(chaos.log[:3]))
    if none_answers:
        print(
            f"\n{none_answers} `continue_with` calls returned None (with the RuntimeWarning "
            '"Execution ... is not open; continue_with(...) was ignored") although the '
            "resume was applied (the next interrupt existed and the state counts it): see "
            "bench/RESULTS.md, section 5, finding L2."
        )
    if client_errors:
        kinds: dict[str, int] = {}
        for line in client_errors:
            key = re.sub(r"\d+", "N", line.split(": ", 1)[-1])[:160]
            kinds[key] = kinds.get(key, 0) + 1
        print("\nClient errors (resumes retried with the same resume_request_id), by kind:")
        for key, count in sorted(kinds.items(), key=lambda kv: -kv[1])[:12]:
            print(f"- {count} x `{key}`")
    if problems:
        print("\n**Executions not as expected:**")
        for execution_id, found in list(problems.items())[:20]:
            print(f"- {execution_id}: {', '.join(found)}")
        return 1
    print(
        "\nNothing lost or duplicated: every execution's state holds the exact counts "
        f"({expected['ticks']} ticks, tick_sum {expected['tick_sum']}, {expected['cycles']} "
        "cycles), every execution is closed and COMPLETED."
    )
    return 0 if within else 1


def pct3(values: list[float]) -> list[float]:
    if not values:
        return [float("nan")] * 3
    ordered = sorted(values)
    return [
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(0.95 * (len(ordered) - 1)))],
        ordered[-1],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--small", action="store_true", help="6 executions x 4 x 300, a kill every 3 s, ~1 min"
    )
    parser.add_argument("--executions", type=int, default=40)
    parser.add_argument("--cycles", type=int, default=15, help="pause/resume cycles each")
    parser.add_argument("--ticks", type=int, default=500, help="loop ticks per cycle")
    parser.add_argument("--value-kb", type=int, default=100, help="size of each resume value")
    parser.add_argument(
        "--tick-in",
        choices=sorted(soak_flows.SOAKS),
        default="workflow",
        help="execute_in of the loop chunk (default: inline; see the module docstring)",
    )
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=8.0, help="seconds between kills")
    parser.add_argument("--minutes", type=float, default=12.0, help="deadline")
    parser.add_argument(
        "--no-scan", dest="scan", action="store_false", help="skip reading every history"
    )
    parser.add_argument("--replay", action="store_true", help="replay every history at the end")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker logs")
    args = parser.parse_args()
    code = 1
    try:
        code = asyncio.run(run_main(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        code = 130
    # temporalio's native threads can abort a finishing interpreter (sdk-python#300);
    # everything this bench started is stopped by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
