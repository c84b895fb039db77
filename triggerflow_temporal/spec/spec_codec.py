"""The packed FlowSpec: what a start input carries from runtime version 4 (pure).

A compiled spec in full (``FlowSpec.to_json``) is ~600 B per chunk, mostly null operator
fields and signal ids that repeat their event names, and it travelled in every execution's
start input and every continue-as-new (6.1 KB for a 10-chunk chain, against a hand-written
workflow's 64 B: bench/RESULTS.md, finding F6). The packed form is lossless:

- **compact**: operator fields that hold their default (``None``, ``{}``, ``[]``) are left
  out, a signal ``{"id": "<type>:<event>", "trigger_type", "trigger_event"[, "role"]}``
  becomes ``[type, event(, role)]``, a registered handler ref becomes its name, and a
  chunk's options ``{"execute_in": X, "activity": {}}`` become ``X``; anything in another
  shape is kept verbatim;
- **compressed**: zlib of the compact JSON, in base64 text.

The workflow expands it and checks the blueprint hash of the result, so a packed spec
either rebuilds the graph it was made from exactly or fails loudly; the client checks the
same round trip before it sends one. The spec still travels whole in the input (nothing
is looked up by hash), so an execution keeps the graph it started with on replay, after
continue-as-new (which re-sends the packed text it received, unchanged) and on any worker.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import json
import zlib
from typing import Any

# The key of a packed spec (``{"version", "name", "blueprint_hash", PACKED_KEY}``).
PACKED_KEY = "packed"

# The operator fields of a compiled spec, in the order the compiler writes them, with the
# value a compact operator leaves out.
_FIELD_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("id", None),
    ("kind", None),
    ("name", None),
    ("listen_signals", []),
    ("emit_signals", []),
    ("options", {}),
    ("handler_ref", None),
    ("condition_ref", None),
    ("group_id", None),
    ("group_kind", None),
    ("parent_group_id", None),
    ("parent_group_kind", None),
)
_FIELDS = tuple(name for name, _ in _FIELD_DEFAULTS)
# A compact operator in another shape than the compiler's is kept whole under this key.
_VERBATIM = "="
# Expanded text larger than this is refused (a packed spec from a hostile snapshot or
# input must not expand without bound); 16x the largest payload Temporal carries.
MAX_EXPANDED_BYTES = 32 * 1024 * 1024


class PackedSpecError(ValueError):
    """A packed spec that does not decode (corrupt, foreign or too large)."""


def is_packed(data: Any) -> bool:
    """Whether ``data`` is a packed spec (else a full one, or not a spec at all)."""
    return isinstance(data, dict) and isinstance(data.get(PACKED_KEY), str)


# --------------------------------------------------------------------- compaction
def _compact_signal(signal: Any) -> Any:
    if not isinstance(signal, dict):
        return {_VERBATIM: signal}
    kind, event = signal.get("trigger_type"), signal.get("trigger_event")
    keys = list(signal)
    if (
        isinstance(kind, str)
        and isinstance(event, str)
        and signal.get("id") == f"{kind}:{event}"
        and keys[:3] == ["id", "trigger_type", "trigger_event"]
        and (len(keys) == 3 or (keys[3:] == ["role"] and isinstance(signal["role"], str)))
    ):
        return [kind, event] if len(keys) == 3 else [kind, event, signal["role"]]
    return {_VERBATIM: signal}


def _expand_signal(compact: Any) -> Any:
    if isinstance(compact, list):
        kind, event = compact[0], compact[1]
        signal = {"id": f"{kind}:{event}", "trigger_type": kind, "trigger_event": event}
        if len(compact) > 2:
            signal["role"] = compact[2]
        return signal
    return compact[_VERBATIM]


def _compact_ref(ref: Any) -> Any:
    if ref is None:
        return None
    if isinstance(ref, dict) and list(ref) == ["kind", "name"] and ref["kind"] == "registered":
        if isinstance(ref["name"], str):
            return ref["name"]
    return {_VERBATIM: ref}


def _expand_ref(compact: Any) -> Any:
    if isinstance(compact, str):
        return {"kind": "registered", "name": compact}
    return compact[_VERBATIM]


def _compact_operator(op: Any) -> dict[str, Any]:
    if not isinstance(op, dict) or tuple(op) != _FIELDS:
        return {_VERBATIM: op}
    out: dict[str, Any] = {}
    for name, default in _FIELD_DEFAULTS:
        value = op[name]
        if name in ("listen_signals", "emit_signals"):
            if not isinstance(value, list):
                return {_VERBATIM: op}
            value = [_compact_signal(s) for s in value]
        elif name in ("handler_ref", "condition_ref"):
            value = _compact_ref(value)
        if value == default and type(value) is type(default):
            continue
        out[name] = value
    return out


def _expand_operator(compact: dict[str, Any]) -> dict[str, Any]:
    if _VERBATIM in compact:
        return compact[_VERBATIM]
    op: dict[str, Any] = {}
    for name, default in _FIELD_DEFAULTS:
        if name not in compact:
            op[name] = copy.deepcopy(default)
        elif name in ("listen_signals", "emit_signals"):
            op[name] = [_expand_signal(s) for s in compact[name]]
        elif name in ("handler_ref", "condition_ref"):
            op[name] = _expand_ref(compact[name])
        else:
            op[name] = compact[name]
    return op


def _compact_chunk(options: Any) -> Any:
    if (
        isinstance(options, dict)
        and list(options) == ["execute_in", "activity"]
        and isinstance(options["execute_in"], str)
        and options["activity"] == {}
    ):
        return options["execute_in"]
    return {_VERBATIM: options}


def _expand_chunk(compact: Any) -> Any:
    if isinstance(compact, str):
        return {"execute_in": compact, "activity": {}}
    return compact[_VERBATIM]


# ------------------------------------------------------------------ pack / unpack
def pack_spec_json(full: dict[str, Any], sub_flows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The packed form of ``full`` (``FlowSpec.to_json()`` output).

    ``sub_flows``: the children's packed forms (each carried packed inside the parent, so a
    workflow can start a child with the text it received).
    """
    body = {
        "operators": [_compact_operator(op) for op in full["operators"]],
        "chunks": {name: _compact_chunk(o) for name, o in full["chunks"].items()},
        "sub_flows": sub_flows,
    }
    text = json.dumps(body, sort_keys=False, separators=(",", ":"), ensure_ascii=False)
    packed = base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")
    return {
        "version": full["version"],
        "name": full["name"],
        "blueprint_hash": full["blueprint_hash"],
        PACKED_KEY: packed,
    }


