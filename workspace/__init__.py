"""Workspace: a SQL-backed store for artifacts, decisions, links, checkpoints and context packs.

Long, reviewable, cross-turn material goes to the Workspace; execution state keeps only refs::

    async with open_workspace("workspace.db") as ws:
        ref = await ws.ingest(report_text, collection="artifacts", kind="report")
        state["report"] = ref.id
        pack = await ws.build_context("summarize the findings", budget={"tokens": 2000})

Backends share one contract, :class:`BaseWorkspace`: :class:`MemoryWorkspace`,
:class:`SQLWorkspace` (SQLite or PostgreSQL) and :class:`WorkspaceClient` (HTTP service,
``python -m workspace serve``). Errors live in :mod:`workspace.errors`; value types in
:mod:`workspace.types`.
"""

from workspace import errors
from workspace._factory import open_workspace
from workspace.base import BaseWorkspace
from workspace.client import WorkspaceClient
from workspace.memory import MemoryWorkspace
from workspace.sql import SQLWorkspace
from workspace.types import ContextPack, Link, Profile, RecordRef

__all__ = [
    "BaseWorkspace",
    "ContextPack",
    "Link",
    "MemoryWorkspace",
    "Profile",
    "RecordRef",
    "SQLWorkspace",
    "WorkspaceClient",
    "errors",
    "open_workspace",
]
