"""Human in the loop: continue_with vs a hand-written Temporal update (issue 6, bench 2).

Side by side, four variants with the same worker and dev server settings:

========  ==================================================================================
``hw``    raw: a hand-written workflow whose ``start`` update runs ``hw.ask`` and whose
          ``approve`` update runs ``hw.commit`` (``bench/_baseline_workflows.py``); no listing
``hwv``   the same, listable as an expert would make it: started with a status and upserting
          ``TriggerFlowStatus`` / ``TriggerFlowPendingInterruptTypes`` when they change
``tf``    TriggerFlow ``ask`` (pause_for) -> ``commit``, defaults (its search attributes make
          "everything waiting for approval" one visibility query)
``tfn``   the same flow with ``TriggerFlowPlugin(search_attributes=False)``: no listing
========  ==================================================================================

Each ratio compares like with like: ``tf`` against ``hwv`` (both listable), ``tfn`` against
``hw`` (neither). ``tf`` against ``hw`` is printed too: it is the listing's cost on top.

1. start until paused, and the resume round trip (update sent -> resumed chain done),
   interleaved round by round;
2. query latency: ``state`` and ``pending_interrupts`` vs the raw workflow's queries;
3. N executions paused at once (default 1,000), each variant in its own child process
   (worker + client) so its memory is its own, against its own fresh dev server: worker
   RSS, dev server RSS, time to pause them all and time to resume them all.

    python bench/hitl.py            # full: 100 rounds, 200 queries, 1,000 paused
    python bench/hitl.py --small    # quick: 8 rounds, 50 queries, 200 paused
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from bench import _flows
from bench._baseline_workflows import HW_STATUS
from bench._common import (
    WORKER_SETTINGS,
    connect,
    cpu_seconds,
    dev_server,
    dev_server_pid,
    exit_now,
    log,
    machine_line,
    make_plugin,
    med,
    ms,
    pct,
    print_table,
    ratio,
    rss_mb,
    worker,
)

FLOW = _flows.approval_flow
VARIANTS = ("hw", "hwv", "tf", "tfn")
LABELS = {
    "hw": "hand-written, no listing",
    "hwv": "hand-written, listable",
    "tf": "TriggerFlow (default)",
    "tfn": "TriggerFlow, search_attributes=False",
}
# (variant, its baseline, what the pair shares)
PAIRS = (
    ("tf", "hwv", "both listable"),
    ("tfn", "hw", "neither listable"),
    ("tf", "hw", "listing's cost on top"),
)


@dataclass
class Side:
    """One variant's client and task queue (TriggerFlow variants: its plugin's client)."""

    variant: str
    client: Client
    task_queue: str

    async def pause(self, ticket: str) -> Any:
        if self.variant in ("tf", "tfn"):
            execution = FLOW.create_execution(client=self.client, auto_close=False)
            await execution.async_start(ticket)
            return execution
        return await hw_pause(self.client, self.task_queue, ticket, self.variant == "hwv")

    async def resume(self, item: Any) -> None:
        if self.variant in ("tf", "tfn"):
            # The flow pauses with interrupt_id="approval", so the caller (a web hook, a
            # chat button) knows the id: one update, no query, as in the raw variant.
            record = await item.async_continue_with(_flows.APPROVAL_ID, {"approved": True})
            assert record and record["status"] == "resumed", record
        else:
            await item.execute_update("approve", {"approved": True}, result_type=dict)

    async def close(self, item: Any) -> None:
        if self.variant in ("tf", "tfn"):
            await item.async_close()
        else:
            await item.execute_update("close", result_type=dict)


async def hw_pause(client: Client, task_queue: str, ticket: str, visible: bool) -> Any:
    extra: dict[str, Any] = {}
    if visible:
        extra["search_attributes"] = TypedSearchAttributes(
            [
                SearchAttributePair(HW_STATUS, "created"),
                SearchAttributePair(SearchAttributeKey.for_keyword("TriggerFlowName"), "hw"),
            ]
        )
    operation = WithStartWorkflowOperation(
        "hw_approval_visible" if visible else "hw_approval",
        ticket,
        id=f"hw-approval-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=dict,
        **extra,
    )
    await client.execute_update_with_start_workflow(
        "start", ticket, start_workflow_operation=operation
    )
    return await operation.workflow_handle()


def side_client(env: Any, variant: str, task_queue: str) -> Client:
    """A client whose plugin serves the flows (listing off for ``tfn``)."""
    options = {"search_attributes": False} if variant == "tfn" else {}
    return connect(env, make_plugin(_flows.ALL_FLOWS, **options), task_queue)


# ------------------------------------------------------------------ in-process part
async def round_trips(sides: dict[str, Side], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {f"{v}_{k}": [] for v in sides for k in ("pause", "resume")}
    names = list(sides)
    for r in range(rounds + 3):  # first 3 rounds warm up
        # A different variant goes first in each round: none profits from its place.
        for variant in names[r % len(names) :] + names[: r % len(names)]:
            side = sides[variant]
            t0 = time.perf_counter()
            item = await side.pause(f"T-{r}")
            t1 = time.perf_counter()
            await side.resume(item)
            t2 = time.perf_counter()
            await side.close(item)
            if r >= 3:
                samples[f"{variant}_pause"].append(t1 - t0)
                samples[f"{variant}_resume"].append(t2 - t1)
    return samples


async def queries(sides: dict[str, Side], count: int) -> dict[str, list[float]]:
    tf, hw = sides["tf"], sides["hw"]
    execution = await tf.pause("Q-1")
    handle = await hw.pause("Q-1")
    samples: dict[str, list[float]] = {
        k: [] for k in ("tf_state", "tf_pending", "hw_state", "hw_pending")
    }
    for i in range(count + 5):
        for key, call in (
            ("tf_state", lambda: execution.async_get_state()),
            ("tf_pending", lambda: execution.async_get_pending_interrupts()),
            ("hw_state", lambda: handle.query("state", result_type=dict)),
            ("hw_pending", lambda: handle.query("pending", result_type=dict)),
        ):
            start = time.perf_counter()
            await call()
            if i >= 5:
                samples[key].append(time.perf_counter() - start)
    await tf.resume(execution)
    await tf.close(execution)
    await hw.resume(handle)
    await hw.close(handle)
    return samples


# ---------------------------------------------------------------- N paused (child)
async def child(args: argparse.Namespace) -> None:
    """One variant's N paused executions, in this (fresh) process: worker + client."""
    from temporalio.testing import WorkflowEnvironment

    env = WorkflowEnvironment.from_client(await Client.connect(args.address, namespace="default"))
    task_queue = f"bench-paused-{uuid.uuid4().hex[:8]}"
    client = side_client(env, args.child, task_queue)
    side = Side(args.child, client, task_queue)
    server = args.server_pid
    gate = asyncio.Semaphore(args.in_flight)
    out: dict[str, Any] = {"variant": args.child, "count": args.count, "in_flight": args.in_flight}
    async with worker(client, task_queue):
        for i in range(5):  # warm up (imports, connections), then closed
            item = await side.pause(f"W-{i}")
            await side.resume(item)
            await side.close(item)
        out["worker_rss_idle_mb"] = rss_mb(os.getpid())
        out["server_rss_before_mb"] = rss_mb(server) if server else float("nan")

        async def pause_one(i: int) -> Any:
            async with gate:
                return await side.pause(f"P-{i}")

        w0, s0 = cpu_seconds(os.getpid()), cpu_seconds(server) if server else float("nan")
        start = time.perf_counter()
        items = await asyncio.gather(*(pause_one(i) for i in range(args.count)))
        out["pause_all_s"] = time.perf_counter() - start
        out["pause_worker_cpu_ms"] = (cpu_seconds(os.getpid()) - w0) * 1000 / args.count
        out["pause_server_cpu_ms"] = (
            (cpu_seconds(server) - s0) * 1000 / args.count if server else float("nan")
        )
        await asyncio.sleep(1.0)
        out["worker_rss_paused_mb"] = rss_mb(os.getpid())
        out["server_rss_paused_mb"] = rss_mb(server) if server else float("nan")

        async def resume_one(item: Any) -> None:
            async with gate:
                await side.resume(item)

        w0, s0 = cpu_seconds(os.getpid()), cpu_seconds(server) if server else float("nan")
        start = time.perf_counter()
        await asyncio.gather(*(resume_one(item) for item in items))
        out["resume_all_s"] = time.perf_counter() - start
        out["resume_worker_cpu_ms"] = (cpu_seconds(os.getpid()) - w0) * 1000 / args.count
        out["resume_server_cpu_ms"] = (
            (cpu_seconds(server) - s0) * 1000 / args.count if server else float("nan")
        )

        async def close_one(item: Any) -> None:
            async with gate:
                await side.close(item)

        await asyncio.gather(*(close_one(item) for item in items))
    print(json.dumps(out), flush=True)
    sys.stderr.flush()
    # Skip interpreter finalization: the SDK's core threads can abort it after the output.
    os._exit(0)


