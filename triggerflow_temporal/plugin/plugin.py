"""TriggerFlowPlugin: the one place that wires flows into a Temporal client and worker."""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import temporalio.client
import temporalio.worker
from temporalio import workflow
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter, DefaultPayloadConverter
from temporalio.plugin import SimplePlugin

from .._errors import (
    FlowDefinitionError,
    TriggerFlowError,
)
from ..chunk.activity import make_chunk_activity
from ..definition.agently_import import from_agently, is_agently_flow
from ..definition.builder import FlowBuilder
from ..interpreter.audit_log import AuditLogWorkflow
from ..interpreter.mailbox import MailboxWorkflow
from ..interpreter.notify_workflow import NotifyWorkflow
from ..interpreter.signal_net import BINDING_CHUNK_PREFIX
from ..spec.flow_spec import FlowSpec
from ..spec.wire import DEFAULT_TASK_QUEUE
from .converter import TriggerFlowPayloadConverter, triggerflow_data_converter
from .events import EventHub, RuntimeEvent
from .intervention_policies import make_policy_activity, register_policies
from .links import ApprovalLinks
from .mailbox_activities import MAILBOX_ACTIVITIES
from .notifications import NotificationChannel
from .notify_activities import check_channels, make_notify_activities
from .registry import DEFAULT_ACTIVITY_CONFIG, FlowRegistry
from .tracing import instrument_httpx, resolve_tracing, temporal_interceptors
from .workflow_classes import PASSTHROUGH, make_workflow_class, workflow_runner
from .workspace_binding import make_workspace_factory
from .yield_activity import yield_activation

# The plugin each flow object was handed to (for create_execution() without a client).
_PLUGIN_OF_FLOW: weakref.WeakKeyDictionary[FlowBuilder, TriggerFlowPlugin] = (
    weakref.WeakKeyDictionary()
)


def _coerce_flow(flow: Any) -> FlowBuilder:
    if isinstance(flow, FlowBuilder):
        return flow
    if is_agently_flow(flow):
        return from_agently(flow)
    raise FlowDefinitionError(
        f"TriggerFlowPlugin(flows=...) takes TriggerFlow objects (triggerflow_temporal or "
        f"agently), got {type(flow).__name__}."
    )


class _ClientCapture(temporalio.client.Interceptor):
    """Remembers the Client the plugin was attached to (for ``create_execution()``)."""

    def __init__(self, plugin: TriggerFlowPlugin) -> None:
        self._plugin = plugin

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        node: Any = next
        while node is not None:
            client = getattr(node, "_client", None)
            if isinstance(client, temporalio.client.Client):
                self._plugin._client = client
                break
            node = getattr(node, "next", None)
        return next


