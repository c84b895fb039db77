"""Client-side save, load, history and fork of executions (no flow object needed).

``save_execution`` queries a workflow's ``snapshot``; ``load_execution`` starts a new
workflow seeded from one (``WorkflowInput.restore``) and waits until the work it re-runs
is quiescent; ``execution_history`` replays a workflow's event history through the
interpreter with a step recorder attached, which yields the state after every chunk and a
snapshot to fork from; ``saved_options`` and ``load_report`` read a snapshot for a load.
The execution handle (through ``snapshots``) and the CLI both use these.
"""

from __future__ import annotations

import copy
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._errors import ExecutionStateError, SnapshotError, TriggerFlowError
from ..definition.builder import FlowBuilder
from ..definition.flow_config import to_mermaid
from ..interpreter.snapshot import blueprint_hash_of, parse_snapshot, sign_snapshot
from ..plugin.plugin import TriggerFlowPlugin
from ..plugin.workflow_classes import history_replayer
from ..spec.flow_spec import FlowSpec
from ..spec.search_attributes import (
    ACCESS_DEFINITIONS,
    initial_search_attributes,
    namespace_supports,
)
from ..spec.spec_codec import compact_dataclass
from ..spec.wire import (
    DEFAULT_TASK_QUEUE,
    QUERY_SNAPSHOT,
    RUNTIME_VERSION,
    UPDATE_LOADED,
    ExecutionOptions,
    WorkflowInput,
)
from .calls import query, settle, settle_root
from .worker_check import watch_for_worker

if TYPE_CHECKING:
    from .flow import TriggerFlow

# The saved options a loaded copy keeps (see :func:`saved_options`).
_SAVED_OPTION_KEYS = (
    "auto_close",
    "auto_close_timeout",
    "skip_exceptions",
    "concurrency",
    "intervention_mode",
    "tenant",
)


def static_details(spec: FlowSpec) -> str:
    """The workflow's static details in the UI: blueprint, chunks and the Mermaid graph.

    Stored in every execution's first event, so the graph's node ids are short (``n1``,
    ``n2``, ... instead of ``n_chunk_<16 hex>``): the drawing is the same. Built once per
    graph (the name and blueprint hash determine it).
    """
    cached = _STATIC_DETAILS.get((spec.name, spec.blueprint_hash))
    if cached is None:
        if len(_STATIC_DETAILS) > 256:
            _STATIC_DETAILS.clear()
        cached = _STATIC_DETAILS[(spec.name, spec.blueprint_hash)] = _static_details(spec)
    return cached


_STATIC_DETAILS: dict[tuple[str, str], str] = {}


def _static_details(spec: FlowSpec) -> str:
    chunks = "\n".join(
        f"- `{name}` ({opts.get('execute_in', 'activity')})" for name, opts in spec.chunks.items()
    )
    short: dict[str, str] = {}
    graph = re.sub(  # node ids start a line or follow an arrow; labels are left alone
        r"(?:(?<=^    )|(?<=> )|(?<=\| ))n_\w+",
        lambda m: short.setdefault(m.group(0), f"n{len(short) + 1}"),
        to_mermaid(spec.operators),
        flags=re.MULTILINE,
    )
    return (
        f"**TriggerFlow** `{spec.name}`\n\nblueprint `{spec.blueprint_hash}`\n\n"
        f"Chunks:\n{chunks}\n\n```mermaid\n{graph}\n```"
    )


async def start_options(
    client: Client,
    spec: FlowSpec,
    options: ExecutionOptions,
    *,
    execution_id: str,
    task_queue: str,
    search_attributes: bool = True,
) -> dict[str, Any]:
    """Keyword arguments every start of an execution workflow shares.

    Sets ``options.search_attributes`` when the namespace has the TriggerFlow search
    attributes (and the plugin did not turn them off with ``search_attributes=False``), and
    then starts with them so the execution is listed at once.
    """
    kwargs: dict[str, Any] = {
        "id": execution_id,
        "task_queue": task_queue,
        "static_summary": f"{spec.name} @ {spec.short_hash}",
        "static_details": static_details(spec),
    }
    options.runtime_version = RUNTIME_VERSION  # this client's interpreter behaviour
    options.notifications = not options.hidden  # a sub-flow's parent notifies for it
    plugin = TriggerFlowPlugin.of_client(client)
    options.traced = plugin is not None and plugin.tracer_provider is not None
    if options.hidden or not search_attributes:
        options.search_attributes = False
    else:
        options.search_attributes = await namespace_supports(client)
    options.access_search_attributes = options.search_attributes and await namespace_supports(
        client, ACCESS_DEFINITIONS
    )
    if options.search_attributes:
        kwargs["search_attributes"] = initial_search_attributes(
            flow=spec.name, blueprint_hash=spec.blueprint_hash, tenant=options.tenant
        )
    return kwargs