def run_child(
    variant: str,
    address: str,
    server_pid: int | None,
    count: int,
    in_flight: int,
    patched: bool,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__)),
        "--child",
        variant,
        "--address",
        address,
        "--count",
        str(count),
        "--in-flight",
        str(in_flight),
    ]
    if server_pid:
        cmd += ["--server-pid", str(server_pid)]
    if patched:
        cmd.append("--patch-shared-type-adapters")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {variant} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


# -------------------------------------------------------------------------- main
async def run_main(args: argparse.Namespace) -> None:
    rounds, nqueries, count = (
        (8, 50, 200) if args.small else (args.rounds, args.queries, args.count)
    )
    print(f"# bench/hitl.py {'--small' if args.small else ''}\n\n{machine_line()}")
    print(
        f"\nWorker settings (all variants): {WORKER_SETTINGS}, pydantic data converter.\n"
        + "\n".join(f"- `{v}`: {LABELS[v]}" for v in VARIANTS)
    )
    async with dev_server() as env:
        queues = {v: f"bench-{v}-{uuid.uuid4().hex[:8]}" for v in VARIANTS}
        # tf and the hand-written variants share one client and worker (as before); tfn
        # needs its own plugin, hence its own client and worker.
        main_client = side_client(env, "tf", queues["tf"])
        tfn_client = side_client(env, "tfn", queues["tfn"])
        sides = {
            "hw": Side("hw", main_client, queues["tf"]),
            "hwv": Side("hwv", main_client, queues["tf"]),
            "tf": Side("tf", main_client, queues["tf"]),
            "tfn": Side("tfn", tfn_client, queues["tfn"]),
        }
        async with worker(main_client, queues["tf"]), worker(tfn_client, queues["tfn"]):
            log(f"round trips: {rounds} rounds x {len(sides)} variants")
            trips = await round_trips(sides, rounds)
            log(f"queries: {nqueries} each")
            qs = await queries(sides, nqueries)
    # Each variant's N paused executions on a fresh dev server: the in-memory server slows
    # down as it keeps closed executions (a variant run after three others paid ~20 % more
    # server CPU), so a shared server would favour whichever variant runs first.
    children = {}
    for variant in VARIANTS:
        async with dev_server() as fresh:
            log(f"{count} paused executions: {variant} (child process, fresh dev server)")
            children[variant] = run_child(
                variant,
                fresh.client.service_client.config.target_host,
                dev_server_pid(),
                count,
                args.in_flight,
                args.patch_shared_type_adapters,
            )
    report(args, trips, qs, children, rounds, nqueries, count)