class TriggerFlowPlugin(SimplePlugin):
    """Serve TriggerFlow flows on Temporal: workflows, activities, converter and sandbox.

    Attach it to the client (``Client.connect(..., plugins=[plugin])``) and to the worker
    (``Worker(client, task_queue=..., plugins=[plugin])``; a worker built from a client
    that already has the plugin gets it automatically).

    Args:
        flows: The flows this process serves or starts. Several objects with the same name
            are served as versions of one flow: each execution runs the graph it started
            with, and handlers are looked up by name (newest first).
        runtime_resources: Live objects every chunk can read with ``data.get_resource``.
        resource_factories: ``{key: factory(value)}``; an execution's
            ``runtime_resources={key: value}`` (JSON data in the workflow input) becomes
            ``factory(value)`` on the worker, so live objects never enter history.
        workspace: A Workspace for ``data.workspace``: a URL, a path, or a
            ``workspace.BaseWorkspace``.
        task_queue: Task queue new executions start on; defaults to the queue of the
            worker this plugin configures, else ``"triggerflow"``. Executions created
            through a client that has this plugin get it by flow name
            (:meth:`task_queue_for`), from whichever flow object they were built.
        default_activity_config: ``ActivityConfig`` defaults for every chunk (a chunk's
            own options win). Defaults: 5 min start-to-close, 5 attempts, handler bugs
            (``TypeError``, ``ValueError``, ``KeyError``, ...) not retried.
        tracing: OpenTelemetry tracing (needs the ``otel`` extra; see docs/observability.md):
            ``True`` uses the global tracer provider (built from the ``OTEL_*`` variables
            when none is set), a ``ReplaySafeTracerProvider`` is installed as the global one,
            ``False`` turns tracing off, and ``None`` (default) turns it on when
            ``OTEL_TRACES_EXPORTER`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. Adds
            Temporal's tracing interceptor to client and worker and traces this process's
            ``httpx`` requests, so one trace runs from the client call through the workflow
            and every chunk to the Workspace service.
        search_attributes: Set the TriggerFlow search attributes (status, pending
            interrupt types, flow, blueprint, tenant) on executions this process starts, when
            the namespace has them registered. ``False`` skips them: each status change then
            costs one history event and 6-7 ms of server CPU less (bench/RESULTS.md), but
            ``triggerflow-temporal list`` and the UI's ``TriggerFlowStatus`` queries no longer
            see these executions.
        snapshot_key: The operator's secret (>= 32 characters; else
            ``TRIGGERFLOW_SNAPSHOT_KEY``): ``async_save()`` signs snapshots with it
            (HMAC-SHA256) and loading refuses unsigned or edited ones. None: unsigned.
        notifiers: This worker's notification channels (:class:`NotificationChannel`,
            e.g. :class:`WebhookChannel`), each with its own ``name``: executions tell them
            when an interrupt is created, reminded, escalated, resumed, timed out or
            cancelled and when they fail or complete (docs/notifications.md). Give every
            worker of a task queue the same channels.
        approval_links: Mints the approval link of each assignee into notifications
            (the gateway's ``links`` config: same ``base_url`` and secret).
        event_handlers: Functions executions bind with ``execution.on(event, handler)``,
            each registered under its ``module.qualname`` and run as the activity
            ``"<flow>.on:<module>.<qualname>"`` (docs/triggerflow-on-temporal.md
            "Execution-only handlers"). Give every worker of a task queue the same ones.
        intervention_policies: Functions executions may name as their
            ``create_execution(intervention_policy=...)``, each registered under its
            ``module.qualname`` and run as a local activity (docs/triggerflow-on-temporal.md
            "Interventions"). Give every worker of a task queue the same policies.

    Raises:
        FlowDefinitionError: A flow cannot be compiled (lambda or ``__main__`` handler,
            clashing names, missing handler), or two flows conflict.
        TypeError: ``notifiers`` is not a list of channels, or ``approval_links`` is not
            an :class:`ApprovalLinks`.
        ValueError: Two channels share a name.
    """

    def __init__(
        self,
        flows: Sequence[Any],
        runtime_resources: Mapping[str, Any] | None = None,
        *,
        resource_factories: Mapping[str, Callable[..., Any]] | None = None,
        workspace: Any = None,
        task_queue: str | None = None,
        default_activity_config: Mapping[str, Any] | None = None,
        tracing: Any = None,
        search_attributes: bool = True,
        snapshot_key: str | bytes | None = None,
        notifiers: Sequence[NotificationChannel] = (),
        approval_links: ApprovalLinks | None = None,
        event_handlers: Sequence[Callable[..., Any]] = (),
        intervention_policies: Sequence[Callable[..., Any]] = (),
    ) -> None:
        if snapshot_key is not None and (
            not isinstance(snapshot_key, (str, bytes)) or len(snapshot_key) < 32
        ):
            raise TypeError(
                "TriggerFlowPlugin(snapshot_key=...) takes a secret of at least 32 characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), or None."
            )
        # Signs saved snapshots and refuses unsigned or edited ones on load (issue 17).
        self.snapshot_key = snapshot_key.encode() if isinstance(snapshot_key, str) else snapshot_key
        if not isinstance(search_attributes, bool):
            raise TypeError(
                f"TriggerFlowPlugin(search_attributes=...) takes True or False, got "
                f"{search_attributes!r}."
            )
        self.search_attributes = search_attributes
        self.notifiers = check_channels(notifiers)
        if approval_links is not None and not isinstance(approval_links, ApprovalLinks):
            raise TypeError(
                "TriggerFlowPlugin(approval_links=...) takes an ApprovalLinks(base_url, secret), "
                f"got {type(approval_links).__name__}."
            )
        self.approval_links = approval_links
        self.intervention_policies = register_policies(intervention_policies)
        if isinstance(flows, (FlowBuilder, str)) or not isinstance(flows, Sequence):
            raise FlowDefinitionError(
                "TriggerFlowPlugin(flows=...) takes a list of flows, e.g. flows=[refund_flow]."
            )
        if not flows:
            raise FlowDefinitionError("TriggerFlowPlugin needs at least one flow.")
        coerced = [_coerce_flow(flow) for flow in flows]
        versions: dict[str, list[FlowBuilder]] = {}
        specs: dict[str, list[FlowSpec]] = {}
        pending = list(coerced)
        while pending:
            flow = pending.pop(0)
            spec = flow.compile()
            bucket = versions.setdefault(flow.name, [])
            if any(existing is flow for existing in bucket):
                continue
            bucket.append(flow)
            specs.setdefault(flow.name, []).append(spec)
            pending.extend(flow.graph.sub_flows.values())
        for name, bucket in versions.items():
            _check_versions(name, bucket)
        config = dict(DEFAULT_ACTIVITY_CONFIG)
        if default_activity_config:
            unknown = set(default_activity_config) - set(workflow.ActivityConfig.__annotations__)
            if unknown:
                raise FlowDefinitionError(
                    f"default_activity_config has unknown key(s) {sorted(unknown)}; use keys of "
                    "temporalio.workflow.ActivityConfig."
                )
            config.update(default_activity_config)
        if not any(
            config.get(key) for key in ("start_to_close_timeout", "schedule_to_close_timeout")
        ):
            raise FlowDefinitionError(
                "default_activity_config must set start_to_close_timeout or "
                "schedule_to_close_timeout; Temporal needs one of them for every activity."
            )
        self.tracer_provider = resolve_tracing(tracing)
        self._client: temporalio.client.Client | None = None
        self._explicit_task_queue = task_queue
        self._worker_task_queue: str | None = None
        self.flows: dict[str, list[FlowBuilder]] = versions
        self.specs = specs
        self.registry = FlowRegistry(
            versions,
            runtime_resources or {},
            resource_factories or {},
            config,
            _workspace_factory(workspace),
        )
        # execution.on() handlers: looked up by module.qualname (definition/bindings.py).
        self.registry.add_event_handlers(event_handlers)
        # RuntimeEvent hooks (on_event); the workflow reads the hub from the registry.
        self.events = EventHub()
        self.registry.events = self.events
        self.registry.channel_names = list(self.notifiers)
        workflows: list[type] = [make_workflow_class(name, self.registry) for name in versions]
        # Every TriggerFlow worker also serves the mailboxes of correlated messages.
        workflows.append(MailboxWorkflow)
        workflows.append(AuditLogWorkflow)  # refusals the gateway records
        # Notifications: always served, so an execution's plan gets an answer ([] without
        # channels) and a delivery to a channel this worker lacks fails by name.
        workflows.append(NotifyWorkflow)
        activities: list[Callable[..., Any]] = list(MAILBOX_ACTIVITIES)
        activities.append(yield_activation)  # inline chunks' yield (runtime version 4)
        activities.extend(make_notify_activities(self.notifiers, self.approval_links))
        activities.append(make_policy_activity(self.intervention_policies))
        for name, bucket in versions.items():
            chunk_names: dict[str, None] = {}
            for flow in bucket:
                for chunk in flow.chunks.values():
                    chunk_names.setdefault(chunk.name, None)
            for key in self.registry.event_handlers:
                chunk_names.setdefault(f"{BINDING_CHUNK_PREFIX}{key}", None)
            activities.extend(make_chunk_activity(self.registry, name, c) for c in chunk_names)
        self.workflow_classes = workflows
        interceptors: list[Any] = [_ClientCapture(self)]
        passthrough = PASSTHROUGH
        if self.tracer_provider is not None:
            interceptors.extend(temporal_interceptors())
            # The OpenTelemetry context and the global (replay-safe) tracer provider must be
            # the process's own inside the sandbox, or workflow spans go nowhere.
            passthrough = (*PASSTHROUGH, "opentelemetry")
            instrument_httpx(self.tracer_provider)
            enable = getattr(workspace, "enable_tracing", None)
            if callable(enable):
                enable(self.tracer_provider)
        super().__init__(
            "triggerflow_temporal.TriggerFlowPlugin",
            data_converter=_data_converter,
            activities=activities,
            workflows=workflows,
            workflow_runner=functools.partial(workflow_runner, passthrough=passthrough),
            workflow_failure_exception_types=[TriggerFlowError],
            interceptors=interceptors,
            run_context=self.events.running,
        )
        for flow in coerced:
            flow.bind_plugin(self)
            _PLUGIN_OF_FLOW[flow] = self

    def use_task_queue(self, queue: str) -> None:
        """Start this plugin's executions on ``queue`` (as ``task_queue=`` would)."""
        self._explicit_task_queue = queue

    @property
    def task_queue(self) -> str:
        """The task queue new executions start on."""
        return self._explicit_task_queue or self._worker_task_queue or DEFAULT_TASK_QUEUE

    def serves(self, flow_name: str) -> bool:
        """Whether this plugin has a flow named ``flow_name`` (its workers serve it)."""
        return flow_name in self.flows

    def task_queue_for(self, flow_name: str) -> str:
        """The task queue executions of ``flow_name`` start on, by name.

        Any flow object of that name gets the same answer, so a flow rebuilt from its
        module (not the object handed to the plugin) finds the worker that serves it. A
        flow this plugin serves: ``task_queue=``, else the queue of the worker the plugin
        configured, else ``"triggerflow"``. Another flow (served elsewhere):
        ``task_queue=``, else ``"triggerflow"``, where ``triggerflow-temporal worker``
        polls by default.
        """
        if self.serves(flow_name):
            return self.task_queue
        return self._explicit_task_queue or DEFAULT_TASK_QUEUE

    @classmethod
    def of_client(
        cls, client: temporalio.client.Client, flow_name: str | None = None
    ) -> TriggerFlowPlugin | None:
        """The TriggerFlowPlugin among ``client``'s plugins, if any.

        With ``flow_name``, the one that serves that flow is preferred; else the first.
        """
        plugins = [p for p in client.config().get("plugins") or () if isinstance(p, cls)]
        if flow_name is not None:
            for plugin in plugins:
                if plugin.serves(flow_name):
                    return plugin
        return plugins[0] if plugins else None

    @staticmethod
    def of_flow(flow: Any) -> TriggerFlowPlugin | None:
        """The plugin this flow object was handed to (``TriggerFlowPlugin(flows=[flow])``)."""
        try:
            return _PLUGIN_OF_FLOW.get(flow)
        except TypeError:  # not weak-referenceable: never handed to a plugin
            return None

    @property
    def client(self) -> temporalio.client.Client | None:
        """The client this plugin was attached to, if any."""
        return self._client

    def on_event(
        self,
        callback: Callable[[RuntimeEvent], Any],
        event_types: str | Sequence[str] | None = None,
        *,
        name: str | None = None,
    ) -> str:
        """Call ``callback(event)`` for each RuntimeEvent of executions this worker runs.

        Callbacks (sync or async) run on the worker's event loop, outside workflow code,
        one queue per hook in event order; their errors are logged and never reach the
        execution. Events are never delivered while a history is replayed, and at most
        once per worker process (see docs/observability.md).

        Args:
            callback: Takes a :class:`~triggerflow_temporal.plugin.events.RuntimeEvent`.
            event_types: One type or a list (``"chunk.completed"``,
                ``"triggerflow.execution_started"``; ``workflow.<x>`` aliases accepted);
                None for all.
            name: Hook name for :meth:`off_event`; generated when omitted.

        Returns:
            The hook name.

        Raises:
            TypeError: ``callback`` is not callable.
            ValueError: An unknown event type or a duplicate name.
        """
        return self.events.register(callback, event_types=event_types, name=name)

    def off_event(self, name: str) -> None:
        """Remove the hook ``name`` returned by :meth:`on_event`."""
        self.events.unregister(name)

    def attach_client(self, client: temporalio.client.Client) -> None:
        """Use ``client`` for ``create_execution()`` calls that pass none."""
        self._client = client

    def configure_worker(
        self, config: temporalio.worker.WorkerConfig
    ) -> temporalio.worker.WorkerConfig:
        """See base class; also remembers the worker's client and task queue."""
        config = super().configure_worker(config)
        client = config.get("client")
        if client is not None and self._client is None:
            self._client = client
        task_queue = config.get("task_queue")
        if task_queue and self._worker_task_queue is None:
            self._worker_task_queue = task_queue
        return config


