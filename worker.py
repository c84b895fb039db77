"""Serve TriggerFlow flows on Temporal (the worker process of a deployment).

    python worker.py myapp.flows:refund_flow [more.flows:other] \
        [--address localhost:7233] [--namespace default] [--task-queue triggerflow]

Flows may instead come from TRIGGERFLOW_FLOWS="myapp.flows:refund_flow,myapp.flows:other".
Connection, task queue, Workspace, worker tuning, TLS / API key and the /healthz and
/readyz endpoints are configured by environment variables (docs/operations.md lists them
all). SIGTERM or SIGINT stop polling and give running activities
TRIGGERFLOW_GRACEFUL_SHUTDOWN_SECONDS to finish before they are cancelled.
"""

import sys

from triggerflow_temporal.cli import exit_process, run_command

if __name__ == "__main__":
    exit_process(run_command(["worker", *sys.argv[1:]]))
