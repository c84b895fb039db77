"""``triggerflow-temporal``: run the dev stack, serve flows, and operate executions.

Commands:
    dev [FLOW ...]                     dev server + UI, Workspace service, gateway and a worker
    worker [FLOW ...]                  serve flows named by import path (``pkg.module:flow``)
    gateway [FLOW ...] --config FILE   the authenticated HTTP front door (docs/gateway.md)
    start FLOW [--input JSON]          start an execution (FLOW: a name or ``pkg.module:flow``)
    list [--waiting]                   executions by status / flow (Temporal visibility)
    show ID                            status, pending interrupts and state of one execution
    continue ID INTERRUPT --value JSON resume a waiting interrupt
    emit ID EVENT [--value JSON]       send an event to an execution
    close ID                           close an execution and print its close snapshot
    save ID > file                     print the execution's snapshot as JSON
    load FILE                          start an execution from a saved snapshot

Every command but ``dev`` talks to the server at ``--address`` (``TEMPORAL_ADDRESS``,
default ``localhost:7233``) in ``--namespace`` (``TEMPORAL_NAMESPACE``); TLS and API keys
come from the ``TEMPORAL_TLS_*`` / ``TEMPORAL_API_KEY`` variables (docs/operations.md).
User errors print one line and exit with status 2, and so does a ``start``, ``load``,
``continue``, ``emit`` or ``close`` that no worker would ever answer: within seconds it
names the flow, the task queue nobody polls and the ``worker`` command that serves it.
"""

from .config import (
    DEFAULT_MAX_CACHED_WORKFLOWS,
    DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS,
    WORKER_ENV,
    CLIError,
    load_flow,
    worker_settings,
)
from .main import build_parser, exit_process, main, run_command
from .serve import run_worker

__all__ = [
    "DEFAULT_MAX_CACHED_WORKFLOWS",
    "DEFAULT_MAX_CONCURRENT_ACTIVITIES",
    "DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS",
    "WORKER_ENV",
    "CLIError",
    "build_parser",
    "exit_process",
    "load_flow",
    "main",
    "run_command",
    "run_worker",
    "worker_settings",
]
