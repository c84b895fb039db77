"""Workspace benchmark: ingest, search and build_context on SQLite, PostgreSQL and over HTTP.

Run on demand (not part of the tests)::

    python bench/workspace_bench.py --records 100000
    python bench/workspace_bench.py --records 10000 --backends sqlite,http
    python bench/workspace_bench.py --small            # 5,000 records, every backend

PostgreSQL: a throwaway database is created on --pg-dsn's server and dropped afterwards.
HTTP: ``python -m workspace serve`` in a separate process, backed by SQLite.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

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


@asynccontextmanager
async def sqlite_backend(tmp: Path) -> AsyncIterator[BaseWorkspace]:
    async with SQLWorkspace.from_url(tmp / "bench.db") as ws:
        yield ws


@asynccontextmanager
async def postgres_backend(dsn: str) -> AsyncIterator[BaseWorkspace]:
    import asyncpg

    name = f"ws_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    server = dsn.rsplit("/", 1)[0].split("://", 1)[1]
    try:
        async with SQLWorkspace.from_url(
            f"postgresql+asyncpg://{server}/{name}", pool_size=10
        ) as ws:
            yield ws
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def http_backend(tmp: Path) -> AsyncIterator[BaseWorkspace]:
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
            str(tmp / "http.db"),
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
            yield ws
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def bench_one(
    name: str, ws: BaseWorkspace, args: argparse.Namespace
) -> dict[str, float | str]:
    vocab, recs = records(args.records)

    async def ingest(rec: dict[str, object]) -> None:
        await ws.ingest(**rec)  # type: ignore[arg-type]

    ingest_s = await ingest_all(recs, ingest, concurrency=args.concurrency, label=name)

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

    header = (
        "| backend | records | ingest rec/s | search p50 ms | search p95 ms | context p50 ms "
        "| context p95 ms |"
    )
    print(header)
    print(
        "|---------|---------|--------------|---------------|---------------|----------------|"
        "----------------|"
    )
    for r in rows:
        print(
            f"| {r['backend']} | {r['records']} | {float(r['ingest_rps']):.0f}"
            f"{vs(r, 'ingest_rps', True)} | {float(r['search_p50']):.1f}"
            f"{vs(r, 'search_p50', False)}"
            f" | {float(r['search_p95']):.1f}{vs(r, 'search_p95', False)}"
            f" | {float(r['context_p50']):.1f}{vs(r, 'context_p50', False)}"
            f" | {float(r['context_p95']):.1f}{vs(r, 'context_p95', False)} |"
        )
    if native is not None:
        print(
            "\n(x) = ratio to the native RecordStore row. native search = substring scan of every "
            f"row returning all matches (median {native.get('median_hits')} hits, "
            f"{native.get('searches_run')} searches run); native context = "
            f"RecordStore.retrieve(method='keyword') ({native.get('contexts_run')} run)."
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
    parser.add_argument("--backends", default="sqlite,postgres,http,native")
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "WORKSPACE_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--concurrency", type=int, default=8, help="parallel ingest tasks")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--contexts", type=int, default=20)
    args = parser.parse_args()
    if args.small:
        args.records, args.queries, args.contexts = 5000, 80, 10

    rows = []
    print(
        f"# bench/workspace_bench.py --records {args.records} ({time.strftime('%Y-%m-%d %H:%M')}"
        f", {os.cpu_count()} cores)\n"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        factories = {
            "sqlite": lambda: sqlite_backend(tmp),
            "postgres": lambda: postgres_backend(args.pg_dsn),
            "http": lambda: http_backend(tmp),
        }
        for name in args.backends.split(","):
            name = name.strip()
            if name == "native":
                native = run_native(args)
                if native is not None:
                    rows.append(native)
                continue
            print(f"benchmarking {name} with {args.records} records...", file=sys.stderr)
            started = time.perf_counter()
            async with factories[name]() as ws:
                rows.append(await bench_one(name, ws, args))
            print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print_table(rows)
    print(
        f"\nIngest with {args.concurrency} concurrent tasks; "
        f"{args.queries} searches (rare word, two common words, word+scope, filters only; "
        "limit 20); "
        f"{args.contexts} build_context calls (4000-token budget, half tenant-wide)."
    )


if __name__ == "__main__":
    asyncio.run(main())
