"""Client room: the public ``TriggerFlow``, the definition room's builder plus running it.

:class:`~..definition.builder.FlowBuilder` builds, compiles, exports and imports a flow
without any Temporal client code; :class:`TriggerFlow` adds what needs the client room
(creating and attaching to executions) and the conversion of a live ``agently.TriggerFlow``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..definition.agently_import import from_agently, use_flow_class
from ..definition.builder import FlowBuilder
from .execution import TriggerFlowExecution

if TYPE_CHECKING:
    from typing_extensions import Self


class TriggerFlow(FlowBuilder):
    """A TriggerFlow definition that also runs (arguments: see :class:`FlowBuilder`).

    Building, compiling and exporting need no Temporal at all. The running methods reach
    Temporal through a client: ``client=``, or the client of the :class:`TriggerFlowPlugin`
    the flow was handed to.
    """

    @classmethod
    def from_agently(cls, flow: Any) -> Self:
        """Convert a live ``agently.TriggerFlow`` (needs the ``agently`` extra).

        Returns the flow :class:`TriggerFlowPlugin` serves for that agently object (the
        same object while its graph and handlers are unchanged): create executions from it.
        Ids are re-derived from structure and handler names, so the blueprint hash equals
        the same graph built with this class.

        Raises:
            FlowDefinitionError: agently is not installed, or a chunk or condition cannot
                be served (a lambda, two functions with one name, ``__main__``).
        """
        converted = from_agently(flow, cls)
        assert isinstance(converted, cls)  # from_agently builds (or finds) a cls
        return converted

    # -------------------------------------------------------------- running
    def create_execution(self, client: Any = None, **kwargs: Any) -> TriggerFlowExecution:
        """Create a client-side handle for a new execution; see :class:`TriggerFlowExecution`."""
        return TriggerFlowExecution(self, client=client, **kwargs)

    def get_execution(
        self, client: Any = None, execution_id: str | None = None
    ) -> TriggerFlowExecution:
        """Attach to an existing execution by id, from any process."""
        if not execution_id:
            raise ValueError("get_execution() needs execution_id=.")
        return TriggerFlowExecution.attach(self, client=client, execution_id=execution_id)

    async def async_start(self, value: Any = None, *, client: Any = None, **kwargs: Any) -> Any:
        """Run a hidden execution to its close and return the close snapshot."""
        kwargs.setdefault("auto_close_timeout", 0.0)
        execution = self.create_execution(client=client, auto_close=True, hidden=True, **kwargs)
        return await execution.async_start(value)

    async def async_start_execution(
        self, value: Any = None, *, client: Any = None, **kwargs: Any
    ) -> TriggerFlowExecution:
        """Create an execution, start it and return it."""
        kwargs.setdefault("auto_close", False)
        execution = self.create_execution(client=client, **kwargs)
        await execution.async_start(value)
        return execution


# The plugin converts the agently flows it is handed into this class (see use_flow_class).
use_flow_class(TriggerFlow)
