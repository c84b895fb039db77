"""Large work: a for_each over 2,000 items with 10 KB outputs kept as Workspace refs (bench 3).

Each item's chunk writes its 10 KB output to the Workspace (``data.workspace.ingest``,
SQLite file) and returns only the ref id; the step after ``end_for_each`` keeps a summary in
state. Compared with a hand-written workflow running one activity per item (``asyncio.gather``)
that writes the same record through the same Workspace instance. Reported: wall time, runs
(continue-as-new), events and history size of every run, and the same flow returning the 10 KB
outputs inline (no Workspace) at a small size to show what the refs save.

The dev server keeps Temporal's default continue-as-new suggestion (4 Ki events / 4 MB per run);
a for_each without ``concurrency=`` runs 100 items at a time and continues as new mid fan-out.

    python bench/large_foreach.py              # 2,000 items (+ 150 for the inline comparison)
    python bench/large_foreach.py --small      # 300 items (+ 100 inline)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.client import Client

from bench import _flows
from bench._common import (
    WORKER_SETTINGS,
    connect,
    dev_server,
    log,
    machine_line,
    make_plugin,
    print_table,
    ratio,
    worker,
)

# Temporal's default hard limits per run (dynamic config limit.historyCount.error /
# limit.historySize.error): a run that passes them is terminated.
EVENT_LIMIT = 51_200
SIZE_LIMIT = 50 * 1024 * 1024


async def runs_of(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    """Every run of ``workflow_id`` (oldest first) with its history length and size."""
    runs = []
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        description = await client.get_workflow_handle(
            workflow_id, run_id=execution.run_id
        ).describe()
        info = description.raw_description.workflow_execution_info
        runs.append(
            {
                "run_id": execution.run_id,
                "start": description.start_time,
                "events": info.history_length,
                "bytes": info.history_size_bytes,
                "status": description.status.name if description.status else "?",
            }
        )
    runs.sort(key=lambda r: r["start"])
    return runs


async def event_kinds(client: Client, workflow_id: str, run_id: str) -> dict[str, int]:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    kinds: dict[str, int] = {}
    for event in history.events:
        kind = (event.WhichOneof("attributes") or "?").replace("_event_attributes", "")
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


async def run_tf(flow: Any, items: list[int]) -> tuple[float, str, Any]:
    execution = flow.create_execution(auto_close=True, auto_close_timeout=0.0, hidden=True)
    start = time.perf_counter()
    snapshot = await execution.async_start(items)
    return time.perf_counter() - start, execution.id, snapshot


async def run_hw(
    client: Client, task_queue: str, items: list[int], inline: bool
) -> tuple[float, str, Any]:
    workflow_id = f"hw-foreach-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    result = await client.execute_workflow(
        "hw_foreach",
        {"items": items, "inline": inline},
        id=workflow_id,
        task_queue=task_queue,
        result_type=dict,
    )
    return time.perf_counter() - start, workflow_id, result


async def run_main(args: argparse.Namespace) -> None:
    from workspace import SQLWorkspace

    items_n, inline_n = (300, 100) if args.small else (args.items, args.inline_items)
    print(f"# bench/large_foreach.py {'--small' if args.small else ''}\n\n{machine_line()}")
    print(
        f"\nWorker settings (both sides): {WORKER_SETTINGS}. Workspace: one SQLWorkspace "
        "(SQLite file, aiosqlite) shared by the plugin and the hand-written activities."
    )
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with SQLWorkspace.from_url(f"sqlite+aiosqlite:///{tmp}/bench.db") as ws:
            _flows.set_bench_workspace(ws)
            async with dev_server() as env:
                task_queue = f"bench-{uuid.uuid4().hex[:8]}"
                plugin = make_plugin(_flows.ALL_FLOWS, workspace=ws)
                client = connect(env, plugin, task_queue)
                async with worker(client, task_queue):
                    await run_tf(_flows.foreach_flow, [0, 1])  # warm up
                    await run_hw(client, task_queue, [0, 1], False)
                    cases = [
                        (
                            "hand-written, refs",
                            items_n,
                            lambda n: run_hw(client, task_queue, list(range(n)), False),
                        ),
                        (
                            "triggerflow for_each, refs",
                            items_n,
                            lambda n: run_tf(_flows.foreach_flow, list(range(n))),
                        ),
                        (
                            f"triggerflow for_each(concurrency={_flows.FOREACH_CONCURRENCY}), refs",
                            items_n,
                            lambda n: run_tf(_flows.foreach_bounded_flow, list(range(n))),
                        ),
                        (
                            "hand-written, 10 KB inline",
                            inline_n,
                            lambda n: run_hw(client, task_queue, list(range(n)), True),
                        ),
                        (
                            "triggerflow for_each, 10 KB inline",
                            inline_n,
                            lambda n: run_tf(_flows.foreach_inline_flow, list(range(n))),
                        ),
                        (
                            "triggerflow for_each, refs (same size)",
                            inline_n,
                            lambda n: run_tf(_flows.foreach_flow, list(range(n))),
                        ),
                    ]
                    results: dict[str, tuple[float, list[dict[str, Any]]]] = {}
                    if args.only:
                        cases = [c for c in cases if args.only in c[0]]
                    for label, n, call in cases:
                        log(f"{label}: {n} items")
                        elapsed, workflow_id, out = await call(n)
                        runs = await runs_of(client, workflow_id)
                        results[label] = (elapsed, runs)
                        log(f"  {elapsed:.1f} s, {len(runs)} run(s), result {str(out)[:100]}")
                        last = runs[-1]
                        biggest = max(runs, key=lambda r: r["events"])
                        kinds = await event_kinds(client, workflow_id, biggest["run_id"])
                        wft = kinds.get("workflow_task_completed", 0)
                        bad = kinds.get("workflow_task_timed_out", 0) + kinds.get(
                            "workflow_task_failed", 0
                        )
                        per_item = sum(r["events"] for r in runs) / n
                        bytes_per_item = sum(r["bytes"] for r in runs) / n
                        # One run holds every item unless the items were spread over
                        # several runs (continue-as-new mid fan-out; a run that only closes
                        # has a handful of events).
                        max_items: Any = int(
                            min(EVENT_LIMIT / per_item, SIZE_LIMIT / max(1.0, bytes_per_item))
                        )
                        if sum(r["events"] > 100 for r in runs) > 1:
                            max_items = "no limit (continue-as-new)"
                        rows.append(
                            [
                                label,
                                n,
                                elapsed,
                                n / elapsed,
                                len(runs),
                                " / ".join(str(r["events"]) for r in runs),
                                " / ".join(f"{r['bytes'] / 1024:.0f}" for r in runs),
                                per_item,
                                bytes_per_item,
                                max_items,
                                f"{wft} / {bad}",
                                last["status"],
                            ]
                        )
    # Ratio against the hand-written row of the same output kind and the same item count.
    bases = {("inline" in row[0], row[1]): row[2] for row in rows if row[0].startswith("hand")}
    for row in rows:
        base = bases.get(("inline" in row[0], row[1]))
        row.insert(3, ratio(row[2], base) if base else "")
    print_table(
        [
            "variant",
            "items",
            "wall s",
            "wall ratio",
            "items/s",
            "runs",
            "events per run",
            "history KB per run",
            "events/item",
            "history B/item",
            "max items in one run (50K events / 50 MB)",
            "WFTs / timed out+failed (largest run)",
            "final status",
        ],
        rows,
        title="for_each with 10 KB outputs",
    )
    tf_label = next((k for k in results if k.startswith("triggerflow") and "refs" in k), "")
    tf_runs = results.get(tf_label, (0.0, []))[1]
    largest = max((r["events"] for r in tf_runs), default=0)
    print(
        f"\nContinue-as-new: the TriggerFlow execution '{tf_label}' used {len(tf_runs)} "
        f"run(s), the largest with {largest} events. When Temporal suggests continue-as-new "
        "the interpreter dispatches no new for_each item, lets the in-flight ones (at most the "
        "cap, 100 by default) finish and carries the rest to the next run, so each run stays "
        "near the suggestion threshold whatever the item count."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="quick mode")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--inline-items", type=int, default=150)
    parser.add_argument("--only", help="run only the variants whose label contains this")
    args = parser.parse_args()
    asyncio.run(run_main(args))


if __name__ == "__main__":
    main()
