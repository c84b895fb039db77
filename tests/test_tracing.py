"""OpenTelemetry: one trace from the client call through the workflow, every chunk activity and
the Workspace service (HTTP client -> FastAPI -> SQLAlchemy), plus ``OTEL_*`` configuration.

OpenTelemetry allows one global tracer provider per process, and Temporal's workflow spans always
use it, so this module installs one replay-safe provider (or reuses one already installed) and
attaches its own in-memory exporter; each test looks only at the traces its own calls started.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import uvicorn
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.contrib.opentelemetry import (
    OpenTelemetryInterceptor,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)

from triggerflow_temporal import TriggerFlow, TriggerFlowPlugin
from triggerflow_temporal.chunk import spans as _spans
from triggerflow_temporal.plugin import tracing as _tracing
from workspace import WorkspaceClient
from workspace.http.service import create_app


# ----------------------------------------------------------------------------------- flows
async def prepare(data):
    return {"ticket": data.input, "body": f"details of {data.input}"}


async def store(data):
    ref = await data.workspace.ingest(
        data.input["body"], "artifacts", "ticket", summary=data.input["ticket"]
    )
    return ref.id


async def finish(data):
    await data.async_set_state("ref", data.input)


traced = TriggerFlow(name="traced")
traced.to(prepare).to(store).to(finish)


async def ask(data):
    return await data.async_pause_for(type="approval", payload={"ticket": data.input})


async def commit(data):
    await data.async_set_state("decision", data.input)


traced_approval = TriggerFlow(name="traced_approval")
traced_approval.to(ask).to(commit)


# -------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def otel() -> Iterator[tuple[ReplaySafeTracerProvider, InMemorySpanExporter]]:
    current = trace.get_tracer_provider()
    if isinstance(current, ReplaySafeTracerProvider):
        provider = current
    else:
        provider = create_tracer_provider()
        trace.set_tracer_provider(provider)
        assert trace.get_tracer_provider() is provider, (
            "another test installed a non-replay-safe global tracer provider first"
        )
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    exporter.shutdown()
    _tracing.uninstrument_httpx()


@pytest.fixture(scope="module")
def workspace_url(
    otel: tuple[ReplaySafeTracerProvider, InMemorySpanExporter],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A real Workspace HTTP service (uvicorn, SQLite) traced with the module's provider."""
    provider, _ = otel
    path = tmp_path_factory.mktemp("ws_traced") / "service.db"
    app = create_app(database_url=str(path), tokens={}, tracing=provider)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


