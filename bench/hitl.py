"""Human in the loop: continue_with vs a raw Temporal update (issue 6, bench 2).

Side by side on one dev server and one worker (same settings): the TriggerFlow flow
``ask`` (pause_for) -> ``commit`` and a hand-written workflow whose ``start`` update runs
``hw.ask`` and whose ``approve`` update runs ``hw.commit`` (``bench/_baseline_workflows.py``).

1. start until paused, and the resume round trip (update sent -> resumed chain done),
   interleaved round by round;
2. query latency: ``state`` and ``pending_interrupts`` vs the raw workflow's queries;
3. N executions paused at once (default 1,000), each variant in its own child process
   (worker + client) so its memory is its own: worker RSS, dev server RSS, time to pause
   them all and time to resume them all.

    python bench/hitl.py            # full: 30 rounds, 200 queries, 1,000 paused
    python bench/hitl.py --small    # quick: 8 rounds, 50 queries, 200 paused
    python bench/hitl.py --hw-visible   # the baseline upserts search attributes too
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


# ------------------------------------------------------------------------- one run
async def tf_pause(ticket: str) -> Any:
    execution = FLOW.create_execution(auto_close=False)
    await execution.async_start(ticket)
    return execution


async def tf_resume(execution: Any) -> None:
    # The flow pauses with interrupt_id="approval", so the caller (a web hook, a chat
    # button) knows the id: one update, no query, as in the raw variant.
    record = await execution.async_continue_with(_flows.APPROVAL_ID, {"approved": True})
    assert record and record["status"] == "resumed", record


# --hw-visible: the hand-written approval that upserts search attributes as TriggerFlow does.
HW_VISIBLE = "--hw-visible" in sys.argv


async def hw_pause(client: Client, task_queue: str, ticket: str) -> Any:
    extra: dict[str, Any] = {}
    if HW_VISIBLE:
        extra["search_attributes"] = TypedSearchAttributes(
            [
                SearchAttributePair(HW_STATUS, "created"),
                SearchAttributePair(SearchAttributeKey.for_keyword("TriggerFlowName"), "hw"),
            ]
        )
    operation = WithStartWorkflowOperation(
        "hw_approval_visible" if HW_VISIBLE else "hw_approval",
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


async def hw_resume(handle: Any) -> None:
    await handle.execute_update("approve", {"approved": True}, result_type=dict)


# ------------------------------------------------------------------ in-process part
async def round_trips(client: Client, task_queue: str, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {
        k: [] for k in ("tf_pause", "tf_resume", "hw_pause", "hw_resume")
    }
    for r in range(rounds + 3):  # first 3 rounds warm up
        t0 = time.perf_counter()
        execution = await tf_pause(f"T-{r}")
        t1 = time.perf_counter()
        await tf_resume_timed(execution, samples, r >= 3)
        await execution.async_close()
        t2 = time.perf_counter()
        handle = await hw_pause(client, task_queue, f"T-{r}")
        t3 = time.perf_counter()
        await hw_resume(handle)
        t4 = time.perf_counter()
        await handle.execute_update("close", result_type=dict)
        if r >= 3:
            samples["tf_pause"].append(t1 - t0)
            samples["hw_pause"].append(t3 - t2)
            samples["hw_resume"].append(t4 - t3)
    return samples


async def tf_resume_timed(execution: Any, samples: dict[str, list[float]], keep: bool) -> None:
    start = time.perf_counter()
    record = await execution.async_continue_with(_flows.APPROVAL_ID, {"approved": True})
    elapsed = time.perf_counter() - start
    assert record and record["status"] == "resumed", record
    if keep:
        samples["tf_resume"].append(elapsed)


async def queries(client: Client, task_queue: str, count: int) -> dict[str, list[float]]:
    execution = await tf_pause("Q-1")
    handle = await hw_pause(client, task_queue, "Q-1")
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
    await tf_resume(execution)
    await execution.async_close()
    await hw_resume(handle)
    await handle.execute_update("close", result_type=dict)
    return samples


# ---------------------------------------------------------------- N paused (child)
async def child(args: argparse.Namespace) -> None:
    """One variant's N paused executions, in this (fresh) process: worker + client."""
    from temporalio.testing import WorkflowEnvironment

    env = WorkflowEnvironment.from_client(await Client.connect(args.address, namespace="default"))
    task_queue = f"bench-paused-{uuid.uuid4().hex[:8]}"
    plugin = make_plugin(_flows.ALL_FLOWS)
    client = connect(env, plugin, task_queue)
    server = args.server_pid
    gate = asyncio.Semaphore(args.in_flight)
    out: dict[str, Any] = {"variant": args.child, "count": args.count, "in_flight": args.in_flight}
    async with worker(client, task_queue):
        pause = (
            (lambda t: tf_pause(t))
            if args.child == "tf"
            else (lambda t: hw_pause(client, task_queue, t))
        )
        resume = tf_resume if args.child == "tf" else hw_resume
        for i in range(5):  # warm up (imports, connections), then closed
            item = await pause(f"W-{i}")
            await resume(item)
            await close(args.child, item)
        out["worker_rss_idle_mb"] = rss_mb(os.getpid())
        out["server_rss_before_mb"] = rss_mb(server) if server else float("nan")

        async def pause_one(i: int) -> Any:
            async with gate:
                return await pause(f"P-{i}")

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
                await resume(item)

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
                await close(args.child, item)

        await asyncio.gather(*(close_one(item) for item in items))
    print(json.dumps(out), flush=True)
    sys.stderr.flush()
    # Skip interpreter finalization: the SDK's core threads can abort it after the output.
    os._exit(0)


