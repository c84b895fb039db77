"""The ``triggerflow-temporal`` command: parsing and dispatch (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from .config import (
    DEFAULT_ADDRESS,
    DEFAULT_NAMESPACE,
    DEFAULT_TASK_QUEUE,
    ENV_ADDRESS,
    ENV_FLOWS,
    ENV_HEALTH_PORT,
    ENV_NAMESPACE,
    ENV_TASK_QUEUE,
    ENV_WORKSPACE,
    STATUSES,
    CLIError,
)
from .gateway import DEFAULT_GATEWAY_PORT, cmd_gateway
from .ops import (
    cmd_close,
    cmd_continue,
    cmd_emit,
    cmd_list,
    cmd_load,
    cmd_save,
    cmd_show,
    cmd_start,
)
from .serve import cmd_dev, cmd_worker

EXIT_USAGE = 2


# -------------------------------------------------------------------------- parser
def _add_connection_args(parser: argparse.ArgumentParser, *, timeout: bool = True) -> None:
    parser.add_argument(
        "--address",
        default=None,
        help=f"Temporal frontend host:port (env {ENV_ADDRESS}, default {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--namespace",
        default=None,
        help=f"Temporal namespace (env {ENV_NAMESPACE}, default {DEFAULT_NAMESPACE!r})",
    )
    if timeout:
        parser.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            help="seconds to wait for the workflow to answer (default 30)",
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``triggerflow-temporal`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="triggerflow-temporal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="dev server + UI, Workspace service and a worker")
    dev.add_argument("flows", nargs="*", help="extra flows as 'package.module:variable'")
    dev.add_argument("--data-dir", default=".triggerflow", help="default .triggerflow/")
    dev.add_argument("--port", type=int, default=7233, help="Temporal port (default 7233)")
    dev.add_argument("--ui-port", type=int, default=8233, help="UI port (default 8233)")
    dev.add_argument("--workspace-port", type=int, default=8080, help="default 8080")
    dev.add_argument("--task-queue", default=DEFAULT_TASK_QUEUE)

    dev.add_argument("--gateway-port", type=int, default=DEFAULT_GATEWAY_PORT, help="default 8090")

    gateway = sub.add_parser("gateway", help="serve the authenticated HTTP gateway")
    gateway.add_argument(
        "flows", nargs="*", help=f"flows as 'package.module:variable' (default ${ENV_FLOWS})"
    )
    gateway.add_argument(
        "--config",
        default=None,
        help="gateway config file, YAML or JSON (env TRIGGERFLOW_GATEWAY_CONFIG)",
    )
    gateway.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    gateway.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    gateway.add_argument("--task-queue", default=None, help=f"env {ENV_TASK_QUEUE}")
    _add_connection_args(gateway, timeout=False)

    worker = sub.add_parser("worker", help="serve flows named by import path")
    worker.add_argument(
        "flows", nargs="*", help=f"flows as 'package.module:variable' (default ${ENV_FLOWS})"
    )
    _add_connection_args(worker, timeout=False)
    worker.add_argument("--task-queue", default=None, help=f"env {ENV_TASK_QUEUE}")
    worker.add_argument("--workspace", default=None, help=f"Workspace URL (env {ENV_WORKSPACE})")
    worker.add_argument("--health-port", type=int, default=None, help=f"env {ENV_HEALTH_PORT}")
    worker.add_argument(
        "--config",
        default=None,
        help="config file with `notifications` and `links`, YAML or JSON (the gateway's file; "
        "env TRIGGERFLOW_GATEWAY_CONFIG)",
    )
    worker.add_argument(
        "--event-handler",
        action="append",
        default=None,
        metavar="PKG.MODULE:FUNCTION",
        help="an execution.on() handler to serve (repeatable)",
    )

    start = sub.add_parser("start", help="start an execution")
    start.add_argument("flow", help="flow name (examples, $TRIGGERFLOW_FLOWS) or pkg.module:flow")
    start.add_argument("--input", default=None, help="START value as JSON")
    start.add_argument("--id", default=None, help="execution id (default <flow>-<random>)")
    start.add_argument("--task-queue", default=None, help=f"env {ENV_TASK_QUEUE}")
    start.add_argument("--tenant", default=None)
    close_group = start.add_mutually_exclusive_group()
    close_group.add_argument(
        "--auto-close-timeout",
        type=float,
        default=None,
        help="close after this many idle seconds with nothing waiting (default 0)",
    )
    close_group.add_argument("--no-auto-close", action="store_true", help="stay open until `close`")
    start.add_argument("--json", action="store_true")
    _add_connection_args(start)

    listing = sub.add_parser("list", help="list executions (Temporal visibility)")
    listing.add_argument("--waiting", action="store_true", help="only executions waiting")
    listing.add_argument("--status", choices=STATUSES, default=None)
    listing.add_argument("--flow", default=None, help="only this flow name")
    listing.add_argument("--tenant", default=None)
    listing.add_argument("--limit", type=int, default=50, help="at most N rows (default 50)")
    listing.add_argument("--json", action="store_true")
    _add_connection_args(listing)

    show = sub.add_parser("show", help="status, pending interrupts and state of an execution")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    _add_connection_args(show)

    cont = sub.add_parser("continue", help="resume a waiting interrupt")
    cont.add_argument("id")
    cont.add_argument("interrupt")
    cont.add_argument("--value", default=None, help="the response as JSON (default null)")
    cont.add_argument("--request-id", default=None, help="idempotency key for the resume")
    cont.add_argument("--actor", default=None)
    cont.add_argument("--json", action="store_true")
    _add_connection_args(cont)

    emit = sub.add_parser("emit", help="send an event to an execution")
    emit.add_argument("id")
    emit.add_argument("event")
    emit.add_argument("--value", default=None, help="event value as JSON")
    emit.add_argument(
        "--trigger-type", default="event", choices=("event", "runtime_data", "flow_data")
    )
    emit.add_argument("--nowait", action="store_true", help="signal; do not wait for handlers")
    _add_connection_args(emit)

    close = sub.add_parser("close", help="close an execution; prints the close snapshot")
    close.add_argument("id")
    close.add_argument("--reason", default="manual")
    close.add_argument(
        "--cancel-pending", action="store_true", help="cancel waiting interrupts instead of failing"
    )
    _add_connection_args(close)

    save = sub.add_parser("save", help="print an execution's snapshot as JSON")
    save.add_argument("id")
    save.add_argument("-o", "--output", default=None, help="write to a file instead of stdout")
    _add_connection_args(save)

    load = sub.add_parser("load", help="start an execution from a saved snapshot")
    load.add_argument("file", help="snapshot JSON file ('-' for stdin)")
    load.add_argument("--id", default=None, help="new execution id (default: the saved id)")
    load.add_argument("--task-queue", default=None, help="default: the saved task queue")
    _add_connection_args(load)
    return parser


_COMMANDS: dict[
    str, Callable[[argparse.Namespace, Mapping[str, str]], Coroutine[Any, Any, int]]
] = {
    "dev": cmd_dev,
    "gateway": cmd_gateway,
    "worker": cmd_worker,
    "start": cmd_start,
    "list": cmd_list,
    "show": cmd_show,
    "continue": cmd_continue,
    "emit": cmd_emit,
    "close": cmd_close,
    "save": cmd_save,
    "load": cmd_load,
}


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``triggerflow-temporal`` command.

    Called without ``argv`` (the console script, ``python -m``), it ends the process itself
    once the command is done; see :func:`exit_process`.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).
        env: Environment (default ``os.environ``).

    Returns:
        The exit status: 0, 2 for a user error, 130 after Ctrl-C.
    """
    code = run_command(argv, env)
    if argv is None:
        exit_process(code)
    return code


def run_command(argv: Sequence[str] | None, env: Mapping[str, str] | None = None) -> int:
    """Parse ``argv`` and run the command; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    if getattr(args, "timeout", 1.0) <= 0:
        print("error: --timeout must be > 0 seconds.", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_COMMANDS[args.command](args, os.environ if env is None else env))
    except CLIError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as other command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def exit_process(code: int) -> None:
    """Flush output, logs and spans, then end the process without interpreter teardown.

    The Temporal client's native threads can outlive the event loop and abort a finishing
    interpreter ("PyGILState_Release ... finalizing", temporalio/sdk-python#300); a
    command-line process has nothing left to tear down, so it skips that phase.
    """
    tracing = sys.modules.get("opentelemetry.trace")
    if tracing is not None:
        shutdown = getattr(tracing.get_tracer_provider(), "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception:  # a failing exporter must not change the exit status
                pass
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
