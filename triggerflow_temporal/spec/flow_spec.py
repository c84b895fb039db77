"""FlowSpec: the frozen, JSON-serialisable form of a flow that travels in workflow input."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, get_args

from temporalio.common import Priority, RetryPolicy
from temporalio.workflow import ActivityCancellationType

from .spec_codec import PACKED_KEY, is_packed, pack_spec_json, unpack_spec_json
from .state import reads_state_problem

SPEC_VERSION = 1

# Packed specs decoded by this process, by (name, blueprint hash, packed text): pure
# values shared by the executions of one graph (FlowSpec.from_json).
MAX_DECODED_SPECS = 256
# Only packed texts up to this size are kept (a flow's is ~1-10 KB): a spec built to expand
# to the codec's limit is decoded per execution instead of held.
MAX_DECODED_PACKED_CHARS = 64 * 1024
_DECODED: dict[tuple[Any, Any, str], FlowSpec] = {}


def canonical_json(value: Any) -> str:
    """Serialise ``value`` canonically (sorted keys, no spaces) for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class FlowSpec:
    """A compiled flow graph.

    Attributes:
        name: Flow name (the workflow type); not part of the hash.
        operators: Operators in Agently's flow-config shape, handler refs by name only.
        chunks: Per-chunk run options ``{name: {"execute_in": ..., "activity": {...}}}``,
            plus ``"reads_state": [...]`` for a chunk that declares the state it reads.
        sub_flows: Compiled child flows by name (``to_sub_flow``).
        blueprint_hash: sha256 hex of the canonical spec without the name.
    """

    name: str
    operators: tuple[dict[str, Any], ...]
    chunks: dict[str, dict[str, Any]]
    sub_flows: dict[str, FlowSpec] = field(default_factory=lambda: {})
    blueprint_hash: str = ""

    @staticmethod
    def hash_of(
        operators: tuple[dict[str, Any], ...] | list[dict[str, Any]],
        chunks: dict[str, dict[str, Any]],
        sub_flows: dict[str, FlowSpec],
    ) -> str:
        """Return the blueprint hash of the given parts."""
        canonical = canonical_json(
            {
                "version": SPEC_VERSION,
                "operators": list(operators),
                "chunks": chunks,
                "sub_flows": {name: child.blueprint_hash for name, child in sub_flows.items()},
            }
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """Return the full JSON-ready form (snapshots; start inputs before version 4)."""
        return {
            "version": SPEC_VERSION,
            "name": self.name,
            "operators": [dict(op) for op in self.operators],
            "chunks": self.chunks,
            "sub_flows": {name: child.to_json() for name, child in self.sub_flows.items()},
            "blueprint_hash": self.blueprint_hash,
        }

    def to_packed(self) -> dict[str, Any]:
        """The packed form a start input carries from runtime version 4 (``spec_codec``).

        A spec decoded from a packed form returns that form as it was received (so a
        workflow re-sends the recorded text on continue-as-new and to a sub-flow's child);
        otherwise it is packed once and cached. A spec whose packed form would not rebuild
        it exactly (never for a compiled one) returns its full form, which decodes too.
        """
        cached = getattr(self, "_packed", None)
        if cached is not None:
            return cached
        head = {
            "version": SPEC_VERSION,
            "name": self.name,
            "operators": list(self.operators),
            "chunks": self.chunks,
            "blueprint_hash": self.blueprint_hash,
        }
        packed = pack_spec_json(
            head, {name: child.to_packed() for name, child in self.sub_flows.items()}
        )
        try:
            exact = FlowSpec.from_json(packed) == self
        except ValueError:
            exact = False
        result = packed if exact else self.to_json()
        object.__setattr__(self, "_packed", result)
        return result

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlowSpec:
        """Rebuild a spec from :meth:`to_json` or :meth:`to_packed` output, checking its hash.

        A packed form decoded before returns the same spec object: every execution of a
        flow starts with the same packed text, and expanding and hashing it again was
        2-3 % of a worker's CPU (bench/RESULTS.md). Specs are never mutated (a test runs
        the catalogue's flows and compares each cached spec with a fresh decode).
        """
        if not isinstance(data, dict) or data.get("version") != SPEC_VERSION:
            raise ValueError(
                f"Not a triggerflow_temporal FlowSpec (version {SPEC_VERSION}): {str(data)[:200]}"
            )
        if not is_packed(data) or len(data[PACKED_KEY]) > MAX_DECODED_PACKED_CHARS:
            return cls._decode(data)
        key = (data.get("name"), data.get("blueprint_hash"), data[PACKED_KEY])
        spec = _DECODED.get(key)
        if spec is None:
            spec = cls._decode(data)
            if len(_DECODED) >= MAX_DECODED_SPECS:
                _DECODED.clear()  # a bound, not an LRU: workers serve few distinct graphs
            _DECODED[key] = spec
        return spec

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> FlowSpec:
        packed = data if is_packed(data) else None
        if packed is not None:
            data = unpack_spec_json(packed)
        sub_flows = {name: cls.from_json(child) for name, child in data["sub_flows"].items()}
        operators = tuple(data["operators"])
        expected = cls.hash_of(operators, data["chunks"], sub_flows)
        if data.get("blueprint_hash") != expected:
            raise ValueError(
                f"FlowSpec '{data.get('name')}' hash mismatch: recorded "
                f"{data.get('blueprint_hash')}, computed {expected}."
            )
        spec = cls(
            name=data["name"],
            operators=operators,
            chunks=data["chunks"],
            sub_flows=sub_flows,
            blueprint_hash=expected,
        )
        if packed is not None:
            object.__setattr__(spec, "_packed", packed)
        return spec

    @property
    def short_hash(self) -> str:
        """The first 12 hex digits of the blueprint hash."""
        return self.blueprint_hash[:12]


# ---------------------------------------------------------------- activity options
def _seconds(value: Any, key: str, chunk: str) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(
        f"Chunk '{chunk}': activity option {key}={value!r} must be a timedelta or seconds."
    )


_DURATION_KEYS = (
    "schedule_to_close_timeout",
    "schedule_to_start_timeout",
    "start_to_close_timeout",
    "heartbeat_timeout",
)
# The keys of temporalio.workflow.ActivityConfig a chunk may set: the ones
# serialize_activity_config() turns into data. The builder rejects any other key when the
# chunk is declared, so a typo fails at definition time rather than in the workflow.
ACTIVITY_CONFIG_KEYS = frozenset(
    {*_DURATION_KEYS, "retry_policy", "cancellation_type", "priority", "task_queue", "summary"}
)
# Where a chunk runs (``chunks[name]["execute_in"]`` of a FlowSpec): a Temporal activity, a
# local activity, or inline in the workflow.
ExecuteIn = Literal["activity", "local_activity", "workflow"]
EXECUTE_IN_VALUES: tuple[str, ...] = get_args(ExecuteIn)


def serialize_activity_config(chunk: str, config: dict[str, Any]) -> dict[str, Any]:
    """Turn a per-chunk ``ActivityConfig`` into JSON-ready data (durations in seconds)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if value is None:
            continue
        if key in _DURATION_KEYS:
            out[key] = _seconds(value, key, chunk)
        elif key == "retry_policy":
            if not isinstance(value, RetryPolicy):
                raise ValueError(
                    f"Chunk '{chunk}': retry_policy must be a temporalio.common.RetryPolicy."
                )
            out[key] = {
                "initial_interval": value.initial_interval.total_seconds(),
                "backoff_coefficient": value.backoff_coefficient,
                "maximum_interval": (
                    value.maximum_interval.total_seconds() if value.maximum_interval else None
                ),
                "maximum_attempts": value.maximum_attempts,
                "non_retryable_error_types": list(value.non_retryable_error_types or []),
            }
        elif key == "cancellation_type":
            out[key] = ActivityCancellationType(value).name
        elif key == "priority":
            if not isinstance(value, Priority):
                raise ValueError(f"Chunk '{chunk}': priority must be a temporalio.common.Priority.")
            out[key] = {
                "priority_key": value.priority_key,
                "fairness_key": value.fairness_key,
                "fairness_weight": value.fairness_weight,
            }
        elif key in ("task_queue", "summary"):
            if not isinstance(value, str):
                raise ValueError(f"Chunk '{chunk}': {key} must be a string, got {value!r}.")
            out[key] = value
        else:
            raise ValueError(f"Chunk '{chunk}': unsupported activity option {key!r}.")
    return out


def deserialize_activity_config(data: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`serialize_activity_config` (used on the workflow side)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _DURATION_KEYS:
            out[key] = timedelta(seconds=value)
        elif key == "retry_policy":
            out[key] = RetryPolicy(
                initial_interval=timedelta(seconds=value["initial_interval"]),
                backoff_coefficient=value["backoff_coefficient"],
                maximum_interval=(
                    timedelta(seconds=value["maximum_interval"])
                    if value["maximum_interval"] is not None
                    else None
                ),
                maximum_attempts=value["maximum_attempts"],
                non_retryable_error_types=value["non_retryable_error_types"] or None,
            )
        elif key == "cancellation_type":
            out[key] = ActivityCancellationType[value]
        elif key == "priority":
            out[key] = Priority(**value)
        else:
            out[key] = value
    return out


def chunk_option_problems(spec: FlowSpec) -> list[str]:
    """What in ``spec``'s chunk options a workflow could not run, sub-flows included.

    A spec compiled here is always valid; one read from outside (a snapshot's ``temporal``
    section) is checked with this before a workflow is started with it, where an unknown
    activity option would fail every workflow task.
    """
    problems: list[str] = []
    for name, options in spec.chunks.items():
        if not isinstance(options, dict):
            problems.append(f"chunk {name!r}: options must be an object")
            continue
        if options.get("execute_in", "activity") not in EXECUTE_IN_VALUES:
            problems.append(
                f"chunk {name!r}: execute_in={options.get('execute_in')!r} "
                f"(one of {', '.join(EXECUTE_IN_VALUES)})"
            )
        problem = reads_state_problem(options.get("reads_state"))
        if problem is not None:
            problems.append(f"chunk {name!r}: reads_state {problem}")
        config = options.get("activity") or {}
        if not isinstance(config, dict):
            problems.append(f"chunk {name!r}: activity options must be an object")
            continue
        unknown = sorted(set(config) - ACTIVITY_CONFIG_KEYS)
        if unknown:
            problems.append(
                f"chunk {name!r}: unknown activity options {unknown} "
                f"(known: {', '.join(sorted(ACTIVITY_CONFIG_KEYS))})"
            )
            continue
        try:
            deserialize_activity_config(config)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            problems.append(f"chunk {name!r}: malformed activity options ({error!r:.120})")
    for child_name, child in spec.sub_flows.items():
        problems.extend(f"sub-flow {child_name!r}: {p}" for p in chunk_option_problems(child))
    return problems
