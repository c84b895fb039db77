"""What one search-attribute upsert costs the server (issue 18: the listing's price).

Every ``continue_with`` of a listable execution changes what "everything waiting for
approval" lists, so it upserts search attributes once. This bench isolates that write: a
hand-written workflow takes N updates that change nothing but, per variant, upsert

========  ================================================================
``none``  nothing (the update alone: the baseline)
``kw``    one Keyword (``TriggerFlowStatus``)
``kl``    one KeywordList (``TriggerFlowPendingInterruptTypes``)
``both``  both in one upsert (what a TriggerFlow resume writes)
========  ================================================================

and prints the dev server's CPU per update, each variant's ratio to ``none`` and the
upsert's own cost (variant minus ``none``), over ``--repeat`` interleaved passes.

    python bench/visibility_cost.py                 # 100 workflows x 6 updates, 3 passes
    python bench/visibility_cost.py --workflows 200 --updates 10
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate
from temporalio.worker import Worker

from bench._common import (
    WORKER_SETTINGS,
    cpu_seconds,
    dev_server,
    dev_server_pid,
    exit_now,
    log,
    machine_line,
    med,
    print_table,
    ratio,
)

STATUS = SearchAttributeKey.for_keyword("TriggerFlowStatus")
PENDING = SearchAttributeKey.for_keyword_list("TriggerFlowPendingInterruptTypes")
VARIANTS = ("none", "kw", "kl", "both")
# Visibility is written asynchronously (the server's visibility queue): wait this long
# after the last update before reading the server's CPU.
SETTLE_S = 1.5


@workflow.defn(name="bench_visibility_probe", sandboxed=False)
class VisibilityProbe:
    """Counts ``flip`` updates; each upserts what its variant names, alternating values."""

    def __init__(self) -> None:
        self._flips = 0
        self._variant = "none"

    @workflow.run
    async def run(self, variant: str, flips: int) -> int:
        self._variant = variant
        await workflow.wait_condition(lambda: self._flips >= flips)
        return self._flips

    @workflow.update
    async def flip(self) -> int:
        self._flips += 1
        odd = self._flips % 2 == 1
        updates: list[SearchAttributeUpdate[Any]] = []
        if self._variant in ("kw", "both"):
            updates.append(STATUS.value_set("running" if odd else "waiting"))
        if self._variant in ("kl", "both"):
            updates.append(PENDING.value_set([] if odd else ["approval"]))
        if updates:
            workflow.upsert_search_attributes(updates)
        return self._flips


async def one_pass(
    client: Client, task_queue: str, server: int, variant: str, workflows: int, updates: int
) -> float:
    """Dev server CPU ms per update of ``variant`` (starts, first tasks and closes excluded)."""
    handles: list[WorkflowHandle[VisibilityProbe, int]] = await asyncio.gather(
        *(
            client.start_workflow(
                VisibilityProbe.run,
                args=[variant, updates + 2],
                id=f"probe-{variant}-{uuid.uuid4().hex[:10]}",
                task_queue=task_queue,
            )
            for _ in range(workflows)
        )
    )
    # The first update of each waits for its first workflow task: not counted.
    await asyncio.gather(*(h.execute_update(VisibilityProbe.flip) for h in handles))
    await asyncio.sleep(SETTLE_S)
    gate = asyncio.Semaphore(50)

    async def drive(handle: WorkflowHandle[VisibilityProbe, int]) -> None:
        async with gate:
            for _ in range(updates):
                await handle.execute_update(VisibilityProbe.flip)

    before = cpu_seconds(server)
    started = time.perf_counter()
    await asyncio.gather(*(drive(h) for h in handles))
    log(f"{variant}: {workflows * updates} updates in {time.perf_counter() - started:.1f} s")
    await asyncio.sleep(SETTLE_S)
    spent = cpu_seconds(server) - before
    # One more update each closes them (outside the measure: a close writes visibility too).
    await asyncio.gather(*(h.execute_update(VisibilityProbe.flip) for h in handles))
    await asyncio.gather(*(h.result() for h in handles))
    return spent * 1000 / (workflows * updates)


async def run(args: argparse.Namespace) -> None:
    print(f"# bench/visibility_cost.py\n\n{machine_line()}")
    extra = [a for value in args.dynamic_config for a in ("--dynamic-config-value", value)]
    if extra:
        print(f"\nExtra dynamic config: {', '.join(args.dynamic_config)}")
    async with dev_server(extra) as env:
        server = dev_server_pid()
        if server is None:
            raise SystemExit("could not find the dev server's process (its CPU is the measure)")
        task_queue = f"bench-visibility-{uuid.uuid4().hex[:8]}"
        samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
        settings = {k: v for k, v in WORKER_SETTINGS.items() if "activit" not in k}
        async with Worker(
            env.client, task_queue=task_queue, workflows=[VisibilityProbe], **settings
        ):
            for _ in range(args.repeat):
                for variant in VARIANTS:
                    samples[variant].append(
                        await one_pass(
                            env.client, task_queue, server, variant, args.workflows, args.updates
                        )
                    )
    base = med(samples["none"])
    rows = [
        [
            variant,
            med(samples[variant]),
            " / ".join(f"{s:.2f}" for s in samples[variant]),
            ratio(med(samples[variant]), base),
            med(samples[variant]) - base,
        ]
        for variant in VARIANTS
    ]
    print_table(
        ["upsert", "server CPU ms/update (median)", "passes", "vs none", "upsert's own ms"],
        rows,
        title=f"{args.workflows} workflows x {args.updates} updates per pass, {args.repeat} passes",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--updates", type=int, default=6, help="timed updates per workflow")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved passes")
    parser.add_argument(
        "--dynamic-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra dev server dynamic config (repeatable), to try a setting's effect",
    )
    asyncio.run(run(parser.parse_args()))
    exit_now()


if __name__ == "__main__":
    main()
