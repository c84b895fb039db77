"""Workspace benchmark: ingest, search and build_context on SQLite, PostgreSQL and over HTTP.

Run on demand (not part of the tests)::

    python bench/workspace_bench.py --records 100000
    python bench/workspace_bench.py --records 10000 --backends sqlite,http

PostgreSQL: a throwaway database is created on --pg-dsn's server and dropped afterwards.
HTTP: a uvicorn server on 127.0.0.1 (random port) in a background thread, backed by SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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

from workspace import SQLWorkspace, WorkspaceClient  # noqa: E402 - after sys.path
from workspace.base import BaseWorkspace  # noqa: E402

SYLLABLES = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "pe", "da", "xo", "bri", "qua", "zen"]
COLLECTIONS = ["observations", "artifacts", "decisions"]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def make_record(i: int, vocab: list[str], rng: random.Random) -> dict[str, object]:
    # Zipf-like word choice so some words are common and others rare, as in real text.
    text = " ".join(vocab[min(int(rng.paretovariate(1.2)) - 1, len(vocab) - 1)] for _ in range(60))
    return {
        "content": f"record {i}: {text}",
        "collection": COLLECTIONS[i % 3],
        "kind": "note" if i % 2 else "report",
        "summary": f"summary {i} {vocab[i % len(vocab)]}" if i % 5 == 0 else None,
        "scope": {"task_id": f"task-{i % 100}"},
        "meta": {"pinned": True} if i % 20_000 == 0 else {"n": i % 7},
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000


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
        env={**os.environ, "PYTHONPATH": str(ROOT), "WORKSPACE_TOKENS": "bench-token:bench"},
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
        async with WorkspaceClient(url, "bench-token", timeout=120) as ws:
            yield ws
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def bench_one(
    name: str, ws: BaseWorkspace, args: argparse.Namespace
) -> dict[str, float | str]:
    rng = random.Random(42)
    vocab = vocabulary(5000, rng)
    records = [make_record(i, vocab, rng) for i in range(args.records)]
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for rec in records:
        queue.put_nowait(rec)
    done = 0

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                rec = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await ws.ingest(**rec)  # type: ignore[arg-type]
            done += 1
            if done % 10_000 == 0:
                print(f"  {name}: {done} ingested", file=sys.stderr, flush=True)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    ingest_s = time.perf_counter() - start

    qrng = random.Random(7)
    common = vocab[:50]
    rare = vocab[500:5000]
    searches: list[Callable[[], Awaitable[object]]] = []
    for i in range(args.queries):
        kind = i % 4
        if kind == 0:
            q = qrng.choice(rare)
            searches.append(lambda q=q: ws.search(q, limit=20))
        elif kind == 1:
            q = f"{qrng.choice(common)} {qrng.choice(common)}"
            searches.append(lambda q=q: ws.search(q, limit=20))
        elif kind == 2:
            q, task = qrng.choice(common), f"task-{qrng.randrange(100)}"
            searches.append(lambda q=q, t=task: ws.search(q, scope={"task_id": t}, limit=20))
        else:
            task = f"task-{qrng.randrange(100)}"
            searches.append(
                lambda t=task: ws.search(filters={"scope.task_id": t, "meta.n": 3}, limit=20)
            )
    search_lat = await timed(searches)

    contexts: list[Callable[[], Awaitable[object]]] = []
    for i in range(args.contexts):
        goal = " ".join(qrng.choice(common + rare[:200]) for _ in range(3))
        scope = None if i % 2 == 0 else {"task_id": f"task-{qrng.randrange(100)}"}
        contexts.append(
            lambda g=goal, s=scope: ws.build_context(g, scope=s, budget={"tokens": 4000})
        )
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
    header = (
        f"| {'backend':<9} | {'records':>8} | {'ingest rec/s':>12} | {'search p50 ms':>13} "
        f"| {'search p95 ms':>13} | {'context p50 ms':>14} | {'context p95 ms':>14} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        print(
            f"| {r['backend']:<9} | {r['records']:>8} | {r['ingest_rps']:>12.0f} "
            f"| {r['search_p50']:>13.1f} | {r['search_p95']:>13.1f} "
            f"| {r['context_p50']:>14.1f} | {r['context_p95']:>14.1f} |"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres,http")
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

    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        factories = {
            "sqlite": lambda: sqlite_backend(tmp),
            "postgres": lambda: postgres_backend(args.pg_dsn),
            "http": lambda: http_backend(tmp),
        }
        for name in args.backends.split(","):
            print(f"benchmarking {name} with {args.records} records...", file=sys.stderr)
            async with factories[name.strip()]() as ws:
                rows.append(await bench_one(name.strip(), ws, args))
    print_table(rows)
    print(
        f"\nIngest with {args.concurrency} concurrent tasks; "
        f"{args.queries} searches (rare word, two common words, word+scope, filters only); "
        f"{args.contexts} build_context calls (4000-token budget, half tenant-wide)."
    )


if __name__ == "__main__":
    asyncio.run(main())
