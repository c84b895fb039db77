"""The worker's registry of flows: handlers, conditions, resources and output checks.

What the workflow reads through ``spec.wire.FlowRuntime`` and the chunk activity through
``chunk.activity.ChunkRegistry``; built by :class:`~.plugin.TriggerFlowPlugin`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from .._errors import (
    ChunkOutputError,
    FlowDefinitionError,
    ResourceConflictError,
    chunk_failure_details,
)
from ..definition.bindings import check_event_handler, handler_key
from ..definition.builder import FlowBuilder
from ..definition.contract import TriggerFlowContract
from ..interpreter.signal_net import BINDING_CHUNK_PREFIX
from ..spec.chunk_io import ChunkOutput
from ..spec.limits import MAX_PAYLOAD_BYTES
from ..spec.state import describe_size, json_size
from .events import EventHub

# Handler bugs (wrong types, missing keys) do not heal on retry; Temporal's default
# policy would retry them forever. Transient errors (network, timeouts) still retry.
DEFAULT_NON_RETRYABLE = [
    "TypeError",
    "ValueError",
    "KeyError",
    "AttributeError",
    "NotImplementedError",
    "AssertionError",
    "ChunkOutputError",
]

DEFAULT_ACTIVITY_CONFIG: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
        non_retryable_error_types=DEFAULT_NON_RETRYABLE,
    ),
}


class FlowRegistry:
    """Worker-side lookup of handlers, conditions and resources by flow and name."""

    def __init__(
        self,
        flows: Mapping[str, list[FlowBuilder]],
        runtime_resources: Mapping[str, Any],
        resource_factories: Mapping[str, Callable[..., Any]],
        default_activity_config: dict[str, Any],
        workspace_factory: Callable[[Any], Any] | None,
    ) -> None:
        self._flows = flows
        self._runtime_resources = dict(runtime_resources)
        self._resource_factories = dict(resource_factories)
        self.default_activity_config = default_activity_config
        self.workspace_factory = workspace_factory
        self.event_handlers: dict[str, Callable[..., Any]] = {}
        # The worker's RuntimeEvent hub (set by the plugin); workflows hand events to it.
        self.events: EventHub | None = None
        # Called by the workflow after each chunk with (workflow id, step): set only for
        # the client-side replay that reads an execution's history (history_replayer).
        self.step_recorder: Callable[[str, dict[str, Any]], None] | None = None
        # The names of this worker's notification channels (set by the plugin): a chunk
        # that pauses returns them with its pause request (ChunkOutput.channels).
        self.channel_names: list[str] = []

    def notification_channels(self) -> list[str]:
        """The names of this worker's notification channels, sorted."""
        return sorted(self.channel_names)

    def _versions(self, flow: str) -> list[FlowBuilder]:
        versions = self._flows.get(flow)
        if not versions:
            raise RuntimeError(
                f"Flow '{flow}' is not served by this worker; served flows: {sorted(self._flows)}."
            )
        return versions

    def add_event_handlers(self, handlers: Sequence[Callable[..., Any]]) -> None:
        """Register ``execution.on()`` handlers by ``module.qualname``.

        Raises:
            ValueError: A handler a worker cannot look up by name (a lambda, ...).
        """
        if isinstance(handlers, (str, bytes)) or not isinstance(handlers, Sequence):
            raise TypeError(
                "TriggerFlowPlugin(event_handlers=...) takes a list of functions, e.g. "
                "event_handlers=[on_ping]."
            )
        for handler in handlers:
            check_event_handler(handler)
            self.event_handlers[handler_key(handler)] = handler

    def handler(self, flow: str, chunk: str) -> Callable[..., Any]:
        """The chunk's handler, from the newest build of ``flow`` that has it."""
        if chunk.startswith(BINDING_CHUNK_PREFIX):
            key = chunk[len(BINDING_CHUNK_PREFIX) :]
            found = self.event_handlers.get(key)
            if found is None:
                raise RuntimeError(
                    f"Event handler '{key}' (an execution.on() binding) is not registered on "
                    "this worker: pass it to TriggerFlowPlugin(event_handlers=[...])."
                )
            return found
        for version in reversed(self._versions(flow)):
            found = version.graph.chunks.get(chunk)
            if found is not None:
                return found.handler
        raise RuntimeError(
            f"Chunk handler '{chunk}' of flow '{flow}' is not registered on this worker."
        )

    def inline_handler(self, flow: str, chunk: str) -> Callable[..., Any] | None:
        """The handler of an inline chunk, or None when this worker lacks it."""
        try:
            return self.handler(flow, chunk)
        except RuntimeError:
            return None

    def condition(self, flow: str, name: str) -> Callable[..., Any] | None:
        """A registered condition of ``flow`` by name, or None."""
        for version in reversed(self._versions(flow)):
            found = version.graph.conditions.get(name)
            if found is not None:
                return found
        return None

    def reads_state(self, flow: str, chunk: str, blueprint_hash: str = "") -> list[str] | None:
        """The state paths ``chunk`` declares it reads on this worker; None: the whole state.

        The workflow sent the chunk the paths of the spec its execution started with; this
        is what the chunk's ``data`` object checks reads against. With ``blueprint_hash``
        (sent with traced and pre-version-4 inputs), the declaration of the version that
        has that hash; else the union of every served version's declaration, None when
        one sends the whole state. Permissive on purpose: ChunkData also ignores a
        declaration the state it was sent does not match.
        """
        if chunk.startswith(BINDING_CHUNK_PREFIX) or flow not in self._flows:
            return None
        versions = self._versions(flow)
        if blueprint_hash:
            for version in versions:
                try:
                    spec = version.compile()
                except FlowDefinitionError:
                    continue
                if spec.blueprint_hash == blueprint_hash:
                    options = spec.chunks.get(chunk) or {}
                    reads = options.get("reads_state")
                    return None if reads is None else list(reads)
        union: list[str] = []
        declared = False
        for version in versions:
            found = version.graph.chunks.get(chunk)
            if found is None:
                continue
            if found.reads_state is None:
                return None
            declared = True
            for path in found.reads_state:
                if path not in union:
                    union.append(path)
        return union if declared else None

    def flow_data(self, flow: str) -> dict[str, Any]:
        """The worker-local flow data dict of ``flow``."""
        return self._versions(flow)[-1].flow_data

    def contract(self, flow: str) -> TriggerFlowContract | None:
        """The contract of ``flow`` (its newest version here), or None when it has none."""
        contract = self._versions(flow)[-1].contract
        return None if contract.empty else contract

    def chunk_resources(self, flow: str, execution_resources: Mapping[str, Any]) -> dict[str, Any]:
        """The live resources a chunk of ``flow`` sees (worker, flow, execution)."""
        resources = dict(self._runtime_resources)
        resources.update(self._versions(flow)[-1].runtime_resources)
        for key, value in execution_resources.items():
            factory = self._resource_factories.get(key)
            if factory is None and key in self._runtime_resources:
                # Execution values override flow-level ones (as natively), never the
                # worker's own live objects: the starter of an execution is not trusted
                # to swap the deployment's database client for data (issue 17).
                raise ResourceConflictError(
                    f"Execution runtime resource {key!r} would replace the worker resource of "
                    "the same name (TriggerFlowPlugin(runtime_resources=...)). Start the "
                    "execution with another key, or register a resource factory for "
                    f"{key!r} on the plugin to build it from the execution's value."
                )
            resources[key] = factory(value) if factory is not None else value
        return resources

    def check_output(
        self, flow: str, chunk: str, output: ChunkOutput, state: dict[str, Any] | None = None
    ) -> None:
        """Fail fast, and non-retryably, when a chunk's data cannot travel through history.

        Two checks: the data is JSON-ready, and it fits Temporal's payload limit. The size
        counts what this chunk returns (value, state writes, emits, stream items) and, with
        ``state`` (the execution state after this chunk's writes), what the next chunk will
        receive: the state plus this chunk's value.
        """
        try:
            sent = json_size([output.value, output.ops, output.pause])
            carried = json_size([output.value, state]) if state is not None else 0
        except (TypeError, ValueError) as error:
            raise _output_error(
                flow,
                chunk,
                f"Chunk '{chunk}' of flow '{flow}' returned or wrote a value that cannot be "
                f"serialised ({error}). Chunk outputs, state values and emitted values must be "
                "JSON-ready (dicts, lists, str, numbers, bool, None, pydantic models); keep "
                "large or binary data in the Workspace and store its ref.",
            ) from error
        size = max(sent, carried)
        if size > MAX_PAYLOAD_BYTES:
            what = (
                "returned and wrote"
                if sent >= carried
                else "left the execution state (plus its return value) at"
            )
            raise _output_error(
                flow,
                chunk,
                f"Chunk '{chunk}' of flow '{flow}' {what} {describe_size(size)} of data, over "
                f"the {describe_size(MAX_PAYLOAD_BYTES)} this runtime carries through Temporal "
                "history (Temporal refuses payloads over 2 MiB). Store large content in the "
                "Workspace (data.workspace.ingest(...)) and keep its ref in state or in the "
                "return value.",
            )


def _output_error(flow: str, chunk: str, message: str) -> Exception:
    """A non-retryable ChunkOutputError failure for ``chunk`` (bad data does not heal)."""
    return ApplicationError(
        message,
        chunk_failure_details(
            flow_name=flow,
            chunk_name=chunk,
            error_type=ChunkOutputError.__name__,
            error_module=ChunkOutputError.__module__,
            message=message,
        ),
        type=ChunkOutputError.__name__,
        non_retryable=True,
    )
