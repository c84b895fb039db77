"""Serve TriggerFlow flows on Temporal.

    python worker.py myapp.flows:refund_flow [more.flows:other] \
        [--address localhost:7233] [--namespace default] [--task-queue triggerflow]

Address, namespace, task queue and Workspace URL also come from TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TRIGGERFLOW_TASK_QUEUE and TRIGGERFLOW_WORKSPACE_URL. SIGINT/SIGTERM
stop polling and let in-flight work finish.
"""

import sys

from triggerflow_temporal.cli import main

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
