"""Executions through the gateway: tenancy, start, resume, emit, close (gateway side).

Every call goes through the runtime's public client API (``flow.create_execution``,
``flow.get_execution`` and the execution's ``async_*`` methods). Before any action on an
existing execution, :meth:`ExecutionService.owned` describes the workflow once and checks
that it belongs to the caller's tenant (search attribute ``TriggerFlowTenant``, else the
gateway's memo); anything else is the same 404 as an unknown id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from triggerflow_temporal import (
    ChunkFailedError,
    ExecutionStateError,
    TriggerFlow,
    TriggerFlowExecution,
    TriggerFlowPlugin,
)
from triggerflow_temporal.spec.audit import AUDIT_WORKFLOW, ENTRIES_QUERY, RECORD_SIGNAL, audit_id
from triggerflow_temporal.spec.wire import DEFAULT_TASK_QUEUE

from ._auth import Principal
from ._memo import MEMO_KEY, recording_start, start_record, with_start_memo
from ._problems import Problem, not_found, problem_from_runtime, unavailable
from ._query_cache import ClosedRunCache, KeyedLocks
from ._views import execution_view, iso

TENANT = SearchAttributeKey.for_keyword("TriggerFlowTenant")
STATUS = SearchAttributeKey.for_keyword("TriggerFlowStatus")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$")
# A query needs a worker; one that never answers is a 503, not a hung request.
QUERY_TIMEOUT_SECONDS = 15.0

logger = logging.getLogger("triggerflow_temporal.gateway")


@dataclass
class Owned:
    """An execution the caller's tenant owns (after :meth:`ExecutionService.owned`).

    Attributes:
        id: The execution id.
        tenant: Its tenant.
        flow: The flow it runs.
        execution: A handle on it.
        memo: The gateway's start record, when the gateway started it.
        running: Whether the workflow is open.
        started_at: The workflow's start time.
        run_id: The run described (answers of a closed run are kept by it).
    """

    id: str
    tenant: str
    flow: TriggerFlow
    execution: TriggerFlowExecution
    memo: dict[str, Any] | None
    running: bool
    started_at: datetime | None
    run_id: str | None = None


def _parameters(function: Any) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(function).parameters


def structured_actor_supported() -> bool:
    """Whether ``async_continue_with(actor=...)`` takes the principal as a dict.

    A runtime whose ``actor`` is a plain string gets the subject; one that annotates it
    with a mapping type gets the whole ``{subject, tenant, groups, method}``.
    """
    parameter = _parameters(TriggerFlowExecution.async_continue_with).get("actor")
    if parameter is None:
        return False
    annotation = parameter.annotation
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "dict" in text or "Mapping" in text


class ExecutionService:
    """The gateway's side of executions.

    Args:
        client: A client with the TriggerFlowPlugin (its data converter and task queues).
        flows: The flows the gateway knows, by name.
    """

    def __init__(self, client: Client, flows: Mapping[str, TriggerFlow]) -> None:
        self.client = with_start_memo(client)
        self.flows = dict(flows)
        self.structured_actor = structured_actor_supported()
        self.records_initiator = "started_by" in _parameters(TriggerFlowExecution.__init__)
        self.emits_with_actor = "actor" in _parameters(TriggerFlowExecution.async_emit)
        self._closed = ClosedRunCache()
        self._lanes = KeyedLocks()

    def actor(self, principal: Principal) -> Any:
        """What the runtime records as ``resumed_by`` for ``principal``."""
        return principal.as_actor() if self.structured_actor else principal.subject

    # ------------------------------------------------------------------- refusals
    async def record_refusal(
        self,
        owned: Owned,
        principal: Principal,
        action: str,
        status: int,
        reason: str,
        **detail: Any,
    ) -> None:
        """Keep a refused request in the execution's audit log (never in its history).

        Best effort: the caller's answer does not wait on it or fail with it.
        """
        entry = {
            "at": time.time(),
            "action": "refused",
            "by": principal.as_actor(),
            "detail": {"request": action, "status": status, "reason": reason, **detail},
        }
        try:
            await self.client.start_workflow(
                AUDIT_WORKFLOW,
                [],
                id=audit_id(owned.id),
                task_queue=self.task_queue_of(owned),
                start_signal=RECORD_SIGNAL,
                start_signal_args=[entry],
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        except Exception:
            logger.warning("could not record a refusal for %s", owned.id, exc_info=True)

    async def refusals(self, owned: Owned) -> list[dict[str, Any]]:
        """The refused requests recorded for ``owned`` (empty when none were)."""
        try:
            return await self.client.get_workflow_handle(audit_id(owned.id)).query(
                ENTRIES_QUERY, result_type=list
            )
        except Exception:
            return []

    def task_queue_of(self, owned: Owned) -> str:
        """The task queue the execution's flow runs on (its workers serve the audit log)."""
        plugin = TriggerFlowPlugin.of_client(self.client, owned.flow.name)
        return plugin.task_queue_for(owned.flow.name) if plugin else DEFAULT_TASK_QUEUE

    # ------------------------------------------------------------------- ownership
    async def owned(self, execution_id: str, principal: Principal) -> Owned:
        """The execution if the principal's tenant owns it.

        Raises:
            Problem: 404 for an unknown id, another tenant's execution or a flow this
                gateway does not serve; 503 when Temporal does not answer.
        """
        described = await self._describe(execution_id) if _ID.match(execution_id) else None
        if described is None:
            raise not_found(execution_id)
        return await self._own(described, principal)

    async def refreshed(self, owned: Owned, *, until_closed: float = 0.0) -> Owned:
        """``owned`` described again (after it may have closed); tenancy is not re-checked.

        Args:
            owned: The execution.
            until_closed: Describe again for up to this many seconds while it still runs (an
                execution that refused a resume as not open completes shortly).
        """
        deadline = time.monotonic() + until_closed
        delay = 0.05
        while True:
            described = await self._describe(owned.id)
            if described is None:
                raise not_found(owned.id)
            running = described.status == WorkflowExecutionStatus.RUNNING
            if not running or time.monotonic() + delay > deadline:
                return dataclasses.replace(owned, running=running, run_id=described.run_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def status(self, owned: Owned) -> str | None:
        """The execution's status now, from the server when it can tell (no worker needed).

        The workflow keeps its status in the ``TriggerFlowStatus`` search attribute; a
        describe reads it from the server without a query, which is what a burst of refused
        updates makes slow. Without search attributes, the ``status`` query.
        """
        described = await self._describe(owned.id)
        found = described.typed_search_attributes.get(STATUS) if described is not None else None
        if found:
            return found
        (answer,) = await self.ask(owned, ("async_get_status",))
        return answer

    async def _describe(self, execution_id: str) -> WorkflowExecutionDescription | None:
        try:
            return await self.client.get_workflow_handle(execution_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise problem_from_runtime(error, execution_id=execution_id) from None
        except RuntimeError as error:
            raise problem_from_runtime(error, execution_id=execution_id) from None

    async def _own(self, described: WorkflowExecutionDescription, principal: Principal) -> Owned:
        execution_id = described.id
        memo = await described.memo_value(MEMO_KEY, None)
        memo = memo if isinstance(memo, dict) else None
        tenant = described.typed_search_attributes.get(TENANT) or (memo or {}).get("tenant")
        if not tenant or tenant != principal.tenant:
            raise not_found(execution_id)
        flow = self.flows.get(described.workflow_type)
        if flow is None:
            raise Problem(
                404,
                f"Execution {execution_id!r} runs flow {described.workflow_type!r}, which this "
                "gateway does not serve; add it to the gateway's flows (TRIGGERFLOW_FLOWS).",
            )
        return Owned(
            id=execution_id,
            tenant=tenant,
            flow=flow,
            execution=flow.get_execution(client=self.client, execution_id=execution_id),
            memo=memo,
            running=described.status == WorkflowExecutionStatus.RUNNING,
            started_at=described.start_time,
            run_id=described.run_id,
        )

    # ------------------------------------------------------------------------- view
    async def view(
        self,
        owned: Owned,
        *,
        include_state: bool = False,
        links_for: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """The execution view (``info`` and ``pending_interrupts``, ``state`` on demand).

        ``links_for`` gives the approval links a pending interrupt shows (none by default).
        """
        asks: list[tuple[str, ...]] = [("async_get_info",), ("async_get_pending_interrupts",)]
        if include_state:
            asks.append(("async_get_state",))
        results = await self.ask(owned, *asks)
        return execution_view(
            execution_id=owned.id,
            tenant=owned.tenant,
            memo=owned.memo,
            info=results[0],
            pending=results[1],
            started_at=owned.started_at,
            state=results[2] if include_state else None,
            include_state=include_state,
            links_for=links_for,
        )

    async def ask(self, owned: Owned, *asks: tuple[str, ...]) -> list[Any]:
        """Call the execution's reading methods, e.g. ``("async_get_info",)``, in turn.

        One after the other, and one request at a time per running execution: concurrent
        queries on one run are fragile when the worker does not keep the run cached (a query
        buffered while the run is evicted can be dropped), and each costs a few milliseconds
        only. A closed run's answers are shared and kept (:class:`ClosedRunCache`): they
        cannot change, and each costs the worker a replay.

        Raises:
            Problem: 503 when no worker answers within ``QUERY_TIMEOUT_SECONDS``.
        """

        async def call(method: str, *args: str) -> Any:
            run = _retrying(getattr(owned.execution, method), *args)
            if owned.running:
                return await run()
            return await self._closed.get((owned.id, owned.run_id, method, *args), run)

        async def in_turn() -> list[Any]:
            if not owned.running:
                return [await call(*a) for a in asks]
            async with self._lanes.hold(owned.id):
                return [await call(*a) for a in asks]

        try:
            return await asyncio.wait_for(in_turn(), timeout=QUERY_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            raise unavailable(
                f"Execution {owned.id!r} did not answer a query within "
                f"{QUERY_TIMEOUT_SECONDS:g} s: is a worker serving flow {owned.flow.name!r}?"
            ) from None
        except Exception as error:
            raise problem_from_runtime(error, execution_id=owned.id) from None

    # ------------------------------------------------------------------------ start
    async def start(
        self,
        flow_name: str,
        principal: Principal,
        *,
        value: Any,
        execution_id: str | None,
        task_id: str | None,
        session_id: str | None,
        idempotency_key: str | None,
        traceparent: str | None,
    ) -> tuple[dict[str, Any], bool]:
        """Start an execution of ``flow_name`` owned by the principal's tenant.

        Returns:
            The execution view, and whether it is the answer to an earlier request with the
            same ``Idempotency-Key`` (no new execution).

        Raises:
            Problem: 404 unknown flow; 409 the id is taken, or the key was used with
                another body; 503 Temporal or no worker.
        """
        flow = self.flows.get(flow_name)
        if flow is None:
            raise Problem(
                404,
                f"This gateway serves no flow {flow_name!r}; it serves {sorted(self.flows)}.",
            )
        request_sha = _sha256(
            {
                "flow": flow_name,
                "input": value,
                "execution_id": execution_id,
                "task_id": task_id,
                "session_id": session_id,
            }
        )
        if execution_id is None:
            seed = (
                _sha256([principal.tenant, flow_name, idempotency_key])[:24]
                if idempotency_key
                else uuid.uuid4().hex[:24]
            )
            execution_id = f"{flow_name}-{seed}"
        elif not _ID.match(execution_id):
            raise Problem(
                400,
                f"execution_id {execution_id!r} must be 1-200 characters of letters, digits "
                "and _.:@+- starting with a letter or digit.",
            )
        existing = await self._existing(execution_id, principal)
        if existing is not None:
            return await self._replay(existing, idempotency_key, request_sha), True
        nonce = uuid.uuid4().hex
        record = start_record(
            principal=principal.as_actor(),
            flow=flow_name,
            task_id=task_id or f"task-{uuid.uuid4().hex[:16]}",
            session_id=session_id or f"session-{uuid.uuid4().hex[:16]}",
            idempotency_key=idempotency_key,
            request_sha256=request_sha,
            nonce=nonce,
            traceparent=traceparent,
            at=iso(datetime.now(timezone.utc)) or "",
        )
        options: dict[str, Any] = {}
        if self.records_initiator:  # forbid_initiator needs to know who started it
            options["started_by"] = principal.as_actor()
        execution = flow.create_execution(
            client=self.client,
            execution_id=execution_id,
            auto_close=True,
            auto_close_timeout=0.0,
            tenant=principal.tenant,
            **options,
        )
        with recording_start(execution_id, record):
            try:
                await execution.async_start_settled(value)
            except ChunkFailedError:
                pass  # the execution exists and failed: its view says so
            except ExecutionStateError:
                pass  # started meanwhile by another request: decided below
            except Exception as error:
                raise problem_from_runtime(error, execution_id=execution_id) from None
        owned = await self.owned(execution_id, principal)
        if (owned.memo or {}).get("nonce") != nonce:
            return await self._replay(owned, idempotency_key, request_sha), True
        return await self.view(owned), False

    async def _existing(self, execution_id: str, principal: Principal) -> Owned | None:
        described = await self._describe(execution_id)
        if described is None:
            return None
        try:
            return await self._own(described, principal)
        except Problem as problem:
            if problem.status != 404:
                raise
            raise _id_taken(execution_id) from None  # another tenant's, or another flow's

    async def _replay(
        self, owned: Owned, idempotency_key: str | None, request_sha: str
    ) -> dict[str, Any]:
        memo = owned.memo or {}
        if idempotency_key is None or memo.get("idempotency_key") != idempotency_key:
            raise _id_taken(owned.id)
        if memo.get("request_sha256") != request_sha:
            raise Problem(
                409,
                f"Idempotency-Key {idempotency_key!r} was used with another request body "
                f"(execution {owned.id!r}); send the same body to get its answer, or a new key "
                "for a new execution.",
            )
        return await self.view(owned)


def _retrying(method: Any, *args: Any) -> Any:
    """``method(*args)`` retried while Temporal says to retry (UNAVAILABLE).

    A query that reaches a run while it completes is refused with "buffered query cleared,
    please retry"; so is one during a server hiccup. The caller's timeout bounds the loop.
    """

    async def run() -> Any:
        delay = 0.05
        while True:
            try:
                return await method(*args)
            except RPCError as error:
                if error.status != RPCStatusCode.UNAVAILABLE:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    return run


def _sha256(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _id_taken(execution_id: str) -> Problem:
    return Problem(
        409,
        f"Execution id {execution_id!r} is already used; choose another execution_id, or leave "
        "it out to have one generated.",
    )


def flows_by_name(
    flows: Sequence[TriggerFlow] | Mapping[str, TriggerFlow],
) -> dict[str, TriggerFlow]:
    """``flows`` keyed by flow name (the last of a name wins, as on the worker)."""
    if isinstance(flows, Mapping):
        return dict(flows)
    return {flow.name: flow for flow in flows}
