"""Client side: what an execution handle runs with, resolved against the plugins.

An execution handle is created with a flow object and, optionally, a client and a task
queue. :class:`ExecutionSetup` answers where and how its workflow runs: the client (given,
else the one the flow's plugin is attached to), the plugin that serves the flow by name
(a flow rebuilt from its module gets the same task queue as the object the plugin was
given), the task queue, the compiled graph, and the options a start or a load sends.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from .._errors import ExecutionStateError
from ..definition.builder import FlowBuilder
from ..interpreter.access import actor_problem, normalize_actor
from ..interpreter.interventions import check_mode
from ..plugin.intervention_policies import execution_policy
from ..plugin.plugin import TriggerFlowPlugin
from ..spec.spec_codec import compact_dataclass
from ..spec.wire import DEFAULT_TASK_QUEUE, ExecutionOptions, WorkflowInput, option_problems
from .checks import check_json
from .persistence import start_options

if TYPE_CHECKING:
    from ..spec.flow_spec import FlowSpec
    from .flow import TriggerFlow

__all__ = ["ExecutionSetup"]


class ExecutionSetup:
    """The flow, client, task queue, graph and options of one execution handle.

    Attributes:
        flow: The flow the execution runs.
        client: The client given to the handle (None: the flow's plugin's client).
        task_queue: The task queue given to the handle (None: the plugin's for the flow).
        options: The execution options given to the handle.
        intervention_mode: The intervention mode given, or ``...`` when not given (then it
            is resolved from the graph as Agently does).
    """

    def __init__(
        self,
        flow: TriggerFlow,
        *,
        client: Client | None,
        task_queue: str | None,
        options: ExecutionOptions,
        intervention_mode: Any,
    ) -> None:
        self.flow = flow
        self.client = client
        self.task_queue = task_queue
        self.options = options
        self.intervention_mode = intervention_mode
        self._compiled: FlowSpec | None = None

    @classmethod
    def create(
        cls,
        flow: TriggerFlow,
        *,
        client: Client | None,
        task_queue: str | None,
        runtime_resources: dict[str, Any] | None,
        auto_close: bool,
        auto_close_timeout: float | None,
        skip_exceptions: bool | None,
        concurrency: int | None,
        intervention_mode: Any,
        tenant: str | None,
        hidden: bool,
        started_by: str | dict[str, Any] | None = None,
        intervention_policy: Any = None,
    ) -> ExecutionSetup:
        """The setup of ``create_execution(...)``'s arguments, checked as Agently does.

        The arguments are ``create_execution``'s, but ``intervention_mode`` is ``...``
        when it was not given (None is a mode: interventions off). ``intervention_policy``
        (a function registered on the worker, or its ``module.qualname``) is recorded by
        name.

        Raises:
            ValueError: An invalid ``auto_close_timeout`` or ``concurrency``; runtime
                resources over the payload limit; an ``intervention_policy`` a worker
                cannot look up by name (a lambda, a nested or ``__main__`` function).
            TypeError: Runtime resources that are not JSON-ready data; an
                ``intervention_policy`` that is neither a function, a name nor None.
        """
        problems = option_problems(auto_close_timeout, concurrency)
        actor = actor_problem(started_by)
        if actor:
            problems.append(f"started_by: {actor}")
        if problems:
            raise ValueError("; ".join(problems) + ".")
        resources = dict(runtime_resources or {})
        check_json("runtime_resources", resources)
        if intervention_mode is not ...:
            check_mode(intervention_mode, has_points=False)
        options = ExecutionOptions(
            auto_close=auto_close,
            auto_close_timeout=None if auto_close_timeout is None else float(auto_close_timeout),
            skip_exceptions=flow.skip_exceptions if skip_exceptions is None else skip_exceptions,
            concurrency=concurrency,
            hidden=hidden,
            runtime_resources=resources,
            tenant=tenant,
            started_by=normalize_actor(started_by),
            intervention_policy=execution_policy(intervention_policy),
        )
        return cls(
            flow,
            client=client,
            task_queue=task_queue,
            options=options,
            intervention_mode=intervention_mode,
        )

    def resolve_client(self) -> Client:
        """The client to call the workflow with.

        Raises:
            ExecutionStateError: None was given and the flow's plugin has none.
        """
        if self.client is not None:
            return self.client
        plugin = TriggerFlowPlugin.of_flow(self.flow)
        client = plugin.client if plugin is not None else None
        if client is None:
            raise ExecutionStateError(
                f"Flow '{self.flow.name}' has no Temporal client. Pass client= to "
                "create_execution(), or attach TriggerFlowPlugin(flows=[flow]) to a client "
                "(Client.connect(address, plugins=[plugin])). A flow rebuilt from its module "
                "(not the object handed to the plugin) needs client=: the client's plugin "
                "then finds the task queue by flow name."
            )
        return client

    def runtime_plugin(self) -> TriggerFlowPlugin | None:
        """The plugin that answers for this flow, by name.

        The plugin of the client this execution uses that serves a flow of this name (so a
        rebuilt flow object gets the same task queue and settings as the object the plugin
        was given), else the plugin this flow object was handed to, else the client's.
        """
        own = TriggerFlowPlugin.of_flow(self.flow)
        client = self.client or (own.client if own is not None else None)
        found = TriggerFlowPlugin.of_client(client, self.flow.name) if client else None
        if found is not None and found.serves(self.flow.name):
            return found
        # No plugin of the client serves it: the plugin this object was handed to knows
        # it; else the client's plugin (its default queue).
        return own or found

    def spec(self) -> FlowSpec:
        """The compiled graph, compiled once: an execution is pinned to the graph it starts with."""
        if self._compiled is None:
            self._compiled = self.flow.compile()  # cached on the flow until it changes
        return self._compiled

    def queue(self) -> str:
        """The task queue: ``task_queue=``, else the plugin's queue for this flow name."""
        if self.task_queue:
            return self.task_queue
        plugin = self.runtime_plugin()
        return plugin.task_queue_for(self.flow.name) if plugin else DEFAULT_TASK_QUEUE

    def search_attributes(self) -> bool:
        """False when the plugin turned search attributes off."""
        plugin = self.runtime_plugin()
        return plugin.search_attributes if plugin is not None else True

    def history_flows(self) -> Sequence[FlowBuilder]:
        """Every version of the flow the plugin serves (to replay any execution's history)."""
        plugin = self.runtime_plugin()
        if plugin is not None:
            return plugin.flows.get(self.flow.name) or [self.flow]
        return [self.flow]

    def workflow_input(self) -> WorkflowInput:
        """The workflow input, with the intervention mode resolved as Agently does."""
        spec = self.spec()
        options = copy.copy(self.options)
        has_points = any(op["kind"] == "intervention_point" for op in spec.operators)
        options.intervention_mode = check_mode(self.intervention_mode, has_points)
        # Packed (spec_codec): clients start runtime version 4, whose workflows decode it.
        return WorkflowInput(spec=spec.to_packed(), options=options)

    async def start_options(
        self, spec: FlowSpec, options: ExecutionOptions, execution_id: str
    ) -> dict[str, Any]:
        """Keyword arguments of a start of ``execution_id`` (id, queue, search attributes)."""
        return await start_options(
            self.resolve_client(),
            spec,
            options,
            execution_id=execution_id,
            task_queue=self.queue(),
            search_attributes=self.search_attributes(),
        )

    async def with_start(
        self, execution_id: str, workflow_input: WorkflowInput
    ) -> WithStartWorkflowOperation[Any, Any]:
        """Start-if-absent operation for update-with-start (an existing run is reused)."""
        spec = self.spec()
        kwargs = await self.start_options(spec, workflow_input.options, execution_id)
        return WithStartWorkflowOperation(
            spec.name,
            compact_dataclass(workflow_input),  # the defaults are left out (spec_codec)
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A closed execution's id is not reused: a new run under it would become the
            # "current" execution and hide the closed one's state from every handle.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            result_type=dict,
            **kwargs,
        )
