"""Commands on executions: start, list, show, continue, emit, close, save, load.

They need no flow object (except ``start``): an execution is the workflow whose id is the
execution id, read through its queries and driven through its updates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import NoWorkerError, TriggerFlowError
from ..client.persistence import load_execution, save_execution
from ..client.worker_check import watch_for_worker
from ..spec import wire
from ..spec.search_attributes import FLOW, PENDING_TYPES, STATUS, TENANT
from ..spec.wire import CloseRequest, ContinueRequest, EmitRequest
from .config import (
    DEFAULT_TASK_QUEUE,
    ENV_TASK_QUEUE,
    CLIError,
    connect,
    out,
    parse_json_arg,
    resolve_flow,
    short_error,
)
from .devserver import SEARCH_ATTRIBUTES

if TYPE_CHECKING:
    from temporalio.client import Client

_T = TypeVar("_T")


# ------------------------------------------------------------------------- errors
def _workflow_error(error: BaseException, execution_id: str, client: Client) -> CLIError:
    """One clear line for a failed update / query / RPC on ``execution_id``."""
    from temporalio.client import (
        WorkflowQueryFailedError,
        WorkflowUpdateFailedError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
    )
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(error, CLIError):
        return error
    timed_out = isinstance(error, (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError))
    if timed_out or (
        isinstance(error, RPCError)
        and error.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
    ):
        return CLIError(
            f"{execution_id}: no answer in time. Is a worker serving this flow's task queue "
            "(`triggerflow-temporal dev` or `python worker.py`)? Raise --timeout to wait longer."
        )
    if isinstance(error, WorkflowUpdateFailedError):
        cause: BaseException | None = error.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = getattr(cause, "cause", None) or cause.__cause__
        if isinstance(cause, ApplicationError):
            return CLIError(f"{execution_id}: {cause.message}")
        return CLIError(f"{execution_id}: {short_error(error.cause or error)}")
    if isinstance(error, WorkflowQueryFailedError):
        return CLIError(f"{execution_id}: query failed: {short_error(error)}")
    if isinstance(error, RPCError):
        if "already completed" in str(error).lower():
            return CLIError(
                f"Execution {execution_id!r} has already closed, so it takes no more "
                f"updates or events; `triggerflow-temporal show {execution_id}` shows how it "
                "ended."
            )
        if error.status == RPCStatusCode.NOT_FOUND:
            return CLIError(
                f"No execution {execution_id!r} in namespace {client.namespace!r}; "
                "`triggerflow-temporal list` shows the existing ones."
            )
        return CLIError(f"{execution_id}: the server refused: {short_error(error)}")
    if isinstance(error, TriggerFlowError):
        return CLIError(str(error))
    if isinstance(error, RuntimeError) and "connect" in str(error).lower():
        return CLIError(f"Lost the Temporal server: {short_error(error)}")
    raise error


def _rpc(timeout: float) -> timedelta:
    return timedelta(seconds=timeout)


async def _call(
    client: Client,
    execution_id: str,
    timeout: float,
    awaitable: Awaitable[_T],
    *,
    action: str | None = None,
) -> _T:
    """Await a call that got ``rpc_timeout=_rpc(timeout)``; a local deadline backs it up.

    With ``action`` (an update that needs a worker), a call that no worker will answer
    fails within seconds with the NoWorkerError message instead of running to the deadline.
    """
    if action is not None:
        awaitable = watch_for_worker(
            awaitable, client=client, workflow_id=execution_id, action=action
        )
    try:
        return await asyncio.wait_for(awaitable, timeout + 5)
    except Exception as error:
        raise _workflow_error(error, execution_id, client) from None


async def _query(client: Client, execution_id: str, name: str, timeout: float) -> Any:
    handle = client.get_workflow_handle(execution_id)
    return await _call(client, execution_id, timeout, handle.query(name, rpc_timeout=_rpc(timeout)))


# ------------------------------------------------------------------------ output
def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _compact(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _interrupt_lines(pending: Mapping[str, Any]) -> list[str]:
    return [
        f"{interrupt_id} ({record.get('type')}): {_compact(record.get('payload'))}"
        for interrupt_id, record in pending.items()
    ]


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


# ------------------------------------------------------------------------ commands
async def cmd_start(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``start``: start an execution and print its view."""
    from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.service import RPCError, RPCStatusCode

    flow = resolve_flow(args.flow, env)
    value = parse_json_arg("--input", args.input)
    queue = args.task_queue or env.get(ENV_TASK_QUEUE, "").strip() or DEFAULT_TASK_QUEUE
    if args.auto_close_timeout is not None and args.auto_close_timeout < 0:
        raise CLIError("--auto-close-timeout must be >= 0 seconds.")
    client = await connect(env, args)
    execution_id = args.id or f"{flow.name}-{uuid.uuid4().hex[:8]}"
    try:
        described = await client.get_workflow_handle(execution_id).describe(
            rpc_timeout=_rpc(args.timeout)
        )
        if described.status is not None and described.status.name == "RUNNING":
            raise CLIError(
                f"Execution {execution_id!r} already exists and is open; choose another --id, "
                f"or look at it with `triggerflow-temporal show {execution_id}`."
            )
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise _workflow_error(error, execution_id, client) from None
    execution = flow.create_execution(
        client=client,
        execution_id=execution_id,
        auto_close=not args.no_auto_close,
        auto_close_timeout=args.auto_close_timeout if args.auto_close_timeout is not None else 0.0,
        task_queue=queue,
        tenant=args.tenant,
    )
    # Start without waiting for the close (async_start waits for it when auto_close=True);
    # a start no worker will run fails within seconds with NoWorkerError's message.
    started = execution.async_start_settled(value, rpc_timeout=_rpc(args.timeout))
    try:
        await asyncio.wait_for(started, args.timeout + 5)
    except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise CLIError(
            f"Execution {execution_id!r} was created, but no worker ran it within "
            f"{args.timeout:g} s. Is a worker serving task queue {queue!r} "
            "(`triggerflow-temporal dev`, `python worker.py`)? It starts when one polls."
        ) from None
    except NoWorkerError as error:
        raise CLIError(str(error)) from None
    except TriggerFlowError as error:
        raise CLIError(f"{execution_id}: {error}") from None
    except Exception as error:
        raise _workflow_error(error, execution_id, client) from None
    info = await _query(client, execution_id, wire.QUERY_INFO, args.timeout)
    pending = await _query(client, execution_id, wire.QUERY_PENDING_INTERRUPTS, args.timeout)
    if args.json:
        out(_json({"execution_id": execution_id, **_info_view(info), "pending": pending}))
        return 0
    out(f"started {execution_id} ({flow.name} on task queue {queue!r}): {info['status']}")
    for line in _interrupt_lines(pending):
        out(f"  waiting on {line}")
    for interrupt_id, record in pending.items():
        example = """'{"approved": true}'""" if record.get("type") == "approval" else "JSON"
        out(
            f"  resume it:  triggerflow-temporal continue {execution_id} {interrupt_id} "
            f"--value {example}"
        )
    return 0