async def close(variant: str, item: Any) -> None:
    if variant == "tf":
        await item.async_close()
    else:
        await item.execute_update("close", result_type=dict)


def run_child(
    variant: str,
    address: str,
    server_pid: int | None,
    count: int,
    in_flight: int,
    patched: bool,
    no_sa: bool = False,
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
    if no_sa:
        cmd.append("--no-search-attributes")
    if HW_VISIBLE:
        cmd.append("--hw-visible")
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
        f"\nWorker settings (both sides): {WORKER_SETTINGS}, sandboxed runner, pydantic "
        "data converter."
    )
    async with dev_server() as env:
        server = dev_server_pid()
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        plugin = make_plugin(_flows.ALL_FLOWS)
        client = connect(env, plugin, task_queue)
        async with worker(client, task_queue):
            log(f"round trips: {rounds} rounds")
            trips = await round_trips(client, task_queue, rounds)
            log(f"queries: {nqueries} each")
            qs = await queries(client, task_queue, nqueries)
        address = client.service_client.config.target_host
        children = {}
        for variant in ("hw", "tf"):
            log(f"{count} paused executions: {variant} (child process)")
            children[variant] = run_child(
                variant,
                address,
                server,
                count,
                args.in_flight,
                args.patch_shared_type_adapters,
                args.no_search_attributes,
            )

    rows = [
        [
            "start until paused (ask ran)",
            ms(min(trips["hw_pause"])),
            ms(med(trips["hw_pause"])),
            ms(min(trips["tf_pause"])),
            ms(med(trips["tf_pause"])),
            ratio(med(trips["tf_pause"]), med(trips["hw_pause"])),
        ],
        [
            "resume round trip (commit ran)",
            ms(min(trips["hw_resume"])),
            ms(med(trips["hw_resume"])),
            ms(min(trips["tf_resume"])),
            ms(med(trips["tf_resume"])),
            ratio(med(trips["tf_resume"]), med(trips["hw_resume"])),
        ],
    ]
    print_table(
        [
            "step",
            "raw update min ms",
            "raw median ms",
            "continue_with min ms",
            "continue_with median ms",
            "median ratio",
        ],
        rows,
        title=f"Pause and resume, one execution at a time ({rounds} rounds, interleaved)",
    )
    rows = [
        [
            "state",
            ms(med(qs["hw_state"])),
            ms(pct(qs["hw_state"], 0.95)),
            ms(med(qs["tf_state"])),
            ms(pct(qs["tf_state"], 0.95)),
            ratio(med(qs["tf_state"]), med(qs["hw_state"])),
        ],
        [
            "pending_interrupts (raw: pending)",
            ms(med(qs["hw_pending"])),
            ms(pct(qs["hw_pending"], 0.95)),
            ms(med(qs["tf_pending"])),
            ms(pct(qs["tf_pending"], 0.95)),
            ratio(med(qs["tf_pending"]), med(qs["hw_pending"])),
        ],
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
    hw, tf = children["hw"], children["tf"]
    rows = []
    for label, key, fmt in (
        ("time to pause all (s)", "pause_all_s", float),
        ("time to resume all (s)", "resume_all_s", float),
        ("pause: worker CPU ms per execution", "pause_worker_cpu_ms", float),
        ("pause: dev server CPU ms per execution", "pause_server_cpu_ms", float),
        ("resume: worker CPU ms per execution", "resume_worker_cpu_ms", float),
        ("resume: dev server CPU ms per execution", "resume_server_cpu_ms", float),
        ("worker RSS idle (MB)", "worker_rss_idle_mb", float),
        ("worker RSS with all paused (MB)", "worker_rss_paused_mb", float),
        ("dev server RSS before (MB)", "server_rss_before_mb", float),
        ("dev server RSS with all paused (MB)", "server_rss_paused_mb", float),
    ):
        rows.append([label, fmt(hw[key]), fmt(tf[key]), ratio(tf[key], hw[key])])
    per_hw = (hw["worker_rss_paused_mb"] - hw["worker_rss_idle_mb"]) * 1024 / count
    per_tf = (tf["worker_rss_paused_mb"] - tf["worker_rss_idle_mb"]) * 1024 / count
    rows.append(["worker KB per paused execution", per_hw, per_tf, ratio(per_tf, per_hw)])
    rows.append(
        [
            "resumes per second",
            count / hw["resume_all_s"],
            count / tf["resume_all_s"],
            ratio(count / tf["resume_all_s"], count / hw["resume_all_s"]),
        ]
    )
    print_table(
        ["", "raw Temporal", "triggerflow", "ratio"],
        rows,
        title=(
            f"{count} executions paused at once (each variant in its own worker process, "
            f"{args.in_flight} requests in flight, sticky cache "
            f"{WORKER_SETTINGS['max_cached_workflows']})"
        ),
    )
    print(
        "\nThe dev server's RSS grows over the run (the raw variant runs first); its 'before' "
        "value is the baseline of each row."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="quick mode")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--count", type=int, default=1000, help="executions paused at once")
    parser.add_argument("--in-flight", type=int, default=100, help="concurrent requests")
    parser.add_argument(
        "--patch-shared-type-adapters",
        action="store_true",
        help="experiment: share pydantic TypeAdapters across workflow instances",
    )
    parser.add_argument(
        "--no-search-attributes",
        action="store_true",
        help="experiment: executions without search attributes (no upserts)",
    )
    parser.add_argument(
        "--hw-visible",
        action="store_true",
        help="the hand-written approval upserts search attributes as TriggerFlow does",
    )
    parser.add_argument("--child", choices=["tf", "hw"], help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.patch_shared_type_adapters:
        from bench._common import patch_shared_type_adapters

        patch_shared_type_adapters()
        if not args.child:
            print("EXPERIMENT: pydantic TypeAdapter cache shared across workflow instances")
    if args.hw_visible and not args.child:
        print(
            "BASELINE: the hand-written approval upserts search attributes as TriggerFlow "
            "does (hw_approval_visible)"
        )
    if args.no_search_attributes:
        from bench._common import patch_no_search_attributes

        patch_no_search_attributes()
        if not args.child:
            print("EXPERIMENT: executions start without search attributes (no upserts)")
    asyncio.run(child(args) if args.child else run_main(args))
    exit_now()


if __name__ == "__main__":
    main()
