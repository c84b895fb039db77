"""What crosses the workflow/activity boundary for one chunk run (wire types, pure).

``ChunkInput`` and ``ChunkOutput`` are serialized into every chunk's activity task and
result: renaming a field changes recorded histories. The resume context is packed here
once (the workflow side) and unpacked by the chunk's ``data`` object (the activity side).
"""

from __future__ import annotations

import copy
import json
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
    # With a pause only: the names of the running worker's notification channels. The
    # workflow takes them from here (recorded with the activity result) instead of asking
    # with a local activity, one marker event and one cache-pinning local activity less
    # per paused execution. Workflows of earlier releases ignore the key.
    channels: list[str] | None = None


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


# ------------------------------------------------------ compact wire (runtime version 4)
# From runtime version 4 the workflow sends a chunk activity a compact dict instead of a
# full ChunkInput (bench/RESULTS.md, F6: ~600 B for a 10 B value) and the activity returns a
# compact ChunkOutput. What the worker can derive is left out: the flow and chunk names
# (the activity's own name), the execution id (``activity.info().workflow_id``), empty
# defaults, the blueprint hash (sent only for tracing), signal meta that repeats the parent
# signal id or the trigger event, and an interrupt's default external wait request. The
# worker rebuilds the same ChunkInput from either shape, so handlers see the same data.
# An input without "flow" is compact; with it, the full shape (scheduled by version 1-3
# executions or by workers before version 4; those keep running on new workers).

# Set in a compact input when the chunk's retry policy is its own: the activity then leaves
# non-retryable error types to that policy. Without it (the default policy, sent without its
# error types from version 4), the activity refuses its worker's default non-retryable
# types itself.
OWN_RETRY_POLICY = "own_retry_policy"

_PARENT_KEY = "_triggerflow_parent_signal_id"  # interpreter.signal_net.PARENT_KEY
_SCOPE_KEY = "_triggerflow_aggregation_scope"  # interpreter.signal_net.SCOPE_KEY
_ORIGIN_KEY = "origin_chunk"
_CHUNK_INPUT_FIELDS = tuple(ChunkInput.__dataclass_fields__)


def _continuation_origin(trigger_event: str, run: str | None) -> dict[str, Any] | None:
    """``meta["origin_chunk"]`` as the scheduler writes it for a chunk's continuation.

    A continuation's event is ``"Chunk[<name>]-<chunk id>"``; None when it is not one.
    """
    if not trigger_event.startswith("Chunk[") or "]-chunk-" not in trigger_event:
        return None
    name, _, tail = trigger_event[len("Chunk[") :].rpartition("]-")
    found: dict[str, Any] = {"chunk_id": tail, "chunk_name": name}
    if run is not None:
        found["run_id"] = run
    found["operator_kind"] = "chunk"
    return found


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text (compared in C: this runs for every chunk input).

    Dict keys must be in the same order (what handlers iterate over); ``1``, ``1.0`` and
    ``True`` are told apart.
    """
    try:
        return json.dumps(a, separators=(",", ":")) == json.dumps(b, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON data: never sent compact
        return False


def _pack_signal(signal: Mapping[str, Any], trigger_event: str) -> dict[str, Any]:
    """The compact signal: meta keys the worker can rebuild become short fields.

    ``parent`` / ``scope``: the parent signal id and the aggregation scope (left out when
    it is the parent); ``origin_run``: a continuation's ``origin_chunk`` (its chunk is named
    by the trigger event); ``source`` left out when it is ``"chunk"``. Checked by a round
    trip: a signal in another shape is sent as it is.
    """
    meta = dict(signal.get("meta") or {})
    out: dict[str, Any] = {"id": signal.get("id")}
    if signal.get("source") != "chunk":
        out["source"] = signal.get("source")
    if signal.get("layer_marks"):
        out["layer_marks"] = signal["layer_marks"]
    if list(meta)[:2] == [_PARENT_KEY, _SCOPE_KEY]:
        out["parent"] = meta.pop(_PARENT_KEY)
        scope = meta.pop(_SCOPE_KEY)
        if not _same(scope, out["parent"]):
            out["scope"] = scope
        origin = meta.get(_ORIGIN_KEY)
        if list(meta)[:1] == [_ORIGIN_KEY] and isinstance(origin, dict):
            run = origin.get("run_id")
            if _same(origin, _continuation_origin(trigger_event, run)):
                del meta[_ORIGIN_KEY]
                out["origin_run"] = run
    if meta:
        out["meta"] = meta
    full = {
        "id": signal.get("id"),
        "source": signal.get("source"),
        "meta": dict(signal.get("meta") or {}),
        "layer_marks": list(signal.get("layer_marks") or []),
    }
    if not _same(_unpack_signal(out, trigger_event), full):
        # Another shape than the interpreter's: sent as it is.
        return {k: v for k, v in full.items() if v or k in ("id", "source")}
    return out


def _unpack_signal(packed: Mapping[str, Any], trigger_event: str) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if "parent" in packed:
        meta[_PARENT_KEY] = packed["parent"]
        meta[_SCOPE_KEY] = packed.get("scope", packed["parent"])
        if "origin_run" in packed:
            meta[_ORIGIN_KEY] = _continuation_origin(trigger_event, packed["origin_run"])
    meta.update(packed.get("meta") or {})
    return {
        "id": packed.get("id"),
        "source": packed.get("source", "chunk"),
        "meta": meta,
        "layer_marks": list(packed.get("layer_marks") or []),
    }


def _default_wait_request(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``external_wait_request`` of an interrupt paused with no exchange options."""
    return {
        "request_id": record.get("id"),
        "interrupt_id": record.get("id"),
        "exchange_kind": record.get("exchange_kind"),
        "exchange_id": None,
        "callback_idempotency_key": None,
        "actor_id": None,
        "channel_id": None,
        "provider_id": None,
        "wait_mode": "disconnected",
        "hot_wait_timeout": None,
        "cold_persistence_policy": "persist",
        "request_payload_schema": None,
        "response_payload_schema": None,
        "dispatch_state": "exposed",
        "audit_metadata": {
            "type": record.get("type"),
            "exchange_kind": record.get("exchange_kind"),
            "payload": copy.deepcopy(record.get("payload")),
        },
        "provider_metadata": {},
    }


