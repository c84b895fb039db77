"""The ``data`` object a chunk handler receives, and the boundary dataclasses.

Shared by the activity side and by chunks that run inline in the workflow
(``execute_in="workflow"``), so it does no I/O itself: writes, emits, stream items and
pause requests are *recorded* as operations that the workflow applies, in order, when
the chunk completes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..spec.chunk_io import PAUSE_MARKER, ChunkInput, ChunkOutput, unpack_resume
from ..spec.state import append_path, apply_state_op, del_path, get_path, has_path, set_path
from .pause import validate_pause_request
from .state_reads import StateReads

if TYPE_CHECKING:
    from ..definition.contract import TriggerFlowContract


class TriggerFlowPauseSignal(dict):  # type: ignore[type-arg]
    """Returned by ``data.async_pause_for``; a dict holding the interrupt request.

    Return it from the chunk (as natively) so the chunk's continuation is held until
    ``continue_with``.
    """


class ResumeInfo:
    """``data.resume``: set when the signal was dispatched by ``continue_with``."""

    def __init__(self, context: Mapping[str, Any] | None) -> None:
        self._context = dict(context or {})

    @property
    def interrupt_id(self) -> str | None:
        """The resumed interrupt's id."""
        return self._context.get("interrupt_id")

    @property
    def value(self) -> Any:
        """The value given to ``continue_with``."""
        return self._context.get("value")

    @property
    def interrupt(self) -> dict[str, Any] | None:
        """The interrupt record at resume time."""
        return self._context.get("interrupt")

    @property
    def origin_signal(self) -> dict[str, Any] | None:
        """The signal that originally reached the paused chunk."""
        return self._context.get("origin_signal")

    def to_dict(self) -> dict[str, Any]:
        """Return the resume context as a dict."""
        return dict(self._context)

    def __bool__(self) -> bool:
        return bool(self._context)


