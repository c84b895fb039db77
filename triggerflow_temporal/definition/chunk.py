"""Definition room: the chunk (a named handler node) and how handlers are named.

A chunk's name is its activity name on the worker (``"<flow>.<chunk>"``), so handler
naming rules live here: which callables count as the same handler, and how one is named
in error messages.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._errors import FlowDefinitionError
from ..spec.flow_spec import ACTIVITY_CONFIG_KEYS, EXECUTE_IN_VALUES, ExecuteIn
from ..spec.state import reads_state_problem
from .ids import digest


class _Keep(enum.Enum):
    KEEP = "keep"


# ``TriggerFlowChunk.options(reads_state=...)`` left out: the declaration is kept.
KEEP = _Keep.KEEP


def callable_name(fn: Callable[..., Any]) -> str | None:
    """The handler's ``__name__``, or None for a callable without one (a partial, ...)."""
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else None


def callable_origin(fn: Callable[..., Any]) -> str:
    """``"module.qualname"`` of a handler, for error messages."""
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{qualname}"


def same_callable(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    """Whether two handlers registered under one name are the same handler."""
    if a is b:
        return True
    # Re-running module-level wiring (e.g. an importlib.reload) yields new function
    # objects with the same code location; treat them as the same handler.
    return (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
        and "<locals>" not in (getattr(a, "__qualname__", "") or "")
        and "<lambda>" not in (getattr(a, "__qualname__", "") or "")
    )


class TriggerFlowChunk:
    """A named handler node of a flow graph.

    Its return value is emitted on its continuation event (``trigger``) and becomes the
    next chunk's ``data.input``.

    Attributes:
        name: The chunk name; also the activity name suffix (``"<flow>.<name>"``).
        id: ``"chunk-" + digest(name)``; stable across builds and files.
        trigger: The continuation event name, ``"Chunk[<name>]-<id>"``.
        execute_in: ``"activity"`` (default), ``"local_activity"`` or ``"workflow"``.
        activity_config: Per-chunk ``temporalio.workflow.ActivityConfig`` values.
        reads_state: The state paths the chunk reads (only those are sent to it), or None
            for the whole state (the default).
    """

    def __init__(
        self,
        handler: Callable[..., Any],
        *,
        name: str,
        execute_in: ExecuteIn = "activity",
        activity_config: Mapping[str, Any] | None = None,
        reads_state: Sequence[str] | None = None,
        anonymous: bool = False,
    ) -> None:
        self.name = name
        self.handler = handler
        self.anonymous = anonymous
        identity: dict[str, Any] = {"kind": "chunk", "name": name}
        if anonymous:
            identity["anonymous"] = uuid.uuid4().hex
        self.id = "chunk-" + digest(identity)
        self.trigger = f"Chunk[{name}]-{self.id}"
        self.execute_in: ExecuteIn = execute_in
        self.activity_config: dict[str, Any] = dict(activity_config or {})
        self.reads_state: list[str] | None = checked_reads_state(name, reads_state)
        self.declared_emits: list[str] = []
        # Bumped when options() or declare_emits() change the chunk in place (the compiled
        # spec of a flow using it is then stale: FlowGraph.revision_key).
        self.revision = 0
        _validate_chunk_options(name, execute_in, self.activity_config)

    def declare_emits(self, *events: str) -> TriggerFlowChunk:
        """Document extra events this chunk emits (Mermaid and flow config only)."""
        for event in events:
            if not isinstance(event, str):
                raise TypeError(
                    f"TriggerFlowChunk.declare_emits() only accepts string event names, got: "
                    f"{type(event)}"
                )
            if event not in self.declared_emits:
                self.declared_emits.append(event)
                self.revision += 1
        return self

    def options(
        self,
        *,
        execute_in: ExecuteIn | None = None,
        reads_state: Sequence[str] | None | _Keep = KEEP,
        **activity_config: Any,
    ) -> TriggerFlowChunk:
        """Change where and how this chunk runs; returns the chunk.

        Args:
            execute_in: ``"activity"``, ``"local_activity"`` or ``"workflow"``.
            reads_state: The state paths the chunk reads (only those are sent to it), or
                None to send the whole state again; left out, the declaration is kept.
            **activity_config: Keys of ``temporalio.workflow.ActivityConfig``.
        """
        merged = {**self.activity_config, **activity_config}
        new_execute_in = execute_in or self.execute_in
        _validate_chunk_options(self.name, new_execute_in, merged)
        new_reads = (
            self.reads_state
            if isinstance(reads_state, _Keep)
            else checked_reads_state(self.name, reads_state)
        )
        self.execute_in = new_execute_in
        self.activity_config = merged
        self.reads_state = new_reads
        self.revision += 1
        return self

    async def async_call(self, data: Any) -> Any:
        """Call the handler directly (sync or async), as Agently's chunk does."""
        result = self.handler(data)
        if hasattr(result, "__await__"):
            result = await result
        return result

    def __repr__(self) -> str:
        return f"TriggerFlowChunk(name={self.name!r}, execute_in={self.execute_in!r})"


def checked_reads_state(name: str, reads_state: Any) -> list[str] | None:
    """A chunk's ``reads_state`` as it is stored: a new list without duplicates, or None.

    Raises:
        TypeError: Not None, a list or a tuple, or an entry that is not a string.
        FlowDefinitionError: An empty key or one with an empty segment (``"a..b"``).
    """
    problem = reads_state_problem(reads_state)
    if problem is not None:
        message = (
            f"Chunk '{name}': reads_state {problem}. Declare the state keys the chunk "
            "reads, e.g. reads_state=['customer', 'order.total'] (dotted paths address "
            "nested values), reads_state=[] for none, or leave it out to send the whole "
            "state."
        )
        if isinstance(reads_state, (list, tuple)) and all(isinstance(p, str) for p in reads_state):
            raise FlowDefinitionError(message)
        raise TypeError(message)
    if reads_state is None:
        return None
    return list(dict.fromkeys(reads_state))


def _validate_chunk_options(name: str, execute_in: str, activity_config: Mapping[str, Any]) -> None:
    if execute_in not in EXECUTE_IN_VALUES:
        raise FlowDefinitionError(
            f"Chunk '{name}' has execute_in={execute_in!r}. Set it to 'activity', "
            "'local_activity' or 'workflow'."
        )
    unknown = sorted(set(activity_config) - ACTIVITY_CONFIG_KEYS)
    if unknown:
        raise FlowDefinitionError(
            f"Chunk '{name}' got unknown activity option(s) {unknown}. Allowed keys are the "
            "per-activity keys of temporalio.workflow.ActivityConfig: "
            f"{sorted(ACTIVITY_CONFIG_KEYS)}."
        )