# Set in a compact input's resume context when its interrupt record left out the fields
# that hold their usual value (_interrupt_template).
_COMPACT_INTERRUPT_FLAG = "interrupt_compact"
# The fields of an interrupt record (interpreter.interrupt_records) in the order they are
# written; the ones _interrupt_template knows are left out of a compact record.
_INTERRUPT_KEYS = (
    "id",
    "type",
    "exchange_kind",
    "payload",
    "resume_event",
    "resume_to",
    "status",
    "source_execution_id",
    "source_flow_name",
    "source_operator_id",
    "continuation_event",
    "resume_count",
    "max_resumes",
    "created_at",
    "resumed_at",
    "external_wait_request",
)


_MISSING = object()


@dataclass(frozen=True)
class _Known:
    """What the receiving side knows of an interrupt without being told.

    A None field is not known there: its interrupt field is always sent.
    """

    execution_id: str | None = None
    flow: str | None = None
    continuation_event: str | None = None
    # The value the interrupt was resumed with (its ``resume_value`` and ``response``).
    value: Any = _MISSING


def _known_of(chunk_input: ChunkInput) -> _Known:
    return _Known(chunk_input.execution_id, chunk_input.flow, chunk_input.trigger_event)


def _interrupt_template(key: str, record: Mapping[str, Any], known: _Known) -> Any:
    """The usual value of an interrupt field once the interrupt is resumed.

    ``_MISSING`` for a field without one. The record's earlier fields are already in
    ``record`` (the wait request is built from them).
    """
    if key == "external_wait_request":
        return _default_wait_request(record)
    found: Any = _MISSING
    if key == "source_execution_id":
        found = known.execution_id
    elif key == "source_flow_name":
        found = known.flow
    elif key == "continuation_event":
        found = known.continuation_event
    elif key in ("resume_value", "response"):
        return known.value
    elif key == "resumed_by_principal":
        # Who resumed it when the caller named nobody (interrupt_records).
        if known.value is _MISSING or "resumed_at" not in record:
            return _MISSING
        return {
            "subject": None,
            "tenant": None,
            "groups": [],
            "method": "temporal_client",
            "at": record["resumed_at"],
        }
    else:
        return _TEMPLATE.get(key, _MISSING)
    return _MISSING if found is None else found


_TEMPLATE: dict[str, Any] = {
    "exchange_kind": None,
    "resume_event": None,
    "resume_to": "next",
    "status": "resumed",
    "resume_count": 0,
    "max_resumes": None,
}


