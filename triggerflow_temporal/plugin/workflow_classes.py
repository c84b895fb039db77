"""One Temporal workflow class per flow, the sandbox they run in, and history replay.

Every flow gets a subclass of the generic interpreter
(:class:`~..interpreter.workflow.TriggerFlowWorkflow`) registered under the flow's name,
bound to the worker's :class:`~.registry.FlowRegistry`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.worker import Replayer, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from ..definition.builder import FlowBuilder
from ..interpreter import workflow as _workflow_module
from ..interpreter.workflow import TriggerFlowWorkflow, WorkflowInput
from .registry import DEFAULT_ACTIVITY_CONFIG, FlowRegistry

# Modules the workflow sandbox passes through, each with its reason.
PASSTHROUGH = (
    # The interpreter itself: the per-flow workflow classes and the worker-side handler
    # registry live on module attributes; a sandboxed re-import would not see them. The
    # interpreter's determinism is checked by replay tests, not by the sandbox.
    "triggerflow_temporal",
    # Data classes and validation used by the pydantic data converter.
    "pydantic",
    "pydantic_core",
    "annotated_types",
    # Validates continue_with values against response_payload_schema (pure, no I/O).
    "jsonschema",
    "jsonschema_specifications",
    "referencing",
    "rpds",
    "attrs",
)

_class_counter = itertools.count(1)


def _sanitize(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)[:60]


def make_workflow_class(flow_name: str, registry: FlowRegistry) -> type:
    """The ``@workflow.defn(name=flow_name)`` subclass of the interpreter bound to ``registry``."""
    cls_name = f"TriggerFlowWorkflow_{_sanitize(flow_name)}_{next(_class_counter)}"

    async def run(self: TriggerFlowWorkflow, input: WorkflowInput) -> dict[str, Any]:
        return await self.run_flow(input)

    run.__qualname__ = f"{cls_name}.run"
    run.__module__ = _workflow_module.__name__
    # Same (string) annotations as TriggerFlowWorkflow.__init__: Temporal compares them.
    run.__annotations__ = {"input": "WorkflowInput", "return": "dict[str, Any]"}
    cls = type(
        cls_name,
        (TriggerFlowWorkflow,),
        {
            "run": workflow.run(run),
            "_tf_runtime": registry,
            "__module__": _workflow_module.__name__,
        },
    )
    cls.__qualname__ = cls_name
    # Replay and the sandboxed mailbox/notify workflows import classes by module attribute.
    setattr(_workflow_module, cls_name, cls)
    # Outside Temporal's workflow sandbox (sandboxed=False). The sandbox re-imports a
    # workflow's modules per instance and restricts the calls that code makes; here it
    # protected nothing and cost ~15 % of a worker's CPU (bench/RESULTS.md): the
    # interpreter package is passed through (its classes and registry live on module
    # attributes), and user handlers and conditions are the worker's own function
    # objects, whose globals were never sandboxed. The interpreter's determinism is
    # proven by replay: every recorded history, and every history of a test run under
    # TRIGGERFLOW_FORCE_REPLAY=1 (scripts/test.sh).
    return workflow.defn(name=flow_name, sandboxed=False)(cls)


def workflow_runner(
    existing: WorkflowRunner | None, *, passthrough: tuple[str, ...] = PASSTHROUGH
) -> WorkflowRunner:
    """``existing`` (or the default sandbox) with this package's passthrough modules."""
    if existing is None:
        return SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*passthrough)
        )
    if isinstance(existing, SandboxedWorkflowRunner):
        return dataclasses.replace(
            existing,
            restrictions=existing.restrictions.with_passthrough_modules(*passthrough),
        )
    return existing


def history_replayer(
    flows: Sequence[FlowBuilder],
    data_converter: Any,
    step_recorder: Callable[[str, dict[str, Any]], None],
) -> Replayer:
    """A replayer of ``flows[0]``'s executions that reports the state after every chunk.

    ``step_recorder(workflow_id, step)`` is called once per chunk the replay applies (the
    client's ``async_get_history``). The replay is an analysis on the client, not a worker:
    the step recorder snapshots the execution after every chunk, which can keep one
    replayed workflow task busy for seconds on a long run, so Temporal's 2 s deadlock
    detector is off here.
    """
    name = flows[0].name
    registry = FlowRegistry({name: list(flows)}, {}, {}, dict(DEFAULT_ACTIVITY_CONFIG), None)
    registry.step_recorder = step_recorder
    return Replayer(
        workflows=[make_workflow_class(name, registry)],
        data_converter=data_converter,
        workflow_runner=workflow_runner(None),
        debug_mode=True,
    )
