"""Execution snapshots in Agently's schema v2 shape (pure; used by workflow and client).

``build_snapshot`` turns the interpreter's durable state into the dict that
``execution.async_save()`` returns; ``parse_snapshot`` validates a saved dict and turns it
back into the seed a new workflow restores from (``WorkflowInput.restore``).

Keys that have no meaning on Temporal keep their native type with a neutral value and are
documented in docs/triggerflow-on-temporal.md (lease: Temporal owns execution; compaction
and projection: history is the store; sub-flow frames: sub-flows are child workflows).
Everything Temporal-specific lives under ``durable_system_state["temporal"]`` and the
top-level ``"temporal"`` section (graph, options), so a snapshot is self-contained: it can
be loaded from a process that has no flow object (``triggerflow-temporal load``).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

from .._errors import SnapshotError
from ..spec.flow_spec import FlowSpec, chunk_option_problems
from ..spec.wire import option_problems
from .resume_ledger import collect_ledger, merge_ledger, native_interrupts

SCHEMA_VERSION = 2
FINAL_RESULT_KEY = "$final_result"
KIND = "triggerflow.execution_snapshot"
FINGERPRINT_PREFIX = "sha256:"

_PROJECTION = {
    "version": 1,
    "policy": {
        "enabled": False,
        "terminal_value_mode": "digest",
        "min_value_bytes": 4096,
        "project_terminal_signal_attempts": True,
    },
    "applied": False,
    "deferred_reason": "disabled",
    "projected_terminal_interrupt_ids": [],
    "projected_value_count": 0,
    "original_value_bytes": 0,
    "projected_value_bytes": 0,
}


def fingerprint(blueprint_hash: str) -> str:
    """The snapshot's ``flow_definition_fingerprint`` for a blueprint hash."""
    return FINGERPRINT_PREFIX + blueprint_hash


