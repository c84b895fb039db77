"""Long-running commands: ``worker`` (health endpoints, graceful shutdown) and ``dev``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..client.flow import TriggerFlow
from ..plugin.links import ApprovalLinks
from ..plugin.notifications import NotificationChannel
from ..plugin.plugin import TriggerFlowPlugin
from .config import (
    BUILTIN_FLOWS,
    ENV_HEALTH_PORT,
    CLIError,
    WorkerSettings,
    connect_with,
    flow_paths,
    load_event_handler,
    load_flow,
    out,
    short_error,
    worker_settings,
    workspace_target,
)
from .devserver import start_dev_server
from .gateway import run_dev_gateway
from .notify_config import worker_notifications

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.worker import Worker


# --------------------------------------------------------------------- health endpoints
class _Health:
    """``/healthz``: the worker is polling. ``/readyz``: polling, not stopping, server up."""

    def __init__(self, worker: Worker, client: Client, task_queue: str) -> None:
        self.worker = worker
        self.client = client
        self.task_queue = task_queue
        self.stopping = False

    async def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        running = self.worker.is_running
        body: dict[str, Any] = {"task_queue": self.task_queue, "polling": running}
        if path == "/healthz":
            return (200 if running else 503), {**body, "status": "ok" if running else "down"}
        if path == "/readyz":
            if not running or self.stopping:
                status = "stopping" if self.stopping else "starting"
                return 503, {**body, "status": status}
            try:
                await self.client.service_client.check_health(timeout=timedelta(seconds=2))
            except Exception as error:
                return 503, {**body, "status": "server unreachable", "error": short_error(error)}
            return 200, {**body, "status": "ready"}
        return 404, {"status": "not found", "paths": ["/healthz", "/readyz"]}


async def start_health_server(health: _Health, host: str, port: int) -> asyncio.AbstractServer:
    """Serve ``health`` over minimal HTTP/1.1 (GET only, one request per connection)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            method = request_line[0] if request_line else ""
            if len(request_line) < 2 or method not in ("GET", "HEAD"):
                status, body = 405, {"status": "method not allowed"}
            else:
                status, body = await health.answer(request_line[1].split("?", 1)[0])
            payload = json.dumps(body).encode()
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}.get(
                status, "Service Unavailable"
            )
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + (payload if method != "HEAD" else b"")
            )
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ConnectionError:
            pass
        finally:
            writer.close()

    try:
        return await asyncio.start_server(handle, host, port)
    except OSError as error:
        raise CLIError(
            f"Cannot serve health endpoints on {host}:{port} ({ENV_HEALTH_PORT}): "
            f"{error.strerror or error}."
        ) from None