def unpack_spec_json(data: dict[str, Any]) -> dict[str, Any]:
    """The full form (``FlowSpec.to_json()`` shape) of a packed spec; children stay packed.

    Raises:
        PackedSpecError: The text is not base64 of zlib of a compact spec, or expands to
            more than :data:`MAX_EXPANDED_BYTES`.
    """
    try:
        compressed = base64.b64decode(data[PACKED_KEY].encode("ascii"), validate=True)
        inflater = zlib.decompressobj()
        text = inflater.decompress(compressed, MAX_EXPANDED_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            raise PackedSpecError(
                f"packed FlowSpec '{data.get('name')}' is truncated or expands to more than "
                f"{MAX_EXPANDED_BYTES} bytes"
            )
        body = json.loads(text.decode("utf-8"))
        return {
            "version": data.get("version"),
            "name": data.get("name"),
            "operators": [_expand_operator(op) for op in body["operators"]],
            "chunks": {name: _expand_chunk(o) for name, o in body["chunks"].items()},
            "sub_flows": body["sub_flows"],
            "blueprint_hash": data.get("blueprint_hash"),
        }
    except PackedSpecError:
        raise
    except (
        binascii.Error,
        zlib.error,
        UnicodeError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
    ) as error:
        raise PackedSpecError(
            f"packed FlowSpec '{data.get('name')}' does not decode: {error!r:.200}"
        ) from None


# ------------------------------------------------------------- compact dataclasses
def compact_dataclass(value: Any) -> Any:
    """``value`` (a dataclass) as a dict without the fields that hold their default.

    Nested dataclasses are compacted too. Decoding the dict as the dataclass (the pydantic
    data converter) fills the defaults back in, so a workflow receives the same object from
    either form: a start input's ``options`` are mostly defaults (~350 B of JSON).
    """
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    out: dict[str, Any] = {}
    for item in dataclasses.fields(value):
        current = getattr(value, item.name)
        if item.default is not dataclasses.MISSING:
            default: Any = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = dataclasses.MISSING
        if (
            default is not dataclasses.MISSING
            and type(current) is type(default)
            and current == default
        ):
            continue
        out[item.name] = compact_dataclass(current)
    return out