def build_snapshot(
    *,
    execution_id: str,
    run_id: str,
    flow_name: str,
    blueprint_hash: str,
    spec: dict[str, Any],
    options: dict[str, Any],
    task_queue: str,
    status: str,
    lifecycle: str,
    started: bool,
    state: dict[str, Any],
    state_version: int,
    flow_data: dict[str, Any],
    interrupts: dict[str, dict[str, Any]],
    intervention: dict[str, Any],
    last_signal: dict[str, Any] | None,
    signal_attempts: list[dict[str, Any]],
    joins: dict[str, Any],
    engine: dict[str, Any],
    pending: list[dict[str, Any]],
    deadlines: dict[str, Any],
    rejected_requests: list[dict[str, Any]],
    error: dict[str, Any] | None,
    close_snapshot: dict[str, Any] | None,
    close_reason: str | None,
    resource_keys: dict[str, str],
    created_at: float,
    started_at: float | None,
    last_activity_at: float,
    closed_at: float | None,
    now: float,
    sub_flow_frames: dict[str, Any] | None = None,
    bindings: list[dict[str, Any]] | None = None,
    sealed_at: float | None = None,
) -> dict[str, Any]:
    """Assemble a JSON-ready schema v2 snapshot.

    ``snapshot_id`` is left empty: the client fills it (queries must not draw random ids).
    """
    saved_interrupts = native_interrupts(interrupts)
    closed = lifecycle == "closed"
    runtime_data = copy.deepcopy(close_snapshot if closed and close_snapshot else state)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "snapshot_id": "",
        "created_at": now,
        "execution_id": execution_id,
        "flow_name": flow_name,
        "flow_definition_fingerprint": fingerprint(blueprint_hash),
        "status": status,
        "lifecycle_state": lifecycle,
        "state_version": state_version,
        "owner_id": None,
        "lease": {"owner_id": None, "lease_ttl": None, "lease_until": None, "heartbeat_at": None},
        "run_context": {
            "run_id": run_id,
            "run_kind": "workflow_execution",
            "root_run_id": run_id,
            "parent_run_id": None,
            "agent_id": None,
            "agent_name": None,
            "session_id": None,
            "response_id": None,
            "execution_id": execution_id,
            "meta": {"flow_name": flow_name},
        },
        "runtime_data": runtime_data,
        "flow_data": copy.deepcopy(flow_data),
        "interrupts": saved_interrupts,
        "intervention": copy.deepcopy(intervention),
        "sub_flow_frames": copy.deepcopy(sub_flow_frames or {}),
        "last_signal": copy.deepcopy(last_signal) or {},
        "signal_net": {
            "version": 1,
            "bindings": copy.deepcopy(bindings or []),
            "accepted_signal_ids": [],
            "signal_attempts": copy.deepcopy(signal_attempts),
        },
        "snapshot_projection": copy.deepcopy(_PROJECTION),
        "snapshot_retention_policy": None,
        # As natively: the compatibility result ($final_result, set by an end() sink).
        "result": {
            "ready": FINAL_RESULT_KEY in runtime_data,
            "value": copy.deepcopy(runtime_data.get(FINAL_RESULT_KEY)),
        },
        "durable_system_state": {
            # As natively, a join kind with no progress is left out.
            **{kind: copy.deepcopy(section) for kind, section in joins.items() if section},
            "temporal": {
                "engine": copy.deepcopy(engine),
                "started": started,
                "pending": copy.deepcopy(pending),
                "deadlines": copy.deepcopy(deadlines),
                "rejected_requests": copy.deepcopy(rejected_requests),
                "error": copy.deepcopy(error),
            },
        },
        "resource_requirements": [
            {
                "kind": "runtime_resource",
                "key": key,
                "required": True,
                "source": source,
                "metadata": {"scope": source},
            }
            for key, source in sorted(resource_keys.items())
        ],
        "resource_keys": sorted(resource_keys),
        "managed_resource_keys": [],
        "execution_resource_requirement_ids": [],
        "resume_ledger": collect_ledger(saved_interrupts),
        "compaction": {
            "segments": [],
            "retained_lineage_anchors": [],
            "artifact_refs": [],
            "policy": {},
            "load_policy": {},
        },
        "auto_close": bool(options.get("auto_close")),
        "auto_close_timeout": float(options.get("auto_close_timeout") or 0.0),
        "started_at": float(started_at or created_at),
        "last_activity_at": float(last_activity_at),
        # When async_seal() sealed it (kept after unseal, as natively), else the close time.
        "sealed_at": sealed_at if sealed_at is not None else (closed_at if closed else None),
        "closed_at": closed_at,
        "close_reason": close_reason,
        "lease_ttl": None,
        "lease_until": None,
        "heartbeat_at": None,
        "pending_task_count": len(pending),
        "temporal": {
            "workflow_type": flow_name,
            "task_queue": task_queue,
            "blueprint_hash": blueprint_hash,
            "options": copy.deepcopy(options),
            "spec": copy.deepcopy(spec),
        },
    }


_REQUIRED = {
    "schema_version": int,
    "kind": str,
    "execution_id": str,
    "flow_name": str,
    "flow_definition_fingerprint": str,
    "status": str,
    "lifecycle_state": str,
    "runtime_data": dict,
    "interrupts": dict,
    "intervention": dict,
    "durable_system_state": dict,
}


SIGNATURE_KEY = "signature"
_SIGNATURE_PREFIX = "hmac-sha256:"


