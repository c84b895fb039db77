"""Plugin: wiring flows into Temporal workers and clients.

:class:`~.plugin.TriggerFlowPlugin` (workflows, activities, data converter, sandbox
passthrough, interceptors), the runtime event hub, tracing and the Workspace binding.
Imports the rooms below it (spec, definition, interpreter, chunk); imported by the client,
the cli, the gateway and :mod:`triggerflow_temporal.testing`.
"""