def _compact_interrupt(
    record: Mapping[str, Any], known: _Known, keys: tuple[str, ...] = _INTERRUPT_KEYS
) -> dict[str, Any]:
    """``record`` without the fields of ``keys`` that hold their usual value."""
    compact: dict[str, Any] = {}
    for key, value in record.items():
        template = _interrupt_template(key, record, known) if key in keys else _MISSING
        if template is _MISSING:
            compact[key] = value
        elif isinstance(template, dict):
            if not _same(value, template):
                compact[key] = value
        elif type(value) is not type(template) or value != template:
            compact[key] = value
    return compact


def _expand_interrupt(compact: Mapping[str, Any], known: _Known) -> dict[str, Any]:
    """A chunk input's interrupt from its compact form (the fields of _INTERRUPT_KEYS first).

    Scheduled activities hold this form: its expansion must not change.
    """
    record: dict[str, Any] = {}
    for key in _INTERRUPT_KEYS:
        if key in compact:
            record[key] = compact[key]
        else:
            template = _interrupt_template(key, record, known)
            if template is not _MISSING:
                record[key] = template
    for key, value in compact.items():
        if key not in record:
            record[key] = value
    return record


def _pack_resume_compact(packed: Mapping[str, Any], chunk_input: ChunkInput) -> dict[str, Any]:
    """:func:`pack_resume`'s form with the interrupt's usual fields left out.

    Kept only when it rebuilds the record exactly (keys in their order).
    """
    interrupt = packed.get("interrupt")
    if not isinstance(interrupt, dict):
        return dict(packed)
    known = _known_of(chunk_input)
    compact = _compact_interrupt(interrupt, known)
    if len(compact) == len(interrupt) or not _same(_expand_interrupt(compact, known), interrupt):
        return dict(packed)
    return {**packed, "interrupt": compact, _COMPACT_INTERRUPT_FLAG: True}


def _unpack_resume_compact(packed: Mapping[str, Any], chunk_input: ChunkInput) -> dict[str, Any]:
    if not packed.get(_COMPACT_INTERRUPT_FLAG) or not isinstance(packed.get("interrupt"), dict):
        return dict(packed)
    out = {k: v for k, v in packed.items() if k != _COMPACT_INTERRUPT_FLAG}
    out["interrupt"] = _expand_interrupt(packed["interrupt"], _known_of(chunk_input))
    return out


# ------------------------------------------------- continue_with's result, compact
# A client that sends ``ContinueRequest.compact_result`` gets the interrupt record under
# this key, without the fields it can rebuild (bench/RESULTS.md, issue 18: the record was
# 2 KB of every resume's history, against 0.5 KB for a raw update's result).
COMPACT_RESULT_KEY = "interrupt_compact"
# The fields of a resumed interrupt record in the order it holds them (interrupt_records);
# a field the record has and this list does not keeps its place among the others.
_RESULT_KEYS = (
    *_INTERRUPT_KEYS[:10],  # "id" ... "source_operator_id"
    "source_signal",
    *_INTERRUPT_KEYS[10:-1],  # "continuation_event" ... "resumed_at"
    "resume_value",
    "external_wait_request",
    "response",
    "resumed_by_principal",
)
_RESULT_INDEX = {key: index for index, key in enumerate(_RESULT_KEYS)}


def _expand_result(compact: Mapping[str, Any], known: _Known) -> dict[str, Any]:
    """The record from its compact form: each left-out field back in its place."""
    record: dict[str, Any] = {}
    left_out = [key for key in _RESULT_KEYS if key not in compact]

    def restore(before: int) -> None:
        while left_out and _RESULT_INDEX[left_out[0]] < before:
            key = left_out.pop(0)
            template = _interrupt_template(key, record, known)
            if template is not _MISSING:
                record[key] = copy.deepcopy(template)

    for key, value in compact.items():
        if key in _RESULT_INDEX:
            restore(_RESULT_INDEX[key])
        record[key] = value
    restore(len(_RESULT_KEYS))
    return record


