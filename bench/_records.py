"""Synthetic Workspace records and queries, shared by workspace_bench.py and the native
RecordStore baseline (this module imports nothing from the project, so the agently venv
can import it too)."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

SYLLABLES = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "pe", "da", "xo", "bri", "qua", "zen"]
COLLECTIONS = ["observations", "artifacts", "decisions"]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def make_record(i: int, vocab: list[str], rng: random.Random) -> dict[str, Any]:
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


def records(count: int) -> tuple[list[str], list[dict[str, Any]]]:
    """The vocabulary and ``count`` records (seeded: identical on every backend)."""
    rng = random.Random(42)
    vocab = vocabulary(5000, rng)
    return vocab, [make_record(i, vocab, rng) for i in range(count)]


def search_plan(vocab: list[str], count: int) -> list[dict[str, Any]]:
    """Seeded search requests: rare word, two common words, word + scope, filters only."""
    qrng = random.Random(7)
    common = vocab[:50]
    rare = vocab[500:5000]
    plan: list[dict[str, Any]] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            plan.append({"query": qrng.choice(rare)})
        elif kind == 1:
            plan.append({"query": f"{qrng.choice(common)} {qrng.choice(common)}"})
        elif kind == 2:
            plan.append(
                {"query": qrng.choice(common), "scope": {"task_id": f"task-{qrng.randrange(100)}"}}
            )
        else:
            plan.append({"filters": {"scope.task_id": f"task-{qrng.randrange(100)}", "meta.n": 3}})
    return plan


def context_plan(vocab: list[str], count: int) -> list[dict[str, Any]]:
    """Seeded build_context requests (half tenant-wide, half scoped to one task)."""
    qrng = random.Random(11)
    common = vocab[:50]
    rare = vocab[500:700]
    plan = []
    for i in range(count):
        goal = " ".join(qrng.choice(common + rare) for _ in range(3))
        scope = None if i % 2 == 0 else {"task_id": f"task-{qrng.randrange(100)}"}
        plan.append({"goal": goal, "scope": scope})
    return plan


def pct(values: list[float], q: float) -> float:
    """Percentile in ms of ``values`` given in seconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000


async def ingest_all(
    recs: list[dict[str, Any]],
    ingest: Callable[[dict[str, Any]], Awaitable[Any]],
    *,
    concurrency: int,
    label: str,
) -> float:
    """Ingest ``recs`` with ``concurrency`` workers; return the seconds it took."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for rec in recs:
        queue.put_nowait(rec)
    done = 0

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                rec = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await ingest(rec)
            done += 1
            if done % 10_000 == 0:
                print(f"  {label}: {done} ingested", file=sys.stderr, flush=True)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start
