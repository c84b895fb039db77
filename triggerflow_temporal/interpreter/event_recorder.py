"""Numbering and building the runtime events of one workflow run (workflow side).

Deterministic: ids come from the run id and a counter carried over continue-as-new, times
from ``workflow.now()``; nothing is built while a history is replayed. The worker's hub
(``plugin.events.EventHub``) delivers what it publishes.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from temporalio import workflow

from ..spec.events import EVENT_ID_NAMESPACE, EVENT_SOURCE, RuntimeEvent


class EventPublisher(Protocol):
    """The worker side of events, as the recorder sees it (``plugin.events.EventHub``)."""

    def wants(self, event_type: str) -> bool:
        """Whether a hook listens to ``event_type``."""
        ...

    def publish(self, event: RuntimeEvent) -> None:
        """Hand ``event`` to the hooks (called from the workflow thread)."""
        ...


class EventRecorder:
    """Numbers and builds the events of one workflow run (workflow code: deterministic).

    Args:
        hub: The worker's :class:`EventHub`, or None (nothing is delivered).
        execution_id: The workflow id.
        run_id: The Temporal run id (event ids are unique per run).
        flow_name: The flow name.
        tenant: The execution's tenant, for sinks that scope by tenant.
        seq: The last sequence number of the previous run (continue-as-new).
    """

    def __init__(
        self,
        hub: EventPublisher | None,
        *,
        execution_id: str,
        run_id: str,
        flow_name: str,
        tenant: str | None,
        seq: int = 0,
    ) -> None:
        self.hub = hub
        self.seq = seq
        self._execution_id = execution_id
        self._run_id = run_id
        self._flow_name = flow_name
        self._tenant = tenant

    def wants(self, event_type: str) -> bool:
        """Whether an event of this type would be delivered (cheap; no side effect)."""
        hub = self.hub
        return hub is not None and hub.wants(event_type)

    def emit(
        self,
        event_type: str,
        message: str,
        payload: Any = None,
        *,
        level: str = "INFO",
        error: dict[str, Any] | None = None,
        run: Callable[[], dict[str, Any]] | dict[str, Any] | None = None,
    ) -> None:
        """Record one occurrence of ``event_type``; deliver it unless replaying.

        The sequence number advances for every occurrence, delivered or not, so event ids
        do not depend on which hooks a worker has. ``payload`` and ``run`` may be zero-arg
        callables: they are only called when the event is delivered.
        """
        self.seq += 1
        hub = self.hub
        if hub is None or not hub.wants(event_type) or workflow.unsafe.is_replaying():
            return
        built = payload() if callable(payload) else payload
        context = run() if callable(run) else run
        seq = self.seq
        event = RuntimeEvent(
            event_id=uuid.uuid5(EVENT_ID_NAMESPACE, f"{self._run_id}:{seq}").hex,
            event_type=event_type,
            source=EVENT_SOURCE,
            level=level,
            message=message,
            # Copies: workflow state keeps changing while hooks run on the worker's loop.
            payload=copy.deepcopy(built),
            error=copy.deepcopy(error),
            run=copy.deepcopy(context) if context is not None else self.execution_run(),
            meta={
                "execution_id": self._execution_id,
                "flow_name": self._flow_name,
                "run_id": self._run_id,
                "seq": seq,
                "tenant": self._tenant,
            },
            timestamp=int(workflow.now().timestamp() * 1000),
        )
        hub.publish(event)

    def execution_run(self) -> dict[str, Any]:
        """The execution's run context (Agently's ``RunContext`` keys)."""
        return {
            "run_id": self._run_id,
            "run_kind": "workflow_execution",
            "parent_run_id": None,
            "execution_id": self._execution_id,
            "meta": {"flow_name": self._flow_name},
        }
