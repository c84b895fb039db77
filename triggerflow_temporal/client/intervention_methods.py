"""The intervention methods of :class:`~.execution.TriggerFlowExecution` (caller side).

A mixin, like :mod:`.stream_methods`, so the execution handle keeps one concern per module.
"""

from __future__ import annotations

from typing import Any

from ..interpreter.interventions import InterventionLedger
from ..spec import wire
from .calls import ExecutionCalls
from .checks import check_json


class InterventionMethods:
    """``async_intervene`` and the ledger's readers."""

    # Defined by TriggerFlowExecution.
    def _calls(self) -> ExecutionCalls:
        raise NotImplementedError

    async def _update(self, name: str, arg: Any) -> Any:
        raise NotImplementedError

    async def async_intervene(
        self,
        payload: Any,
        *,
        author: str | None = None,
        note: str | None = None,
        target: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append a ``pending`` intervention to the execution's ledger; returns its record.

        Raises:
            RuntimeError: Interventions are disabled (``intervention_mode=None``) or the
                execution is not open (Agently's messages).
        """
        check_json("intervention payload", payload)
        check_json("intervention metadata", metadata)
        return await self._update(
            wire.UPDATE_INTERVENE,
            wire.InterveneRequest(
                payload=payload, author=author, note=note, target=target, metadata=metadata
            ),
        )

    async def async_get_interventions(
        self,
        status: str | None = None,
        target: str | None = None,
        since_version: int | None = None,
    ) -> list[dict[str, Any]]:
        """Intervention records matching the filters, in creation order."""
        ledger = InterventionLedger()
        ledger.restore(await self._calls().query(wire.QUERY_INTERVENTIONS))
        return ledger.filtered(status=status, target=target, since_version=since_version)

    async def async_get_pending_interventions(
        self, target: str | None = None
    ) -> list[dict[str, Any]]:
        """Interventions not yet inserted."""
        return await self.async_get_interventions(status="pending", target=target)

    async def async_get_latest_intervention(self, default: Any = None, **filters: Any) -> Any:
        """The newest intervention matching ``filters``, or ``default``."""
        found = await self.async_get_interventions(**filters)
        return found[-1] if found else default
