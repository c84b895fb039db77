"""Run Agently TriggerFlow graphs as durable Temporal workflows."""

from ._data import ChunkData, TriggerFlowPauseSignal
from ._definition import TriggerFlow, TriggerFlowChunk
from ._errors import (
    ChunkFailedError,
    ChunkOutputError,
    ExecutionStateError,
    FlowDefinitionError,
    NoWorkerError,
    SnapshotError,
    TriggerFlowError,
)
from ._events import RuntimeEvent, workspace_event_sink
from ._execution import TriggerFlowExecution
from ._plugin import TriggerFlowPlugin
from ._spec import FlowSpec
from ._stream import RuntimeStreamItem
from ._tracing import configure_tracing

__all__ = [
    "ChunkData",
    "ChunkFailedError",
    "ChunkOutputError",
    "ExecutionStateError",
    "FlowDefinitionError",
    "FlowSpec",
    "NoWorkerError",
    "RuntimeEvent",
    "RuntimeStreamItem",
    "SnapshotError",
    "TriggerFlow",
    "TriggerFlowChunk",
    "TriggerFlowError",
    "TriggerFlowExecution",
    "TriggerFlowPauseSignal",
    "TriggerFlowPlugin",
    "configure_tracing",
    "workspace_event_sink",
]