def _info_view(info: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("flow_name", "status", "lifecycle_state", "close_reason", "blueprint_hash", "error")
    return {key: info.get(key) for key in keys}


def _list_query(args: argparse.Namespace) -> str:
    clauses: list[str] = []
    status = "waiting" if args.waiting else args.status
    for key, value, option in (
        (STATUS.name, status, "--status"),
        (FLOW.name, args.flow, "--flow"),
        (TENANT.name, args.tenant, "--tenant"),
    ):
        if value is None:
            continue
        if "'" in value or "\\" in value:
            raise CLIError(f"{option} {value!r}: quotes and backslashes are not allowed.")
        clauses.append(f"{key} = '{value}'")
    if not clauses:
        clauses.append(f"{FLOW.name} IS NOT NULL")
    return " AND ".join(clauses)


async def cmd_list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``list``: executions by status and flow (Temporal visibility)."""
    from temporalio.service import RPCError

    if args.waiting and args.status not in (None, "waiting"):
        raise CLIError(f"--waiting contradicts --status {args.status}.")
    if args.limit < 1:
        raise CLIError("--limit must be >= 1.")
    query = _list_query(args)
    client = await connect(env, args)
    rows: list[dict[str, Any]] = []
    try:
        async for execution in client.list_workflows(
            query, limit=args.limit, rpc_timeout=_rpc(args.timeout)
        ):
            attributes = execution.typed_search_attributes
            status = attributes.get(STATUS)
            if status is None and execution.status is not None:
                status = execution.status.name.lower()
            rows.append(
                {
                    "execution_id": execution.id,
                    "flow": attributes.get(FLOW) or execution.workflow_type,
                    "status": status,
                    "pending_interrupt_types": list(attributes.get(PENDING_TYPES) or []),
                    "pending_interrupts": {},
                    "started_at": execution.start_time.isoformat(timespec="seconds"),
                    "closed_at": execution.close_time.isoformat(timespec="seconds")
                    if execution.close_time
                    else None,
                }
            )
    except RPCError as error:
        text = str(error)
        if "search attribute" in text.lower() or "not defined" in text.lower():
            create = " ".join(
                f"--name {name} --type {kind}" for name, kind in SEARCH_ATTRIBUTES.items()
            )
            raise CLIError(
                f"Namespace {client.namespace!r} cannot be searched by the TriggerFlow search "
                f"attributes ({short_error(error)}). Register them once: temporal operator "
                f"search-attribute create {create}  (docs/operations.md)."
            ) from None
        raise CLIError(f"Listing failed: {short_error(error)}") from None
    # One pending_interrupts query per waiting row, a few at a time.
    permits = asyncio.Semaphore(8)

    async def fill(row: dict[str, Any]) -> None:
        async with permits:
            try:
                handle = client.get_workflow_handle(row["execution_id"])
                pending = await handle.query(
                    wire.QUERY_PENDING_INTERRUPTS, rpc_timeout=_rpc(min(args.timeout, 5.0))
                )
                row["pending_interrupts"] = pending
            except Exception as error:
                row["query_error"] = short_error(error)

    await asyncio.gather(*(fill(row) for row in rows if row["status"] == "waiting"))
    if args.json:
        out(_json(rows))
        return 0
    if not rows:
        out(f"no executions match {query}")
        return 0
    table = [["EXECUTION ID", "FLOW", "STATUS", "PENDING INTERRUPTS", "STARTED"]]
    for row in rows:
        pending = row["pending_interrupts"]
        if pending:
            cell = ", ".join(f"{key} ({value.get('type')})" for key, value in pending.items())
        elif row.get("query_error"):
            cell = f"? ({', '.join(row['pending_interrupt_types']) or 'query failed'})"
        else:
            cell = "-"
        table.append(
            [row["execution_id"], row["flow"], row["status"] or "?", cell, row["started_at"]]
        )
    out(_table(table))
    return 0


async def cmd_show(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``show``: status, pending interrupts and state of one execution."""
    client = await connect(env, args)
    info = await _query(client, args.id, wire.QUERY_INFO, args.timeout)
    pending = await _query(client, args.id, wire.QUERY_PENDING_INTERRUPTS, args.timeout)
    state = await _query(client, args.id, wire.QUERY_STATE, args.timeout)
    if args.json:
        out(_json({**info, "pending_interrupts": pending, "state": state}))
        return 0
    lifecycle = info.get("lifecycle_state")
    closed = f", close reason {info['close_reason']}" if info.get("close_reason") else ""
    rows = [
        ["execution", str(info.get("execution_id"))],
        ["flow", f"{info.get('flow_name')} @ {str(info.get('blueprint_hash'))[:12]}"],
        ["status", f"{info.get('status')} (lifecycle {lifecycle}{closed})"],
    ]
    if info.get("error"):
        error = info["error"]
        rows.append(
            ["error", f"chunk {error.get('chunk')}: {error.get('type')}: {error.get('message')}"]
        )
    lines = _interrupt_lines(pending) or ["-"]
    rows.append(["pending", lines[0]])
    rows.extend(["", line] for line in lines[1:])
    out(_table(rows))
    out("state:")
    out(_json(state))
    return 0


async def cmd_continue(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``continue``: resume a waiting interrupt."""
    value = parse_json_arg("--value", args.value)
    client = await connect(env, args)
    handle = client.get_workflow_handle(args.id)
    request = ContinueRequest(
        interrupt_id=args.interrupt,
        value=value,
        resume_request_id=args.request_id,
        actor=args.actor,
    )
    record = await _call(
        client,
        args.id,
        args.timeout,
        handle.execute_update(wire.UPDATE_CONTINUE_WITH, request, rpc_timeout=_rpc(args.timeout)),
        action="update continue_with",
    )
    if record is None:
        raise CLIError(
            f"Execution {args.id!r} is closed; interrupt {args.interrupt!r} was not resumed."
        )
    info = await _query(client, args.id, wire.QUERY_INFO, args.timeout)
    pending = await _query(client, args.id, wire.QUERY_PENDING_INTERRUPTS, args.timeout)
    if args.json:
        out(_json({"interrupt": record, **_info_view(info), "pending": pending}))
        return 0
    out(f"{args.interrupt} {record.get('status')}; {args.id} is {info.get('status')}")
    for line in _interrupt_lines(pending):
        out(f"  waiting on {line}")
    return 0


async def cmd_emit(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``emit``: send an event to an execution."""
    value = parse_json_arg("--value", args.value)
    client = await connect(env, args)
    handle = client.get_workflow_handle(args.id)
    request = EmitRequest(event=args.event, value=value, trigger_type=args.trigger_type)
    if args.nowait:
        await _call(
            client,
            args.id,
            args.timeout,
            handle.signal(wire.SIGNAL_EMIT_NOWAIT, request, rpc_timeout=_rpc(args.timeout)),
        )
        out(f"sent {args.event!r} to {args.id} (not waiting for handlers)")
        return 0
    results = await _call(
        client,
        args.id,
        args.timeout,
        handle.execute_update(wire.UPDATE_EMIT, request, rpc_timeout=_rpc(args.timeout)),
        action="update emit",
    )
    if results is None:
        raise CLIError(f"Execution {args.id!r} is closed; event {args.event!r} was ignored.")
    out(_json(results))
    return 0


async def cmd_close(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``close``: close an execution and print its close snapshot."""
    client = await connect(env, args)
    request = CloseRequest(
        reason=args.reason, pending_interrupts="cancel" if args.cancel_pending else "error"
    )
    handle = client.get_workflow_handle(args.id)
    snapshot = await _call(
        client,
        args.id,
        args.timeout,
        handle.execute_update(wire.UPDATE_CLOSE, request, rpc_timeout=_rpc(args.timeout)),
        action="update close",
    )
    out(_json(snapshot))
    return 0


async def cmd_save(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``save``: print the execution's snapshot as JSON."""
    client = await connect(env, args)
    saved = await _call(client, args.id, args.timeout, save_execution(client, args.id))
    text = json.dumps(saved, indent=2, sort_keys=True) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text)
        print(f"saved {args.id} to {args.output}", file=sys.stderr, flush=True)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


async def cmd_load(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``load``: start an execution from a saved snapshot."""
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as file:
                text = file.read()
    except OSError as error:
        raise CLIError(f"Cannot read {args.file!r}: {error.strerror or error}.") from None
    try:
        saved = json.loads(text)
    except ValueError as error:
        raise CLIError(
            f"{args.file!r} is not JSON ({error}); give the output of "
            "`triggerflow-temporal save ID > file`."
        ) from None
    client = await connect(env, args)
    target = args.id or (saved.get("execution_id") if isinstance(saved, dict) else None) or "?"
    try:
        execution_id = await asyncio.wait_for(
            load_execution(client, saved, execution_id=args.id, task_queue=args.task_queue),
            args.timeout,
        )
    except TriggerFlowError as error:
        raise CLIError(str(error)) from None
    except Exception as error:
        raise _workflow_error(error, target, client) from None
    status = await _query(client, execution_id, wire.QUERY_STATUS, args.timeout)
    out(f"loaded {execution_id}: {status}")
    return 0