# --------------------------------------------------------------------------------- helpers
def _sid(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def _tid(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def _trace_of(exporter: InMemorySpanExporter, root_name: str) -> list[ReadableSpan]:
    roots = [s for s in exporter.get_finished_spans() if s.name == root_name and not s.parent]
    assert len(roots) == 1, [s.name for s in exporter.get_finished_spans()]
    trace_id = _tid(roots[0])
    return [s for s in exporter.get_finished_spans() if _tid(s) == trace_id]


async def _wait_for(exporter: InMemorySpanExporter, name: str) -> None:
    # The workflow span ends on the worker when the run completes; bounded wait for it.
    for _ in range(200):
        if any(s.name == name for s in exporter.get_finished_spans()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"span {name!r} never finished")


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


def _only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def _attr(span: ReadableSpan, *names: str) -> Any:
    """The first attribute present (old and new semantic-convention names)."""
    attributes = span.attributes or {}
    return next((attributes[n] for n in names if n in attributes), None)


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent and s.parent.span_id == _sid(parent)]


# ----------------------------------------------------------------------------------- tests
async def test_one_trace_from_client_to_sql(runtime, otel, workspace_url):
    provider, exporter = otel
    exporter.clear()
    async with runtime([traced], tracing=provider, workspace=workspace_url) as client:
        execution = traced.create_execution(client=client, auto_close=False)
        await execution.async_start("T-1")
        state = await execution.async_close()
    assert state["ref"]
    await _wait_for(exporter, "RunWorkflow:traced")

    spans = _trace_of(exporter, "StartUpdateWithStartWorkflow:traced")
    by_id = {_sid(s): s for s in spans}
    root = _only(spans, "StartUpdateWithStartWorkflow:traced")
    assert root.kind == SpanKind.CLIENT
    blueprint = traced.compile().blueprint_hash

    run = _only(spans, "RunWorkflow:traced")
    assert run.parent is not None and run.parent.span_id == _sid(root)
    assert run.attributes is not None
    assert run.attributes[_spans.ATTR_FLOW] == "traced"
    assert run.attributes[_spans.ATTR_EXECUTION_ID] == execution.id
    assert run.attributes[_spans.ATTR_BLUEPRINT_HASH] == blueprint

    workflow_side = {"RunWorkflow:traced", "HandleUpdate:start"}
    for chunk in ("prepare", "store", "finish"):
        span = _only(spans, f"RunActivity:traced.{chunk}")
        assert span.kind == SpanKind.SERVER
        assert span.attributes is not None
        assert span.attributes[_spans.ATTR_FLOW] == "traced"
        assert span.attributes[_spans.ATTR_EXECUTION_ID] == execution.id
        assert span.attributes[_spans.ATTR_CHUNK] == chunk
        assert span.attributes[_spans.ATTR_BLUEPRINT_HASH] == blueprint
        assert _spans.ATTR_INTERRUPT_ID not in span.attributes
        chain = _ancestors(span, by_id)
        # Scheduled by the workflow (its run or the start update's handler), under the client.
        assert chain[0] == f"StartActivity:traced.{chunk}"
        assert chain[1] in workflow_side and chain[-1] == root.name, chain

    # The Workspace call: httpx client span -> FastAPI server span -> SQLAlchemy spans.
    store_span = _only(spans, "RunActivity:traced.store")
    posts = [
        s
        for s in _children(spans, store_span)
        if s.kind == SpanKind.CLIENT
        and _attr(s, "http.request.method", "http.method") == "POST"
        and str(_attr(s, "url.full", "http.url")).endswith("/v1/records")
    ]
    assert len(posts) == 1, [s.name for s in _children(spans, store_span)]
    servers = [s for s in _children(spans, posts[0]) if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /v1/records"]
    assert _attr(servers[0], "http.response.status_code", "http.status_code") == 201
    statements = [
        str(_attr(s, "db.query.text", "db.statement"))
        for s in _children(spans, servers[0])
        if _attr(s, "db.system.name", "db.system") == "sqlite"
    ]
    assert any(text.startswith("INSERT INTO ws_records") for text in statements), statements
    # Every chunk span of this execution is in that one trace.
    chunk_spans = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(_spans.ATTR_EXECUTION_ID) == execution.id
        and _spans.ATTR_CHUNK in (s.attributes or {})
    ]
    assert len(chunk_spans) == 3 and {_tid(s) for s in chunk_spans} == {_tid(root)}


async def test_pause_and_resume_spans_carry_the_interrupt_id(runtime, otel):
    provider, exporter = otel
    exporter.clear()
    async with runtime([traced_approval], tracing=provider) as client:
        execution = traced_approval.create_execution(client=client, auto_close=False)
        await execution.async_start("T-2")
        pending = await execution.async_get_pending_interrupts()
        assert len(pending) == 1
        interrupt_id = next(iter(pending))
        await execution.async_continue_with(interrupt_id, {"approved": True})
        state = await execution.async_close()
    assert state["decision"] == {"approved": True}
    await _wait_for(exporter, "RunWorkflow:traced_approval")
    spans = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(_spans.ATTR_EXECUTION_ID) == execution.id
    ]

    ask_span = _only(spans, "RunActivity:traced_approval.ask")
    assert ask_span.attributes is not None
    assert ask_span.attributes[_spans.ATTR_INTERRUPT_ID] == interrupt_id
    assert ask_span.attributes[_spans.ATTR_INTERRUPT_TYPE] == "approval"
    assert ask_span.attributes[_spans.ATTR_RESUME] is False

    commit_span = _only(spans, "RunActivity:traced_approval.commit")
    assert commit_span.attributes is not None
    assert commit_span.attributes[_spans.ATTR_RESUME] is True
    assert commit_span.attributes[_spans.ATTR_INTERRUPT_ID] == interrupt_id
    assert commit_span.attributes[_spans.ATTR_RESUMED_INTERRUPT_ID] == interrupt_id

    update = _only(spans, "HandleUpdate:continue_with")
    assert update.attributes is not None
    assert update.attributes[_spans.ATTR_INTERRUPT_ID] == interrupt_id
    # The resume is its own client request: the resumed chunk belongs to its trace.
    assert _tid(commit_span) == _tid(update)
    continue_call = _only(exporter.get_finished_spans(), "StartWorkflowUpdate:continue_with")
    assert update.parent is not None and update.parent.span_id == _sid(continue_call)


