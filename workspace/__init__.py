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

Layers, each importing only the ones below it (``.importlinter-workspace`` checks this):

* ``__main__`` (CLI) and ``factory`` (``open_workspace``);
* ``http``: ``wire`` (the HTTP contract), ``guard``, ``service``, ``client``;
* ``storage``: ``base`` (the contract implemented once), ``memory``, ``sql/``;
* the contract: ``contract`` (``BaseWorkspace``, ``BoundWorkspace``), ``context``, ``query``,
  ``paging``, ``validation``, ``types``, ``errors``.
"""

from workspace import errors
from workspace.contract import BaseWorkspace
from workspace.factory import open_workspace
from workspace.http.client import WorkspaceClient
from workspace.storage.memory import MemoryWorkspace
from workspace.storage.sql.store import SQLWorkspace
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