def report(
    args: argparse.Namespace,
    trips: dict[str, list[float]],
    qs: dict[str, list[float]],
    children: dict[str, dict[str, Any]],
    rounds: int,
    nqueries: int,
    count: int,
) -> None:
    rows = []
    for step, key in (("start until paused (ask ran)", "pause"), ("resume round trip", "resume")):
        rows.append([step] + [ms(med(trips[f"{v}_{key}"])) for v in VARIANTS])
    print_table(
        ["median ms"] + list(VARIANTS),
        rows,
        title=f"Pause and resume, one execution at a time ({rounds} rounds, interleaved)",
    )
    rows = []
    for v, base, what in PAIRS:
        rows.append(
            [
                f"{v} / {base} ({what})",
                ratio(med(trips[f"{v}_pause"]), med(trips[f"{base}_pause"])),
                ratio(med(trips[f"{v}_resume"]), med(trips[f"{base}_resume"])),
            ]
        )
    print_table(["median ratio", "start until paused", "resume round trip"], rows)

    rows = [
        [
            label,
            ms(med(qs[f"hw_{key}"])),
            ms(pct(qs[f"hw_{key}"], 0.95)),
            ms(med(qs[f"tf_{key}"])),
            ms(pct(qs[f"tf_{key}"], 0.95)),
            ratio(med(qs[f"tf_{key}"]), med(qs[f"hw_{key}"])),
        ]
        for label, key in (("state", "state"), ("pending_interrupts (raw: pending)", "pending"))
    ]
    print_table(
        [
            "query on a paused execution",
            "raw p50 ms",
            "raw p95 ms",
            "triggerflow p50 ms",
            "triggerflow p95 ms",
            "p50 ratio",
        ],
        rows,
        title=f"Query latency ({nqueries} each, interleaved)",
    )

    for entry in children.values():
        entry["worker_kb_per_paused"] = (
            (entry["worker_rss_paused_mb"] - entry["worker_rss_idle_mb"]) * 1024 / count
        )
        entry["resumes_per_s"] = count / entry["resume_all_s"]
    fields = (
        ("time to pause all (s)", "pause_all_s"),
        ("time to resume all (s)", "resume_all_s"),
        ("resumes per second", "resumes_per_s"),
        ("pause: worker CPU ms per execution", "pause_worker_cpu_ms"),
        ("pause: dev server CPU ms per execution", "pause_server_cpu_ms"),
        ("resume: worker CPU ms per execution", "resume_worker_cpu_ms"),
        ("resume: dev server CPU ms per execution", "resume_server_cpu_ms"),
        ("worker RSS idle (MB)", "worker_rss_idle_mb"),
        ("worker RSS with all paused (MB)", "worker_rss_paused_mb"),
        ("worker KB per paused execution", "worker_kb_per_paused"),
        ("dev server RSS before (MB)", "server_rss_before_mb"),
        ("dev server RSS with all paused (MB)", "server_rss_paused_mb"),
    )
    rows = [[label] + [float(children[v][key]) for v in VARIANTS] for label, key in fields]
    print_table(
        [""] + list(VARIANTS),
        rows,
        title=(
            f"{count} executions paused at once (each variant in its own worker process and on "
            "its own fresh dev server, "
            f"{args.in_flight} requests in flight, sticky cache "
            f"{WORKER_SETTINGS['max_cached_workflows']})"
        ),
    )
    rows = []
    for v, base, what in PAIRS:
        a, b = children[v], children[base]
        rows.append(
            [
                f"{v} / {base} ({what})",
                ratio(a["pause_all_s"], b["pause_all_s"]),
                ratio(a["resume_all_s"], b["resume_all_s"]),
                ratio(a["resume_server_cpu_ms"], b["resume_server_cpu_ms"]),
                ratio(a["resume_worker_cpu_ms"], b["resume_worker_cpu_ms"]),
            ]
        )
    print_table(
        [
            "ratio",
            "time to pause all",
            "time to resume all",
            "resume server CPU",
            "resume worker CPU",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="quick mode")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--count", type=int, default=1000, help="executions paused at once")
    parser.add_argument("--in-flight", type=int, default=100, help="concurrent requests")
    parser.add_argument(
        "--patch-shared-type-adapters",
        action="store_true",
        help="experiment: share pydantic TypeAdapters across workflow instances",
    )
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.patch_shared_type_adapters:
        from bench._common import patch_shared_type_adapters

        patch_shared_type_adapters()
        if not args.child:
            print("EXPERIMENT: pydantic TypeAdapter cache shared across workflow instances")
    asyncio.run(child(args) if args.child else run_main(args))
    exit_now()


if __name__ == "__main__":
    main()
