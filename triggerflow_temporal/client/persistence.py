"""Client-side save, load, history and fork of executions (no flow object needed).

``save_execution`` queries a workflow's ``snapshot``; ``load_execution`` starts a new
workflow seeded from one (``WorkflowInput.restore``) and waits until the work it re-runs
is quiescent; ``execution_history`` replays a workflow's event history through the
interpreter with a step recorder attached, which yields the state after every chunk and a
snapshot to fork from. The execution handle and the CLI both use these.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .._errors import ExecutionStateError, SnapshotError
from ..interpreter.snapshot import blueprint_hash_of, parse_snapshot
from ..spec.flow_spec import FlowSpec
from ..spec.search_attributes import initial_search_attributes, namespace_supports
from ..spec.wire import RUNTIME_VERSION, SETTLE_KEY, ExecutionOptions, WorkflowInput
from .worker_check import watch_for_worker

if TYPE_CHECKING:
    from ..definition.flow import TriggerFlow


def static_details(spec: FlowSpec) -> str:
    """The workflow's static details in the UI: blueprint, chunks and the Mermaid graph."""
    from ..definition.flow_config import to_mermaid

    chunks = "\n".join(
        f"- `{name}` ({opts.get('execute_in', 'activity')})" for name, opts in spec.chunks.items()
    )
    return (
        f"**TriggerFlow** `{spec.name}`\n\nblueprint `{spec.blueprint_hash}`\n\n"
        f"Chunks:\n{chunks}\n\n```mermaid\n{to_mermaid(spec.operators)}\n```"
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
    if options.hidden or not search_attributes:
        options.search_attributes = False
    else:
        options.search_attributes = await namespace_supports(client)
    if options.search_attributes:
        kwargs["search_attributes"] = initial_search_attributes(
            flow=spec.name, blueprint_hash=spec.blueprint_hash, tenant=options.tenant
        )
    return kwargs


def is_closed_error(error: RPCError) -> bool:
    """The server refused a call because the workflow has finished (closed execution).

    Also when the workflow finished while the update was in flight ("aborted by closing
    workflow"): close drains every running handler first, so an aborted update is one that
    had not reached its handler (e.g. a close sent to a loaded copy of a closed execution,
    whose first workflow task completes it).
    """
    text = str(error).lower()
    return (
        "workflow execution already completed" in text
        or "update was aborted by closing workflow" in text
    )


async def settle(client: Client, workflow_id: str, root: str | None = None) -> Any:
    """Wait until an execution whose update chain went on in later runs is quiescent.

    The ``settle`` update returns when the execution is quiescent, or when the run it
    reached hands its held for_each items to the next run; then it is sent again, to the
    latest run. A run that continued as new between the two is no error: the next call
    reaches its successor. With ``root`` (runtime version 3: the update answered
    ``{SETTLE_KEY: root}``) it waits for that root's work only and returns what the update
    would have returned; a failure of that work raises like the update would have.

    Raises:
        RPCError: Anything but the execution having closed meanwhile.
        WorkflowUpdateFailedError: The root's work failed.
    """
    handle = client.get_workflow_handle(workflow_id)
    while True:
        try:
            if root is None:
                result = await handle.execute_update("settle", result_type=dict)
            else:
                result = await handle.execute_update("settle", {"root": root}, result_type=dict)
        except RPCError as error:
            if not is_closed_error(error):
                raise
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return None  # closed meanwhile: nothing left to wait for
            continue
        if result.get("settled"):
            return result.get("result")


async def query(client: Client, execution_id: str, name: str) -> Any:
    """Run a query, turning "no such execution" and query failures into clear errors."""
    try:
        return await client.get_workflow_handle(execution_id).query(name)
    except WorkflowQueryFailedError as error:
        raise ExecutionStateError(
            f"Query {name!r} on execution {execution_id} failed: {error}"
        ) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ExecutionStateError(
                f"No execution {execution_id!r} in namespace {client.namespace!r}."
            ) from None
        raise


async def save_execution(client: Client, execution_id: str) -> dict[str, Any]:
    """Return the execution's JSON-ready snapshot (Agently schema v2 keys)."""
    snapshot = await query(client, execution_id, "snapshot")
    snapshot["snapshot_id"] = uuid.uuid4().hex
    snapshot["created_at"] = time.time()
    return snapshot


def _check_graph(saved: dict[str, Any], spec: FlowSpec) -> None:
    """Every operator the snapshot refers to must exist in the graph it is loaded into."""
    missing: list[str] = []
    ops = {op["id"] for op in spec.operators}
    for record in saved["interrupts"].values():
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
    parsed = parse_snapshot(saved)
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
        saved_options = temporal.get("options") or {}
        options = ExecutionOptions(
            auto_close=bool(saved_options.get("auto_close", True)),
            auto_close_timeout=saved_options.get("auto_close_timeout"),
            skip_exceptions=bool(saved_options.get("skip_exceptions")),
            concurrency=saved_options.get("concurrency"),
            intervention_mode=saved_options.get("intervention_mode"),
            tenant=saved_options.get("tenant"),
        )
    workflow_id = execution_id or parsed["execution_id"]
    queue = task_queue or temporal.get("task_queue") or "triggerflow"
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
            WorkflowInput(spec=spec.to_json(), options=options, restore=parsed),
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
            loaded = await handle.execute_update("loaded", result_type=dict)
            if SETTLE_KEY in loaded:  # its work went on in the next run
                marker = loaded[SETTLE_KEY]
                await settle(client, workflow_id, marker if isinstance(marker, str) else None)

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
    client: Client, flows: Sequence[TriggerFlow], execution_id: str
) -> list[dict[str, Any]]:
    """The state after each chunk, replayed from the execution's event history.

    Each entry: ``step`` (1-based, continuing across continue-as-new runs), ``chunk``,
    ``run_id``, ``paused``, ``state``, ``state_version`` and ``snapshot`` (what
    ``async_load(..., from_step=step)`` restores: the state, joins and interrupts after
    that chunk, with the chunk's continuation and the runs then in flight re-run).
    """
    from temporalio.worker import Replayer

    from ..plugin.plugin import (
        DEFAULT_ACTIVITY_CONFIG,
        _FlowRegistry,
        _make_workflow_class,
        _workflow_runner,
    )

    if not flows:
        raise ValueError("execution_history needs the flow the execution runs.")
    name = flows[0].name
    registry = _FlowRegistry({name: list(flows)}, {}, {}, dict(DEFAULT_ACTIVITY_CONFIG), None)
    steps: list[dict[str, Any]] = []

    def record(workflow_id: str, step: dict[str, Any]) -> None:
        if workflow_id == execution_id:
            steps.append(step)

    registry.step_recorder = record  # type: ignore[attr-defined]
    replayer = Replayer(
        workflows=[_make_workflow_class(name, registry)],
        data_converter=client.data_converter,
        workflow_runner=_workflow_runner(None),
        # The step recorder snapshots the execution after every chunk, which can keep one
        # replayed workflow task busy for seconds on a long run: this replay is an analysis
        # on the client, not a worker, so Temporal's 2 s deadlock detector is off here.
        debug_mode=True,
    )
    for history in await _run_histories(client, execution_id):
        await replayer.replay_workflow(history)
    for step in steps:
        step["snapshot"]["snapshot_id"] = f"{execution_id}:step:{step['step']}"
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
