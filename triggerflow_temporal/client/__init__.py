"""Client: the caller side of an execution.

:class:`~.execution.TriggerFlowExecution` (start, emit, continue_with, queries, close),
save/load/fork/history (``persistence``), the runtime stream reader, worker checks and the
rebuilding of typed errors from workflow failures. Imports every room below it; imported by
the public package, the cli and the gateway.
"""
