"""Native baseline for bench/workspace_bench.py: Agently 4.1.4.10's own RecordStore.

Run with the agently venv's python (agently is not a project dependency). Local backend:
SQLite ``<root>/.agently/records/records.db``. Same seeded records, same concurrency, the
same search requests and context goals as workspace_bench.py. Semantics differ and are
reported as they are: RecordStore.search is a case-insensitive substring scan over every
row (in Python), returns every match, and ANDs nothing (a two-word query is one substring);
``retrieve(goal, scope=, budget={"tokens": 4000}, method="keyword")`` stands for
build_context. Prints one JSON line.

    /work/agently-venv/bin/python bench/native_recordstore.py --records 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import context_plan, ingest_all, pct, records, search_plan  # noqa: E402
from agently.core.storage import RecordStore  # noqa: E402  # pyright: ignore[reportMissingImports]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--contexts", type=int, default=20)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="stop the query phases early past this many seconds each",
    )
    args = parser.parse_args()
    vocab, recs = records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        store = RecordStore(tmp, mode="read_write")

        async def ingest(rec: dict) -> None:
            await store.ingest(
                content=rec["content"],
                collection=rec["collection"],
                kind=rec["kind"],
                summary=rec["summary"],
                scope=rec["scope"],
                meta=rec["meta"],
            )

        cpu_before = time.process_time()  # this process, every thread (SQLite runs here)
        ingest_s = await ingest_all(recs, ingest, concurrency=args.concurrency, label="native")
        ingest_cpu = time.process_time() - cpu_before

        search_lat: list[float] = []
        hits: list[int] = []
        phase = time.perf_counter()
        for request in search_plan(vocab, args.queries):
            filters = dict(request.get("filters") or {})
            for key, value in (request.get("scope") or {}).items():
                filters[f"scope.{key}"] = value
            start = time.perf_counter()
            found = await store.search(request.get("query"), filters or None)
            search_lat.append(time.perf_counter() - start)
            hits.append(len(found))
            if time.perf_counter() - phase > args.max_seconds:
                break
        context_lat: list[float] = []
        phase = time.perf_counter()
        for request in context_plan(vocab, args.contexts):
            start = time.perf_counter()
            await store.retrieve(
                request["goal"], scope=request["scope"], budget={"tokens": 4000}, method="keyword"
            )
            context_lat.append(time.perf_counter() - start)
            if time.perf_counter() - phase > args.max_seconds:
                break
        print(
            json.dumps(
                {
                    "backend": "agently RecordStore (native)",
                    "records": args.records,
                    "ingest_rps": args.records / ingest_s,
                    "ingest_cpu_ms": ingest_cpu * 1000 / args.records,
                    "search_p50": pct(search_lat, 0.5),
                    "search_p95": pct(search_lat, 0.95),
                    "context_p50": pct(context_lat, 0.5),
                    "context_p95": pct(context_lat, 0.95),
                    "searches_run": len(search_lat),
                    "contexts_run": len(context_lat),
                    "median_hits": sorted(hits)[len(hits) // 2] if hits else 0,
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
