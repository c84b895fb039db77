"""What crosses the workflow/activity boundary for one chunk run (wire types, pure).

``ChunkInput`` and ``ChunkOutput`` are serialized into every chunk's activity task and
result: renaming a field changes recorded histories. The resume context is packed here
once (the workflow side) and unpacked by the chunk's ``data`` object (the activity side).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChunkInput:
    """What the workflow sends to a chunk activity (one dataclass in)."""

    flow: str
    chunk: str
    execution_id: str
    run_id: str
    value: Any = None
    trigger_event: str = ""
    trigger_type: str = "event"
    signal: dict[str, Any] = field(default_factory=lambda: {})
    state: dict[str, Any] = field(default_factory=lambda: {})
    resources: dict[str, Any] = field(default_factory=lambda: {})
    resume: dict[str, Any] | None = None
    interventions: list[dict[str, Any]] = field(default_factory=lambda: [])
    blueprint_hash: str = ""
    tenant: str | None = None


@dataclass
class ChunkOutput:
    """What a chunk activity returns (one dataclass out): value plus recorded operations."""

    value: Any = None
    ops: list[list[Any]] = field(default_factory=lambda: [])
    pause: dict[str, Any] | None = None


PAUSE_MARKER = "__triggerflow_pause__"


def pack_resume(context: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The resume context as a chunk input carries it: once, without repeated parts.

    The workflow keeps the context in the resumed signal's ``meta["resume"]``; the chunk
    input sends it only in ``ChunkInput.resume`` and leaves the interrupt's
    ``source_signal`` out (it is the context's ``origin_signal``). :func:`unpack_resume`
    restores the full context on the worker (bench/RESULTS.md finding F5: a resumed
    chunk's input was 3.5 KB, mostly these copies).
    """
    if context is None:
        return None
    packed = dict(context)
    interrupt = packed.get("interrupt")
    if isinstance(interrupt, dict) and interrupt.get("source_signal") == packed.get(
        "origin_signal"
    ):
        interrupt = {k: v for k, v in interrupt.items() if k != "source_signal"}
        packed["interrupt"] = interrupt
        packed["interrupt_source_is_origin"] = True
    value = packed.get("value")
    if (
        isinstance(interrupt, dict)
        and "resume_value" in interrupt
        and interrupt.get("resume_value") == value
        and interrupt.get("response", value) == value
    ):
        # The answer is in the context once, not three times (issue 12: a 100 KB answer
        # made every carried resume signal 300 KB).
        packed["interrupt"] = {
            k: v for k, v in interrupt.items() if k not in ("resume_value", "response")
        }
        packed["interrupt_value_is_value"] = "response" in interrupt
    return packed


def unpack_resume(packed: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The full resume context from :func:`pack_resume`'s form."""
    if packed is None:
        return None
    flags = ("interrupt_source_is_origin", "interrupt_value_is_value")
    context = {k: v for k, v in packed.items() if k not in flags}
    if packed.get("interrupt_source_is_origin"):
        context["interrupt"] = {
            **packed["interrupt"],
            "source_signal": copy.deepcopy(packed.get("origin_signal")),
        }
    if "interrupt_value_is_value" in packed:
        value = packed.get("value")
        answer = {"resume_value": copy.deepcopy(value)}
        if packed["interrupt_value_is_value"]:
            answer["response"] = copy.deepcopy(value)
        context["interrupt"] = {**context["interrupt"], **answer}
    return context
