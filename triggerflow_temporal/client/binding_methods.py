"""``execution.on()`` / ``off()``: execution-only event handlers (a mixin of the handle).

Natively (Agently 4.1.4.10, script 29) a binding is added to one execution, saved in the
snapshot's ``signal_net.bindings`` and, after ``load``, ``missing_handler`` unless the
loading execution registered the same ``binding_id`` with ``on()`` first. Here the handler
runs on a worker (``TriggerFlowPlugin(event_handlers=[...])``) as the activity
``"<flow>.on:<module>.<qualname>"``; the workflow holds the bindings (definition/bindings.py).

``on()`` / ``off()`` are synchronous, as natively, and act on the handle before it starts
or loads (the bindings go with the start or the load); on a started execution use
``async_on()`` / ``async_off()``, which update the workflow.
"""

from __future__ import annotations

import copy
from typing import Any

from ..definition.bindings import binding_record
from ..spec import wire
from ..spec.limits import MAX_BINDINGS

# Agently's resource key of a binding a load cannot restore.
MISSING_HANDLER_PREFIX = "dynamic_event_handler:"


class BindingMethods:
    """``on`` / ``off`` / ``async_on`` / ``async_off`` of :class:`TriggerFlowExecution`."""

    _started: bool
    _id: str
    _pending_bindings: dict[str, dict[str, Any]]

    async def _update(self, name: str, arg: Any) -> Any:
        raise NotImplementedError

    def _start_request(self, value: Any) -> dict[str, Any]:
        """The ``start`` update's argument: the value, and the bindings made before it."""
        if not self._pending_bindings:
            return {"value": value}
        return {"value": value, "bindings": list(self._pending_bindings.values())}

    def _not_started(self, call: str) -> None:
        if self._started:
            raise RuntimeError(
                f"Execution {self._id} has started: use `await execution.async_{call}(...)`, "
                f"which updates its workflow (`{call}()` acts before the start or the load)."
            )

    def on(
        self,
        trigger_event: str,
        handler: Any,
        *,
        trigger_type: str = "event",
        binding_id: str | None = None,
        handler_ref: Any = None,
        metadata: dict[str, Any] | None = None,
        durable: bool = True,
    ) -> str:
        """Add an execution-only handler before the start or load; its binding id.

        Raises:
            ValueError: A lambda (Agently's text) or another handler a worker cannot look
                up by name; ``durable=False``; a ``flow_data`` trigger.
            RuntimeError: The execution has started (use :meth:`async_on`).
        """
        self._not_started("on")
        if binding_id not in self._pending_bindings and len(self._pending_bindings) >= MAX_BINDINGS:
            raise ValueError(
                f"An execution holds at most {MAX_BINDINGS} execution.on() bindings; "
                "remove one with execution.off(binding_id) first."
            )
        record = _record(
            trigger_event, handler, trigger_type, binding_id, handler_ref, metadata, durable
        )
        self._pending_bindings[record["binding_id"]] = record
        return record["binding_id"]

    def off(
        self,
        binding_id: str,
        *,
        trigger_type: str | None = None,
        trigger_event: str | None = None,
    ) -> bool:
        """Remove a handler added with :meth:`on` before the start; whether one matched."""
        self._not_started("off")
        record = self._pending_bindings.get(binding_id)
        if record is None or not _matches(record, trigger_type, trigger_event):
            return False
        del self._pending_bindings[binding_id]
        return True

    async def async_on(
        self,
        trigger_event: str,
        handler: Any,
        *,
        trigger_type: str = "event",
        binding_id: str | None = None,
        handler_ref: Any = None,
        metadata: dict[str, Any] | None = None,
        durable: bool = True,
    ) -> str:
        """:meth:`on`, also on a started execution (an update of its workflow)."""
        if not self._started:
            return self.on(
                trigger_event,
                handler,
                trigger_type=trigger_type,
                binding_id=binding_id,
                handler_ref=handler_ref,
                metadata=metadata,
                durable=durable,
            )
        record = _record(
            trigger_event, handler, trigger_type, binding_id, handler_ref, metadata, durable
        )
        return await self._update(wire.UPDATE_BIND, {"action": "on", "record": record})

    async def async_off(
        self,
        binding_id: str,
        *,
        trigger_type: str | None = None,
        trigger_event: str | None = None,
    ) -> bool:
        """:meth:`off`, also on a started execution; whether a binding matched."""
        if not self._started:
            return self.off(binding_id, trigger_type=trigger_type, trigger_event=trigger_event)
        return bool(
            await self._update(
                wire.UPDATE_BIND,
                {
                    "action": "off",
                    "binding_id": binding_id,
                    "trigger_type": trigger_type,
                    "trigger_event": trigger_event,
                },
            )
        )


def _record(
    trigger_event: str,
    handler: Any,
    trigger_type: str,
    binding_id: str | None,
    handler_ref: Any,
    metadata: dict[str, Any] | None,
    durable: bool,
) -> dict[str, Any]:
    if handler_ref is not None:
        raise TypeError(
            "execution.on(handler_ref=...) is not supported on Temporal: pass the handler "
            "itself; the worker finds it by its module and qualname (TriggerFlowPlugin("
            "event_handlers=[...]))."
        )
    return binding_record(
        trigger_event,
        handler,
        trigger_type=trigger_type,
        binding_id=binding_id,
        metadata=metadata,
        durable=durable,
    )


def _matches(record: dict[str, Any], trigger_type: str | None, trigger_event: str | None) -> bool:
    return (trigger_type is None or record["trigger_type"] == trigger_type) and (
        trigger_event is None or record["trigger_event"] == trigger_event
    )


def loaded_bindings(
    saved: dict[str, Any], registered: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The bindings a load restores, and the resource keys of the missing handlers.

    A saved binding whose id the loading handle registered with :meth:`on` takes that
    registration (active); the others are ``missing_handler`` (they do not listen), as
    natively. Bindings registered but not saved are added as well.

    Raises:
        ValueError: A saved binding record without the keys Agently writes.
    """
    saved_records = (saved.get("signal_net") or {}).get("bindings") or []
    restored: list[dict[str, Any]] = []
    missing: list[str] = []
    seen: set[str] = set()
    for record in saved_records:
        if not isinstance(record, dict) or not isinstance(record.get("binding_id"), str):
            raise ValueError(f"Snapshot signal_net.bindings has a malformed record: {record!r}.")
        binding_id = record["binding_id"]
        seen.add(binding_id)
        if binding_id in registered:
            restored.append(copy.deepcopy(registered[binding_id]))
            continue
        restored.append({**copy.deepcopy(record), "status": "missing_handler"})
        missing.append(f"{MISSING_HANDLER_PREFIX}{binding_id}")
    restored.extend(copy.deepcopy(record) for key, record in registered.items() if key not in seen)
    return restored, missing