SNAPSHOT_KEY_ENV = "TRIGGERFLOW_SNAPSHOT_KEY"


def snapshot_key(client: Client | None) -> bytes | None:
    """The operator's snapshot key: the client's plugin's, else ``TRIGGERFLOW_SNAPSHOT_KEY``.

    With a key, saved snapshots are signed and only signed ones load (issue 17).
    """
    plugin = TriggerFlowPlugin.of_client(client) if client is not None else None
    key = plugin.snapshot_key if plugin is not None else None
    if key is None:
        key = os.environ.get(SNAPSHOT_KEY_ENV) or None
    return key.encode() if isinstance(key, str) else key


async def save_execution(client: Client, execution_id: str) -> dict[str, Any]:
    """Return the execution's JSON-ready snapshot (Agently schema v2 keys).

    Signed when a snapshot key is set (:func:`snapshot_key`).
    """
    snapshot = await _snapshot_with_children(client, execution_id, depth=0)
    snapshot["snapshot_id"] = uuid.uuid4().hex
    snapshot["created_at"] = time.time()
    key = snapshot_key(client)
    return sign_snapshot(snapshot, key) if key else snapshot


# Sub-flows nested deeper than this are not saved with their parent (a cycle guard).
MAX_SUB_FLOW_DEPTH = 16


async def _snapshot_with_children(
    client: Client, execution_id: str, *, depth: int
) -> dict[str, Any]:
    """The execution's snapshot with each paused sub-flow's own snapshot in its frame.

    A frame's ``child_saved_state`` is what a loaded parent starts the child again from
    (natively the frame carries it too); the workflow cannot query its child, so the
    client adds it here.
    """
    snapshot = await query(client, execution_id, QUERY_SNAPSHOT)
    frames = snapshot.get("sub_flow_frames") or {}
    if frames and depth >= MAX_SUB_FLOW_DEPTH:
        raise RuntimeError(
            f"Execution {execution_id!r} has sub-flows nested deeper than {MAX_SUB_FLOW_DEPTH}; "
            "it cannot be saved."
        )
    for frame in frames.values():
        frame["child_saved_state"] = await _snapshot_with_children(
            client, frame["child_execution_id"], depth=depth + 1
        )
    return snapshot


def saved_options(parsed: dict[str, Any]) -> ExecutionOptions:
    """The execution options a parsed snapshot was saved with, for the loaded copy.

    Runtime resources are never saved (the loader passes them again); whether the copy is
    hidden and upserts search attributes is decided when it starts. ``parse_snapshot``
    has checked the values as ``create_execution`` would.
    """
    saved = parsed["temporal"].get("options") or {}
    return ExecutionOptions(**{k: v for k, v in saved.items() if k in _SAVED_OPTION_KEYS})