def _check_versions(name: str, bucket: list[FlowBuilder]) -> None:
    """Versions of one flow may differ in graph, not in what a handler name means."""
    seen: dict[str, Callable[..., Any]] = {}
    for flow in bucket:
        for chunk in flow.chunks.values():
            other = seen.setdefault(chunk.name, chunk.handler)
            if other is not chunk.handler and (
                getattr(other, "__qualname__", None) != getattr(chunk.handler, "__qualname__", None)
                or getattr(other, "__module__", None) != getattr(chunk.handler, "__module__", None)
            ):
                raise FlowDefinitionError(
                    f"Two flows named '{name}' bind chunk '{chunk.name}' to different handlers "
                    f"({getattr(other, '__qualname__', other)} and "
                    f"{getattr(chunk.handler, '__qualname__', chunk.handler)}). Versions of a "
                    "flow share handlers by name: rename the chunk in the new version."
                )


def _data_converter(existing: DataConverter | None) -> DataConverter:
    if existing is None or existing.payload_converter_class in (
        DefaultPayloadConverter,
        PydanticPayloadConverter,
        TriggerFlowPayloadConverter,
    ):
        return triggerflow_data_converter
    warnings.warn(
        "TriggerFlowPlugin keeps the client's custom payload converter "
        f"{existing.payload_converter_class.__name__}; it must handle dataclasses and JSON.",
        stacklevel=3,
    )
    return existing


def _workspace_factory(workspace: Any) -> Callable[[Any], Any] | None:
    if workspace is None:
        return None
    return make_workspace_factory(workspace)
