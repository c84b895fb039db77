"""Run Agently TriggerFlow graphs as durable Temporal workflows."""

from ._errors import (
    ChunkFailedError,
    ChunkOutputError,
    ExecutionStateError,
    FlowDefinitionError,
    NoWorkerError,
    SnapshotError,
    StateNotSentError,
    TriggerFlowError,
)
from .chunk.data import ChunkData, TriggerFlowPauseSignal
from .client.execution import TriggerFlowExecution
from .client.flow import TriggerFlow
from .client.messages import send_message
from .client.stream import RuntimeStreamItem
from .definition.chunk import TriggerFlowChunk
from .plugin.events import RuntimeEvent, workspace_event_sink
from .plugin.links import ApprovalLinks
from .plugin.notifications import (
    Notification,
    NotificationChannel,
    PermanentDeliveryError,
    WebhookChannel,
)
from .plugin.plugin import TriggerFlowPlugin
from .plugin.tracing import configure_tracing
from .spec.flow_spec import FlowSpec

__all__ = [
    "ApprovalLinks",
    "ChunkData",
    "ChunkFailedError",
    "ChunkOutputError",
    "ExecutionStateError",
    "FlowDefinitionError",
    "FlowSpec",
    "NoWorkerError",
    "Notification",
    "NotificationChannel",
    "PermanentDeliveryError",
    "RuntimeEvent",
    "RuntimeStreamItem",
    "SnapshotError",
    "StateNotSentError",
    "TriggerFlow",
    "TriggerFlowChunk",
    "TriggerFlowError",
    "TriggerFlowExecution",
    "TriggerFlowPauseSignal",
    "TriggerFlowPlugin",
    "WebhookChannel",
    "configure_tracing",
    "send_message",
    "workspace_event_sink",
]