async def test_workspace_client_hook_continues_the_callers_trace(otel, workspace_url):
    provider, exporter = otel
    _tracing.uninstrument_httpx()  # only this client's own instrumentation may produce spans
    exporter.clear()
    ws = WorkspaceClient(workspace_url)
    async with ws:
        ws.enable_tracing(provider)
        ws.enable_tracing(provider)  # idempotent: still one client span per request
        with provider.get_tracer("test").start_as_current_span("caller"):
            ref = await ws.ingest("hello", "observations", "note")
    # The service's span ends after its response is sent: under load it finishes after the
    # client has its answer (bounded wait).
    await _wait_for(exporter, "POST /v1/records")
    spans = _trace_of(exporter, "caller")
    (client_span,) = _children(spans, _only(spans, "caller"))
    assert client_span.kind == SpanKind.CLIENT
    (server,) = _children(spans, client_span)
    assert server.name == "POST /v1/records" and server.kind == SpanKind.SERVER
    assert any(
        str(_attr(s, "db.query.text", "db.statement")).startswith("INSERT INTO ws_records")
        for s in _children(spans, server)
    )
    assert ref.id


class _Collector(BaseHTTPRequestHandler):
    """A local OTLP/HTTP endpoint that keeps what it receives."""

    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    received: list[tuple[str, str, bytes]] = []
    _Collector.received = received
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_configure_tracing_exports_otlp_as_the_environment_says(monkeypatch, collector):
    endpoint, received = collector
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "tf-otel-test")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci,team=flows")
    assert _tracing.tracing_requested_by_env()

    provider = _tracing.configure_tracing(set_global=False)
    try:
        assert isinstance(provider, ReplaySafeTracerProvider)
        assert trace.get_tracer_provider() is not provider  # set_global=False
        with provider.get_tracer("probe").start_as_current_span("probe-span"):
            pass
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()

    assert [(path, ctype) for path, ctype, _ in received] == [
        ("/v1/traces", "application/x-protobuf")
    ]
    request = ExportTraceServiceRequest()
    request.ParseFromString(received[0][2])
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "tf-otel-test"
    assert resource["deployment.environment"] == "ci" and resource["team"] == "flows"
    names = [span.name for scope in resource_spans.scope_spans for span in scope.spans]
    assert names == ["probe-span"]


def test_exporters_follow_otel_traces_exporter():
    assert _tracing.span_exporters_from_env({}) == []
    assert not _tracing.tracing_requested_by_env({})
    assert _tracing.span_exporters_from_env({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert not _tracing.tracing_requested_by_env({"OTEL_TRACES_EXPORTER": "none"})
    (console,) = _tracing.span_exporters_from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert isinstance(console, ConsoleSpanExporter)
    both = _tracing.span_exporters_from_env(
        {"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    )
    assert [type(e).__name__ for e in both] == ["ConsoleSpanExporter", "OTLPSpanExporter"]
    assert type(both[1]).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
    assert not _tracing.tracing_requested_by_env(disabled)
    assert _tracing.span_exporters_from_env(disabled) == []
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL='thrift'"):
        _tracing.span_exporters_from_env(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}
        )
    with pytest.raises(ValueError, match="unknown exporter 'jaegr'"):
        _tracing.span_exporters_from_env({"OTEL_TRACES_EXPORTER": "jaegr"})


def test_plugin_tracing_option_is_validated(otel, monkeypatch):
    provider, _ = otel
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)

    def otel_interceptors(plugin: TriggerFlowPlugin) -> list[Any]:
        return [i for i in plugin.interceptors or [] if isinstance(i, OpenTelemetryInterceptor)]

    off = TriggerFlowPlugin([traced])
    assert off.tracer_provider is None and otel_interceptors(off) == []
    on = TriggerFlowPlugin([traced], tracing=True)
    assert on.tracer_provider is provider and len(otel_interceptors(on)) == 1
    assert TriggerFlowPlugin([traced], tracing=provider).tracer_provider is provider
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert TriggerFlowPlugin([traced]).tracer_provider is provider
    assert TriggerFlowPlugin([traced], tracing=False).tracer_provider is None

    with pytest.raises(TypeError, match="takes None, a bool or a ReplaySafeTracerProvider"):
        TriggerFlowPlugin([traced], tracing="yes")
    with pytest.raises(TypeError, match="plain SDK TracerProvider"):
        TriggerFlowPlugin([traced], tracing=TracerProvider())
    with pytest.raises(ValueError, match="already another ReplaySafeTracerProvider"):
        TriggerFlowPlugin([traced], tracing=create_tracer_provider())