# -------------------------------------------------------------------------- serving
def _install_stop_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set ``stop``; returns an undo.

    A second signal more than a second after the first exits at once. Closer ones are the
    same request twice (Ctrl-C reaches the whole process group, and a supervising script
    may forward it as SIGTERM) and are ignored.
    """
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    first: list[float] = []

    def on_signal() -> None:
        if not first:
            first.append(time.monotonic())
            stop.set()
        elif time.monotonic() - first[0] > 1.0:
            print("second signal: exiting without cleanup", file=sys.stderr, flush=True)
            os._exit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests) or no signals (Windows)

    def undo() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return undo


async def serve(
    client: Client,
    settings: WorkerSettings,
    flow_names: Sequence[str],
    stop: asyncio.Event,
    *,
    on_polling: Callable[[], None] | None = None,
) -> None:
    """Run a worker on ``client`` until ``stop`` is set, then shut it down gracefully.

    Raises:
        CLIError: When the worker cannot start (unknown namespace, server gone) or fails.
    """
    from temporalio.worker import Worker

    worker = Worker(
        client,
        task_queue=settings.task_queue,
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
    )
    health = _Health(worker, client, settings.task_queue)
    server = None
    if settings.health_port:
        server = await start_health_server(health, settings.health_host, settings.health_port)
    run = asyncio.ensure_future(worker.run())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        for _ in range(600):  # up to 30 s for the namespace check and first polls
            if worker.is_running or run.done() or stop.is_set():
                break
            await asyncio.sleep(0.05)
        if worker.is_running and on_polling is not None:
            on_polling()
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        health.stopping = True
        if not run.done():
            await worker.shutdown()
        try:
            await run
        except Exception as error:
            raise CLIError(
                f"The worker for {', '.join(flow_names)} on task queue "
                f"{settings.task_queue!r} stopped: {short_error(error)}"
            ) from None
    finally:
        stopped.cancel()
        if not run.done():
            await worker.shutdown()
        if server is not None:
            server.close()
            await server.wait_closed()


async def run_worker(
    flows: Sequence[TriggerFlow],
    *,
    address: str | None = None,
    namespace: str | None = None,
    task_queue: str | None = None,
    workspace: str | None = None,
    stop: asyncio.Event | None = None,
    settings: WorkerSettings | None = None,
    notifiers: Sequence[NotificationChannel] = (),
    approval_links: ApprovalLinks | None = None,
    event_handlers: Sequence[Callable[..., Any]] = (),
) -> None:
    """Connect and serve ``flows`` until ``stop`` is set, SIGINT or SIGTERM.

    Args:
        flows: The flows to serve.
        address: Temporal ``host:port``; default ``TEMPORAL_ADDRESS`` or localhost:7233.
        namespace: Default ``TEMPORAL_NAMESPACE`` or ``default``.
        task_queue: Default ``TRIGGERFLOW_TASK_QUEUE`` or ``triggerflow``.
        workspace: Workspace URL for ``data.workspace``; default ``TRIGGERFLOW_WORKSPACE_URL``.
        stop: Set it to stop the worker gracefully.
        settings: Everything at once (from :func:`worker_settings`); the connection
            arguments above are then ignored.
        notifiers: Notification channels (``TriggerFlowPlugin(notifiers=...)``).
        approval_links: Approval links minted into notifications.
        event_handlers: ``execution.on()`` handlers (``TriggerFlowPlugin(event_handlers=...)``).

    Raises:
        CLIError: The server cannot be reached, or the worker cannot run.
    """
    if settings is None:
        settings = worker_settings(
            os.environ,
            require_flows=False,
            address=address,
            namespace=namespace,
            task_queue=task_queue,
            workspace=workspace,
        )
    target = workspace_target(settings.workspace, settings.workspace_token)
    plugin = TriggerFlowPlugin(
        list(flows),
        workspace=target,
        task_queue=settings.task_queue,
        notifiers=notifiers,
        approval_links=approval_links,
        event_handlers=event_handlers,
    )
    options = settings.connect
    client = await connect_with(options, plugins=[plugin])
    stop = stop or asyncio.Event()
    undo = _install_stop_handlers(stop)
    names = sorted({flow.name for flow in flows})
    health = (
        f"; health on {settings.health_host}:{settings.health_port}" if settings.health_port else ""
    )
    notes = ""
    if plugin.notifiers or approval_links is not None:
        notes = f"; notifications: {', '.join(plugin.notifiers) or 'none'}"
        notes += f" (approval links {approval_links.base_url})" if approval_links else ""
    try:
        await serve(
            client,
            settings,
            names,
            stop,
            on_polling=lambda: print(
                f"worker: serving {', '.join(names)} on task queue {settings.task_queue!r} at "
                f"{options['target_host']} ({options['namespace']}){health}{notes}",
                flush=True,
            ),
        )
    finally:
        undo()
    print("worker: stopped (in-flight activities finished or were handed back)", flush=True)


async def cmd_worker(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``worker``: serve flows named by import path until interrupted."""
    settings = worker_settings(
        env,
        flows=args.flows,
        address=args.address,
        namespace=args.namespace,
        task_queue=args.task_queue,
        workspace=args.workspace,
        health_port=args.health_port,
    )
    # Before connecting: a wrong channel or secret stops the worker with the key to fix.
    notify = worker_notifications(args.config, env)
    flows = [load_flow(path) for path in settings.flows]
    handlers = [load_event_handler(path) for path in args.event_handler or []]
    await run_worker(
        flows,
        settings=settings,
        notifiers=notify.channels,
        approval_links=notify.approval_links,
        event_handlers=handlers,
    )
    return 0


# --------------------------------------------------------------------------- dev
def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


async def _wait_http(
    url: str, proc: asyncio.subprocess.Process, stop: asyncio.Event, seconds: float
) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline and not stop.is_set():
            if proc.returncode is not None:
                raise CLIError(f"exited with status {proc.returncode}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    if not stop.is_set():
        raise CLIError(f"{url} did not answer within {seconds:.0f} s")


async def _stop_process(proc: asyncio.subprocess.Process, seconds: float = 10.0) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), seconds)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()


def _log_tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return "".join(file.readlines()[-lines:])
    except OSError:
        return ""


