"""Spec: the contracts every other room shares, without behaviour of their own.

The compiled flow (:class:`FlowSpec`), the wire types between client, workflow and activity
(``WorkflowInput``, requests, update/query/signal names, the runtime version), failure
details, payload limits, search attributes and the pure state-path helpers. Importing only
the standard library, Temporal's types and :mod:`triggerflow_temporal._errors`; every other
room may import it. Changing a name or shape here changes recorded histories.
"""
