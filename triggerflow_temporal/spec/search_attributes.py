"""The TriggerFlow search attributes: "everything waiting for approval" as one query.

Registered on the embedded dev server (see ``_devserver``); production namespaces need
``temporal operator search-attribute create`` once (docs/operations.md). The client only
asks the workflow to upsert them when the namespace has them, so an unregistered
namespace degrades to "no search attributes" with a warning instead of failing
workflow tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

# name -> the CLI's type name (``temporal operator search-attribute create --type``)
DEFINITIONS: dict[str, str] = {
    STATUS.name: "Keyword",
    FLOW.name: "Keyword",
    BLUEPRINT.name: "Keyword",
    TENANT.name: "Keyword",
    PENDING_TYPES.name: "KeywordList",
}


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
    status: str, pending_types: Sequence[str]
) -> list[SearchAttributeUpdate[Any]]:
    """Workflow-side upserts for a status / pending-interrupt change."""
    return [STATUS.value_set(status), PENDING_TYPES.value_set(list(pending_types))]


_SUPPORT_CACHE: dict[tuple[int, str], bool] = {}


async def namespace_supports(client: Any) -> bool:
    """Whether the client's namespace has every TriggerFlow search attribute (cached)."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    key = (id(client), client.namespace)
    cached = _SUPPORT_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        names = set(response.custom_attributes)
        supported = all(name in names for name in DEFINITIONS)
    except Exception:
        supported = False
    if not supported:
        import warnings

        warnings.warn(
            f"Namespace {client.namespace!r} does not have the TriggerFlow search attributes "
            f"({', '.join(DEFINITIONS)}); executions start without them and cannot be "
            "listed with `triggerflow-temporal list --waiting`. Register them once with "
            "`temporal operator search-attribute create --name TriggerFlowStatus --type "
            "Keyword ...` (see docs/operations.md).",
            RuntimeWarning,
            stacklevel=3,
        )
    _SUPPORT_CACHE[key] = supported
    return supported
