"""``triggerflow-temporal``: serve flows, run the embedded demo stack.

Commands:
    worker FLOW [FLOW ...]  serve flows named by import path (``pkg.module:flow``)
    demo                    dev server (UI) + worker, run the example approval end to end
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from ._definition import TriggerFlow

ENV_ADDRESS = "TEMPORAL_ADDRESS"
ENV_NAMESPACE = "TEMPORAL_NAMESPACE"
ENV_TASK_QUEUE = "TRIGGERFLOW_TASK_QUEUE"
ENV_WORKSPACE = "TRIGGERFLOW_WORKSPACE_URL"

# Worker defaults measured on a 2-core machine (see bench/RESULTS.md): throughput is bound
# by the server's CPU, so more pollers or slots only add contention.
DEFAULT_MAX_CONCURRENT_ACTIVITIES = 100
DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS = 100
DEFAULT_MAX_CACHED_WORKFLOWS = 1000


class CLIError(Exception):
    """A user error: printed without a traceback, exit status 2."""


def load_flow(path: str) -> TriggerFlow:
    """Import ``"package.module:attribute"`` and return the TriggerFlow it names."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise CLIError(
            f"Cannot load flow {path!r}: use the form 'package.module:flow_variable', e.g. "
            "'myapp.flows:refund_flow'."
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CLIError(
            f"Cannot import module {module_name!r} for flow {path!r}: {error}"
        ) from error
    flow: Any = module
    for part in attribute.split("."):
        if not hasattr(flow, part):
            raise CLIError(
                f"Module {module_name!r} has no attribute {attribute!r} (flow {path!r})."
            )
        flow = getattr(flow, part)
    if not isinstance(flow, TriggerFlow) and not type(flow).__module__.startswith("agently"):
        raise CLIError(f"{path!r} is a {type(flow).__name__}, not a TriggerFlow.")
    return flow


async def run_worker(
    flows: Sequence[TriggerFlow],
    *,
    address: str,
    namespace: str,
    task_queue: str,
    workspace: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Connect, serve ``flows`` on ``task_queue`` until ``stop`` is set (or a signal)."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from ._plugin import TriggerFlowPlugin

    plugin = TriggerFlowPlugin(list(flows), workspace=workspace, task_queue=task_queue)
    client = await Client.connect(address, namespace=namespace, plugins=[plugin])
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    worker = Worker(
        client,
        task_queue=task_queue,
        max_concurrent_activities=DEFAULT_MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_workflow_tasks=DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS,
        max_cached_workflows=DEFAULT_MAX_CACHED_WORKFLOWS,
    )
    names = ", ".join(sorted({flow.name for flow in flows}))
    print(
        f"worker: serving {names} on task queue {task_queue!r} at {address} ({namespace})",
        flush=True,
    )
    async with worker:
        await stop.wait()
    print("worker: stopped (in-flight activities finished or were handed back)", flush=True)


def _add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=os.environ.get(ENV_ADDRESS, "localhost:7233"),
        help=f"Temporal frontend address (env {ENV_ADDRESS}, default localhost:7233)",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get(ENV_NAMESPACE, "default"),
        help=f"Temporal namespace (env {ENV_NAMESPACE}, default 'default')",
    )
    parser.add_argument(
        "--task-queue",
        default=os.environ.get(ENV_TASK_QUEUE, "triggerflow"),
        help=f"task queue (env {ENV_TASK_QUEUE}, default 'triggerflow')",
    )


async def _demo(args: argparse.Namespace) -> int:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from ._plugin import TriggerFlowPlugin
    from .examples.approval import refund_flow
    from .testing import start_dev_server

    os.makedirs(args.data_dir, exist_ok=True)
    db = os.path.join(args.data_dir, "temporal.db")
    print(f"[1/4] starting the Temporal dev server (SQLite: {db}) ...", flush=True)
    async with start_dev_server(
        database_file=db, ui=True, port=args.port, ui_port=args.ui_port
    ) as env:
        ui = f"http://localhost:{args.ui_port}"
        print(f"      Temporal UI: {ui}", flush=True)
        workspace = f"sqlite+aiosqlite:///{os.path.join(args.data_dir, 'workspace.db')}"
        try:
            import workspace as _workspace_pkg  # noqa: F401

            plugin = TriggerFlowPlugin([refund_flow], workspace=workspace, task_queue="triggerflow")
            print(f"[2/4] Workspace on SQLite: {workspace}", flush=True)
        except Exception as error:
            print(f"[2/4] Workspace unavailable ({error}); continuing without it", flush=True)
            plugin = TriggerFlowPlugin([refund_flow], task_queue="triggerflow")
        client = Client(**{**env.client.config(), "plugins": [plugin]})
        plugin.attach_client(client)
        async with Worker(client, task_queue="triggerflow"):
            print("[3/4] worker serving 'refund_approval' on task queue 'triggerflow'", flush=True)
            execution_id = f"refund-R-1001-{uuid.uuid4().hex[:6]}"
            execution = refund_flow.create_execution(execution_id=execution_id, auto_close=False)
            await execution.async_start(
                {"refund_id": "r-1001", "amount": "42.5", "reason": "broken"}
            )
            pending = await execution.async_get_pending_interrupts()
            print(
                f"[4/4] execution {execution_id} is {await execution.async_get_status()}: "
                f"{list(pending)}",
                flush=True,
            )
            print(
                f"      see it in the UI: {ui}/namespaces/default/workflows/{execution_id}",
                flush=True,
            )
            interrupt_id = next(iter(pending))
            record = await execution.async_continue_with(
                interrupt_id, {"approved": True, "by": "demo"}
            )
            print(
                f"      approved: interrupt {interrupt_id} is {record and record['status']}",
                flush=True,
            )
            snapshot = await execution.async_close()
            print(f"      completed; close snapshot: {snapshot}", flush=True)
            if args.keep_running:
                print("      server, UI and worker keep running; Ctrl-C to stop", flush=True)
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``triggerflow-temporal`` command."""
    parser = argparse.ArgumentParser(
        prog="triggerflow-temporal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="serve flows named by import path")
    worker.add_argument("flows", nargs="+", help="flows as 'package.module:variable'")
    _add_connection_args(worker)
    worker.add_argument(
        "--workspace",
        default=os.environ.get(ENV_WORKSPACE),
        help=f"Workspace URL or path for data.workspace (env {ENV_WORKSPACE})",
    )
    demo = sub.add_parser("demo", help="embedded dev server + worker; run the approval example")
    demo.add_argument("--data-dir", default=".triggerflow")
    demo.add_argument("--port", type=int, default=7233)
    demo.add_argument("--ui-port", type=int, default=8233)
    demo.add_argument("--keep-running", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "worker":
            flows = [load_flow(path) for path in args.flows]
            asyncio.run(
                run_worker(
                    flows,
                    address=args.address,
                    namespace=args.namespace,
                    task_queue=args.task_queue,
                    workspace=args.workspace,
                )
            )
            return 0
        if args.command == "demo":
            return asyncio.run(_demo(args))
    except CLIError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
