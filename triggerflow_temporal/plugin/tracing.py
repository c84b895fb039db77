"""OpenTelemetry tracing: ``OTEL_*`` configuration, Temporal's interceptor, span attributes.

Everything here imports OpenTelemetry lazily: the core install works without the ``otel`` extra,
and nothing is instrumented until :func:`configure_tracing` or ``TriggerFlowPlugin(tracing=...)``
asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import temporalio.worker

from ..chunk.spans import (
    ATTR_BLUEPRINT_HASH,
    ATTR_CHUNK,
    ATTR_EXECUTION_ID,
    ATTR_FLOW,
    ATTR_INTERRUPT_ID,
    ATTR_TENANT,
    current_span,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider


__all__ = [
    "ATTR_BLUEPRINT_HASH",
    "ATTR_CHUNK",
    "ATTR_EXECUTION_ID",
    "ATTR_FLOW",
    "ATTR_INTERRUPT_ID",
    "configure_tracing",
    "span_exporters_from_env",
    "tracing_requested_by_env",
]

INSTALL_HINT = "pip install 'triggerflow-temporal[otel]'"
DEFAULT_SERVICE_NAME = "triggerflow"

_OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# OTLP protocol -> entry point name in the ``opentelemetry_traces_exporter`` group.
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
_OTLP_PACKAGES = {
    "otlp_proto_http": "opentelemetry-exporter-otlp-proto-http",
    "otlp_proto_grpc": "opentelemetry-exporter-otlp-proto-grpc",
}


def _missing(what: str, error: ImportError) -> ImportError:
    return ImportError(
        f"{what} needs the OpenTelemetry packages ({error.name or error}); install them with "
        f"`{INSTALL_HINT}`."
    )


def tracing_requested_by_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard ``OTEL_*`` variables ask for trace export.

    True when ``OTEL_TRACES_EXPORTER`` names an exporter other than ``none``, or when an OTLP
    endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set;
    always False when ``OTEL_SDK_DISABLED`` is true.

    Args:
        environ: The environment to read; default ``os.environ``.

    Returns:
        Whether tracing should be turned on.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if names:
        return any(name.strip() not in ("", "none") for name in names.split(","))
    return any(env.get(var, "").strip() for var in _OTLP_ENDPOINT_VARS)


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not raw:
        # Unlike the SDK's default ("otlp" to localhost), export only when asked to.
        raw = "otlp" if any(env.get(var, "").strip() for var in _OTLP_ENDPOINT_VARS) else "none"
    names: list[str] = []
    for name in (part.strip() for part in raw.split(",")):
        if name in ("", "none"):
            continue
        if name == "otlp":
            protocol = (
                env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"
            ).strip()
            if protocol not in _OTLP_BY_PROTOCOL:
                raise ValueError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use "
                    "'http/protobuf' (installed with the otel extra) or 'grpc'."
                )
            name = _OTLP_BY_PROTOCOL[protocol]
        names.append(name)
    return names


def span_exporters_from_env(environ: Mapping[str, str] | None = None) -> list[SpanExporter]:
    """Build the span exporters that ``OTEL_TRACES_EXPORTER`` and the OTLP variables select.

    ``otlp`` uses ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`` (default ``http/protobuf``); other
    names (``console``, ``zipkin_json``, ...) are looked up in the standard
    ``opentelemetry_traces_exporter`` entry point group. Each exporter reads its own variables
    (endpoint, headers, timeout, compression). With no variable set the list is empty.

    Args:
        environ: The environment to read; default ``os.environ``. The exporters themselves
            always read ``os.environ``.

    Returns:
        The exporters, not yet attached to any provider.

    Raises:
        ValueError: For an unknown exporter name or OTLP protocol.
        ImportError: When the selected exporter's package is not installed.
    """
    from importlib.metadata import entry_points

    exporters: list[SpanExporter] = []
    for name in _exporter_names(os.environ if environ is None else environ):
        found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
        if not found:
            package = _OTLP_PACKAGES.get(name)
            if package is not None:
                raise ImportError(
                    f"OTEL_TRACES_EXPORTER selects {name}, but {package} is not installed; "
                    f"install it (`pip install {package}`)."
                )
            raise ValueError(
                f"OTEL_TRACES_EXPORTER names an unknown exporter {name!r}; use otlp, console or "
                "none, or install the package that registers it."
            )
        exporters.append(found[0].load()())
    return exporters


def _global_provider() -> Any:
    from opentelemetry import trace

    return trace.get_tracer_provider()


def _is_unset(provider: Any) -> bool:
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

    return isinstance(provider, (ProxyTracerProvider, NoOpTracerProvider))


def _set_global(provider: Any) -> None:
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    if _global_provider() is not provider:
        raise ValueError(
            "Could not install the tracer provider globally: another one was set first. "
            "Configure tracing once per process, before any client or worker is created."
        )


def configure_tracing(
    *,
    service_name: str = DEFAULT_SERVICE_NAME,
    exporters: Sequence[SpanExporter] | None = None,
    set_global: bool = True,
) -> ReplaySafeTracerProvider:
    """Build a replay-safe tracer provider from the standard ``OTEL_*`` variables.

    The resource honours ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``
    (``service_name`` is used only when neither names the service); the sampler honours
    ``OTEL_TRACES_SAMPLER(_ARG)``; spans go through a batch processor (``OTEL_BSP_*``) to the
    exporters of :func:`span_exporters_from_env` (OTLP over HTTP when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set). The provider is Temporal's
    ``ReplaySafeTracerProvider``, which workflow tracing requires.

    Args:
        service_name: ``service.name`` when the environment sets none.
        exporters: Exporters to use instead of the environment's.
        set_global: Install the provider as OpenTelemetry's global one. If a replay-safe
            provider is installed already, it is returned unchanged.

    Returns:
        The provider.

    Raises:
        ImportError: Without the ``otel`` extra.
        ValueError: For bad ``OTEL_*`` values, or when ``set_global`` meets another,
            non-replay-safe global provider.
    """
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from temporalio.contrib.opentelemetry import (
            ReplaySafeTracerProvider,
            create_tracer_provider,
        )
    except ImportError as error:
        raise _missing("configure_tracing()", error) from error
    if set_global:
        current = _global_provider()
        if isinstance(current, ReplaySafeTracerProvider):
            return current
        if not _is_unset(current):
            raise ValueError(_not_replay_safe(current))
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": service_name}))
    provider = create_tracer_provider(resource=resource)
    for exporter in span_exporters_from_env() if exporters is None else exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global:
        _set_global(provider)
    return provider


def _not_replay_safe(provider: Any) -> str:
    return (
        f"The global OpenTelemetry tracer provider is a {type(provider).__name__}; workflow "
        "tracing needs Temporal's ReplaySafeTracerProvider (deterministic span ids, no "
        "duplicate spans on replay). Create it with triggerflow_temporal.plugin.tracing."
        "configure_tracing() or temporalio.contrib.opentelemetry.create_tracer_provider() "
        "before anything sets another global provider."
    )


def resolve_tracing(tracing: Any) -> ReplaySafeTracerProvider | None:
    """Turn ``TriggerFlowPlugin(tracing=...)`` into the provider to use, or None.

    Args:
        tracing: ``None`` (on when :func:`tracing_requested_by_env`), ``False``, ``True`` (the
            global provider; configured from the environment when none is set) or a
            ``ReplaySafeTracerProvider`` (installed globally when none is set).

    Returns:
        The global replay-safe provider, or None when tracing is off.

    Raises:
        TypeError: For a value of another type, or a provider that is not replay-safe.
        ValueError: When the global provider conflicts.
        ImportError: Without the ``otel`` extra.
    """
    if tracing is None:
        tracing = tracing_requested_by_env()
    if tracing is False:
        return None
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider
    except ImportError as error:
        raise _missing("TriggerFlowPlugin(tracing=...)", error) from error
    if tracing is True:
        current = _global_provider()
        if isinstance(current, ReplaySafeTracerProvider):
            return current
        if _is_unset(current):
            return configure_tracing()
        raise ValueError(_not_replay_safe(current))
    if isinstance(tracing, ReplaySafeTracerProvider):
        current = _global_provider()
        if current is tracing:
            return tracing
        if _is_unset(current):
            _set_global(tracing)
            return tracing
        raise ValueError(
            f"TriggerFlowPlugin(tracing=provider): the global tracer provider is already "
            f"another {type(current).__name__}. Temporal's workflow spans always use the "
            "global provider, so pass tracing=True or install this provider first."
        )
    if isinstance(tracing, TracerProvider):
        raise TypeError(
            "TriggerFlowPlugin(tracing=...) got a plain SDK TracerProvider; workflow spans "
            "need a replay-safe one. Build it with triggerflow_temporal.plugin.tracing."
            "configure_tracing() or temporalio.contrib.opentelemetry.create_tracer_provider()."
        )
    raise TypeError(
        f"TriggerFlowPlugin(tracing=...) takes None, a bool or a ReplaySafeTracerProvider, got "
        f"{type(tracing).__name__}."
    )


def service_tracer_provider(tracing: Any, *, service_name: str) -> Any:
    """Resolve a ``tracing=`` option for a plain service (no workflows, any SDK provider).

    Args:
        tracing: ``None`` (on when :func:`tracing_requested_by_env`), ``False``, ``True`` (the
            global provider, configured from the environment when none is set) or a
            ``TracerProvider`` used as is (not installed globally).
        service_name: ``service.name`` when the environment sets none.

    Returns:
        The provider, or None when tracing is off.

    Raises:
        TypeError: For a value of another type.
        ImportError: Without the ``otel`` extra.
    """
    if tracing is None:
        tracing = tracing_requested_by_env()
    if tracing is False:
        return None
    if tracing is True:
        try:
            current = _global_provider()
        except ImportError as error:
            raise _missing("tracing", error) from error
        if _is_unset(current):
            return configure_tracing(service_name=service_name)
        return current
    if callable(getattr(tracing, "get_tracer", None)):
        return tracing
    raise TypeError(
        f"tracing= takes None, a bool or a TracerProvider, got {type(tracing).__name__}."
    )


def temporal_interceptors() -> list[Any]:
    """Temporal's OpenTelemetry interceptor plus the ``triggerflow.*`` workflow attributes."""
    try:
        from temporalio.contrib.opentelemetry import OpenTelemetryInterceptor
    except ImportError as error:
        raise _missing("Temporal tracing", error) from error
    # Order matters: the first interceptor is the outermost, so Temporal's RunWorkflow /
    # HandleUpdate span is current when _WorkflowAttributes runs.
    return [OpenTelemetryInterceptor(add_temporal_spans=True), _AttributesInterceptor()]


