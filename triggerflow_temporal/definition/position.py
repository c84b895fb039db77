"""Definition room: a builder position (the state every process operator starts from).

A process is an immutable position in the graph being built: the signals the next operator
listens to, the block it sits in (a chain's root, a ``for_each`` or ``match`` body) and the
group its operators belong to. :class:`ProcessBase` holds that state; the operators are
added by :class:`~.branching.BranchingProcess` (blocks) and
:class:`~.process.TriggerFlowProcess` (everything else).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .._errors import FlowDefinitionError
from .chunk import TriggerFlowChunk
from .graph import FlowGraph, GraphOwner
from .ids import TriggerType, make_signal

if TYPE_CHECKING:
    from typing_extensions import Self


class Block:
    """Builder scope: the root of a chain or a for_each/match body.

    Args:
        outer: The enclosing block (None for a chain's root).
        data: What the block's operators share (its ids, the branches seen so far).
    """

    def __init__(self, outer: Block | None = None, data: dict[str, Any] | None = None) -> None:
        self.outer = outer
        self.data: dict[str, Any] = data if data is not None else {}

    def root(self) -> Block:
        """The chain's root block."""
        block = self
        while block.outer is not None:
            block = block.outer
        return block


class Keep:
    """Sentinel for :meth:`ProcessBase._new`: keep the current process's group."""


def check_concurrency(operator: str, concurrency: int | None) -> None:
    """Reject a ``concurrency=`` that is not None or a non-negative int."""
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0
    ):
        raise FlowDefinitionError(
            f"{operator}(concurrency={concurrency!r}) must be None or a non-negative int."
        )


class ProcessBase:
    """An immutable builder position: "the trigger the next operator listens to".

    Calling builder methods on the same process more than once branches the graph.

    Args:
        flow: The flow being built.
        trigger_event: The event the next operator listens to.
        block: The block the position is in.
        trigger_type: The trigger type of that event.
        signals: The listen signals (default: the one for ``trigger_event``).
        group_id: The batch/for_each/match group new operators join.
        group_kind: That group's kind.
    """

    def __init__(
        self,
        *,
        flow: GraphOwner,
        trigger_event: str,
        block: Block,
        trigger_type: TriggerType = "event",
        signals: list[dict[str, Any]] | None = None,
        group_id: str | None = None,
        group_kind: str | None = None,
    ) -> None:
        self._flow = flow
        self.trigger_event = trigger_event
        self.trigger_type: TriggerType = trigger_type
        self._block = block
        self._signals = (
            copy.deepcopy(signals)
            if signals is not None
            else [make_signal(trigger_type, trigger_event)]
        )
        self._group_id = group_id
        self._group_kind = group_kind

    @classmethod
    def root(cls, flow: GraphOwner, signal: dict[str, Any]) -> Self:
        """A new root chain of ``flow`` listening to ``signal`` (``START`` or a ``when``)."""
        root_id = flow.graph.next_root_id(signal["id"])
        return cls(
            flow=flow,
            trigger_event=signal["trigger_event"],
            trigger_type=signal["trigger_type"],
            block=Block(data={"root_id": root_id}),
            signals=[signal],
        )

    # ------------------------------------------------------------------ helpers
    @property
    def _graph(self) -> FlowGraph:
        return self._flow.graph

    def _new(
        self,
        trigger_event: str,
        *,
        block: Block | None = None,
        trigger_type: TriggerType = "event",
        signals: list[dict[str, Any]] | None = None,
        group_id: str | None | type[Keep] = None,
        group_kind: str | None | type[Keep] = None,
    ) -> Self:
        return type(self)(
            flow=self._flow,
            trigger_event=trigger_event,
            trigger_type=trigger_type,
            block=block if block is not None else self._block,
            signals=signals,
            group_id=self._group_id if group_id is Keep else group_id,  # type: ignore[arg-type]
            group_kind=self._group_kind if group_kind is Keep else group_kind,  # type: ignore[arg-type]
        )

    def _same_position(self) -> Self:
        """A copy of this position (what a ``side_branch`` returns: the chain goes on here)."""
        return self._new(
            self.trigger_event,
            trigger_type=self.trigger_type,
            signals=self._signals,
            group_id=Keep,
            group_kind=Keep,
        )

    def _parent_group(self) -> tuple[str | None, str | None]:
        if self._group_id is None:
            return None, None
        return (
            self._block.data.get("outer_group_id"),
            self._block.data.get("outer_group_kind"),
        )

    def _group_fields(self) -> dict[str, Any]:
        parent_id, parent_kind = self._parent_group()
        return {
            "group_id": self._group_id,
            "group_kind": self._group_kind,
            "parent_group_id": parent_id,
            "parent_group_kind": parent_kind,
        }

    def _resolve_trigger(self, trigger: Any) -> str:
        if isinstance(trigger, TriggerFlowChunk):
            return trigger.trigger
        chunks = self._graph.chunks
        if isinstance(trigger, str) and trigger in chunks:
            return chunks[trigger].trigger
        if not isinstance(trigger, str):
            raise TypeError(
                f"when() trigger must be an event name, a chunk or a chunk name, got {trigger!r}"
            )
        return trigger
