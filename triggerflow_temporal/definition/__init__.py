"""Definition: building a flow and compiling it to a :class:`~..spec.FlowSpec` (pure).

The builder (``TriggerFlow`` / ``TriggerFlowProcess`` operators), the compiler, blueprint
export and import (``flow_config``) and the Agently importer. No Temporal worker or client
code runs here. Imports only :mod:`..spec`; imported by the interpreter, chunk, plugin,
client and cli rooms.
"""
