"""Interpreter: the workflow side, deterministic (no I/O, no wall clock, no threads).

:class:`~.workflow.TriggerFlowWorkflow` and its mixins (lifecycle, handlers, interrupts,
events, the runtime-version-3 scheduler host), the durable-queue :class:`~.scheduler.Scheduler`,
the legacy nested-await engine of runtime versions 1-2, carry bounds, snapshots and
interventions. Imports :mod:`..spec`, :mod:`..definition` types and the chunk room's wire
helpers; imported by the plugin (to register workflows) and the client (snapshot parsing,
ledger checks). Replay tests (tests/histories) prove its determinism.
"""
