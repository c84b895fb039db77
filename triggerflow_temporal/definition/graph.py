"""Definition room: the graph of one flow and its name registries.

:class:`FlowGraph` stores what a flow definition is made of, the way Agently's
``trigger_flow/v1`` config records it: operators (each listening to signals and emitting
signals), the chunks they run, the chunk and condition handlers registered by name, the
sub-flows, and the config's ``meta``. The builder (processes), the compiler, the flow-config
import/export and blueprints read it through its read-only views and change it only
through its methods.

:class:`GraphOwner` is a named flow owning a graph: :class:`~.builder.FlowBuilder`
extends it. The process modules sit below the builder (the builder creates processes), so
they tell a sub-flow from a chunk with ``isinstance(x, GraphOwner)``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .._errors import FlowDefinitionError
from ..spec.flow_spec import ExecuteIn
from .chunk import TriggerFlowChunk, callable_name, callable_origin, same_callable
from .ids import make_signal, merge_signals

if TYPE_CHECKING:
    from .builder import FlowBuilder


class GraphOwner:
    """A named flow that owns a :class:`FlowGraph`.

    Args:
        name: The flow name; also the Temporal workflow type.
    """

    def __init__(self, name: str) -> None:
        self.name: str = name
        self._graph = FlowGraph(self)

    @property
    def graph(self) -> FlowGraph:
        """The flow's operators, chunks, handler registries and sub-flows."""
        return self._graph


