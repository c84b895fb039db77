"""Flows the reliability suite serves from worker subprocesses.

The worker runs ``python -m triggerflow_temporal.cli worker tests.reliability.flows:<flow>``
from the repository root, so everything here must be importable and module-level.

``chain``: ``step_0`` ... ``step_{N-1}`` in sequence; every step appends its index to
``done``, writes ``by_chunk.<i>`` and emits ``Side`` (a ``when`` branch appends to
``side``). The start value says where the *first attempt* of a chunk blocks (writing a
marker file first), so a test can SIGKILL the worker at a known point:

    {"dir": "/tmp/x", "blocks": [[chunk_index, where], ...]}

``where`` is ``"start"`` (before any state write), ``"after_writes"`` (state written,
event emitted, output not yet returned) or ``"side"`` (inside the ``when`` branch).
``"delay": seconds`` makes every step sleep after its writes (long enough to be caught
mid-flight by a kill at an arbitrary moment).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.common import RetryPolicy

from triggerflow_temporal import TriggerFlow

CHAIN_LENGTH = 6
BLOCK_LIMIT_SECONDS = 120.0  # a blocked attempt never outlives the test

# Fast failure detection: a blocked attempt heartbeats, so a dead worker is noticed after
# the heartbeat timeout, and the retry starts almost at once.
FAST_RETRY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "heartbeat_timeout": timedelta(seconds=2),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0
    ),
}


def marker_path(directory: str, execution_id: str, label: str) -> Path:
    """The file a chunk writes right before it blocks (the test waits for it)."""
    return Path(directory) / f"{execution_id}.{label}.blocked"


def _blocks_here(cfg: Any, label: str, where: str) -> bool:
    if not isinstance(cfg, dict) or activity.info().attempt != 1:
        return False
    return [label, where] in [list(b) for b in cfg.get("blocks", [])]


async def _block(cfg: dict[str, Any], execution_id: str, label: str) -> None:
    marker_path(cfg["dir"], execution_id, label).write_text(str(time.time()))
    deadline = time.monotonic() + BLOCK_LIMIT_SECONDS
    while time.monotonic() < deadline:  # the worker is SIGKILLed in here
        activity.heartbeat()
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{label} was never killed")


async def step(data: Any) -> Any:
    """One link of the chain (registered as step_0 ... step_N-1)."""
    index = int(data.chunk_name.rsplit("_", 1)[1])
    cfg = data.input
    label = str(index)
    if _blocks_here(cfg, label, "start"):
        await _block(cfg, data.execution_id, label)
    await data.async_append_state("done", index)
    await data.async_set_state(f"by_chunk.{index}", {"index": index, "key": data.idempotency_key})
    await data.async_emit("Side", index)
    if _blocks_here(cfg, label, "after_writes"):
        await _block(cfg, data.execution_id, label)
    if isinstance(cfg, dict) and cfg.get("delay"):
        await asyncio.sleep(cfg["delay"])  # writes recorded, output not yet returned
    return cfg


async def on_side(data: Any) -> None:
    """The ``when("Side")`` branch: appends the emitted index to ``side``."""
    cfg = data.get_state("cfg")
    label = f"side{data.input}"
    if _blocks_here(cfg, label, "side"):
        await _block(cfg, data.execution_id, label)
    await data.async_append_state("side", data.input)


async def remember_cfg(data: Any) -> Any:
    """First chunk: keep the config in state so the ``when`` branch can read it."""
    await data.async_set_state("cfg", data.input)
    return data.input


def build_chain() -> TriggerFlow:
    """The chain flow (a function, so tests can build a second copy for their client)."""
    flow = TriggerFlow(name="rel-chain")
    flow.chunk(remember_cfg, **FAST_RETRY)
    for index in range(CHAIN_LENGTH):
        flow.chunk(step, name=f"step_{index}", **FAST_RETRY)
    flow.chunk(on_side, **FAST_RETRY)
    builder = flow.to("remember_cfg")
    for index in range(CHAIN_LENGTH):
        builder = builder.to(f"step_{index}")
    flow.when("Side").to("on_side")
    return flow


chain = build_chain()


async def prepare(data: Any) -> Any:
    """``gated`` step 1: record the input."""
    await data.async_append_state("log", "prepare")
    return data.input


async def wait_for_release(data: Any) -> Any:
    """``gated`` step 2: announce itself with a marker, then wait for ``release`` to appear."""
    cfg = data.input
    await data.async_append_state("log", "gate")
    marker_path(cfg["dir"], data.execution_id, f"gate{activity.info().attempt}").write_text("")
    release = Path(cfg["dir"]) / "release"
    deadline = time.monotonic() + BLOCK_LIMIT_SECONDS
    while not release.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("never released")
        activity.heartbeat()
        await asyncio.sleep(0.1)
    return cfg


async def finish(data: Any) -> None:
    """``gated`` step 3."""
    await data.async_append_state("log", "finish")


gated = TriggerFlow(name="rel-gated")
gated.chunk(wait_for_release, **FAST_RETRY)
gated.to(prepare).to("wait_for_release").to(finish)


async def ask_with_timeout(data: Any) -> Any:
    """``timed`` flow: a pause that resolves itself on a durable timer."""
    return await data.async_pause_for(
        type="approval",
        interrupt_id="timed",
        payload=data.input,
        timeout=float(data.input["timeout"]),
        timeout_value={"approved": False, "by": "timeout"},
    )


async def record_decision(data: Any) -> None:
    """Keeps every decision it receives (exactly one is expected)."""
    await data.async_append_state("decisions", data.input)


timed = TriggerFlow(name="rel-timed")
timed.to(ask_with_timeout).to(record_decision)


# Executions whose approval branch has asked (this process): the failing branch of
# ``half_failed_flow`` waits for it, so the pause is recorded before the execution fails
# whatever the machine's load (the two branches run in parallel).
ASKED: set[str] = set()


async def ask_approval(data: Any) -> Any:
    """``approval`` flow: pause with a response schema."""
    ASKED.add(data.execution_id)
    return await data.async_pause_for(
        type="approval",
        interrupt_id="approve",
        payload=data.input,
        response_payload_schema={
            "type": "object",
            "properties": {"approved": {"type": "boolean"}},
            "required": ["approved"],
        },
    )


approval = TriggerFlow(name="rel-approval")
approval.to(ask_approval).to(record_decision)


async def collect_event(data: Any) -> Any:
    """``listener`` flow: every ``Ping`` value lands in ``got`` exactly once."""
    await data.async_append_state("got", data.input)
    return data.input


listener = TriggerFlow(name="rel-listener")
listener.when("Ping").to(collect_event)


async def fails_soon(data: Any) -> None:
    """Always fails (the other branch of ``half_failed_flow``), after the approval asked."""
    for _ in range(100):
        if data.execution_id in ASKED:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # the approval's completion reaches the workflow first
    raise ValueError("broken branch")


def half_failed_flow() -> TriggerFlow:
    """One branch pauses, the other fails."""
    flow = TriggerFlow(name="rel-half-failed")
    flow.to(ask_approval).to(record_decision)
    flow.to(fails_soon)
    return flow


async def ask_versioned(data: Any) -> Any:
    """``rel-versioned``: pause for a decision."""
    return await data.async_pause_for(type="approval", interrupt_id="v-approve", payload=data.input)


async def audit_decision(data: Any) -> Any:
    """Only in version 2: audit the decision before committing it."""
    await data.async_set_state("audited", data.input)
    return data.input


async def commit_decision(data: Any) -> None:
    """Record the decision."""
    await data.async_append_state("decisions", data.input)


def versioned_flows() -> tuple[TriggerFlow, TriggerFlow]:
    """Two graphs of the flow ``rel-versioned``: v2 adds ``audit_decision``."""
    v1 = TriggerFlow(name="rel-versioned")
    v1.to(ask_versioned).to(commit_decision)
    v2 = TriggerFlow(name="rel-versioned")
    v2.to(ask_versioned).to(audit_decision).to(commit_decision)
    return v1, v2
