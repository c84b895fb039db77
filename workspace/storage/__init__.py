"""Storage layer: the backends that keep the data themselves.

* ``base``: :class:`~workspace.storage.base.StorageWorkspace`, the contract implemented once
  (argument checks, search preamble and cursors, links, prune, context selection) on top of a
  few storage primitives.
* ``records``, ``filters``: what is stored (ids, encoded content) and how it is filtered (tags).
* ``memory``: :class:`~workspace.storage.memory.MemoryWorkspace`, the reference implementation.
* ``sql``: :class:`~workspace.storage.sql.store.SQLWorkspace` on SQLite or PostgreSQL.

This layer imports the contract layer (``workspace.contract``, ``types``, ``errors`` ...) and
never ``workspace.http``.
"""
