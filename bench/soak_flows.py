"""Flows of the long-run benches (``long_loop.py``, ``soak.py``); workers import them by path.

``bench.soak_flows:SOAK_FLOWS`` is not a flow, so worker processes are started with each flow
named (``triggerflow-temporal worker bench.soak_flows:soak bench.soak_flows:soak_act ...``).

Every chunk keeps what it did in the execution's **state** (counters, a running sum of the
loop variable). Activities are at-least-once, and a retried chunk may run its handler twice,
but the workflow applies one completion per chunk run: a step lost or applied twice by the
runtime (replay, continue-as-new, a killed worker, a duplicated resume) shows as a wrong
count or sum, a re-run handler does not.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from triggerflow_temporal import TriggerFlow

# Activity chunks of the soak get a short start-to-close timeout: a SIGKILLed worker's
# activity is retried after this (the plugin's default, 5 min, would stall the soak).
SOAK_ACTIVITY_TIMEOUT = timedelta(seconds=10)


# ----------------------------------------------------------------------- emit loop
# Wall-clock stamps of loop ticks, by execution id: {n: seconds}. Chunks run in the worker
# process (the bench's own), so long_loop.py reads them here. An inline tick runs in the
# workflow: its stamp is taken the first time it runs (a replay re-runs it later: the
# stamp kept is the first). It changes no command, so replay is unaffected.
# Each stamp: (wall clock, this process's CPU time), both in seconds.
PROGRESS: dict[str, dict[int, tuple[float, float]]] = {}


async def tick(data: Any) -> int:
    """One turn of the loop (tests/test_run_long.py's shape) plus a tick counter in state.

    Input ``{"n", "target"}`` and optionally ``"mark"``: every ``mark``-th tick records when
    it ran (first run only) in :data:`PROGRESS`.
    """
    n = data.input["n"]
    mark = data.input.get("mark")
    if mark and n % mark == 0:
        stamp = (time.perf_counter(), time.process_time())
        PROGRESS.setdefault(data.execution_id, {}).setdefault(n, stamp)
    await data.async_set_state("n", n)
    await data.async_set_state("ticks", (data.get_state("ticks") or 0) + 1)
    if n < data.input["target"]:
        await data.async_emit("again", {**data.input, "n": n + 1})
    return n


def _loop(name: str, execute_in: str) -> TriggerFlow:
    flow = TriggerFlow(name=name)
    chunk = flow.chunk(tick, name="tick", execute_in=execute_in)
    flow.to(chunk)
    flow.when("again").to(chunk)
    return flow


loop_activity = _loop("bench-loop-activity", "activity")
loop_local = _loop("bench-loop-local", "local_activity")
loop_inline = _loop("bench-loop-inline", "workflow")
LOOPS = {"activity": loop_activity, "local_activity": loop_local, "workflow": loop_inline}


# ------------------------------------------------------------------ 1,000-chunk chain
async def step(data: Any) -> int:
    return data.input + 1


async def total(data: Any) -> None:
    await data.async_set_state("total", data.input)


CHAIN_LENGTH = 1000
chain = TriggerFlow(name="bench-chain-1000")
_process = chain.to(chain.chunk(step, name="s0", execute_in="local_activity"))
for _index in range(1, CHAIN_LENGTH):
    _process = _process.to(chain.chunk(step, name=f"s{_index}", execute_in="local_activity"))
_process.to(total)


# --------------------------------------------------------- pause / resume, 100 KB values
async def ask(data: Any) -> Any:
    """Pause until the client answers; the interrupt id names the cycle."""
    cycle = data.input
    return await data.async_pause_for(
        type="approval", payload={"cycle": cycle}, interrupt_id=f"cycle-{cycle}"
    )


async def decide(data: Any) -> None:
    """Count the cycle; the large answer is checked and dropped (only its size is kept)."""
    answer = data.input
    cycle = (data.get_state("cycle") or 0) + 1
    await data.async_set_state("cycle", cycle)
    await data.async_set_state("last_size", len(answer["blob"]))
    if answer.get("cycle") != cycle:
        await data.async_set_state("mismatch", [cycle, answer.get("cycle")])
    await data.async_emit("ask_again", cycle)


approvals = TriggerFlow(name="bench-approvals")
approvals.to(ask).to(decide)
approvals.when("ask_again").to(ask)


# ------------------------------------------------------------------------- the soak
def _soak(name: str, tick_in: str) -> TriggerFlow:
    """Cycles of ``len`` loop ticks, then an approval that pauses; ``cycles`` times.

    Input (and every tick's value): ``{"cycle", "n", "len", "cycles", "size"}``.
    State: ``ticks`` (every tick), ``tick_sum`` (sum of ``n``), ``cycles`` (resumes
    applied), ``bad`` (answers that did not match the cycle or size), ``done``.
    """
    # Event names differ from chunk names: ``when("tick")`` would listen to the chunk
    # ``tick`` finishing (its return value), not to an emitted event "tick".
    flow = TriggerFlow(name=name)
    options: dict[str, Any] = {}
    if tick_in == "activity":
        options["start_to_close_timeout"] = SOAK_ACTIVITY_TIMEOUT
    tick_chunk = flow.chunk(soak_tick, name="tick", execute_in=tick_in, **options)
    ask_chunk = flow.chunk(soak_ask, name="ask", start_to_close_timeout=SOAK_ACTIVITY_TIMEOUT)
    decide_chunk = flow.chunk(
        soak_decide, name="decide", start_to_close_timeout=SOAK_ACTIVITY_TIMEOUT
    )
    flow.to(tick_chunk)
    flow.when("next_tick").to(tick_chunk)
    flow.when("approval_due").to(ask_chunk).to(decide_chunk)
    return flow


async def soak_tick(data: Any) -> int:
    v = data.input
    await data.async_set_state("ticks", (data.get_state("ticks") or 0) + 1)
    await data.async_set_state("tick_sum", (data.get_state("tick_sum") or 0) + v["n"])
    if v["n"] < v["len"]:
        await data.async_emit("next_tick", {**v, "n": v["n"] + 1})
    else:
        await data.async_emit("approval_due", v)
    return v["n"]


async def soak_ask(data: Any) -> Any:
    v = data.input
    await data.async_set_state("asking", v)
    return await data.async_pause_for(
        type="approval", payload={"cycle": v["cycle"]}, interrupt_id=f"cycle-{v['cycle']}"
    )


async def soak_decide(data: Any) -> None:
    answer = data.input
    v = data.get_state("asking")
    cycles = (data.get_state("cycles") or 0) + 1
    await data.async_set_state("cycles", cycles)
    if answer.get("cycle") != v["cycle"] or len(answer.get("blob", "")) != v["size"]:
        bad = data.get_state("bad") or []
        await data.async_set_state("bad", [*bad, [v["cycle"], answer.get("cycle")]][-20:])
    if v["cycle"] < v["cycles"]:
        await data.async_emit("next_tick", {**v, "cycle": v["cycle"] + 1, "n": 1})
    else:
        await data.async_set_state("done", True)


soak = _soak("bench-soak", "local_activity")
soak_act = _soak("bench-soak-act", "activity")
soak_inline = _soak("bench-soak-inline", "workflow")
SOAKS = {"local_activity": soak, "activity": soak_act, "workflow": soak_inline}
SOAK_PATHS = {
    "local_activity": "bench.soak_flows:soak",
    "activity": "bench.soak_flows:soak_act",
    "workflow": "bench.soak_flows:soak_inline",
}

LONG_FLOWS = [loop_activity, loop_local, loop_inline, chain, approvals]
