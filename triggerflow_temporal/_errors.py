"""Errors raised by triggerflow_temporal.

One base class, a few subclasses that also inherit the builtin type a caller would
naturally catch (``ValueError``, ``KeyError``, ``RuntimeError``), so code written for
Agently's TriggerFlow keeps working.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import TemporalError


class TriggerFlowError(TemporalError):
    """Base class of every error this package raises on purpose."""


class FlowDefinitionError(TriggerFlowError, ValueError):
    """A flow definition cannot be compiled, exported or loaded.

    The message names the flow, the chunk or condition, and what to change.
    """


class ExecutionStateError(TriggerFlowError, RuntimeError):
    """An execution is not in a state that allows the requested operation."""


class SnapshotError(TriggerFlowError, ValueError):
    """A saved execution snapshot cannot be loaded into this flow."""


class ResourceConflictError(TriggerFlowError, ValueError):
    """An execution's runtime resource would replace a worker resource of the same name.

    Worker resources (``TriggerFlowPlugin(runtime_resources=...)``) are live objects the
    deployment owns; whoever starts an execution may add resources but not swap those.
    """


class ChunkOutputError(TriggerFlowError, TypeError):
    """A chunk returned or wrote a value that cannot be serialised for Temporal."""


class StateNotSentError(TriggerFlowError, KeyError):
    """A chunk read state that its ``reads_state`` declaration did not have sent to it.

    A chunk declared with ``reads_state=[...]`` receives only those state paths (and what
    it writes itself during the run). Reading another key, a parent of a declared path, or
    the whole state raises this; the message names the chunk, the key and the fix. A
    ``KeyError``, so ``except KeyError`` code keeps working and the chunk is not retried
    (the worker's default non-retryable types include ``KeyError``).

    Attributes:
        flow_name: The flow of the chunk.
        chunk_name: The chunk that read.
        key: The key it read (None: the whole state).
        reads_state: The paths the chunk was sent.
    """

    def __init__(
        self,
        message: str,
        *,
        flow_name: str | None = None,
        chunk_name: str | None = None,
        key: str | None = None,
        reads_state: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.flow_name = flow_name
        self.chunk_name = chunk_name
        self.key = key
        self.reads_state = list(reads_state or [])

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoWorkerError(TriggerFlowError, RuntimeError):
    """No worker runs the workflow a call waits on, so the call would wait forever.

    Raised a few seconds into a start, load, update or result wait whose workflow task
    nobody picks up: no worker has polled the execution's task queue recently
    (``DescribeTaskQueue`` shows no poller), or the workers polling it do not serve the
    flow. The message names the flow, the task queue, what became of the execution, and
    the command that starts a worker for it.

    Attributes:
        flow_name: The flow (the Temporal workflow type).
        task_queue: The task queue the execution waits on.
        execution_id: The execution (workflow id) the call was for.
        worker_command: A ``triggerflow-temporal worker ...`` command that serves the flow
            on that queue.
        reason: ``"no_pollers"`` or ``"not_served"`` (workers poll the queue but do not
            have this flow).
    """

    def __init__(
        self,
        message: str,
        *,
        flow_name: str | None = None,
        task_queue: str | None = None,
        execution_id: str | None = None,
        worker_command: str | None = None,
        reason: str = "no_pollers",
    ) -> None:
        super().__init__(message)
        self.flow_name = flow_name
        self.task_queue = task_queue
        self.execution_id = execution_id
        self.worker_command = worker_command
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ChunkFailedError(TriggerFlowError):
    """A chunk handler raised; the execution is ``failed``.

    On the client the raised object is also an instance of the handler's original
    exception type when this process has already loaded it (``ValueError`` stays a
    ``ValueError``), so ``except ValueError`` keeps working. The client never imports a
    module a failure names: whoever can write a failure into history must not make the
    client run code.

    Attributes:
        flow_name: The flow whose chunk failed.
        chunk_name: The chunk whose handler raised.
        error_type: The original exception's class name.
        error_message: The original exception's message.
    """

    def __init__(
        self,
        message: str,
        *,
        flow_name: str | None = None,
        chunk_name: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.flow_name = flow_name
        self.chunk_name = chunk_name
        self.error_type = error_type
        self.error_message = error_message

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def chunk_failure_details(
    *,
    flow_name: str,
    chunk_name: str | None,
    error_type: str,
    error_module: str | None,
    message: str,
) -> dict[str, Any]:
    """Return the JSON-ready description of a chunk failure carried through Temporal."""
    return {
        "flow": flow_name,
        "chunk": chunk_name,
        "type": error_type,
        "module": error_module,
        "message": message,
    }
