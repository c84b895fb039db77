"""``open_workspace``: pick the backend from a URL or path (top layer: storage or HTTP)."""

from __future__ import annotations

import os
from typing import Any

from workspace.contract import BaseWorkspace
from workspace.errors import InvalidInputError
from workspace.http.client import WorkspaceClient
from workspace.storage.memory import MemoryWorkspace
from workspace.storage.sql.store import SQLWorkspace


def open_workspace(
    target: str | os.PathLike[str],
    token: str | None = None,
    *,
    tenant: str = "default",
    **kwargs: Any,
) -> BaseWorkspace:
    """Create the right backend for a target; use it with ``async with`` (or ``setup()``).

    ``memory://`` gives a :class:`~workspace.storage.memory.MemoryWorkspace`; ``http(s)://`` a
    :class:`~workspace.http.client.WorkspaceClient` (the token selects the tenant); a file path,
    ``sqlite://``, ``sqlite+aiosqlite://``, ``postgresql://`` or ``postgresql+asyncpg://`` a
    :class:`~workspace.storage.sql.store.SQLWorkspace`.

    Args:
        target: URL or SQLite file path.
        token: Bearer token (HTTP only).
        tenant: Tenant for the library backends (ignored over HTTP, where the token decides).
        **kwargs: Passed to the backend's constructor.

    Returns:
        The backend, not yet set up.

    Raises:
        InvalidInputError: For an unsupported scheme, or a token given to a non-HTTP target.
    """
    text = os.fspath(target)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("http", "https"):
        return WorkspaceClient(text, token, **kwargs)
    if token is not None:
        raise InvalidInputError("token is only used with http(s):// workspace URLs")
    if scheme == "memory":
        return MemoryWorkspace(tenant=tenant, **kwargs)
    return SQLWorkspace(text, tenant=tenant, **kwargs)
