"""Definition room: :class:`FlowBuilder`, the flow definition without the running methods.

Pure Python with no Temporal client or worker code: the builder entries (``to``,
``batch``, ``for_each``, ``match``, ``when``, ``collect``, ...) start chains at ``START``,
flow-level runtime resources and flow data live here, and it compiles, exports and imports
the graph. The public ``TriggerFlow`` (client room, ``client/flow.py``) extends it with
``create_execution`` and the other running methods.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import yaml

from .._errors import FlowDefinitionError
from ..spec.flow_spec import ExecuteIn, FlowSpec
from ..spec.state import get_path, set_path
from .blueprint import TriggerFlowBlueprint
from .chunk import TriggerFlowChunk
from .compile import compile_flow
from .contract import CONTRACT_UNSET, TriggerFlowContract, TriggerFlowContractSpec
from .flow_config import export_flow_config, import_flow_config, to_mermaid
from .graph import GraphOwner
from .ids import make_signal
from .process import TriggerFlowProcess

if TYPE_CHECKING:
    from typing_extensions import Self


class FlowBuilder(GraphOwner):
    """A TriggerFlow definition: chunks joined by ``to``/``batch``/``for_each``/... .

    The flow runs on Temporal through :class:`TriggerFlowPlugin`; building it needs no
    Temporal at all.

    Args:
        blueprint: Unsupported positional slot kept for Agently compatibility; use
            :meth:`load_blueprint` instead.
        name: The flow name; also the Temporal workflow type. Defaults to a uuid hex, as
            natively, but a worker and a client only meet on a stable name: set it.
        skip_exceptions: When True a chunk error is recorded and its branch stops, but the
            execution goes on and ends ``completed``.
    """

    def __init__(
        self,
        blueprint: Any = None,
        name: str | None = None,
        skip_exceptions: bool = False,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise FlowDefinitionError(f"TriggerFlow name must be a non-empty string, got {name!r}.")
        super().__init__(name if name is not None else uuid.uuid4().hex)
        self.skip_exceptions = skip_exceptions
        self._runtime_resources: dict[str, Any] = {}
        self._flow_data: dict[str, Any] = {}
        self._plugin: Any = None
        self._contract = TriggerFlowContract()
        # The contract section of a loaded flow config (described, not checked; as natively).
        self._contract_metadata: dict[str, Any] | None = None
        self._compiled: tuple[Any, FlowSpec] | None = None  # (revision key, spec): compile()
        self._start = TriggerFlowProcess.root(self, make_signal("event", "START"))
        if blueprint is not None:
            self.load_blueprint(blueprint)

    # ------------------------------------------------------------ registries
    def chunk(
        self,
        handler_or_name: Callable[..., Any] | str | None = None,
        *,
        name: str | None = None,
        execute_in: ExecuteIn = "activity",
        reads_state: Sequence[str] | None = None,
        **activity_config: Any,
    ) -> Any:
        """Create (and register) a chunk; usable as ``@flow.chunk`` or ``@flow.chunk("x")``.

        Args:
            handler_or_name: The handler, or the chunk name when used as a decorator factory.
            name: Explicit chunk name (defaults to the handler's ``__name__``).
            execute_in: ``"activity"`` (default), ``"local_activity"`` or ``"workflow"``.
            reads_state: The state keys the chunk reads (dotted paths such as
                ``"order.total"``): only those are sent to it, and reading another key
                raises :class:`StateNotSentError`. ``[]``: no state is sent. None
                (default): the whole state. An extension (Agently has no such option).
            **activity_config: Per-chunk ``temporalio.workflow.ActivityConfig`` keys
                (``start_to_close_timeout``, ``retry_policy``, ``summary``, ...).

        Returns:
            The :class:`TriggerFlowChunk`, or a decorator returning it.
        """
        if callable(handler_or_name):
            return self.graph.make_chunk(
                handler_or_name,
                name=name,
                execute_in=execute_in,
                activity_config=activity_config,
                reads_state=reads_state,
            )
        explicit = handler_or_name if isinstance(handler_or_name, str) else name

        def decorator(handler: Callable[..., Any]) -> TriggerFlowChunk:
            return self.graph.make_chunk(
                handler,
                name=explicit,
                execute_in=execute_in,
                activity_config=activity_config,
                reads_state=reads_state,
            )

        return decorator

    def register_chunk_handler(
        self, handler: Callable[..., Any], *, name: str | None = None
    ) -> Callable[..., Any]:
        """Register a handler under a name, for :meth:`load_flow_config`."""
        return self.graph.register_chunk_handler(handler, name)

    def register_condition_handler(
        self, handler: Callable[..., Any], *, name: str | None = None
    ) -> Callable[..., Any]:
        """Register a condition under a name, for :meth:`load_flow_config`."""
        return self.graph.register_condition_handler(handler, name)

    # -------------------------------------------------------------- contract
    def set_contract(
        self,
        *,
        initial_input: Any = CONTRACT_UNSET,
        stream: Any = CONTRACT_UNSET,
        result: Any = CONTRACT_UNSET,
        meta: Any = CONTRACT_UNSET,
    ) -> Self:
        """Declare the types of the start input, stream items and results (Agently's).

        Each part is a pydantic model, a Python type or a typing annotation; ``None``
        clears it, an omitted part stays. The client checks a start input before anything
        is sent; chunks check their stream items and ``set_result`` values. A failing
        value raises ``ValueError("TriggerFlow contract validation failed for ...")``; the
        validated value (coerced, as JSON data) is what travels on.

        Raises:
            TypeError: A part is not a type pydantic can validate.
        """
        self._contract.update(initial_input=initial_input, stream=stream, result=result, meta=meta)
        self._contract_metadata = None
        return self

    def get_contract(self) -> TriggerFlowContractSpec:
        """The contract's parts as given to :meth:`set_contract`."""
        return self._contract.spec()

    def get_contract_metadata(self) -> dict[str, Any]:
        """The flow config's ``contract`` section (labels and JSON schemas)."""
        if self._contract_metadata is not None:
            return copy.deepcopy(self._contract_metadata)
        return self._contract.export_metadata()

    @property
    def contract(self) -> TriggerFlowContract:
        """The contract values are checked against (empty after a flow config load)."""
        return self._contract

    def load_contract_metadata(self, metadata: Mapping[str, Any] | None) -> None:
        """Keep a loaded config's contract section; nothing is checked (as natively)."""
        self._contract = TriggerFlowContract()
        self._contract_metadata = copy.deepcopy(dict(metadata)) if metadata else None

    # -------------------------------------------------------- builder entries
    def to(
        self, chunk: Any, side_branch: bool = False, name: str | None = None, **kw: Any
    ) -> TriggerFlowProcess:
        """Attach a chunk to ``START``; see :meth:`TriggerFlowProcess.to`."""
        return self._start.to(chunk, side_branch=side_branch, name=name, **kw)

    def side_branch(self, chunk: Any, *, name: str | None = None) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.side_branch`."""
        return self._start.side_branch(chunk, name=name)

    def batch(
        self, *chunks: Any, side_branch: bool = False, concurrency: int | None = None
    ) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.batch`."""
        return self._start.batch(*chunks, side_branch=side_branch, concurrency=concurrency)

    def for_each(self, *, concurrency: int | None = None) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.for_each`."""
        return self._start.for_each(concurrency=concurrency)

    def match(self, *, mode: Literal["hit_first", "hit_all"] = "hit_first") -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.match`."""
        return self._start.match(mode=mode)

    def if_condition(self, condition: Any) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.if_condition`."""
        return self._start.if_condition(condition)

    def when(
        self, trigger: Any, *, mode: Literal["and", "or", "simple_or"] = "and"
    ) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.when`."""
        return self._start.when(trigger, mode=mode)

    def collect(
        self, collection_name: str, branch_id: str | None = None, **kw: Any
    ) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.collect`."""
        return self._start.collect(collection_name, branch_id, **kw)

    def to_sub_flow(self, trigger_flow: FlowBuilder, **kw: Any) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.to_sub_flow`."""
        return self._start.to_sub_flow(trigger_flow, **kw)

    def intervention_point(self, *, name: str, target: str | None = None) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.intervention_point`."""
        return self._start.intervention_point(name=name, target=target)

    def end(self) -> TriggerFlowProcess:
        """See :meth:`TriggerFlowProcess.end`."""
        return self._start.end()

    # ------------------------------------------------------- flow-level state
    def update_runtime_resources(self, mapping: Mapping[str, Any] | None = None, **kw: Any) -> Self:
        """Add flow-level live objects every execution's chunks can read (worker side)."""
        self._runtime_resources.update(dict(mapping or {}), **kw)
        return self

    def set_runtime_resource(self, key: str, value: Any) -> Self:
        """Set one flow-level runtime resource."""
        self._runtime_resources[key] = value
        return self

    def get_runtime_resource(self, key: str, default: Any = None) -> Any:
        """Return a flow-level runtime resource."""
        return self._runtime_resources.get(key, default)

    def del_runtime_resource(self, key: str) -> Self:
        """Remove a flow-level runtime resource."""
        self._runtime_resources.pop(key, None)
        return self

    @property
    def runtime_resources(self) -> Mapping[str, Any]:
        """All flow-level runtime resources (read-only; the worker hands them to chunks)."""
        return MappingProxyType(self._runtime_resources)

    def get_flow_data(self, key: str | None = None, default: Any = None, **_: Any) -> Any:
        """Flow-scoped data shared by executions in one worker process (not durable)."""
        return (
            copy.deepcopy(self._flow_data)
            if key is None
            else get_path(self._flow_data, key, default)
        )

    def set_flow_data(self, key: str, value: Any, **_: Any) -> None:
        """Set flow-scoped data (not durable; see :meth:`get_flow_data`)."""
        set_path(self._flow_data, key, value)

    def replace_flow_data(self, data: Mapping[str, Any]) -> Self:
        """Replace all flow-scoped data with a deep copy of ``data``."""
        self._flow_data = copy.deepcopy(dict(data))
        return self

    @property
    def flow_data(self) -> dict[str, Any]:
        """The live flow-scoped data dict: the worker's chunks of this flow share and change it."""
        return self._flow_data

    def bind_plugin(self, plugin: Any) -> None:
        """Remember the ``TriggerFlowPlugin`` this flow was handed to (the plugin calls it)."""
        self._plugin = plugin

    @property
    def bound_plugin(self) -> Any:
        """The ``TriggerFlowPlugin`` this flow was handed to, or None."""
        return self._plugin

    # ------------------------------------------------------------- compiling
    @property
    def chunks(self) -> dict[str, TriggerFlowChunk]:
        """Named chunks of this flow."""
        return {k: v for k, v in self.graph.chunks.items() if "#" not in k}

    def compile(self) -> FlowSpec:
        """Compile to a frozen :class:`FlowSpec`; raises :class:`FlowDefinitionError`.

        Compiled once and cached until the flow changes (its name, its graph, a chunk's
        options or a sub-flow: ``FlowGraph.revision_key``), so starting executions does
        not compile and hash the graph each time (bench/RESULTS.md, F7). The spec is
        shared: treat it as frozen.
        """
        key = (self.name, self.graph.revision_key())
        cached = getattr(self, "_compiled", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        spec = compile_flow(self)
        self._compiled = (key, spec)
        return spec

    @property
    def blueprint_hash(self) -> str:
        """sha256 of the canonical compiled spec (flow name left out)."""
        return self.compile().blueprint_hash

    def get_flow_config(self, *, validate_serializable: bool = True) -> dict[str, Any]:
        """Export Agently's ``trigger_flow/v1`` flow config."""
        return export_flow_config(self, validate_serializable=validate_serializable)

    def get_json_flow(self, save_to: str | None = None) -> str:
        """Export the flow config as JSON text (and write it to ``save_to``)."""
        return _saved(json.dumps(self.get_flow_config(), indent=2, ensure_ascii=False), save_to)

    def get_yaml_flow(self, save_to: str | None = None) -> str:
        """Export the flow config as YAML text (and write it to ``save_to``)."""
        text = yaml.safe_dump(self.get_flow_config(), sort_keys=False, allow_unicode=True)
        return _saved(text, save_to)

    def load_flow_config(self, config: Mapping[str, Any], *, replace: bool = True) -> Self:
        """Import a ``trigger_flow/v1`` config against this flow's name registries."""
        import_flow_config(self, config, replace=replace)
        return self

    @classmethod
    def from_flow_config(
        cls,
        config: Mapping[str, Any],
        *,
        handlers: Mapping[str, Callable[..., Any]] | None = None,
        conditions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> Self:
        """Build a new flow from a config, with handlers and conditions given by name."""
        flow = cls(name=str(config.get("name") or "flow"))
        for name, handler in (handlers or {}).items():
            flow.register_chunk_handler(handler, name=name)
        for name, condition in (conditions or {}).items():
            flow.register_condition_handler(condition, name=name)
        return flow.load_flow_config(config)

    def load_json_flow(self, path_or_text: str) -> Self:
        """Import a JSON flow config from a path or a JSON string."""
        text = _read_text_or_path(path_or_text)
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise FlowDefinitionError(
                f"Cannot load a JSON flow config: {error} (line {error.lineno}, column "
                f"{error.colno}). Pass a path to a file or the JSON text of a trigger_flow/v1 "
                "config (flow.get_json_flow())."
            ) from None
        return self.load_flow_config(config)

    def load_yaml_flow(self, path_or_text: str) -> Self:
        """Import a YAML flow config from a path or a YAML string."""
        text = _read_text_or_path(path_or_text)
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise FlowDefinitionError(
                f"Cannot load a YAML flow config: {error}. Pass a path to a file or the YAML "
                "text of a trigger_flow/v1 config (flow.get_yaml_flow())."
            ) from None
        return self.load_flow_config(config)

    def save_blueprint(self) -> TriggerFlowBlueprint:
        """Return a copy of the graph with its live handlers (not serialisable)."""
        return TriggerFlowBlueprint(self)

    def load_blueprint(self, blueprint: TriggerFlowBlueprint) -> Self:
        """Replace this flow's graph with a saved blueprint; the flow keeps its name."""
        if not isinstance(blueprint, TriggerFlowBlueprint):
            raise FlowDefinitionError(
                f"load_blueprint() needs a TriggerFlowBlueprint from save_blueprint(), got "
                f"{type(blueprint).__name__}; for a dict use load_flow_config()."
            )
        blueprint.apply_to(self)
        return self

    def to_mermaid(self, *, mode: Literal["simplified", "detailed"] = "simplified") -> str:
        """Return a Mermaid ``flowchart TD`` diagram of the graph."""
        return to_mermaid(self.graph.operators.values(), mode=mode)

    def __repr__(self) -> str:
        # The public class is TriggerFlow (client/flow.py); users never see FlowBuilder.
        return f"TriggerFlow(name={self.name!r}, operators={len(self.graph.operators)})"


def _saved(text: str, save_to: str | None) -> str:
    """Write ``text`` to the file ``save_to`` (when given); return ``text``."""
    if save_to:
        with open(save_to, "w", encoding="utf-8") as file:
            file.write(text)
    return text


def _read_text_or_path(path_or_text: str) -> str:
    if "\n" not in path_or_text and os.path.exists(path_or_text):
        with open(path_or_text, encoding="utf-8") as file:
            return file.read()
    return path_or_text
