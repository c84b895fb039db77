"""Workspace benchmark: ingest, search and build_context on SQLite, PostgreSQL and over HTTP.

Run on demand (not part of the tests)::

    python bench/workspace_bench.py --records 100000
    python bench/workspace_bench.py --records 10000 --backends sqlite,http
    python bench/workspace_bench.py --small            # 5,000 records, every backend

PostgreSQL: a throwaway database is created on --pg-dsn's server and dropped afterwards.
HTTP: ``python -m workspace serve`` in a separate process, backed by SQLite. ``http`` ingests
with ``ingest_many`` (``POST /v1/records/batch``, ``--batch-size`` records per request, one
kept-open connection pool); ``http-single`` with one ``POST /v1/records`` per record.
native: Agently 4.1.4.10's own RecordStore (local SQLite) doing the same ingest, search and
retrieve, run by ``bench/native_recordstore.py`` in the agently venv
(``TRIGGERFLOW_BENCH_AGENTLY_PYTHON``, default /work/agently-venv/bin/python); skipped with a
note when that venv is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._records import context_plan, ingest_all, pct, records, search_plan  # noqa: E402
from workspace import BaseWorkspace, SQLWorkspace, WorkspaceClient  # noqa: E402 - after sys.path


async def timed(calls: list[Callable[[], Awaitable[object]]]) -> list[float]:
    out = []
    for call in calls:
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Backend(NamedTuple):
    """A backend under test; ``server_pid`` is the service process (its CPU is counted too)."""

    ws: BaseWorkspace
    server_pid: int | None = None
    cpu_complete: bool = True  # False when a database server's CPU is not counted


def cpu_seconds(server_pid: int | None) -> float:
    """CPU seconds used so far by this process (all threads) plus the service process."""
    used = time.process_time()
    if server_pid is not None:
        with open(f"/proc/{server_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        used += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


@asynccontextmanager
async def sqlite_backend(tmp: Path, name: str) -> AsyncIterator[Backend]:
    async with SQLWorkspace.from_url(tmp / f"{name}.db") as ws:  # each run its own database
        yield Backend(ws)


@asynccontextmanager
async def postgres_backend(dsn: str) -> AsyncIterator[Backend]:
    import asyncpg

    name = f"ws_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    server = dsn.rsplit("/", 1)[0].split("://", 1)[1]
    try:
        async with SQLWorkspace.from_url(
            f"postgresql+asyncpg://{server}/{name}", pool_size=10
        ) as ws:
            yield Backend(ws, cpu_complete=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def http_backend(tmp: Path, name: str) -> AsyncIterator[Backend]:
    # A separate process, as in production: a server thread here would share our GIL.
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workspace",
            "serve",
            "--port",
            str(port),
            "--database-url",
            str(tmp / f"{name}.db"),  # each run its own, fresh database
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "WORKSPACE_TOKENS": "bench-token-change-me:bench",
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(300):
                try:
                    if (await probe.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
        async with WorkspaceClient(url, "bench-token-change-me", timeout=120) as ws:
            yield Backend(ws, server_pid=proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def open_backend(
    name: str, tmp: Path, tag: str, args: argparse.Namespace
) -> AbstractAsyncContextManager[Backend]:
    """A fresh, empty backend (``tag`` names its database file)."""
    if name == "sqlite":
        return sqlite_backend(tmp, tag)
    if name == "postgres":
        return postgres_backend(args.pg_dsn)
    if name in ("http", "http-single"):
        return http_backend(tmp, tag)
    raise SystemExit(f"unknown backend {name!r}; use sqlite, postgres, http, http-single, native")


async def bench_one(
    name: str, backend: Backend, args: argparse.Namespace, *, batch: bool = False
) -> dict[str, float | str]:
    ws = backend.ws
    vocab, recs = records(args.records)

    async def ingest(rec: dict[str, object]) -> None:
        await ws.ingest(**rec)  # type: ignore[arg-type]

    async def ingest_batch(batch: dict[str, Any]) -> None:
        refs = await ws.ingest_many(batch["records"])
        assert len(refs) == len(batch["records"])

    cpu_before = cpu_seconds(backend.server_pid)
    if batch:
        size = args.batch_size
        batches = [{"records": recs[i : i + size]} for i in range(0, len(recs), size)]
        ingest_s = await ingest_all(
            batches, ingest_batch, concurrency=args.batch_concurrency, label=name
        )
    else:
        ingest_s = await ingest_all(recs, ingest, concurrency=args.concurrency, label=name)
    ingest_cpu = cpu_seconds(backend.server_pid) - cpu_before

    searches: list[Callable[[], Awaitable[object]]] = [
        lambda r=request: ws.search(
            r.get("query"), filters=r.get("filters"), scope=r.get("scope"), limit=20
        )
        for request in search_plan(vocab, args.queries)
    ]
    search_lat = await timed(searches)

    contexts: list[Callable[[], Awaitable[object]]] = [
        lambda r=request: ws.build_context(r["goal"], scope=r["scope"], budget={"tokens": 4000})
        for request in context_plan(vocab, args.contexts)
    ]
    context_lat = await timed(contexts)
    return {
        "backend": name,
        "records": args.records,
        "ingest_rps": args.records / ingest_s,
        "ingest_cpu_ms": ingest_cpu * 1000 / args.records if backend.cpu_complete else "",
        "search_p50": pct(search_lat, 0.5),
        "search_p95": pct(search_lat, 0.95),
        "context_p50": pct(context_lat, 0.5),
        "context_p95": pct(context_lat, 0.95),
    }


def print_table(rows: list[dict[str, float | str]]) -> None:
    native = next((r for r in rows if r["backend"] == "native"), None)

    def vs(row: dict[str, float | str], key: str, higher_is_better: bool) -> str:
        if native is None or row is native:
            return ""
        a, b = float(row[key]), float(native[key])
        return f" ({a / b:.2f}x)" if b else ""

    def cpu(row: dict[str, float | str]) -> str:
        # CPU per record, and the throughput ratio it implies on a CPU-bound box (native / this).
        used = row.get("ingest_cpu_ms", "")
        if used == "" or used is None:
            return "n/a"
        text = f"{float(used):.2f}"
        base = None if native is None else native.get("ingest_cpu_ms")
        if row is not native and isinstance(base, float) and float(used):
            text += f" ({base / float(used):.2f}x)"
        return text

    header = (
        "| backend | records | ingest rec/s | ingest CPU ms/rec | search p50 ms | search p95 ms "
        "| context p50 ms | context p95 ms |"
    )
    print(header)
    print(
        "|---------|---------|--------------|-------------------|---------------|---------------|"
        "----------------|----------------|"
    )
    for r in rows:
        print(
            f"| {r['backend']} | {r['records']} | {float(r['ingest_rps']):.0f}"
            f"{vs(r, 'ingest_rps', True)} | {cpu(r)} | {float(r['search_p50']):.1f}"
            f"{vs(r, 'search_p50', False)}"
            f" | {float(r['search_p95']):.1f}{vs(r, 'search_p95', False)}"
            f" | {float(r['context_p50']):.1f}{vs(r, 'context_p50', False)}"
            f" | {float(r['context_p95']):.1f}{vs(r, 'context_p95', False)} |"
        )
    if native is not None:
        print(
            "\n(x) = ratio to the native RecordStore row; for ingest CPU, native CPU / this CPU "
            "(the throughput ratio on a CPU-bound machine; http counts client + service "
            "processes, n/a: the PostgreSQL server's CPU is not counted). "
            "native search = substring scan of every "
            f"row returning all matches (median {native.get('median_hits')} hits, "
            f"{native.get('searches_run')} searches run); native context = "
            f"RecordStore.retrieve(method='keyword') ({native.get('contexts_run')} run)."
        )


def median_row(found: list[dict[str, float | str]]) -> dict[str, float | str]:
    """One row of several rounds of a backend: the median of each measure."""
    row = dict(found[0])
    for key in ("ingest_rps", "search_p50", "search_p95", "context_p50", "context_p95"):
        row[key] = statistics.median(float(r[key]) for r in found)
    cpu = [float(r["ingest_cpu_ms"]) for r in found if r.get("ingest_cpu_ms") not in (None, "")]
    row["ingest_cpu_ms"] = statistics.median(cpu) if cpu else ""
    return row


def print_rounds(runs: dict[str, list[dict[str, float | str]]]) -> None:
    """Ingest rec/s of every round, with the ratio to the native run of the same round."""
    natives = runs.get("native", [])
    print("| round | " + " | ".join(f"{name} ingest rec/s" for name in runs) + " |")
    print("|---" * (len(runs) + 1) + "|")
    for index in range(max(len(found) for found in runs.values())):
        cells = []
        for found in runs.values():
            if index >= len(found):
                cells.append("")
                continue
            row = found[index]
            rate = float(row["ingest_rps"])
            ratio = ""
            if index < len(natives) and found is not natives:
                base = natives[index]
                ratio = f" ({rate / float(base['ingest_rps']):.2f}x"
                used, base_cpu = row.get("ingest_cpu_ms"), base.get("ingest_cpu_ms")
                if isinstance(used, float) and isinstance(base_cpu, float) and used:
                    ratio += f", CPU {base_cpu / used:.2f}x"
                ratio += ")"
            cells.append(f"{rate:.0f}{ratio}")
        print(f"| {index + 1} | " + " | ".join(cells) + " |")
    print(
        "\n(x) = ratio to the native run of the same round: wall clock, then CPU-implied "
        "(native CPU per record / this CPU per record). The table below: medians.\n"
    )


def run_native(args: argparse.Namespace) -> dict[str, float | str] | None:
    python = os.environ.get("TRIGGERFLOW_BENCH_AGENTLY_PYTHON", "/work/agently-venv/bin/python")
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        print(
            f"native RecordStore baseline skipped: no agently venv at {python}. Create one with "
            "`python3 -m venv /work/agently-venv && /work/agently-venv/bin/pip install "
            "agently==4.1.4.10`, or set TRIGGERFLOW_BENCH_AGENTLY_PYTHON.",
            file=sys.stderr,
        )
        return None
    print(f"benchmarking native RecordStore with {args.records} records...", file=sys.stderr)
    proc = subprocess.run(
        [
            python,
            str(ROOT / "bench" / "native_recordstore.py"),
            "--records",
            str(args.records),
            "--concurrency",
            str(args.concurrency),
            "--queries",
            str(args.queries),
            "--contexts",
            str(args.contexts),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"native RecordStore run failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    row = json.loads(lines[-1])
    row["backend"] = "native"
    return row


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--small", action="store_true", help="5,000 records, fewer queries")
    parser.add_argument("--backends", default="sqlite,postgres,http,http-single,native")
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "WORKSPACE_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--concurrency", type=int, default=8, help="parallel ingest tasks")
    parser.add_argument(
        "--batch-size", type=int, default=500, help="records per ingest_many call (http)"
    )
    parser.add_argument(
        "--batch-concurrency", type=int, default=2, help="parallel ingest_many calls (http)"
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--contexts", type=int, default=20)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the backends this many times, interleaved; the table shows medians",
    )
    args = parser.parse_args()
    if args.small:
        args.records, args.queries, args.contexts = 5000, 80, 10

    runs: dict[str, list[dict[str, float | str]]] = {}
    print(
        f"# bench/workspace_bench.py --records {args.records} ({time.strftime('%Y-%m-%d %H:%M')}"
        f", {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})\n"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for round_ in range(1, args.rounds + 1):
            for name in args.backends.split(","):
                name = name.strip()
                if name == "native":
                    native = run_native(args)
                    if native is not None:
                        runs.setdefault(name, []).append(native)
                    continue
                print(
                    f"[round {round_}] benchmarking {name} with {args.records} records...",
                    file=sys.stderr,
                )
                started = time.perf_counter()
                async with open_backend(name, tmp, f"{name}-r{round_}", args) as backend:
                    row = await bench_one(name, backend, args, batch=name == "http")
                runs.setdefault(name, []).append(row)
                print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rows = [median_row(found) for found in runs.values()]
    if args.rounds > 1:
        print_rounds(runs)
    print_table(rows)
    print(
        f"\nIngest with {args.concurrency} concurrent tasks (http: {args.batch_concurrency} "
        f"concurrent ingest_many calls of {args.batch_size} records); "
        f"{args.queries} searches (rare word, two common words, word+scope, filters only; "
        "limit 20); "
        f"{args.contexts} build_context calls (4000-token budget, half tenant-wide)."
    )


if __name__ == "__main__":
    asyncio.run(main())