class FlowGraph:
    """The operators, chunks, handler registries and sub-flows of one flow.

    Args:
        owner: The flow this graph belongs to (its name goes into error messages).
    """

    def __init__(self, owner: GraphOwner) -> None:
        self._owner = owner
        self._operators: dict[str, dict[str, Any]] = {}
        # Keyed by chunk name; an anonymous chunk (a lambda) by "<name>#<id>", so it never
        # shadows a named one and the compiler can still find it (to reject it).
        self._chunks: dict[str, TriggerFlowChunk] = {}
        self._chunk_registry: dict[str, Callable[..., Any]] = {}
        self._condition_registry: dict[str, Callable[..., Any]] = {}
        self._sub_flows: dict[str, FlowBuilder] = {}
        self._meta: dict[str, Any] = {}
        self._root_counts: dict[str, int] = {}
        # Bumped by every change made through this class (and by touch()): the flow's
        # compiled spec is cached until it moves (FlowBuilder.compile, revision_key).
        self._revision = 0

    # ------------------------------------------------------------------ revisions
    def touch(self) -> None:
        """Mark the graph changed: the next ``compile()`` of its flow compiles again.

        Every method of this class that changes the graph calls it; a builder that edits a
        live operator record in place (a match route gaining a case) calls it too.
        """
        self._revision += 1

    def revision_key(self, _seen: tuple[int, ...] = ()) -> tuple[Any, ...]:
        """What the compiled spec of this graph depends on, as comparable revisions.

        The graph's own revision, each chunk's (``TriggerFlowChunk.options`` changes a
        chunk in place) and each sub-flow's graph, recursively. Cheap next to a compile.
        """
        if id(self) in _seen:
            return ("cycle", id(self))
        seen = (*_seen, id(self))
        return (
            id(self),
            self._revision,
            tuple((id(c), c.revision) for c in self._chunks.values()),
            tuple(
                (name, flow.name, flow.graph.revision_key(seen))
                for name, flow in self._sub_flows.items()
            ),
        )

    # ------------------------------------------------------------ read-only views
    @property
    def operators(self) -> Mapping[str, dict[str, Any]]:
        """Operator records by id, in wiring order.

        The mapping is read-only; the records are the live ones (a match route gains its
        cases in place while the builder adds them).
        """
        return MappingProxyType(self._operators)

    @property
    def chunks(self) -> Mapping[str, TriggerFlowChunk]:
        """Every chunk by key: its name, or ``"<name>#<id>"`` for an anonymous one."""
        return MappingProxyType(self._chunks)

    @property
    def chunk_handlers(self) -> Mapping[str, Callable[..., Any]]:
        """Chunk handlers registered by name (``register_chunk_handler``)."""
        return MappingProxyType(self._chunk_registry)

    @property
    def conditions(self) -> Mapping[str, Callable[..., Any]]:
        """Condition handlers by name; an anonymous one under ``"<lambda>#<hex>"``."""
        return MappingProxyType(self._condition_registry)

    @property
    def sub_flows(self) -> Mapping[str, FlowBuilder]:
        """Flows run by ``to_sub_flow``, by flow name."""
        return MappingProxyType(self._sub_flows)

    @property
    def meta(self) -> Mapping[str, Any]:
        """The ``meta`` of the last imported flow config (exported as it is)."""
        return MappingProxyType(self._meta)

    # ---------------------------------------------------------------- registries
    def make_chunk(
        self,
        handler: Callable[..., Any],
        *,
        name: str | None,
        execute_in: ExecuteIn = "activity",
        activity_config: Mapping[str, Any] | None = None,
        reads_state: Sequence[str] | None = None,
    ) -> TriggerFlowChunk:
        """Return the chunk named ``name`` (default: the handler's name), creating it.

        ``reads_state`` (None: not given) replaces an existing chunk's declaration.

        Raises:
            FlowDefinitionError: ``handler`` is not callable, or another handler already
                has this chunk name.
        """
        if isinstance(handler, TriggerFlowChunk):
            return handler
        if not callable(handler):
            raise FlowDefinitionError(f"A chunk handler must be callable, got {handler!r}.")
        chunk_name = name if name is not None else callable_name(handler)
        anonymous = False
        if chunk_name is None or chunk_name == "<lambda>":
            # Kept runnable in the builder (as natively) but rejected by the compiler.
            chunk_name = chunk_name or "<anonymous>"
            anonymous = True
        existing = self._chunks.get(chunk_name)
        if existing is not None and not anonymous:
            if not same_callable(existing.handler, handler):
                raise FlowDefinitionError(
                    f"Flow '{self._owner.name}': chunk name '{chunk_name}' is already bound to "
                    f"{callable_origin(existing.handler)}, and {callable_origin(handler)} "
                    f"has the same name. Chunk names are activity names, so they must be "
                    f"unique: give one an explicit name, e.g. flow.to(fn, name='{chunk_name}_2') "
                    f"or @flow.chunk('{chunk_name}_2')."
                )
            if activity_config or execute_in != "activity":
                existing.options(execute_in=execute_in, **dict(activity_config or {}))
            if reads_state is not None:
                existing.options(reads_state=reads_state)
            return existing
        chunk = TriggerFlowChunk(
            handler,
            name=chunk_name,
            execute_in=execute_in,
            activity_config=activity_config,
            reads_state=reads_state,
            anonymous=anonymous,
        )
        if anonymous:
            self._chunks[f"{chunk_name}#{chunk.id}"] = chunk
        else:
            self._chunks[chunk_name] = chunk
        self.touch()
        return chunk

    def resolve_chunk(self, chunk: Any, *, name: str | None = None) -> TriggerFlowChunk:
        """The chunk for what a builder method was given.

        Args:
            chunk: A callable, a chunk, a chunk name (or registered handler name) or a
                ``("name", handler)`` tuple.
            name: Explicit chunk name for a callable.

        Raises:
            FlowDefinitionError: An unknown name, a malformed tuple or a non-callable.
        """
        if isinstance(chunk, TriggerFlowChunk):
            if chunk.name in self._chunks and self._chunks[chunk.name] is not chunk:
                return self.make_chunk(chunk.handler, name=chunk.name)
            if chunk.name not in self._chunks:
                self._chunks[chunk.name] = chunk
                self.touch()
            return chunk
        if isinstance(chunk, str):
            if chunk in self._chunks:
                return self._chunks[chunk]
            if chunk in self._chunk_registry:
                return self.make_chunk(self._chunk_registry[chunk], name=chunk)
            raise FlowDefinitionError(
                f"Flow '{self._owner.name}' has no chunk named '{chunk}'. Known chunks: "
                f"{sorted(k for k in self._chunks if '#' not in k)}."
            )
        if isinstance(chunk, tuple):
            if len(chunk) != 2 or not isinstance(chunk[0], str) or not callable(chunk[1]):
                raise FlowDefinitionError(
                    f"A chunk tuple must be ('name', handler), got {chunk!r}."
                )
            return self.make_chunk(chunk[1], name=chunk[0])
        if callable(chunk):
            return self.make_chunk(chunk, name=name)
        raise FlowDefinitionError(
            f"Flow '{self._owner.name}': cannot use {chunk!r} as a chunk; pass a function, a "
            "chunk, a chunk name or a ('name', function) tuple."
        )

    def register_chunk_handler(
        self, handler: Callable[..., Any], name: str | None = None
    ) -> Callable[..., Any]:
        """Register a chunk handler under ``name`` (default: its ``__name__``)."""
        return self._register(self._chunk_registry, "chunk", handler, name)

    def register_condition_handler(
        self, handler: Callable[..., Any], name: str | None = None
    ) -> Callable[..., Any]:
        """Register a condition handler under ``name`` (default: its ``__name__``)."""
        return self._register(self._condition_registry, "condition", handler, name)

    def _register(
        self,
        registry: dict[str, Callable[..., Any]],
        kind: str,
        handler: Callable[..., Any],
        name: str | None,
    ) -> Callable[..., Any]:
        if not callable(handler):
            raise FlowDefinitionError(f"A {kind} handler must be callable, got {handler!r}.")
        key = name or callable_name(handler)
        if not key or key == "<lambda>":
            raise FlowDefinitionError(
                f"Cannot register a {kind} handler without a name ({handler!r}); pass name=."
            )
        existing = registry.get(key)
        if existing is not None and not same_callable(existing, handler):
            raise FlowDefinitionError(
                f"Flow '{self._owner.name}': {kind} handler name '{key}' is already bound to "
                f"{callable_origin(existing)}; register {callable_origin(handler)} under "
                "another name."
            )
        registry[key] = handler
        self.touch()
        return handler

    def name_condition(self, condition: Callable[..., Any]) -> str:
        """Register a ``case()`` condition under its function name; return the name.

        Raises:
            FlowDefinitionError: Another function already has this condition name.
        """
        name = callable_name(condition)
        if name is None or name == "<lambda>":
            # Anonymous conditions are kept under a unique key; the compiler rejects them.
            key = f"<lambda>#{uuid.uuid4().hex[:8]}"
            self._condition_registry[key] = condition
            self.touch()
            return key
        existing = self._condition_registry.get(name)
        if existing is not None and not same_callable(existing, condition):
            raise FlowDefinitionError(
                f"Flow '{self._owner.name}': condition name '{name}' is already bound to "
                f"{callable_origin(existing)}, and {callable_origin(condition)} has the same "
                "name. Rename one of them, or register it with "
                "flow.register_condition_handler(fn, name=...) and use a distinct name."
            )
        self._condition_registry[name] = condition
        self.touch()
        return name

    # --------------------------------------------------------------- graph store
    def next_root_id(self, signal_id: str) -> str:
        """The id of a new root chain on ``signal_id`` (``when()``, ``START``).

        The first chain on a signal is named after it, the next ones ``"<id>#<n>"``, so
        ``collect`` ids (derived from the root) stay stable across builds.
        """
        count = self._root_counts.get(signal_id, 0)
        self._root_counts[signal_id] = count + 1
        return signal_id if count == 0 else f"{signal_id}#{count}"

    def add_operator(self, **operator: Any) -> dict[str, Any]:
        """Add an operator record (or merge into the one with its id); return the record."""
        record = {
            "id": operator["id"],
            "kind": operator["kind"],
            "name": operator["name"],
            "listen_signals": copy.deepcopy(operator.get("listen_signals", [])),
            "emit_signals": copy.deepcopy(operator.get("emit_signals", [])),
            "options": copy.deepcopy(operator.get("options", {})),
            "handler_ref": operator.get("handler_ref"),
            "condition_ref": operator.get("condition_ref"),
            "group_id": operator.get("group_id"),
            "group_kind": operator.get("group_kind"),
            "parent_group_id": operator.get("parent_group_id"),
            "parent_group_kind": operator.get("parent_group_kind"),
        }
        existing = self._operators.get(record["id"])
        self.touch()
        if existing is not None:
            # Identical wiring is idempotent; extra listen signals merge (a chunk that
            # several triggers feed).
            merge_signals(existing["listen_signals"], record["listen_signals"])
            return existing
        self._operators[record["id"]] = record
        return record

    def attach_chunk(
        self,
        chunk: TriggerFlowChunk,
        listen_signals: list[dict[str, Any]],
        **group: Any,
    ) -> None:
        """Add the operator that runs ``chunk`` when one of ``listen_signals`` fires."""
        emit = [make_signal("event", chunk.trigger, role="continuation")]
        emit.extend(make_signal("event", e, role="declared_emit") for e in chunk.declared_emits)
        self.add_operator(
            id=chunk.id,
            kind="chunk",
            name=chunk.name,
            listen_signals=listen_signals,
            emit_signals=emit,
            options={},
            handler_ref={"kind": "registered", "name": chunk.name},
            **group,
        )

    def add_sub_flow(self, flow: FlowBuilder) -> None:
        """Record ``flow`` as the sub-flow named ``flow.name``."""
        self._sub_flows[flow.name] = flow
        self.touch()

    def install(
        self,
        *,
        operators: Mapping[str, dict[str, Any]],
        chunks: Mapping[str, TriggerFlowChunk],
        sub_flows: Mapping[str, FlowBuilder],
        chunk_handlers: Mapping[str, Callable[..., Any]] | None = None,
        conditions: Mapping[str, Callable[..., Any]] | None = None,
        meta: Mapping[str, Any] | None = None,
        replace: bool = True,
    ) -> None:
        """Install a loaded graph (a flow config or a blueprint).

        Args:
            operators: Operator records by id (installed as given, not copied).
            chunks: Chunks by key (see :attr:`chunks`).
            sub_flows: Sub-flows by name.
            chunk_handlers: When given, replaces the chunk-handler registry.
            conditions: When given, replaces the condition registry.
            meta: When given, replaces the config ``meta``.
            replace: Replace operators, chunks and sub-flows (True), or add to them
                (an operator with a known id replaces that one: check first).
        """
        if replace:
            self._operators = dict(operators)
            self._chunks = dict(chunks)
            self._sub_flows = dict(sub_flows)
        else:
            self._operators.update(operators)
            self._chunks.update(chunks)
            self._sub_flows.update(sub_flows)
        if chunk_handlers is not None:
            self._chunk_registry = dict(chunk_handlers)
        if conditions is not None:
            self._condition_registry = dict(conditions)
        if meta is not None:
            self._meta = copy.deepcopy(dict(meta))
        self.touch()
