"""Definition room: :class:`TriggerFlowBlueprint`, a live copy of a flow's graph.

``flow.save_blueprint()`` returns one and ``flow.load_blueprint(bp)`` installs it, handlers
included (so, unlike a flow config, it is not serialisable).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .builder import FlowBuilder


class TriggerFlowBlueprint:
    """A copy of a flow's graph and live handlers (``save_blueprint()``).

    Args:
        flow: The flow to copy.

    Attributes:
        name: The name of the flow it was saved from.
        chunks: Its chunks by key.
    """

    def __init__(self, flow: FlowBuilder) -> None:
        graph = flow.graph
        self.name = flow.name
        # get_flow_config() builds a flow of the saved flow's own class.
        self._flow_class = type(flow)
        self._operators = copy.deepcopy(dict(graph.operators))
        self.chunks = dict(graph.chunks)
        self._chunk_registry = dict(graph.chunk_handlers)
        self._condition_registry = dict(graph.conditions)
        self._sub_flows = dict(graph.sub_flows)
        self._contract_metadata = flow.get_contract_metadata()

    def get_flow_config(self, name: str | None = None) -> dict[str, Any]:
        """Export this blueprint as a flow config."""
        flow = self._flow_class(name=name or self.name)
        self.apply_to(flow)
        return flow.get_flow_config()

    def apply_to(self, flow: FlowBuilder) -> None:
        """Install this blueprint's graph and handlers into ``flow``."""
        flow.graph.install(
            operators=copy.deepcopy(self._operators),
            chunks=self.chunks,
            sub_flows=self._sub_flows,
            chunk_handlers=self._chunk_registry,
            conditions=self._condition_registry,
        )
        # As natively: the contract travels as its description (nothing is checked).
        flow.load_contract_metadata(self._contract_metadata)
