"""Example flows served by ``triggerflow-temporal dev`` and used by the README."""
