"""Definition: building a flow and compiling it to a :class:`~..spec.FlowSpec` (pure).

The builder (``builder.FlowBuilder``, whose processes are ``process.TriggerFlowProcess``),
its graph (``graph``), chunks (``chunk``), the compiler (``compile``), flow-config export
and import (``flow_config``), blueprints and the Agently importer (``agently_import``,
``agently_ids``). No Temporal worker or client code runs here. Imports only :mod:`..spec`
and :mod:`.._errors`; imported by the interpreter, chunk, plugin, client and cli rooms. The
public ``TriggerFlow`` (``client/flow.py``) adds the running methods to ``FlowBuilder``.
"""
