"""TriggerFlow flows used by the benchmarks (handlers must live in an importable module)."""

from __future__ import annotations

from typing import Any

from triggerflow_temporal import TriggerFlow

CHAIN_LENGTH = 10
THROUGHPUT_CHAIN_LENGTH = 5
EXECUTE_IN = ("activity", "local_activity", "workflow")


async def step(data: Any) -> dict[str, Any]:
    """One chain step: the same work as ``bench._baseline`` activities (copy, i += 1)."""
    out = dict(data.input)
    out["i"] = out["i"] + 1
    return out


async def step_with_state(data: Any) -> dict[str, Any]:
    """A step that also writes 1 KB to execution state (state grows along the chain)."""
    out = dict(data.input)
    out["i"] = out["i"] + 1
    await data.async_set_state(f"k{out['i']}", "x" * 1024)
    return out


def chain_flow(
    n: int,
    execute_in: str = "activity",
    *,
    handler: Any = step,
    suffix: str = "",
    reads_state: list[str] | None = None,
) -> TriggerFlow:
    """``n`` chunks in sequence (``c0`` ... ``c<n-1>``), all with the given ``execute_in``.

    ``reads_state``: every chunk's declaration of the state it reads (None: the whole).
    """
    tag = {"activity": "act", "local_activity": "local", "workflow": "inline"}[execute_in]
    flow = TriggerFlow(name=f"bench_chain{n}_{tag}{suffix}")
    process: Any = flow
    for i in range(n):
        chunk = flow.chunk(
            handler,
            name=f"c{i}",
            execute_in=execute_in,  # type: ignore[arg-type]
            reads_state=reads_state,
        )
        process = process.to(chunk)
    return flow


CHAIN_FLOWS = {mode: chain_flow(CHAIN_LENGTH, mode) for mode in EXECUTE_IN}
THROUGHPUT_FLOWS = {mode: chain_flow(THROUGHPUT_CHAIN_LENGTH, mode) for mode in EXECUTE_IN}
STATEFUL_CHAIN_FLOW = chain_flow(CHAIN_LENGTH, handler=step_with_state, suffix="_state1k")
# The same chunks declaring that they read no state (reads_state=[]): none is sent.
STATEFUL_NO_READS_FLOW = chain_flow(
    CHAIN_LENGTH, handler=step_with_state, suffix="_state1k_noreads", reads_state=[]
)


# ------------------------------------------------------------------ human in the loop
APPROVAL_ID = "approval"


async def ask(data: Any) -> Any:
    """Pause for an approval (the chain resumes with the decision)."""
    await data.async_set_state("asked", data.input)
    return await data.async_pause_for(
        type="approval", payload={"ticket": data.input}, interrupt_id=APPROVAL_ID
    )


async def commit(data: Any) -> Any:
    """Record the decision."""
    await data.async_set_state("decision", data.input)
    return data.input


approval_flow = TriggerFlow(name="bench_approval")
approval_flow.to(ask).to(commit)


# ------------------------------------------------------------------------ large work
ITEM_BYTES = 10 * 1024
_workspace: Any = None


def set_bench_workspace(workspace: Any) -> None:
    """Share one Workspace instance between the plugin and the hand-written baseline."""
    global _workspace
    _workspace = workspace


def bench_workspace() -> Any:
    """The Workspace set by :func:`set_bench_workspace`."""
    if _workspace is None:
        raise RuntimeError("bench workspace not set")
    return _workspace


def item_text(item: int) -> str:
    """A 10 KB text output for ``item``."""
    line = f"item {item} output line; "
    return (line * (ITEM_BYTES // len(line) + 1))[:ITEM_BYTES]


async def store_item(data: Any) -> str:
    """Write a 10 KB output to the Workspace and return only the ref id."""
    ref = await data.workspace.ingest(item_text(data.input), "artifacts", "item")
    return ref.id


async def store_item_inline(data: Any) -> str:
    """Return the 10 KB output itself (no Workspace): what refs avoid."""
    return item_text(data.input)


async def summarize(data: Any) -> dict[str, Any]:
    """Keep the count and the first ref in state (never the whole list)."""
    refs = data.input
    summary = {"count": len(refs), "first": refs[0][:40] if refs else None}
    await data.async_set_state("summary", summary)
    return summary


foreach_flow = TriggerFlow(name="bench_foreach")
foreach_flow.for_each().to(store_item).end_for_each().to(summarize)

FOREACH_CONCURRENCY = 100
foreach_bounded_flow = TriggerFlow(name="bench_foreach_bounded")
(
    foreach_bounded_flow.for_each(concurrency=FOREACH_CONCURRENCY)
    .to(store_item)
    .end_for_each()
    .to(summarize)
)

foreach_inline_flow = TriggerFlow(name="bench_foreach_inline")
foreach_inline_flow.for_each().to(store_item_inline).end_for_each().to(summarize)

ALL_FLOWS = [
    *CHAIN_FLOWS.values(),
    *THROUGHPUT_FLOWS.values(),
    STATEFUL_CHAIN_FLOW,
    STATEFUL_NO_READS_FLOW,
    approval_flow,
    foreach_flow,
    foreach_bounded_flow,
    foreach_inline_flow,
]
