"""Profile the interpreter deterministically: run a flow once, then replay its history
under yappi (all threads, CPU clock). Needs ``pip install yappi`` (not a project
dependency; ``--yappi-path`` adds a directory that has it to ``sys.path``).

    python bench/profile_replay.py --flow foreach --items 1000
    python bench/profile_replay.py --flow chain --runs 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def main(args: argparse.Namespace) -> None:
    if args.yappi_path:
        sys.path.insert(0, args.yappi_path)
    import yappi  # pyright: ignore[reportMissingImports]
    from temporalio.worker import Replayer

    from bench import _flows
    from bench._common import connect, dev_server, log, make_plugin, worker

    histories = []
    options: dict[str, object] = {}
    async with contextlib.AsyncExitStack() as stack:
        if args.flow == "foreach":  # chunks write to a Workspace (SQLite in a temp dir)
            from workspace import SQLWorkspace

            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            ws = await stack.enter_async_context(
                SQLWorkspace.from_url(f"sqlite+aiosqlite:///{tmp}/p.db")
            )
            _flows.set_bench_workspace(ws)
            options["workspace"] = ws
        env = await stack.enter_async_context(dev_server())
        task_queue = f"prof-{uuid.uuid4().hex[:6]}"
        plugin = make_plugin(_flows.ALL_FLOWS, **options)
        client = connect(env, plugin, task_queue)
        await stack.enter_async_context(worker(client, task_queue))
        if args.flow == "foreach":
            flow, value, count = _flows.foreach_flow, list(range(args.items)), 1
        else:
            flow, value, count = _flows.CHAIN_FLOWS["activity"], {"i": 0}, args.runs
        for _ in range(count):
            execution = flow.create_execution(auto_close=True, auto_close_timeout=0.0, hidden=True)
            start = time.perf_counter()
            await execution.async_start(value)
            log(f"ran {execution.id} in {time.perf_counter() - start:.1f} s")
            async for run in client.list_workflows(f"WorkflowId = '{execution.id}'"):
                handle = client.get_workflow_handle(execution.id, run_id=run.run_id)
                histories.append(await handle.fetch_history())
    replayer = Replayer(workflows=[], plugins=[make_plugin(_flows.ALL_FLOWS, **options)])
    yappi.set_clock_type(args.clock)
    yappi.start(builtins=False)
    start = time.perf_counter()
    for history in histories:
        await replayer.replay_workflow(history)
    elapsed = time.perf_counter() - start
    yappi.stop()
    print(f"replayed {len(histories)} histories in {elapsed:.2f} s")
    stats = yappi.get_func_stats()
    stats.sort("ttot")
    rows = [
        s
        for s in stats
        if "triggerflow_temporal" in s.module
        or "copy.py" in s.module
        or "pydantic" in s.module
        or "_workflow_instance" in s.module
    ]
    print("\ntotal CPU s (inclusive), own s, calls, function")
    for s in rows[: args.top]:
        print(
            f"{s.ttot:8.3f} {s.tsub:8.3f} {s.ncall:8d}  {s.module.rsplit('/', 2)[-1]}:"
            f"{s.lineno} {s.name}"
        )


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flow", choices=["foreach", "chain"], default="foreach")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--yappi-path")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--all", action="store_true", help="every function, not only ours")
    args = parser.parse_args()
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
