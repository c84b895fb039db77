"""Execution-only event handlers (``execution.on`` / ``off``): what a binding records.

Natively (Agently 4.1.4.10) ``execution.on(event, handler, binding_id=...)`` adds a
handler to one execution, outside the flow's graph and fingerprint; durable bindings need
a named callable (a lambda is a ``ValueError``) and are saved in ``signal_net.bindings``.
On Temporal the handler runs on a worker as an activity, so it must be importable there
and registered with ``TriggerFlowPlugin(event_handlers=[handler, ...])``, under
:func:`handler_key` (``module.qualname``).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any

TRIGGER_TYPES = ("event", "runtime_data")


def handler_key(handler: Callable[..., Any]) -> str:
    """The name a worker registers ``handler`` under and a binding refers to it by."""
    return f"{handler.__module__}.{handler.__qualname__}"


def _where(handler: Any) -> str:
    try:
        return f"{inspect.getsourcefile(handler)}:{inspect.getsourcelines(handler)[1]}"
    except (OSError, TypeError):
        return "?"


def check_event_handler(handler: Any) -> None:
    """Refuse what a worker cannot look up by name (Agently's text for a lambda).

    Raises:
        ValueError: A lambda, a nested function, a callable without a name, or one
            defined in ``__main__``.
    """
    qualname = getattr(handler, "__qualname__", None)
    module = getattr(handler, "__module__", None)
    if not callable(handler) or not qualname or not module:
        raise ValueError(
            f"TriggerFlow dynamic event handler must be a recoverable handler ref; got {handler!r}."
        )
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise ValueError(
            "TriggerFlow dynamic event handler must be a recoverable handler ref; got "
            f"{qualname}@{_where(handler)}."
        )
    if module == "__main__":
        raise ValueError(
            f"TriggerFlow dynamic event handler {qualname!r} is defined in __main__, which a "
            "worker cannot import: define it in a module and register it on the worker with "
            "TriggerFlowPlugin(event_handlers=[...])."
        )


def binding_record(
    trigger_event: str,
    handler: Any,
    *,
    trigger_type: str = "event",
    binding_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    durable: bool = True,
) -> dict[str, Any]:
    """Agently's ``signal_net.bindings`` record for ``execution.on(...)``.

    Raises:
        ValueError: A handler a worker cannot look up, ``durable=False``, or a trigger
            type other than ``event`` / ``runtime_data``.
        TypeError: ``trigger_event`` or ``binding_id`` is not a non-empty string.
    """
    if not isinstance(trigger_event, str) or not trigger_event:
        raise TypeError(f"execution.on() takes an event name string, got {trigger_event!r}.")
    if binding_id is not None and (not isinstance(binding_id, str) or not binding_id):
        raise TypeError(
            f"execution.on(binding_id=...) takes a non-empty string, got {binding_id!r}."
        )
    if trigger_type not in TRIGGER_TYPES:
        raise ValueError(
            f"execution.on(trigger_type={trigger_type!r}) is not supported on Temporal: use "
            "'event' or 'runtime_data' (flow_data is worker-local, not durable)."
        )
    if not durable:
        raise ValueError(
            "execution.on(durable=False) is not supported on Temporal: every binding lives "
            "in the execution's workflow and runs on a worker, so it is durable."
        )
    check_event_handler(handler)
    binding_id = binding_id or uuid.uuid4().hex
    return {
        "binding_id": binding_id,
        "trigger_type": trigger_type,
        "trigger_event": trigger_event,
        "handler_ref": {
            "kind": "registered",
            "name": binding_id,
            "callable_name": handler.__name__,
            "module": handler.__module__,
            "qualname": handler.__qualname__,
        },
        "metadata": dict(metadata or {}),
        "status": "active",
    }
