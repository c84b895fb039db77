"""How runtime and Temporal errors become problem documents (pure unit tests)."""

from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode

from triggerflow_temporal import (
    ChunkFailedError,
    ExecutionStateError,
    NoWorkerError,
    SnapshotError,
)
from triggerflow_temporal.gateway._executions import structured_actor_supported
from triggerflow_temporal.gateway._problems import Problem, problem_from_runtime


def rebuilt(base: type[BaseException], message: str) -> BaseException:
    """An error as the client rebuilds a validator refusal (ExecutionStateError + base)."""
    return type(base.__name__, (ExecutionStateError, base), {})(message)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NoWorkerError("none", flow_name="f", task_queue="q", worker_command="w"), 503),
        (RPCError("down", RPCStatusCode.UNAVAILABLE, b""), 503),
        (RPCError("slow", RPCStatusCode.DEADLINE_EXCEEDED, b""), 503),
        (RPCError("busy", RPCStatusCode.RESOURCE_EXHAUSTED, b""), 503),
        (RPCError("gone", RPCStatusCode.NOT_FOUND, b""), 404),
        (RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b""), 400),
        (RuntimeError("Failed client connect: connection refused"), 503),
        (rebuilt(PermissionError, "assignees only"), 403),
        (PermissionError("not you"), 403),
        (rebuilt(KeyError, "'x': unknown interrupt id"), 404),
        (ExecutionStateError("No execution 'e' in namespace 'default'."), 404),
        (
            rebuilt(RuntimeError, "Cannot close execution e: interrupts ['i'] are still waiting"),
            409,
        ),
        (ExecutionStateError("already ran and is closed"), 409),
        (SnapshotError("bad snapshot"), 400),
        (ValueError("bad value"), 400),
        (TypeError("not JSON"), 400),
    ],
)
def test_runtime_errors_map_to_statuses(error, status):
    problem = problem_from_runtime(error, execution_id="e")
    assert isinstance(problem, Problem) and problem.status == status
    assert problem.detail
    if status == 503:
        assert int(problem.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    "error",
    [
        ChunkFailedError("chunk failed", flow_name="f", chunk_name="c"),
        RPCError("internal", RPCStatusCode.INTERNAL, b""),
        ZeroDivisionError("bug"),
    ],
)
def test_errors_that_are_not_the_callers_fault_are_raised(error):
    with pytest.raises(type(error)):
        problem_from_runtime(error, execution_id="e")


def test_not_found_is_the_same_for_unknown_and_foreign():
    a = problem_from_runtime(RPCError("gone", RPCStatusCode.NOT_FOUND, b""), execution_id="e")
    b = problem_from_runtime(ExecutionStateError("No execution 'e'"), execution_id="e")
    assert a.body("/x") == b.body("/x")


def test_the_runtime_takes_the_whole_principal_as_actor():
    # async_continue_with(actor=...) is annotated with a mapping type, so the gateway sends
    # {subject, tenant, groups, method} (not just the subject).
    assert structured_actor_supported() is True
