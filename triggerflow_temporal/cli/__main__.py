"""``python -m triggerflow_temporal.cli``: the same as the ``triggerflow-temporal`` command."""

from .main import main

main()
