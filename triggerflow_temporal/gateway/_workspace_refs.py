"""The Workspace records an interrupt's payload refers to (``rec_...``), for the inbox.

Gateway side. Read-only, over the Workspace service's HTTP API (docs/workspace.md):
``GET /v1/records/{id}`` (the ref: collection, kind, summary, scope) and
``GET /v1/records/{id}/read`` (a bounded slice of the content), with the bearer token of
the ``workspace:`` config section. A Workspace token selects one Workspace tenant, and
the worker writes every execution's records with its one token, so the gateway adds the
tenancy the Workspace cannot: a record is shown only when its scope names this execution
(``scope.execution_id``, which ``data.workspace`` adds to every record it stores) or the
principal's tenant (``scope.tenant``). Anything else, an unreachable service, or no
``workspace:`` section, is shown as not available; the page never fails because of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ._config_types import WorkspaceConfig

REF = re.compile(r"rec_[A-Za-z0-9_-]+")
"""A Workspace record id as it appears anywhere in a payload."""
MAX_REFS = 20
PREVIEW_CHARS = 2000
TIMEOUT_SECONDS = 5.0


def record_refs(payload: Any, *, limit: int = MAX_REFS) -> list[str]:
    """The distinct ``rec_...`` ids in ``payload`` (keys and string values, any depth)."""
    found: list[str] = []

    def walk(value: Any, depth: int) -> None:
        if len(found) >= limit or depth > 50:
            return
        if isinstance(value, str):
            for match in REF.findall(value):
                if match not in found and len(found) < limit:
                    found.append(match)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(key, depth + 1)
                walk(item, depth + 1)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, depth + 1)

    walk(payload, 0)
    return found


@dataclass(frozen=True)
class RecordView:
    """One referenced record as the inbox shows it.

    Attributes:
        id: The record id.
        ref: Its ref (``collection``, ``kind``, ``summary``, ``size``, ``created_at`` ...)
            when it could be shown.
        content: The start of its content (text, or JSON data).
        more: Whether the content goes on past what is shown.
        problem: Why it is not shown (not found, another execution's, service down).
    """

    id: str
    ref: Mapping[str, Any] | None = None
    content: Any = None
    more: bool = False
    problem: str | None = None


class WorkspaceRecords:
    """Fetches referenced records for the inbox (see the module docstring).

    Args:
        config: The ``workspace:`` section; None means not configured.
        transport: An httpx transport (tests).
    """

    def __init__(
        self, config: WorkspaceConfig | None, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport

    @property
    def configured(self) -> bool:
        """Whether a Workspace service is configured."""
        return self.config is not None

    async def fetch(
        self, refs: list[str], *, execution_id: str, tenant: str
    ) -> tuple[list[RecordView], str | None]:
        """The records of ``refs``, and why none could be fetched (None when some could).

        Never raises for the service's sake: a failure is a ``problem`` to show.
        """
        if not refs:
            return [], None
        if self.config is None:
            return [], "not available: this gateway has no Workspace configured (workspace:)."
        headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
        views: list[RecordView] = []
        try:
            async with httpx.AsyncClient(
                base_url=self.config.url,
                headers=headers,
                timeout=TIMEOUT_SECONDS,
                transport=self._transport,
                follow_redirects=False,
            ) as http:
                for record_id in refs:
                    views.append(await self._one(http, record_id, execution_id, tenant))
        except httpx.HTTPError as error:
            name = type(error).__name__
            return [], f"not available: the Workspace service did not answer ({name})."
        if views and all(v.problem == _UNAVAILABLE for v in views):
            return [], f"not available: {_UNAVAILABLE}"
        return views, None

    async def _one(
        self, http: httpx.AsyncClient, record_id: str, execution_id: str, tenant: str
    ) -> RecordView:
        path = f"/v1/records/{quote(record_id, safe='')}"
        answer = await http.get(path)
        if answer.status_code == 404:
            return RecordView(record_id, problem="not found in the Workspace.")
        if answer.status_code != 200:
            return RecordView(record_id, problem=_UNAVAILABLE)
        ref = _json(answer)
        scope = ref.get("scope") if isinstance(ref, Mapping) else None
        scope = scope if isinstance(scope, Mapping) else {}
        if scope.get("execution_id") != execution_id and scope.get("tenant") != tenant:
            return RecordView(
                record_id, problem="not shown: it belongs to another execution, not this one."
            )
        read = await http.get(f"{path}/read", params={"offset": 0, "limit": PREVIEW_CHARS})
        if read.status_code != 200:
            return RecordView(record_id, ref=ref, problem="its content could not be read.")
        body = _json(read)
        body = body if isinstance(body, Mapping) else {}
        return RecordView(
            record_id, ref=ref, content=body.get("data"), more=bool(body.get("has_more"))
        )


_UNAVAILABLE = "the Workspace service refused or failed the request."


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None