def _signed_bytes(snapshot: dict[str, Any]) -> bytes:
    body = {k: v for k, v in snapshot.items() if k != SIGNATURE_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_snapshot(snapshot: dict[str, Any], key: bytes) -> dict[str, Any]:
    """``snapshot`` with its ``signature``: HMAC-SHA256 over its canonical JSON."""
    digest = hmac.new(key, _signed_bytes(snapshot), hashlib.sha256).hexdigest()
    return {**snapshot, SIGNATURE_KEY: _SIGNATURE_PREFIX + digest}


def _verify_signature(saved: dict[str, Any], key: bytes) -> None:
    signature = saved.get(SIGNATURE_KEY)
    if not isinstance(signature, str) or not signature.startswith(_SIGNATURE_PREFIX):
        raise SnapshotError(
            "The snapshot is not signed, and this deployment loads signed snapshots only "
            "(a snapshot key is set: TriggerFlowPlugin(snapshot_key=...) or "
            "TRIGGERFLOW_SNAPSHOT_KEY). Load a snapshot async_save() returned here."
        )
    expected = hmac.new(key, _signed_bytes(saved), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature[len(_SIGNATURE_PREFIX) :], expected):
        raise SnapshotError(
            "The snapshot's signature does not match: it was edited after it was saved, or "
            "saved with another snapshot key. Load the snapshot async_save() returned, "
            "unedited, with the key it was saved with."
        )


def parse_snapshot(saved: Any, *, key: bytes | None = None) -> dict[str, Any]:
    """Validate a saved snapshot and return it as a dict (a deep copy).

    Accepts the dict from ``async_save()`` or its JSON text. With ``key`` (the operator's
    snapshot key) the snapshot must carry a matching signature (:func:`sign_snapshot`).

    Raises:
        SnapshotError: Naming the first problem (not a snapshot, unsupported schema
            version, missing or mistyped section, a snapshot of a native Agently process
            that has no Temporal section, an open sub-flow frame).
    """
    if isinstance(saved, (str, bytes)):
        try:
            saved = json.loads(saved)
        except ValueError as error:
            raise SnapshotError(f"The saved execution is not valid JSON: {error}.") from None
    if not isinstance(saved, dict):
        raise SnapshotError(
            f"A saved execution must be the dict returned by async_save(), got "
            f"{type(saved).__name__}."
        )
    if key is not None:
        _verify_signature(saved, key)
    if saved.get("kind") != KIND:
        raise SnapshotError(
            f"Not a TriggerFlow execution snapshot: kind is {saved.get('kind')!r}, expected "
            f"{KIND!r}."
        )
    version = saved.get("schema_version")
    if version not in (1, 2):
        raise SnapshotError(
            f"Unsupported snapshot schema_version {version!r}; this version loads 1 and 2."
        )
    for section, kind in _REQUIRED.items():
        if section not in saved:
            raise SnapshotError(
                f"The snapshot has no {section!r} section; it is truncated or edited."
            )
        if not isinstance(saved[section], kind):
            raise SnapshotError(
                f"Snapshot section {section!r} must be a {kind.__name__}, got "
                f"{type(saved[section]).__name__}."
            )
    if not saved["flow_definition_fingerprint"].startswith(FINGERPRINT_PREFIX):
        raise SnapshotError(
            "Snapshot flow_definition_fingerprint must start with 'sha256:', got "
            f"{saved['flow_definition_fingerprint']!r}."
        )
    _check_frames(saved.get("sub_flow_frames"))
    temporal = saved.get("temporal")
    system = saved["durable_system_state"].get("temporal")
    if not isinstance(temporal, dict) or not isinstance(system, dict):
        raise SnapshotError(
            "The snapshot has no 'temporal' section: it was saved by native Agently (or "
            "edited). Only snapshots saved by triggerflow_temporal can be loaded; start a new "
            "execution with the state instead (create_execution(...).async_set_state(...))."
        )
    _check_fields("durable_system_state.temporal", system, _SYSTEM_FIELDS)
    for key, section in saved["durable_system_state"].items():
        if key != "temporal" and not isinstance(section, dict):
            raise SnapshotError(
                f"Snapshot join section durable_system_state.{key} must be a dict, got "
                f"{type(section).__name__}."
            )
    _check_fields("temporal", temporal, _TEMPORAL_FIELDS)
    _check_options(temporal["options"])
    _check_spec(temporal, saved["flow_definition_fingerprint"])
    for record_id, record in saved["interrupts"].items():
        if not isinstance(record, dict) or record.get("id") != record_id:
            raise SnapshotError(f"Snapshot interrupt {record_id!r} is malformed.")
    parsed = copy.deepcopy(saved)
    # The resume ledger in Agently's shape, or the shape saved before it (request id first).
    merge_ledger(parsed)
    return parsed


# Sections of the snapshot only this runtime writes, and their types: a load seeds the
# workflow from them, so a mistyped one must fail here, on the client, and not inside the
# new workflow (where it would fail the workflow task over and over).
_SYSTEM_FIELDS: dict[str, tuple[type, ...]] = {
    "engine": (dict,),
    "started": (bool,),
    "pending": (list,),
    "deadlines": (dict,),
    "rejected_requests": (list,),
    "error": (dict, type(None)),
}
_TEMPORAL_FIELDS: dict[str, tuple[type, ...]] = {
    "workflow_type": (str,),
    "task_queue": (str,),
    "blueprint_hash": (str,),
    "options": (dict,),
    "spec": (dict,),
}


def _check_frames(frames: Any) -> None:
    """Waiting sub-flow frames load (their children start again); running ones do not."""
    if not frames:
        return
    if not isinstance(frames, dict):
        raise SnapshotError(
            f"Snapshot sub_flow_frames must be a dict, got {type(frames).__name__}."
        )
    for frame_id, frame in frames.items():
        status = frame.get("status") if isinstance(frame, dict) else None
        if status != "waiting":
            # Natively too: "Snapshots with running frames cannot be loaded".
            raise SnapshotError(
                f"Snapshot sub-flow frame {frame_id!r} is {status!r}: only frames of a paused "
                "sub-flow ('waiting') can be loaded. Save the parent while its sub-flows are "
                "paused or finished."
            )
        if not isinstance(frame.get("child_saved_state"), dict) or not frame.get(
            "parent_operator_id"
        ):
            raise SnapshotError(
                f"Snapshot sub-flow frame {frame_id!r} has no child_saved_state: save it with "
                "execution.async_save(), which adds the paused child's own snapshot."
            )


def _check_fields(where: str, section: dict[str, Any], fields: dict[str, tuple[type, ...]]) -> None:
    for key, kinds in fields.items():
        if key not in section:
            raise SnapshotError(
                f"Snapshot section {where} has no {key!r}; the snapshot is truncated or edited."
            )
        if not isinstance(section[key], kinds):
            wanted = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise SnapshotError(
                f"Snapshot field {where}.{key} must be {wanted}, got {section[key]!r:.80}; "
                "the snapshot is corrupted or edited. Load the dict async_save() returned."
            )


def _check_options(options: dict[str, Any]) -> None:
    """The saved execution options, as ``create_execution`` would accept them."""
    problems = option_problems(options.get("auto_close_timeout"), options.get("concurrency"))
    for key in ("auto_close", "skip_exceptions"):
        if key in options and not isinstance(options[key], bool):
            problems.append(f"{key}={options[key]!r} (true or false)")
    for key in ("tenant", "intervention_mode"):
        if options.get(key) is not None and not isinstance(options[key], str):
            problems.append(f"{key}={options[key]!r} (a string or null)")
    if problems:
        raise SnapshotError(
            "Snapshot execution options temporal.options are invalid: "
            + "; ".join(problems)
            + ". Load the snapshot async_save() returned, unedited."
        )


def _check_spec(temporal: dict[str, Any], fingerprint: str) -> None:
    """The embedded spec: intact, the one the fingerprint names, runnable options only.

    A load without a flow object runs this spec; an edited one must fail here, on the
    client, not in every workflow task of the new execution (issue 17).
    """
    try:
        spec = FlowSpec.from_json(temporal["spec"])
    except (KeyError, TypeError, ValueError) as error:
        raise SnapshotError(
            f"Snapshot field temporal.spec is not an intact flow spec ({error!s:.200}); the "
            "snapshot is corrupted or edited. Load the dict async_save() returned."
        ) from None
    hashes = {
        spec.blueprint_hash,
        temporal["blueprint_hash"],
        fingerprint[len(FINGERPRINT_PREFIX) :],
    }
    if len(hashes) != 1:
        raise SnapshotError(
            "Snapshot blueprint hashes disagree (temporal.spec, temporal.blueprint_hash and "
            "flow_definition_fingerprint): the snapshot is edited. Load the dict async_save() "
            "returned, or load into the flow object (load(flow=...)) to run its own graph."
        )
    problems = chunk_option_problems(spec)
    if problems:
        raise SnapshotError(
            "Snapshot field temporal.spec has chunk options no worker can run: "
            + "; ".join(problems)
            + ". Load the snapshot async_save() returned, unedited."
        )


def blueprint_hash_of(saved: dict[str, Any]) -> str:
    """The blueprint hash a (parsed) snapshot was saved under."""
    return saved["flow_definition_fingerprint"][len(FINGERPRINT_PREFIX) :]