def pack_continue_result(record: Any, *, execution_id: str, value: Any) -> Any:
    """``continue_with``'s result for a client that rebuilds it (workflow side, pure).

    Left out: the fields that hold their usual value once resumed (the status, default
    options, the default external wait request), the source execution id when it is
    ``execution_id``, and ``resume_value`` / ``response`` when they are ``value`` (what the
    client sent). Only a record that :func:`unpack_continue_result` rebuilds exactly, keys
    in their order, is packed; anything else is returned as it is.
    """
    if not isinstance(record, dict):
        return record
    known = _Known(execution_id=execution_id, value=value)
    compact = _compact_interrupt(record, known, _RESULT_KEYS)
    if len(compact) == len(record) or not _same(_expand_result(compact, known), record):
        return record
    return {COMPACT_RESULT_KEY: compact}


def unpack_continue_result(result: Any, *, execution_id: str, value: Any) -> Any:
    """The interrupt record from :func:`pack_continue_result`'s form (client side).

    ``value``: the value the client sent (as JSON data: the workflow compared the value
    it decoded).
    """
    if not isinstance(result, dict) or list(result) != [COMPACT_RESULT_KEY]:
        return result
    known = _Known(execution_id=execution_id, value=json.loads(json.dumps(value)))
    return _expand_result(result[COMPACT_RESULT_KEY], known)


def pack_chunk_input(chunk_input: ChunkInput, *, blueprint_hash: bool = False) -> dict[str, Any]:
    """The compact wire form of ``chunk_input`` (runtime version 4; workflow side, pure).

    ``blueprint_hash``: send the hash too (the execution traces: activity spans carry it).
    """
    out: dict[str, Any] = {"run_id": chunk_input.run_id}
    if chunk_input.value is not None:
        out["value"] = chunk_input.value
    if chunk_input.trigger_event:
        out["trigger_event"] = chunk_input.trigger_event
    if chunk_input.trigger_type != "event":
        out["trigger_type"] = chunk_input.trigger_type
    if chunk_input.signal:
        out["signal"] = _pack_signal(chunk_input.signal, chunk_input.trigger_event)
    if chunk_input.state:
        out["state"] = chunk_input.state
    if chunk_input.resources:
        out["resources"] = chunk_input.resources
    if chunk_input.resume is not None:
        out["resume"] = _pack_resume_compact(chunk_input.resume, chunk_input)
    if chunk_input.interventions:
        out["interventions"] = chunk_input.interventions
    if blueprint_hash and chunk_input.blueprint_hash:
        out["blueprint_hash"] = chunk_input.blueprint_hash
    if chunk_input.tenant is not None:
        out["tenant"] = chunk_input.tenant
    return out


def unpack_chunk_input(
    raw: Mapping[str, Any], *, flow: str, chunk: str, execution_id: str
) -> ChunkInput:
    """The ChunkInput a chunk activity was sent, from either wire shape (worker side).

    ``flow``, ``chunk``, ``execution_id``: what the compact shape leaves out (the
    activity's flow and chunk, ``activity.info().workflow_id``).
    """
    if "flow" in raw:  # the full shape
        return ChunkInput(**{k: raw[k] for k in _CHUNK_INPUT_FIELDS if k in raw})
    trigger_event = raw.get("trigger_event") or ""
    chunk_input = ChunkInput(
        flow=flow,
        chunk=chunk,
        execution_id=execution_id,
        run_id=raw["run_id"],
        value=raw.get("value"),
        trigger_event=trigger_event,
        trigger_type=raw.get("trigger_type") or "event",
        signal=_unpack_signal(raw["signal"], trigger_event) if "signal" in raw else {},
        state=dict(raw.get("state") or {}),
        resources=dict(raw.get("resources") or {}),
        interventions=list(raw.get("interventions") or []),
        blueprint_hash=raw.get("blueprint_hash") or "",
        tenant=raw.get("tenant"),
    )
    resume = raw.get("resume")
    if resume is not None:
        chunk_input.resume = _unpack_resume_compact(resume, chunk_input)
    return chunk_input


def pack_chunk_output(output: ChunkOutput) -> dict[str, Any]:
    """What a chunk activity returns: its ChunkOutput without empty defaults.

    The workflow decodes it as a ChunkOutput (absent fields take their defaults), so
    executions of every runtime version read the same output from either shape.
    """
    out: dict[str, Any] = {}
    if output.value is not None:
        out["value"] = output.value
    if output.ops:
        out["ops"] = output.ops
    if output.pause is not None:
        out["pause"] = output.pause
    if output.channels is not None:
        out["channels"] = output.channels
    return out
