"""Chunk activities: run a user's chunk handler with a ``data`` object (I/O allowed here)."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from .._errors import ResourceConflictError, chunk_failure_details
from ..spec.chunk_io import (
    OWN_RETRY_POLICY,
    ChunkOutput,
    pack_chunk_output,
    unpack_chunk_input,
)
from .data import ChunkData
from .spans import annotate_chunk, annotate_pause

if TYPE_CHECKING:
    from ..definition.contract import TriggerFlowContract


class ChunkRegistry(Protocol):
    """What a chunk activity needs from the worker's flows (the plugin's registry)."""

    workspace_factory: Callable[[ChunkData], Any] | None
    default_activity_config: dict[str, Any]

    def handler(self, flow: str, chunk: str) -> Callable[..., Any]:
        """The chunk's handler on this worker."""
        ...

    def chunk_resources(self, flow: str, execution_resources: dict[str, Any]) -> dict[str, Any]:
        """The live resources a chunk of ``flow`` sees."""
        ...

    def flow_data(self, flow: str) -> dict[str, Any]:
        """The worker-local flow data dict of ``flow``."""
        ...

    def contract(self, flow: str) -> TriggerFlowContract | None:
        """The contract ``flow``'s stream items and results are checked against."""
        ...

    def check_output(
        self, flow: str, chunk: str, output: ChunkOutput, state: dict[str, Any]
    ) -> None:
        """Refuse an output Temporal could not carry (raises a typed error)."""
        ...

    def reads_state(self, flow: str, chunk: str, blueprint_hash: str = "") -> list[str] | None:
        """The state paths the chunk declares it reads on this worker (None: the whole)."""
        ...

    def notification_channels(self) -> list[str]:
        """The names of this worker's notification channels, sorted."""
        ...


def make_chunk_activity(
    registry: ChunkRegistry, flow_name: str, chunk_name: str
) -> Callable[..., Any]:
    """Return the activity ``"<flow>.<chunk>"`` bound to ``registry``.

    It takes either wire shape of a ChunkInput (the compact one of runtime version 4, or
    the full one that earlier executions and workers schedule) and returns the compact
    ChunkOutput, which every workflow decodes as a ChunkOutput (spec/chunk_io.py).
    """

    @activity.defn(name=f"{flow_name}.{chunk_name}")
    async def run_chunk(raw: dict[str, Any]) -> dict[str, Any]:
        # A compact input of a chunk on the default retry policy: that policy was sent
        # without its non-retryable error types; this worker's defaults apply here.
        defaults = (
            _default_non_retryable(registry)
            if "flow" not in raw and not raw.get(OWN_RETRY_POLICY)
            else frozenset()
        )
        try:
            return await _run_chunk(registry, flow_name, chunk_name, raw, defaults)
        except ApplicationError:
            raise
        except Exception as error:
            if type(error).__name__ not in defaults:
                raise
            # As the policy's error types made the server refuse to retry it.
            raise ApplicationError(
                str(error), type=type(error).__name__, non_retryable=True
            ) from error

    return run_chunk


async def _run_chunk(
    registry: ChunkRegistry,
    flow_name: str,
    chunk_name: str,
    raw: dict[str, Any],
    defaults: frozenset[str],
) -> dict[str, Any]:
    """Run the chunk's handler on the input ``raw``; its compact output."""
    chunk_input = unpack_chunk_input(
        raw, flow=flow_name, chunk=chunk_name, execution_id=activity.info().workflow_id or ""
    )
    span = annotate_chunk(chunk_input)
    handler = registry.handler(flow_name, chunk_name)
    try:
        resources = registry.chunk_resources(flow_name, chunk_input.resources)
    except ResourceConflictError as error:
        raise _failure(flow_name, chunk_name, error, non_retryable=True) from error
    data = ChunkData(
        chunk_input,
        resources=resources,
        flow_data=registry.flow_data(flow_name),
        workspace_factory=registry.workspace_factory,
        contract=registry.contract(flow_name),
        # What the chunk declares on this worker; the execution's own spec chose what was
        # sent, and ChunkData refuses no read when the two disagree (see ChunkData).
        reads_state=registry.reads_state(flow_name, chunk_name, chunk_input.blueprint_hash),
    )
    try:
        if inspect.iscoroutinefunction(handler):
            result = await handler(data)
        else:
            # Sync handlers run in a thread so they never block the worker's loop.
            result = await asyncio.to_thread(handler, data)
            if inspect.isawaitable(result):
                result = await result
    except Exception as error:
        raise _failure(
            flow_name, chunk_name, error, non_retryable=_non_retryable(error, defaults)
        ) from error
    output = data.to_output(result)
    if output.pause is not None:
        if not output.pause.get("interrupt_id"):
            # Named here, not by the workflow, so the chunk's span and logs can carry it.
            output.pause["interrupt_id"] = uuid.uuid4().hex
        # Where the interrupt's notifications go: the workflow needs no local activity.
        output.channels = registry.notification_channels()
    annotate_pause(span, output.pause)
    registry.check_output(flow_name, chunk_name, output, data.state_after_writes())
    return pack_chunk_output(output)


def _failure(
    flow_name: str, chunk_name: str, error: Exception, *, non_retryable: bool
) -> ApplicationError:
    """The activity failure that carries ``error`` as chunk failure details."""
    return ApplicationError(
        f"{type(error).__name__}: {error}",
        chunk_failure_details(
            flow_name=flow_name,
            chunk_name=chunk_name,
            error_type=type(error).__name__,
            error_module=type(error).__module__,
            message=str(error),
        ),
        type=type(error).__name__,
        non_retryable=non_retryable,
    )


def _non_retryable(error: Exception, defaults: frozenset[str] = frozenset()) -> bool:
    """True when ``error`` is of one of the chunk's non-retryable types (or a subclass).

    Temporal matches ``non_retryable_error_types`` against the exact type name only, so a
    ``ValueError`` subclass (a Workspace ``InvalidInputError``, a pydantic
    ``ValidationError``) would be retried although ``ValueError`` is listed. Bad input does
    not heal on retry: the base classes are checked here, against the policy this attempt
    runs under (the chunk's own or the worker default). ``defaults``: the worker's default
    non-retryable types when the policy was sent without them (runtime version 4); the
    exact type is checked against those too, since the server does not know them.
    """
    policy = activity.info().retry_policy
    names = set(policy.non_retryable_error_types or []) if policy is not None else set()
    mro = type(error).__mro__
    return any(cls.__name__ in names for cls in mro[1:]) or any(
        cls.__name__ in defaults for cls in mro
    )


def _default_non_retryable(registry: ChunkRegistry) -> frozenset[str]:
    """The non-retryable error types of the worker's default retry policy."""
    policy = registry.default_activity_config.get("retry_policy")
    return frozenset(getattr(policy, "non_retryable_error_types", None) or ())