def load_report(
    saved: Any,
    spec: FlowSpec,
    missing_resources: Callable[[dict[str, Any]], list[str]],
    *,
    key: bytes | None = None,
) -> dict[str, Any]:
    """Whether ``saved`` can be loaded into ``spec``, without loading it.

    Args:
        saved: A snapshot (dict or JSON text).
        spec: The graph it would be loaded into.
        missing_resources: The required runtime resource keys a parsed snapshot lacks here.
        key: The operator's snapshot key: the snapshot must be signed with it.

    Returns:
        ``{"status": "ready"|"missing_resources"|"invalid_snapshot", "ready": bool,
        "missing_resource_keys": [...], "diagnostics": [...]}`` as Agently's
        ``inspect_load``.
    """
    try:
        parsed = parse_snapshot(saved, key=key)
    except TriggerFlowError as error:
        return {
            "status": "invalid_snapshot",
            "ready": False,
            "missing_resource_keys": [],
            "diagnostics": [
                {"code": "invalid_snapshot", "severity": "error", "message": str(error)}
            ],
        }
    missing = missing_resources(parsed)
    diagnostics = [
        {
            "code": "missing_resource",
            "severity": "error",
            "message": f"runtime resource {key!r} is not available",
            "resource_key": key,
        }
        for key in missing
    ]
    if spec.blueprint_hash != parsed["flow_definition_fingerprint"].split(":", 1)[-1]:
        diagnostics.append(
            {
                "code": "fingerprint_mismatch",
                "severity": "error",
                "message": f"saved with another blueprint than {spec.short_hash}",
            }
        )
    status = "missing_resources" if missing else "ready"
    if any(d["code"] == "fingerprint_mismatch" for d in diagnostics):
        status = "invalid_snapshot"
    return {
        "status": status,
        "ready": status == "ready",
        "missing_resource_keys": missing,
        "diagnostics": diagnostics,
    }


def _check_graph(saved: dict[str, Any], spec: FlowSpec) -> None:
    """Every operator the snapshot refers to must exist in the graph it is loaded into."""
    missing: list[str] = []
    ops = {op["id"] for op in spec.operators}
    for frame_id, frame in (saved.get("sub_flow_frames") or {}).items():
        if frame.get("parent_operator_id") not in ops:
            missing.append(f"sub-flow frame {frame_id!r} -> {frame.get('parent_operator_id')}")
    for record in saved["interrupts"].values():
        if record.get("sub_flow_frame_id"):
            continue  # a child's interrupt: the child's own snapshot is checked on its load
        if record.get("status") == "waiting" and record.get("source_operator_id") not in ops:
            missing.append(f"interrupt {record['id']!r} -> {record.get('source_operator_id')}")
    for item in saved["durable_system_state"]["temporal"].get("pending") or []:
        if item.get("kind") == "work" and item.get("op") is None:
            continue  # a queued signal (runtime version 3): it names no operator
        if item.get("op") not in ops:
            missing.append(f"pending run -> {item.get('op')}")
    if missing:
        raise SnapshotError(
            f"The snapshot refers to operators that flow '{spec.name}' "
            f"(blueprint {spec.short_hash}) does not have: {missing}. Load it into the flow "
            "version it was saved with."
        )


async def load_execution(
    client: Client,
    saved: Any,
    *,
    execution_id: str | None = None,
    task_queue: str | None = None,
    spec: FlowSpec | None = None,
    options: ExecutionOptions | None = None,
    allow_blueprint_change: bool = False,
    search_attributes: bool = True,
    flow: TriggerFlow | None = None,
) -> str:
    """Start a new execution workflow seeded from ``saved``; return its id.

    Args:
        client: A connected client.
        saved: A snapshot from ``save_execution`` / ``async_save`` (dict or JSON text).
        execution_id: The new execution's id; defaults to the saved id (allowed once the
            saved workflow has closed: Temporal ids are unique among running workflows).
        task_queue: Defaults to the queue the snapshot was saved on.
        spec: The graph to run; defaults to the one embedded in the snapshot.
        options: Execution options; default to the saved ones.
        allow_blueprint_change: Load into a ``spec`` whose blueprint hash differs from the
            snapshot's (every operator the snapshot refers to must still exist).
        search_attributes: False when the plugin turned search attributes off.
        flow: The flow object, to name its import path when no worker serves it.

    Raises:
        SnapshotError: The snapshot is malformed, foreign, or from another blueprint.
        ExecutionStateError: The id belongs to an execution that is still open.
        NoWorkerError: No worker serves the task queue, so the loaded work cannot resume
            (the execution is created and resumes when one polls).
    """
    parsed = parse_snapshot(saved, key=snapshot_key(client))
    temporal = parsed["temporal"]
    saved_hash = blueprint_hash_of(parsed)
    if spec is None:
        try:
            spec = FlowSpec.from_json(temporal["spec"])
        except Exception as error:
            raise SnapshotError(f"The snapshot's embedded graph is invalid: {error}") from None
    if spec.blueprint_hash != saved_hash and not allow_blueprint_change:
        raise SnapshotError(
            f"Cannot load the snapshot of execution {parsed['execution_id']!r}: it was saved "
            f"with blueprint {saved_hash[:12]} and flow '{spec.name}' is blueprint "
            f"{spec.short_hash} (fingerprint mismatch). Load it with the flow version it was "
            "saved with, or pass allow_blueprint_change=True if the graph change is "
            "compatible."
        )
    _check_graph(parsed, spec)
    if options is None:
        options = saved_options(parsed)
    workflow_id = execution_id or parsed["execution_id"]
    queue = task_queue or temporal.get("task_queue") or DEFAULT_TASK_QUEUE
    kwargs = await start_options(
        client,
        spec,
        options,
        execution_id=workflow_id,
        task_queue=queue,
        search_attributes=search_attributes,
    )
    try:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            spec.name,
            compact_dataclass(
                WorkflowInput(spec=spec.to_packed(), options=options, restore=parsed)
            ),
            result_type=dict,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            **kwargs,
        )
    except WorkflowAlreadyStartedError:
        raise ExecutionStateError(
            f"Execution {workflow_id!r} is still open, so a snapshot cannot be loaded under "
            "its id. Load the copy under a new id (async_load(saved, execution_id=...)), or "
            "close the running execution first."
        ) from None
    if parsed["lifecycle_state"] != "closed":

        async def resumed() -> None:
            loaded = await handle.execute_update(UPDATE_LOADED, result_type=dict)
            wait, root = settle_root(loaded)
            if wait:  # its work went on in the next run
                await settle(client, workflow_id, root)

        try:
            await watch_for_worker(
                resumed(), client=client, workflow_id=workflow_id, action="load", flow=flow
            )
        except WorkflowUpdateFailedError as error:
            raise ExecutionStateError(
                f"Execution {workflow_id!r} failed while resuming loaded work: {error.cause}"
            ) from None
    return workflow_id


