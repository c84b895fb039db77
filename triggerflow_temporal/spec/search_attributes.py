"""The TriggerFlow search attributes: "everything waiting for approval" as one query.

Registered on the embedded dev server (see ``_devserver``); production namespaces need
``temporal operator search-attribute create`` once (docs/operations.md). The client only
asks the workflow to upsert them when the namespace has them, so an unregistered
namespace degrades to "no search attributes" with a warning instead of failing
workflow tasks.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

STATUS = SearchAttributeKey.for_keyword("TriggerFlowStatus")
FLOW = SearchAttributeKey.for_keyword("TriggerFlowName")
BLUEPRINT = SearchAttributeKey.for_keyword("TriggerFlowBlueprint")
TENANT = SearchAttributeKey.for_keyword("TriggerFlowTenant")
PENDING_TYPES = SearchAttributeKey.for_keyword_list("TriggerFlowPendingInterruptTypes")
# Who may resume what waits now (pause_for(assignees=, candidate_groups=)): "assigned to me"
# is one visibility query (gateway.md).
ASSIGNEES = SearchAttributeKey.for_keyword_list("TriggerFlowAssignees")
CANDIDATE_GROUPS = SearchAttributeKey.for_keyword_list("TriggerFlowCandidateGroups")

# name -> the CLI's type name (``temporal operator search-attribute create --type``)
CORE_DEFINITIONS: dict[str, str] = {
    STATUS.name: "Keyword",
    FLOW.name: "Keyword",
    BLUEPRINT.name: "Keyword",
    TENANT.name: "Keyword",
    PENDING_TYPES.name: "KeywordList",
}
# Added with the gateway: a namespace registered before has only the core ones, and keeps
# them working (the workflow upserts these only when the namespace has them too).
ACCESS_DEFINITIONS: dict[str, str] = {
    ASSIGNEES.name: "KeywordList",
    CANDIDATE_GROUPS.name: "KeywordList",
}
DEFINITIONS: dict[str, str] = {**CORE_DEFINITIONS, **ACCESS_DEFINITIONS}


def initial_search_attributes(
    *, flow: str, blueprint_hash: str, tenant: str | None, status: str = "created"
) -> TypedSearchAttributes:
    """The attributes a new execution starts with (visible before its first task)."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(STATUS, status),
        SearchAttributePair(FLOW, flow),
        SearchAttributePair(BLUEPRINT, blueprint_hash),
    ]
    if tenant:
        pairs.append(SearchAttributePair(TENANT, tenant))
    return TypedSearchAttributes(pairs)


def search_attribute_updates(
    status: str,
    pending_types: Sequence[str],
    access: tuple[Sequence[str], Sequence[str]] | None = None,
) -> list[SearchAttributeUpdate[Any]]:
    """Workflow-side upserts for a status / pending-interrupt change.

    ``access``: the (assignees, candidate groups) of the waiting interrupts, when the
    namespace has :data:`ACCESS_DEFINITIONS`.
    """
    updates: list[SearchAttributeUpdate[Any]] = [
        STATUS.value_set(status),
        PENDING_TYPES.value_set(list(pending_types)),
    ]
    if access is not None:
        updates.append(ASSIGNEES.value_set(list(access[0])))
        updates.append(CANDIDATE_GROUPS.value_set(list(access[1])))
    return updates


# (status, pending interrupt types, (assignees, candidate groups) or None): what a workflow
# last upserted, or None when it does not know.
VisibleValues = tuple[str, tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]] | None]


def initial_visible_values(*, access: bool) -> VisibleValues:
    """What :func:`initial_search_attributes` makes visible (unset lists read as empty)."""
    return ("created", (), ((), ()) if access else None)


def changed_search_attribute_updates(
    previous: VisibleValues | None, current: VisibleValues
) -> list[SearchAttributeUpdate[Any]]:
    """The upserts that move the visible values from ``previous`` to ``current``.

    Only the attributes whose value changed (all of them when ``previous`` is None);
    empty when nothing a visibility query can see changed (runtime version 4).
    """
    status, types, access = current
    old_status, old_types, old_access = previous if previous is not None else (None, None, None)
    updates: list[SearchAttributeUpdate[Any]] = []
    if status != old_status:
        updates.append(STATUS.value_set(status))
    if types != old_types:
        updates.append(PENDING_TYPES.value_set(list(types)))
    if access is not None:
        old_assignees, old_groups = old_access if old_access is not None else (None, None)
        if access[0] != old_assignees:
            updates.append(ASSIGNEES.value_set(list(access[0])))
        if access[1] != old_groups:
            updates.append(CANDIDATE_GROUPS.value_set(list(access[1])))
    return updates


_SUPPORT_CACHE: dict[tuple[int, str, tuple[str, ...]], bool] = {}


async def namespace_supports(client: Any, definitions: dict[str, str] | None = None) -> bool:
    """Whether the client's namespace has these search attributes (cached).

    ``definitions`` defaults to :data:`CORE_DEFINITIONS`; a namespace without
    :data:`ACCESS_DEFINITIONS` only lacks "assigned to me" listings, quietly.
    """
    wanted = CORE_DEFINITIONS if definitions is None else definitions
    key = (id(client), client.namespace, tuple(sorted(wanted)))
    cached = _SUPPORT_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        names = set(response.custom_attributes)
        supported = all(name in names for name in wanted)
    except Exception:
        supported = False
    if not supported and definitions is None:
        warnings.warn(
            f"Namespace {client.namespace!r} does not have the TriggerFlow search attributes "
            f"({', '.join(CORE_DEFINITIONS)}); executions start without them and cannot be "
            "listed with `triggerflow-temporal list --waiting`. Register them once with "
            "`temporal operator search-attribute create --name TriggerFlowStatus --type "
            "Keyword ...` (see docs/operations.md).",
            RuntimeWarning,
            stacklevel=3,
        )
    _SUPPORT_CACHE[key] = supported
    return supported
