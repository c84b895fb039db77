"""Run Agently TriggerFlow graphs as durable Temporal workflows."""

from ._data import ChunkData, TriggerFlowPauseSignal
from ._definition import TriggerFlow, TriggerFlowChunk
from ._errors import (
    ChunkFailedError,
    ChunkOutputError,
    ExecutionStateError,
    FlowDefinitionError,
    SnapshotError,
    TriggerFlowError,
)
from ._execution import TriggerFlowExecution
from ._plugin import TriggerFlowPlugin
from ._spec import FlowSpec

__all__ = [
    "ChunkData",
    "ChunkFailedError",
    "ChunkOutputError",
    "ExecutionStateError",
    "FlowDefinitionError",
    "FlowSpec",
    "SnapshotError",
    "TriggerFlow",
    "TriggerFlowChunk",
    "TriggerFlowError",
    "TriggerFlowExecution",
    "TriggerFlowPauseSignal",
    "TriggerFlowPlugin",
]