def instrument_httpx(tracer_provider: Any) -> None:
    """Trace every ``httpx`` request of this process (idempotent; the first provider wins).

    Chunk handlers' HTTP calls (the Workspace client, model APIs) become child spans of the
    chunk span and carry the W3C ``traceparent`` header to the service.
    """
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError as error:
        raise _missing("httpx tracing", error) from error
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider)


def uninstrument_httpx() -> None:
    """Undo :func:`instrument_httpx` (tests)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


class _AttributesInterceptor(temporalio.worker.Interceptor):
    """Adds ``triggerflow.*`` attributes to Temporal's workflow-side spans."""

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        """See base class."""
        return _WorkflowAttributes


def _workflow_attributes() -> dict[str, Any]:
    from temporalio import workflow

    info = workflow.info()
    return {ATTR_FLOW: info.workflow_type, ATTR_EXECUTION_ID: info.workflow_id}


class _WorkflowAttributes(temporalio.worker.WorkflowInboundInterceptor):
    """Sets attributes on the current span only: no commands, so replay is unaffected."""

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        """See base class."""
        span = current_span()
        if span is not None:
            attributes = _workflow_attributes()
            first = input.args[0] if input.args else None
            spec = getattr(first, "spec", None)
            if isinstance(spec, Mapping) and isinstance(spec.get("blueprint_hash"), str):
                attributes[ATTR_BLUEPRINT_HASH] = spec["blueprint_hash"]
            tenant = getattr(getattr(first, "options", None), "tenant", None)
            if isinstance(tenant, str) and tenant:
                attributes[ATTR_TENANT] = tenant
            span.set_attributes(attributes)
        return await super().execute_workflow(input)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        """See base class."""
        _annotate_request(input.args)
        await super().handle_signal(input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        """See base class."""
        _annotate_request(input.args)
        return await super().handle_update_handler(input)


def _annotate_request(args: Sequence[Any]) -> None:
    span = current_span()
    if span is None:
        return
    attributes = _workflow_attributes()
    interrupt_id = getattr(args[0], "interrupt_id", None) if args else None
    if isinstance(interrupt_id, str) and interrupt_id:
        attributes[ATTR_INTERRUPT_ID] = interrupt_id
    span.set_attributes(attributes)
