"""``GET /v1/executions``: tenant-scoped Temporal visibility queries (gateway side).

Every query starts with ``TriggerFlowTenant = '<tenant>'``; filters add clauses on the
TriggerFlow search attributes. Values are checked against a strict pattern before they go
into the query, so no caller text is ever parsed as query syntax. Page tokens wrap
Temporal's own with a hash of the query they belong to: a token from another query (or
tenant) is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, WorkflowExecutionAsyncIterator
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from ._auth import Principal
from ._config_types import NAME_PATTERN
from ._memo import MEMO_KEY
from ._problems import Problem, problem_from_runtime
from ._views import list_row

STATUSES = ("created", "running", "waiting", "completed", "failed", "cancelled")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50

TENANT = SearchAttributeKey.for_keyword("TriggerFlowTenant")
STATUS = SearchAttributeKey.for_keyword("TriggerFlowStatus")
FLOW = SearchAttributeKey.for_keyword("TriggerFlowName")
PENDING_TYPES = SearchAttributeKey.for_keyword_list("TriggerFlowPendingInterruptTypes")
# Added by the interpreter for issue 14 (who may resume a waiting interrupt); ``*`` marks an
# interrupt any principal of the tenant may resume.
ASSIGNEES = SearchAttributeKey.for_keyword_list("TriggerFlowAssignees")
CANDIDATE_GROUPS = SearchAttributeKey.for_keyword_list("TriggerFlowCandidateGroups")
ANYONE = "*"


def _quoted(value: str, what: str) -> str:
    if not NAME_PATTERN.match(value):
        raise Problem(
            400,
            f"{what} {value!r} is not a valid name: 1-128 characters of letters, digits and "
            "_.:@|+/-.",
        )
    return f"'{value}'"


def build_query(
    principal: Principal,
    *,
    status: str | None = None,
    flow: str | None = None,
    interrupt_type: str | None = None,
    assigned_to: str | None = None,
) -> str:
    """The visibility query for these filters, scoped to the principal's tenant.

    Raises:
        Problem: 400 for an unknown status, a malformed name or ``assigned_to`` other than
            ``me``.
    """
    clauses = [f"{TENANT.name} = {_quoted(principal.tenant, 'tenant')}"]
    if status is not None:
        if status not in STATUSES:
            raise Problem(400, f"status {status!r} is not one of {list(STATUSES)}.")
        clauses.append(f"{STATUS.name} = '{status}'")
    if flow is not None:
        clauses.append(f"{FLOW.name} = {_quoted(flow, 'flow')}")
    if interrupt_type is not None:
        clauses.append(f"{PENDING_TYPES.name} = {_quoted(interrupt_type, 'interrupt_type')}")
    if assigned_to is not None:
        if assigned_to != "me":
            raise Problem(
                400,
                f"assigned_to={assigned_to!r} is not supported; use assigned_to=me (the "
                "interrupts this principal may resume).",
            )
        subjects = [_quoted(principal.subject, "subject"), f"'{ANYONE}'"]
        mine = f"{ASSIGNEES.name} IN ({', '.join(subjects)})"
        if principal.groups:
            groups = ", ".join(_quoted(g, "group") for g in principal.groups)
            mine = f"({mine} OR {CANDIDATE_GROUPS.name} IN ({groups}))"
        clauses.append(mine)
    return " AND ".join(clauses)


def _token_for(query: str, temporal_token: bytes | None) -> str | None:
    if not temporal_token:
        return None
    payload = {
        "q": hashlib.sha256(query.encode()).hexdigest()[:32],
        "t": base64.b64encode(temporal_token).decode(),
    }
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _temporal_token(query: str, page_token: str | None) -> bytes | None:
    if not page_token:
        return None
    bad = Problem(
        400, "page_token is not a token this listing gave out (tokens belong to one query)."
    )
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        token = base64.b64decode(payload["t"], validate=True)
        expected = hashlib.sha256(query.encode()).hexdigest()[:32]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad from None
    if not isinstance(payload, dict) or payload.get("q") != expected or not token:
        raise bad
    return token


ORDER = " ORDER BY StartTime DESC"
# Whether the namespace's visibility store takes ORDER BY (Elasticsearch does; the SQL
# stores, the dev server's among them, do not), per client; learnt on first use.
_ORDER_SUPPORTED: dict[int, bool] = {}


async def list_executions(
    client: Client, query: str, *, limit: int, page_token: str | None
) -> dict[str, Any]:
    """One page of executions: ``{"executions": [...], "next_page_token"}``.

    Newest first (``ORDER BY StartTime DESC``) where the visibility store can sort; on the
    SQL stores (the dev server, PostgreSQL, MySQL, SQLite), Temporal's own order: open
    executions by start time, newest first, then closed ones by close time, newest first.

    Raises:
        Problem: 400 bad page token; 501 the namespace lacks a search attribute the query
            needs; 503 Temporal does not answer.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, f"limit must be 1-{MAX_LIMIT}, got {limit}.")
    token = _temporal_token(query, page_token)
    if _ORDER_SUPPORTED.get(id(client), True):
        try:
            iterator = await _page(client, query + ORDER, limit, token)
            _ORDER_SUPPORTED[id(client)] = True
        except RPCError as error:
            if "ORDER BY" not in (error.message or ""):
                raise _listing_problem(query, error, token) from None
            _ORDER_SUPPORTED[id(client)] = False
            iterator = await _page(client, query, limit, token)
    else:
        iterator = await _page(client, query, limit, token)
    rows = []
    for execution in iterator.current_page or ():
        attributes = execution.typed_search_attributes
        memo = await execution.memo_value(MEMO_KEY, None)
        status = attributes.get(STATUS)
        if status is None and execution.status is not None:
            status = execution.status.name.lower()
        rows.append(
            list_row(
                execution_id=execution.id,
                flow=attributes.get(FLOW) or execution.workflow_type,
                status=status,
                tenant=attributes.get(TENANT),
                pending_types=list(attributes.get(PENDING_TYPES) or []),
                memo=memo if isinstance(memo, dict) else None,
                started_at=execution.start_time,
                closed_at=execution.close_time,
            )
        )
    return {"executions": rows, "next_page_token": _token_for(query, iterator.next_page_token)}


async def _page(
    client: Client, query: str, limit: int, token: bytes | None
) -> WorkflowExecutionAsyncIterator:
    iterator = client.list_workflows(query, page_size=limit, next_page_token=token)
    try:
        await iterator.fetch_next_page()
    except RPCError as error:
        if "ORDER BY" in (error.message or "") and query.endswith(ORDER):
            raise
        raise _listing_problem(query, error, token) from None
    except RuntimeError as error:
        raise problem_from_runtime(error) from None
    return iterator


def _listing_problem(query: str, error: RPCError, token: bytes | None) -> Problem:
    if error.status == RPCStatusCode.INVALID_ARGUMENT and token is not None:
        return Problem(400, f"Temporal refused the page_token ({error.message}).")
    if error.status == RPCStatusCode.INVALID_ARGUMENT:
        return _missing_attributes(query, error)
    return problem_from_runtime(error)


def _missing_attributes(query: str, error: RPCError) -> Problem:
    names: Sequence[str] = [
        key.name for key in (TENANT, STATUS, FLOW, PENDING_TYPES, ASSIGNEES, CANDIDATE_GROUPS)
    ]
    used = [name for name in names if name in query]
    return Problem(
        501,
        f"This Temporal namespace cannot run the listing query ({error.message}). It needs the "
        f"search attributes {used}; register them once with `temporal operator "
        "search-attribute create` (docs/operations.md, docs/gateway.md).",
    )
