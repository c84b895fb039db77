"""Span attributes of a chunk run (activity side; a no-op without OpenTelemetry).

The ``triggerflow.*`` attribute names are a contract with dashboards and tests; the plugin's
tracing interceptors (:mod:`..plugin.tracing`) put the same names on workflow spans.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..spec.chunk_io import ChunkInput

if TYPE_CHECKING:
    from opentelemetry.trace import Span

ATTR_FLOW = "triggerflow.flow"
ATTR_EXECUTION_ID = "triggerflow.execution_id"
ATTR_CHUNK = "triggerflow.chunk"
ATTR_BLUEPRINT_HASH = "triggerflow.blueprint_hash"
ATTR_INTERRUPT_ID = "triggerflow.interrupt_id"
ATTR_CHUNK_RUN_ID = "triggerflow.chunk_run_id"
ATTR_TENANT = "triggerflow.tenant"
ATTR_RESUME = "triggerflow.resume"
ATTR_RESUMED_INTERRUPT_ID = "triggerflow.resumed_interrupt_id"
ATTR_INTERRUPT_TYPE = "triggerflow.interrupt_type"

_OTEL_TRACE: Any = None


def current_span() -> Span | None:
    """The current recording span, or None (cheap when OpenTelemetry is absent or idle)."""
    global _OTEL_TRACE
    if _OTEL_TRACE is None:
        try:
            from opentelemetry import trace
        except ImportError:
            _OTEL_TRACE = False
            return None
        _OTEL_TRACE = trace
    if _OTEL_TRACE is False:
        return None
    span = _OTEL_TRACE.get_current_span()
    return span if span.is_recording() else None


def annotate_chunk(chunk_input: ChunkInput) -> Span | None:
    """Put the chunk's ``triggerflow.*`` attributes on the current (activity) span."""
    span = current_span()
    if span is None:
        return None
    attributes: dict[str, Any] = {
        ATTR_FLOW: chunk_input.flow,
        ATTR_EXECUTION_ID: chunk_input.execution_id,
        ATTR_CHUNK: chunk_input.chunk,
        ATTR_CHUNK_RUN_ID: chunk_input.run_id,
        ATTR_RESUME: chunk_input.resume is not None,
    }
    if chunk_input.blueprint_hash:
        attributes[ATTR_BLUEPRINT_HASH] = chunk_input.blueprint_hash
    if chunk_input.tenant:
        attributes[ATTR_TENANT] = chunk_input.tenant
    resumed = (chunk_input.resume or {}).get("interrupt_id")
    if isinstance(resumed, str) and resumed:
        attributes[ATTR_RESUMED_INTERRUPT_ID] = resumed
        attributes[ATTR_INTERRUPT_ID] = resumed
    span.set_attributes(attributes)
    return span


def annotate_pause(span: Span | None, pause: Mapping[str, Any] | None) -> None:
    """Record the interrupt a chunk raised (its id wins over a resumed one)."""
    if span is None or not pause:
        return
    interrupt_id = pause.get("interrupt_id")
    if isinstance(interrupt_id, str) and interrupt_id:
        span.set_attribute(ATTR_INTERRUPT_ID, interrupt_id)
    if isinstance(pause.get("type"), str):
        span.set_attribute(ATTR_INTERRUPT_TYPE, pause["type"])
