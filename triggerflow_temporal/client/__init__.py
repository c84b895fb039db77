"""Client: the caller side of an execution.

- ``flow``: the public ``TriggerFlow`` (the definition room's builder plus running it).
- ``execution``: :class:`~.execution.TriggerFlowExecution`, the handle (start, emit,
  continue_with, queries, interventions, save/load, close, the runtime stream).
- ``setup``: what a handle runs with (client, plugin, task queue, graph, options).
- ``calls``: the update/query/signal plumbing (retry when busy, settle, typed errors).
- ``errors``: typed errors rebuilt from workflow failures, never importing a module.
- ``checks``: values refused before they reach history (not JSON, too big).
- ``persistence`` / ``snapshots``: save, load, fork and history of executions.
- ``stream``: the runtime stream reader. ``worker_check``: calls nobody will answer.

Imports every room below it; imported by the public package, the cli and the gateway.
"""