async def cmd_dev(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run the dev stack until SIGINT / SIGTERM; see docs/operations.md."""
    for port, option in (
        (args.port, "--port"),
        (args.ui_port, "--ui-port"),
        (args.workspace_port, "--workspace-port"),
        (args.gateway_port, "--gateway-port"),
    ):
        if not 1 <= port <= 65535:
            raise CLIError(f"{option} {port} is not a port number.")
        if _port_in_use(port):
            raise CLIError(
                f"Port {port} ({option}) is already in use: is another `triggerflow-temporal "
                f"dev` running? Stop it, or pick another port with {option}."
            )
    paths = [*flow_paths(env, args.flows)]
    paths = [*paths, *(path for path in BUILTIN_FLOWS if path not in paths)]
    flows = [load_flow(path) for path in paths]
    settings = worker_settings(
        env, flows=paths, address=f"localhost:{args.port}", task_queue=args.task_queue
    )
    settings.health_port = None
    stop = asyncio.Event()
    undo = _install_stop_handlers(stop)
    try:
        async with contextlib.AsyncExitStack() as stack:
            await _run_dev(args, flows, settings, stop, stack)
    finally:
        undo()
    out("stopped.")
    return 0


async def _run_dev(
    args: argparse.Namespace,
    flows: Sequence[TriggerFlow],
    settings: WorkerSettings,
    stop: asyncio.Event,
    stack: contextlib.AsyncExitStack,
) -> None:
    from temporalio.client import Client

    data_dir = os.path.abspath(args.data_dir)
    os.makedirs(data_dir, exist_ok=True)
    temporal_db = os.path.join(data_dir, "temporal.db")
    workspace_db = os.path.join(data_dir, "workspace.db")
    workspace_log = os.path.join(data_dir, "workspace.log")
    ui = f"http://localhost:{args.ui_port}"
    workspace_url = f"http://127.0.0.1:{args.workspace_port}"
    began = time.monotonic()
    out(f"triggerflow dev: everything is kept under {os.path.relpath(data_dir)}/")

    out(f"[1/3] Temporal dev server with UI (SQLite {os.path.relpath(temporal_db)}) ...")
    try:
        temporal = await stack.enter_async_context(
            start_dev_server(
                database_file=temporal_db, ui=True, port=args.port, ui_port=args.ui_port
            )
        )
    except Exception as error:
        raise CLIError(f"The Temporal dev server did not start: {short_error(error)}") from None
    stack.callback(out, "stopping: Temporal dev server ...")
    out(f"      ready at localhost:{args.port}, UI {ui} ({time.monotonic() - began:.1f} s)")

    out(f"[2/3] Workspace service (SQLite {os.path.relpath(workspace_db)}) ...")
    step = time.monotonic()
    log = stack.enter_context(open(workspace_log, "ab"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workspace",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(args.workspace_port),
        "--database-url",
        f"sqlite+aiosqlite:///{workspace_db}",
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "WORKSPACE_TOKENS": ""},
        start_new_session=True,  # Ctrl-C reaches only us; we stop it in order
    )
    stack.push_async_callback(_stop_process, proc)
    stack.callback(out, "stopping: Workspace service ...")
    try:
        await _wait_http(f"{workspace_url}/healthz", proc, stop, 60)
    except CLIError as error:
        raise CLIError(
            f"The Workspace service did not start ({error}); its log {workspace_log}:\n"
            f"{_log_tail(workspace_log)}"
        ) from None
    out(f"      ready at {workspace_url} ({time.monotonic() - step:.1f} s)")

    names = sorted({flow.name for flow in flows})
    out(f"[3/3] worker for {', '.join(names)} on task queue {args.task_queue!r}, gateway ...")
    plugin = TriggerFlowPlugin(list(flows), workspace=workspace_url, task_queue=args.task_queue)
    client = Client(**{**temporal.client.config(), "plugins": [plugin]})
    plugin.attach_client(client)
    gateway, key = await run_dev_gateway(data_dir, flows, client, args.gateway_port, stop)
    stack.push_async_callback(_await_quietly, gateway)
    stack.callback(out, "stopping: gateway ...")
    await serve(
        client,
        settings,
        names,
        stop,
        on_polling=lambda: _print_ready(args, names, ui, workspace_url, began, key),
    )
    out("stopping: worker stopped")


async def _await_quietly(task: asyncio.Task[None]) -> None:
    try:
        await asyncio.wait_for(task, 10)
    except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
        task.cancel()


def _print_ready(
    args: argparse.Namespace,
    names: Sequence[str],
    ui: str,
    workspace_url: str,
    began: float,
    gateway_key: str,
) -> None:
    port = "" if args.port == 7233 else f" --address localhost:{args.port}"
    start = (
        f"triggerflow-temporal start refund_approval{port} --id refund-r-1001 "
        """--input '{"refund_id": "r-1001", "amount": 42.5, "reason": "broken"}'"""
    )
    lines = [
        f"      polling ({time.monotonic() - began:.1f} s since start)",
        "",
        "Ready.",
        f"  Temporal UI   {ui}/namespaces/default/workflows",
        f"  Temporal      localhost:{args.port} (namespace default, task queue "
        f"{args.task_queue!r})",
        f"  Workspace     {workspace_url} (OpenAPI at {workspace_url}/docs)",
        f"  Gateway       http://127.0.0.1:{args.gateway_port} (OpenAPI at /docs; API key in "
        f"{os.path.join(args.data_dir, 'gateway-key')}, tenant 'default')",
        f"  Flows         {', '.join(names)}",
        "",
        "In another terminal:",
        f"  {start}",
        f"  triggerflow-temporal list --waiting{port}",
        f"  triggerflow-temporal continue refund-r-1001 approve-R-1001{port} "
        """--value '{"approved": true}'""",
        f"  triggerflow-temporal show refund-r-1001{port}",
        "",
        "Ctrl-C stops everything.",
    ]
    out("\n".join(lines))