class StateNamespace:
    """``data.state``: a dict-like view of execution state with write methods.

    For a chunk declared with ``reads_state``, the view holds what was sent (the declared
    paths) plus this run's writes: ``data.state[key]`` and ``data.state.get(key)`` raise
    :class:`StateNotSentError` for a key they do not cover, ``key in data.state`` is False
    for such a key, and iterating lists only the top-level keys of what was sent or written.
    """

    def __init__(self, data: ChunkData) -> None:
        self._data = data

    def get(self, key: str | None = None, default: Any = None) -> Any:
        """Read state (dotted keys)."""
        return self._data.get_state(key, default)

    def set(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Write state."""
        self._data.set_state(key, value, emit=emit)

    def append(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Append to a list in state."""
        self._data.append_state(key, value, emit=emit)

    def delete(self, key: str, *, emit: bool = True) -> None:
        """Delete a state key."""
        self._data.del_state(key, emit=emit)

    async def async_set(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Write state."""
        self._data.set_state(key, value, emit=emit)

    async def async_append(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Append to a list in state."""
        self._data.append_state(key, value, emit=emit)

    async def async_delete(self, key: str, *, emit: bool = True) -> None:
        """Delete a state key."""
        self._data.del_state(key, emit=emit)

    def to_dict(self) -> dict[str, Any]:
        """Return a copy of the whole state."""
        return self._data.get_state()

    def __contains__(self, key: object) -> bool:
        return (
            isinstance(key, str)
            and self._data._reads.readable(key)
            and has_path(self._data._state, key)
        )

    def __iter__(self) -> Iterator[str]:
        return iter([key for key in self._data._state if self._data._reads.listed(key)])

    def __getitem__(self, key: str) -> Any:
        self._data._check_read(key)
        if not has_path(self._data._state, key):
            raise KeyError(key)
        return self._data.get_state(key)


class ChunkData:
    """The ``data`` argument of a chunk handler (Agently's ``TriggerFlowRuntimeData``).

    State reads see the state when the chunk was dispatched plus this chunk's own
    writes. ``async_emit`` returns once the event is recorded; the workflow dispatches it
    when the chunk completes (see design.md, "Semantic differences").

    ``reads_state``: the paths the chunk declares it reads (``flow.chunk(...,
    reads_state=[...])``); only those were sent, so reading another key raises
    :class:`StateNotSentError` (a key this run wrote with ``set_state`` or deleted is
    readable). Ignored when the state it was sent holds more than those paths: the
    worker's declaration then differs from the spec the execution runs, which chose what
    was sent, so reads are not refused (permissive).
    """

    def __init__(
        self,
        chunk_input: ChunkInput,
        *,
        resources: Mapping[str, Any] | None = None,
        flow_data: dict[str, Any] | None = None,
        workspace_factory: Callable[[ChunkData], Any] | None = None,
        contract: TriggerFlowContract | None = None,
        reads_state: Sequence[str] | None = None,
    ) -> None:
        self._input = chunk_input
        self._contract = contract
        self._value = chunk_input.value
        self._state: dict[str, Any] = copy.deepcopy(chunk_input.state)
        self._reads = StateReads(reads_state, chunk_input.state)
        self._ops: list[list[Any]] = []
        self._pause: dict[str, Any] | None = None
        self._resources: dict[str, Any] = dict(resources or {})
        self._flow_data = flow_data if flow_data is not None else {}
        self._workspace_factory = workspace_factory
        self._workspace: Any = None
        signal = chunk_input.signal or {}
        self.trigger_event = chunk_input.trigger_event
        self.trigger_type = chunk_input.trigger_type
        self.event = chunk_input.trigger_event
        self.type = chunk_input.trigger_type
        self.execution_id = chunk_input.execution_id
        self.flow_name = chunk_input.flow
        self.chunk_name = chunk_input.chunk
        self.signal_id: str | None = signal.get("id")
        self.signal_source: str | None = signal.get("source")
        self.signal_meta: dict[str, Any] = dict(signal.get("meta") or {})
        self._layer_marks: list[str] = list(signal.get("layer_marks") or [])
        self.is_resume = chunk_input.resume is not None
        resume = unpack_resume(chunk_input.resume)
        if resume is not None:
            self.signal_meta["resume"] = resume  # as on the workflow's signal
        self.resume = ResumeInfo(resume)
        self.interventions = [i for i in chunk_input.interventions if i.get("status") == "inserted"]
        self.state = StateNamespace(self)

    # --------------------------------------------------------------- identity
    @property
    def value(self) -> Any:
        """The signal value (``input``/``inputs`` are aliases)."""
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        self._value = value

    input = value
    inputs = value

    @property
    def idempotency_key(self) -> str:
        """``"<execution id>:<chunk run id>"``: the same for every attempt of this run."""
        return f"{self._input.execution_id}:{self._input.run_id}"

    @property
    def run_id(self) -> str:
        """This chunk run's id (stable across activity retries)."""
        return self._input.run_id

    @property
    def tenant(self) -> str:
        """The execution's tenant (``"default"`` when it was started without one)."""
        return self._input.tenant or "default"

    @property
    def layer_mark(self) -> str | None:
        """The innermost fan-out mark."""
        return self._layer_marks[-1] if self._layer_marks else None

    @property
    def upper_layer_mark(self) -> str | None:
        """The second innermost fan-out mark."""
        return self._layer_marks[-2] if len(self._layer_marks) > 1 else None

    @property
    def signal_info(self) -> dict[str, Any]:
        """The raw signal facts."""
        return {
            "trigger_event": self.trigger_event,
            "trigger_type": self.trigger_type,
            "value": self._value,
            "signal_id": self.signal_id,
            "signal_source": self.signal_source,
            "signal_meta": dict(self.signal_meta),
        }

    # ------------------------------------------------------------------ state
    def get_state(
        self, key: str | None = None, default: Any = None, *, inherit: bool = True
    ) -> Any:
        """Read execution state; ``key=None`` returns a copy of the whole dict.

        Raises:
            StateNotSentError: The chunk declares ``reads_state`` and ``key`` is not
                covered by it (nor written by this run), or ``key`` is None.
        """
        self._check_read(key)
        if key is None:
            return copy.deepcopy(self._state)
        return copy.deepcopy(get_path(self._state, key, default))

    @property
    def reads_state(self) -> list[str] | None:
        """The state paths this run was sent (None: the whole state)."""
        paths = self._reads.paths
        return None if paths is None else list(paths)

    def _check_read(self, key: str | None) -> None:
        self._reads.check(key, flow=self.flow_name, chunk=self.chunk_name)

    def _record_state(self, op: list[Any]) -> None:
        self._ops.append(copy.deepcopy(op))
        apply_state_op(self._state, op)
        self._reads.wrote(op)

    def set_state(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Write ``key`` (dotted keys address nested dicts)."""
        _check_key(key)
        self._record_state(["set", key, value, bool(emit)])

    def append_state(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Append ``value`` to the list at ``key`` (created if missing)."""
        _check_key(key)
        self._record_state(["append", key, value, bool(emit)])

    def del_state(self, key: str, *, emit: bool = True) -> None:
        """Delete ``key``."""
        _check_key(key)
        self._record_state(["del", key, bool(emit)])

    async def async_set_state(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Write ``key``; ``emit=True`` runs ``when({"runtime_data": key})`` watchers."""
        self.set_state(key, value, emit=emit)

    async def async_append_state(self, key: str, value: Any, *, emit: bool = True) -> None:
        """Append to the list at ``key``."""
        self.append_state(key, value, emit=emit)

    async def async_del_state(self, key: str, *, emit: bool = True) -> None:
        """Delete ``key``."""
        self.del_state(key, emit=emit)

    # Deprecated Agently aliases.
    get_runtime_data = get_state
    set_runtime_data = set_state
    append_runtime_data = append_state
    del_runtime_data = del_state
    async_set_runtime_data = async_set_state
    async_append_runtime_data = async_append_state
    async_del_runtime_data = async_del_state

    def set_result(self, value: Any) -> None:
        """Deprecated: write state key ``$final_result``.

        Checked against the flow's ``result`` contract first (``ValueError``, as natively).
        """
        if self._contract is not None:
            value = self._contract.check("result", value)
        self.set_state("$final_result", value, emit=False)

    def get_result(self) -> Any:
        """Deprecated: read state key ``$final_result``."""
        return self.get_state("$final_result")

    # ---------------------------------------------------------------- events
    def emit(self, event: str, value: Any = None, *, trigger_type: str = "event") -> None:
        """Record an event; it is dispatched when this chunk completes."""
        if not isinstance(event, str) or not event:
            raise ValueError(f"emit() needs a non-empty event name, got {event!r}.")
        if trigger_type not in ("event", "runtime_data", "flow_data"):
            raise ValueError(
                f"emit(trigger_type={trigger_type!r}) must be 'event', 'runtime_data' or "
                "'flow_data'."
            )
        self._ops.append(["emit", event, copy.deepcopy(value), trigger_type])

    async def async_emit(
        self, event: str, value: Any = None, *, trigger_type: str = "event"
    ) -> None:
        """Record an event; returns once it is recorded (handlers run after this chunk)."""
        self.emit(event, value, trigger_type=trigger_type)

    def emit_nowait(self, event: str, value: Any = None, *, trigger_type: str = "event") -> None:
        """Record an event that runs detached (close drains it)."""
        self.emit(event, value, trigger_type=trigger_type)
        self._ops[-1][0] = "emit_nowait"

    async def async_emit_nowait(
        self, event: str, value: Any = None, *, trigger_type: str = "event"
    ) -> None:
        """Async twin of :meth:`emit_nowait`."""
        self.emit_nowait(event, value, trigger_type=trigger_type)

    # ---------------------------------------------------------------- stream
    def put_into_stream(self, item: Any) -> None:
        """Put ``item`` (JSON data) on the execution's runtime stream.

        Items reach consumers (``execution.get_async_runtime_stream()``) when this chunk
        completes, in the order they were put and in order with the chunk's other
        operations; a retried attempt's items never appear twice. Checked against the
        flow's ``stream`` contract first (``ValueError``, as natively).
        """
        if self._contract is not None:
            item = self._contract.check("stream", item)
        self._ops.append(["stream", copy.deepcopy(item)])

    async def async_put_into_stream(self, item: Any) -> None:
        """Async twin of :meth:`put_into_stream`."""
        self.put_into_stream(item)

    put = put_into_stream
    async_put = async_put_into_stream

    def stop_stream(self) -> None:
        """End the runtime stream when this chunk completes (consumers finish).

        Items put afterwards, by any chunk, are dropped (``stream_item_rejected`` event).
        """
        self._ops.append(["stop_stream"])

    async def async_stop_stream(self) -> None:
        """Async twin of :meth:`stop_stream`."""
        self.stop_stream()

    # ------------------------------------------------------------- resources
    @property
    def resources(self) -> Mapping[str, Any]:
        """A read-only view of the runtime resources available to this chunk."""
        from types import MappingProxyType

        return MappingProxyType(self._resources)

    def get_resource(self, key: str, default: Any = None) -> Any:
        """Return a runtime resource or ``default``."""
        return self._resources.get(key, default)

    def require_resource(self, key: str) -> Any:
        """Return a runtime resource or raise Agently's ``KeyError``."""
        if key not in self._resources:
            raise KeyError(
                f"Execution {self.execution_id} missing required runtime resource '{key}'. "
                f"Available resources: {sorted(self._resources)}"
            )
        return self._resources[key]

    def set_resource(self, key: str, value: Any) -> None:
        """Set a resource for the rest of this chunk run (worker-local, not durable)."""
        self._resources[key] = value

    def del_resource(self, key: str) -> None:
        """Remove a resource for the rest of this chunk run."""
        self._resources.pop(key, None)

    # -------------------------------------------------------------- flow data
    def get_flow_data(self, key: str | None = None, default: Any = None, **_: Any) -> Any:
        """Flow-scoped data shared in this worker process (not durable, as natively)."""
        if key is None:
            return copy.deepcopy(self._flow_data)
        return get_path(self._flow_data, key, default)

    def set_flow_data(self, key: str, value: Any, **_: Any) -> None:
        """Set flow-scoped data (worker-local, not durable)."""
        set_path(self._flow_data, key, value)

    def append_flow_data(self, key: str, value: Any, **_: Any) -> None:
        """Append to a list in flow-scoped data."""
        append_path(self._flow_data, key, value)

    def del_flow_data(self, key: str, **_: Any) -> None:
        """Delete a key of flow-scoped data."""
        del_path(self._flow_data, key)

    async def async_set_flow_data(self, key: str, value: Any, **kw: Any) -> None:
        """Async twin of :meth:`set_flow_data`."""
        self.set_flow_data(key, value, **kw)

    async def async_append_flow_data(self, key: str, value: Any, **kw: Any) -> None:
        """Async twin of :meth:`append_flow_data`."""
        self.append_flow_data(key, value, **kw)

    async def async_del_flow_data(self, key: str, **kw: Any) -> None:
        """Async twin of :meth:`del_flow_data`."""
        self.del_flow_data(key, **kw)

    # ----------------------------------------------------------------- pause
    async def async_pause_for(
        self,
        *,
        type: str = "pause",
        payload: Any = None,
        interrupt_id: str | None = None,
        resume_to: Any = None,
        resume_event: str | None = None,
        max_resumes: int | None = 1,
        exchange_kind: str | None = None,
        request_payload_schema: dict[str, Any] | None = None,
        response_payload_schema: dict[str, Any] | None = None,
        timeout: float | None = None,
        timeout_value: Any = None,
        audit_metadata: dict[str, Any] | None = None,
        **extra: Any,
    ) -> TriggerFlowPauseSignal:
        """Ask the workflow to pause this branch until ``continue_with`` (or a timeout).

        Returns the pause signal; return it from the chunk.
        """
        return self.pause_for(
            type=type,
            payload=payload,
            interrupt_id=interrupt_id,
            resume_to=resume_to,
            resume_event=resume_event,
            max_resumes=max_resumes,
            exchange_kind=exchange_kind,
            request_payload_schema=request_payload_schema,
            response_payload_schema=response_payload_schema,
            timeout=timeout,
            timeout_value=timeout_value,
            audit_metadata=audit_metadata,
            **extra,
        )

    def pause_for(self, **request: Any) -> TriggerFlowPauseSignal:
        """Sync twin of :meth:`async_pause_for`."""
        if self._pause is not None:
            raise RuntimeError(
                f"Chunk '{self.chunk_name}' already called pause_for() in this run; a chunk "
                "pauses at most once per run."
            )
        normalized = validate_pause_request(self.chunk_name, request)
        self._pause = normalized
        signal = TriggerFlowPauseSignal(normalized)
        signal[PAUSE_MARKER] = True
        return signal

    # --------------------------------------------------------- interventions
    def get_interventions(
        self, status: str | None = None, target: str | None = None, since_version: int | None = None
    ) -> list[dict[str, Any]]:
        """Interventions visible to this chunk run, filtered."""
        out = []
        for record in self._input.interventions:
            if status is not None and record.get("status") != status:
                continue
            if target is not None and record.get("target") != target:
                continue
            if since_version is not None and int(record.get("version", 0)) <= since_version:
                continue
            out.append(copy.deepcopy(record))
        return out

    def get_latest_intervention(self, default: Any = None, **filters: Any) -> Any:
        """The newest intervention matching ``filters`` or ``default``."""
        found = self.get_interventions(**filters)
        return found[-1] if found else default

    async def async_mark_intervention_consumed(
        self,
        intervention_id: str,
        *,
        consumer: str | None = None,
        status: str = "applied",
        note: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Record that this chunk consumed an intervention (applied when the chunk ends)."""
        if status not in ("applied", "ignored"):
            raise ValueError(f"status must be 'applied' or 'ignored', got {status!r}.")
        if not any(i.get("id") == intervention_id for i in self._input.interventions):
            raise KeyError(f"Unknown intervention id {intervention_id!r}.")
        self._ops.append(
            [
                "intervention_consumed",
                intervention_id,
                {
                    "consumer": consumer or self.chunk_name,
                    "status": status,
                    "note": note,
                    "metadata": copy.deepcopy(metadata or {}),
                },
            ]
        )

    # ------------------------------------------------------------- workspace
    @property
    def workspace(self) -> Any:
        """A Workspace client bound to this execution's scope (tenant, execution id)."""
        if self._workspace is None:
            if self._workspace_factory is None:
                raise RuntimeError(
                    "No Workspace is configured for this worker. Pass workspace=... (a URL, a "
                    "path or a BaseWorkspace) to TriggerFlowPlugin, or set "
                    "TRIGGERFLOW_WORKSPACE_URL for worker.py."
                )
            self._workspace = self._workspace_factory(self)
        return self._workspace

    # ----------------------------------------------------------------- result
    def state_after_writes(self) -> dict[str, Any]:
        """The execution state with this chunk's writes applied (no copy: do not mutate).

        Used by the activity to check that the next chunk's input fits a Temporal payload.
        With ``reads_state``, only the part that was sent (plus the writes): the check then
        counts less than the whole state, and the workflow checks the next chunk's input
        itself before sending it.
        """
        return self._state

    def to_output(self, value: Any) -> ChunkOutput:
        """Package the handler's return value and the recorded operations."""
        if isinstance(value, TriggerFlowPauseSignal):
            value = None
        return ChunkOutput(value=value, ops=self._ops, pause=self._pause)


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"State keys must be non-empty strings, got {key!r}.")
