"""The no-op local activity inline chunks yield with (runtime version 4).

Scheduling it ends the workflow's activation, so a loop of inline chunks gives the SDK a
chance to finish the activation within its 2 s deadlock detector; it completes in the
worker in milliseconds and costs one marker event (a 1 ms timer, version 3's yield, fires
after ~1 s on a server).
"""

from __future__ import annotations

from temporalio import activity

from ..interpreter.workflow_base import YIELD_ACTIVITY


@activity.defn(name=YIELD_ACTIVITY)
async def yield_activation() -> None:
    """Nothing: the workflow only needs the round trip."""