# ------------------------------------------------------------------ history
async def _run_histories(client: Client, execution_id: str) -> list[Any]:
    """Every run of an execution's continue-as-new chain, oldest first."""
    histories = []
    run_id: str | None = None
    for _ in range(10_000):
        handle = client.get_workflow_handle(execution_id, run_id=run_id)
        try:
            history = await handle.fetch_history()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND and run_id is None:
                raise ExecutionStateError(
                    f"No execution {execution_id!r} in namespace {client.namespace!r}."
                ) from None
            raise
        histories.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if not run_id:
            break
    histories.reverse()
    return histories


async def execution_history(
    client: Client, flows: Sequence[FlowBuilder], execution_id: str
) -> list[dict[str, Any]]:
    """The state after each chunk, replayed from the execution's event history.

    Each entry: ``step`` (1-based, continuing across continue-as-new runs), ``chunk``,
    ``run_id``, ``paused``, ``state``, ``state_version`` and ``snapshot`` (what
    ``async_load(..., from_step=step)`` restores: the state, joins and interrupts after
    that chunk, with the chunk's continuation and the runs then in flight re-run).
    """
    if not flows:
        raise ValueError("execution_history needs the flow the execution runs.")
    steps: list[dict[str, Any]] = []

    def record(workflow_id: str, step: dict[str, Any]) -> None:
        if workflow_id == execution_id:
            steps.append(step)

    replayer = history_replayer(flows, client.data_converter, record)
    for history in await _run_histories(client, execution_id):
        await replayer.replay_workflow(history)
    key = snapshot_key(client)
    for step in steps:
        step["snapshot"]["snapshot_id"] = f"{execution_id}:step:{step['step']}"
        if key:  # read from Temporal history here: as trusted as a saved snapshot
            step["snapshot"] = sign_snapshot(step["snapshot"], key)
    return steps


def pick_step(history: Sequence[Mapping[str, Any]], from_step: int) -> dict[str, Any]:
    """The snapshot of step ``from_step`` of a history from :func:`execution_history`."""
    for entry in history:
        if entry.get("step") == from_step:
            return copy.deepcopy(dict(entry["snapshot"]))
    steps = [entry.get("step") for entry in history]
    raise SnapshotError(
        f"No step {from_step!r} in this history; it has steps {steps[:1]}..{steps[-1:]}."
        if steps
        else f"No step {from_step!r}: the execution has not finished any chunk yet."
    )
