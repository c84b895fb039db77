"""Configuration of the ``triggerflow-temporal`` commands: environment, flows, connection.

Every variable is validated here; a bad value raises :class:`CLIError` naming the variable
and what to set instead.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from temporalio.client import Client

from ..client.flow import TriggerFlow
from ..definition.agently_import import is_agently_flow
from ..plugin.converter import triggerflow_data_converter
from ..spec.wire import DEFAULT_TASK_QUEUE

if TYPE_CHECKING:
    import argparse

# ----------------------------------------------------------------------- environment
ENV_ADDRESS = "TEMPORAL_ADDRESS"
ENV_NAMESPACE = "TEMPORAL_NAMESPACE"
ENV_API_KEY = "TEMPORAL_API_KEY"
ENV_TLS = "TEMPORAL_TLS"
ENV_TLS_CERT = "TEMPORAL_TLS_CLIENT_CERT_PATH"
ENV_TLS_KEY = "TEMPORAL_TLS_CLIENT_KEY_PATH"
ENV_TLS_CA = "TEMPORAL_TLS_SERVER_CA_CERT_PATH"
ENV_TLS_SERVER_NAME = "TEMPORAL_TLS_SERVER_NAME"
ENV_TASK_QUEUE = "TRIGGERFLOW_TASK_QUEUE"
ENV_WORKSPACE = "TRIGGERFLOW_WORKSPACE_URL"
ENV_WORKSPACE_TOKEN = "TRIGGERFLOW_WORKSPACE_TOKEN"
ENV_FLOWS = "TRIGGERFLOW_FLOWS"
ENV_MAX_CONCURRENT_ACTIVITIES = "TRIGGERFLOW_MAX_CONCURRENT_ACTIVITIES"
ENV_MAX_CONCURRENT_WORKFLOW_TASKS = "TRIGGERFLOW_MAX_CONCURRENT_WORKFLOW_TASKS"
ENV_MAX_CACHED_WORKFLOWS = "TRIGGERFLOW_MAX_CACHED_WORKFLOWS"
ENV_GRACEFUL_SHUTDOWN = "TRIGGERFLOW_GRACEFUL_SHUTDOWN_SECONDS"
ENV_HEALTH_HOST = "TRIGGERFLOW_HEALTH_HOST"
ENV_HEALTH_PORT = "TRIGGERFLOW_HEALTH_PORT"

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
# Worker defaults measured on a 2-core machine (see bench/RESULTS.md): throughput is bound
# by the server's CPU, so more pollers or slots only add contention.
DEFAULT_MAX_CONCURRENT_ACTIVITIES = 100
DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS = 100
DEFAULT_MAX_CACHED_WORKFLOWS = 1000
DEFAULT_GRACEFUL_SHUTDOWN_SECONDS = 30.0
DEFAULT_HEALTH_HOST = "0.0.0.0"

# Every variable the worker reads, with what it means (docs/operations.md has the table).
WORKER_ENV: dict[str, str] = {
    ENV_ADDRESS: f"Temporal frontend host:port (default {DEFAULT_ADDRESS})",
    ENV_NAMESPACE: f"Temporal namespace (default {DEFAULT_NAMESPACE})",
    ENV_TASK_QUEUE: f"task queue to poll (default {DEFAULT_TASK_QUEUE})",
    ENV_FLOWS: "flows to serve, comma separated 'pkg.module:flow' (or pass them as arguments)",
    ENV_WORKSPACE: "Workspace for data.workspace: http(s) URL of the service, or a database URL",
    ENV_WORKSPACE_TOKEN: "bearer token for an http(s) Workspace URL (selects the tenant)",
    ENV_MAX_CONCURRENT_ACTIVITIES: (
        f"chunk activities at once (default {DEFAULT_MAX_CONCURRENT_ACTIVITIES})"
    ),
    ENV_MAX_CONCURRENT_WORKFLOW_TASKS: (
        f"workflow tasks at once (default {DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS})"
    ),
    ENV_MAX_CACHED_WORKFLOWS: f"workflows kept in memory (default {DEFAULT_MAX_CACHED_WORKFLOWS})",
    ENV_GRACEFUL_SHUTDOWN: (
        "on SIGTERM, seconds running activities get to finish before they are cancelled "
        f"(default {DEFAULT_GRACEFUL_SHUTDOWN_SECONDS:g})"
    ),
    ENV_HEALTH_PORT: "port of the /healthz and /readyz endpoints (unset or 0: off)",
    ENV_HEALTH_HOST: f"interface of the health endpoints (default {DEFAULT_HEALTH_HOST})",
    ENV_TLS: "true/false: TLS to the server (on by default with an API key or client cert)",
    ENV_TLS_CERT: "client certificate (PEM) for mTLS, with the key below",
    ENV_TLS_KEY: "client private key (PEM) for mTLS",
    ENV_TLS_CA: "CA certificate (PEM) to verify the server with (default: system roots)",
    ENV_TLS_SERVER_NAME: "server name to verify the certificate against (SNI)",
    ENV_API_KEY: "API key (Temporal Cloud); turns TLS on",
}

# Flows the commands know by name without an import path.
BUILTIN_FLOWS = ("triggerflow_temporal.examples.approval:refund_flow",)
STATUSES = ("created", "running", "waiting", "completed", "failed", "cancelled")
EXIT_USAGE = 2


class CLIError(Exception):
    """A user error: printed without a traceback, exit status 2."""


# ------------------------------------------------------------------------ parsing helpers
def _env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise CLIError(f"{name}={raw!r} is not an integer; set it to a whole number.") from None
    if value < minimum:
        raise CLIError(f"{name}={value} is too small; it must be >= {minimum}.")
    return value


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise CLIError(f"{name}={raw!r} is not a number of seconds.") from None
    if value < 0 or value != value:
        raise CLIError(f"{name}={raw} must be a number of seconds >= 0.")
    return value


def _env_bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise CLIError(f"{name}={raw!r} is not a boolean; use true or false.")


def _env_port(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        raise CLIError(f"{name}={raw!r} is not a port number.") from None
    if not 0 <= port <= 65535:
        raise CLIError(f"{name}={port} is not a port number (0-65535).")
    return port or None


def _read_pem(env: Mapping[str, str], name: str) -> bytes | None:
    path = env.get(name, "").strip()
    if not path:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise CLIError(f"{name}={path!r} cannot be read: {error.strerror or error}.") from None


def parse_json_arg(option: str, text: str | None) -> Any:
    """Parse a JSON command-line value, naming the option when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise CLIError(
            f"{option} is not valid JSON ({error}): {text[:60]!r}. Quote it for the shell, "
            """e.g. --value '{"approved": true}' or --value '"text"'."""
        ) from None


def connect_options(
    env: Mapping[str, str], *, address: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    """``Client.connect`` keyword arguments from arguments and ``TEMPORAL_*`` variables.

    Raises:
        CLIError: Naming the variable that is malformed or a file that cannot be read.
    """
    from temporalio.service import TLSConfig

    target = address or env.get(ENV_ADDRESS, "").strip() or DEFAULT_ADDRESS
    if ":" not in target or not target.rsplit(":", 1)[1].isdigit():
        raise CLIError(
            f"Temporal address {target!r} must be host:port, e.g. localhost:7233 "
            f"(--address or {ENV_ADDRESS})."
        )
    options: dict[str, Any] = {
        "target_host": target,
        "namespace": namespace or env.get(ENV_NAMESPACE, "").strip() or DEFAULT_NAMESPACE,
    }
    cert, key = _read_pem(env, ENV_TLS_CERT), _read_pem(env, ENV_TLS_KEY)
    if (cert is None) != (key is None):
        missing = ENV_TLS_KEY if key is None else ENV_TLS_CERT
        raise CLIError(f"mTLS needs both {ENV_TLS_CERT} and {ENV_TLS_KEY}; {missing} is not set.")
    ca = _read_pem(env, ENV_TLS_CA)
    server_name = env.get(ENV_TLS_SERVER_NAME, "").strip() or None
    api_key = env.get(ENV_API_KEY, "").strip() or None
    tls = _env_bool(env, ENV_TLS)
    wants_tls = bool(cert or ca or server_name or api_key)
    if tls is False and (cert or ca):
        raise CLIError(f"{ENV_TLS}=false contradicts the TLS certificate variables that are set.")
    if tls or (tls is None and wants_tls):
        options["tls"] = TLSConfig(
            server_root_ca_cert=ca, domain=server_name, client_cert=cert, client_private_key=key
        )
    if api_key:
        options["api_key"] = api_key
    return options


async def connect(env: Mapping[str, str], args: argparse.Namespace, **extra: Any) -> Client:
    """Connect a client (pydantic data converter unless a plugin sets one)."""
    options = connect_options(env, address=args.address, namespace=args.namespace)
    if "plugins" not in extra:
        extra["data_converter"] = triggerflow_data_converter
    return await connect_with(options, **extra)


async def connect_with(options: Mapping[str, Any], **extra: Any) -> Client:
    """``Client.connect(**options, **extra)``; an unreachable server is a one-line CLIError."""
    try:
        return await Client.connect(**options, **extra)
    except RuntimeError as error:
        raise CLIError(
            f"Cannot reach the Temporal server at {options['target_host']}: "
            f"{short_error(error)}. Start one with `triggerflow-temporal dev`, or point "
            f"--address / {ENV_ADDRESS} at yours."
        ) from None


def out(text: str = "") -> None:
    """Print a line of command output at once (progress shows while a command runs)."""
    print(text, flush=True)


def short_error(error: BaseException) -> str:
    """The gist of an error in one line (the gRPC message when there is one)."""
    text = str(error) or type(error).__name__
    for marker in ('message: "', "message: '"):
        if marker in text:
            return text.split(marker, 1)[1].split(marker[-1], 1)[0]
    return text.splitlines()[0][:200]


# ----------------------------------------------------------------------------- flows
def _import_attribute(path: str, what: str, example: str) -> Any:
    """Import ``"package.module:attribute"`` and return the object it names."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise CLIError(
            f"Cannot load {what} {path!r}: use the form 'package.module:name', e.g. "
            f"{example!r}."
        )
    if os.getcwd() not in sys.path:
        # Last, not first: a file in the working directory must not shadow an installed
        # module (issue 17); the flow modules of a project checkout still resolve.
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CLIError(
            f"Cannot import module {module_name!r} for {what} {path!r}: {error}"
        ) from error
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise CLIError(
                f"Module {module_name!r} has no attribute {attribute!r} ({what} {path!r})."
            )
        found = getattr(found, part)
    return found


def load_event_handler(path: str) -> Callable[..., Any]:
    """Import an ``execution.on()`` handler named ``"package.module:function"``."""
    handler = _import_attribute(path, "event handler", "myapp.handlers:on_ping")
    if not callable(handler):
        raise CLIError(f"{path!r} is a {type(handler).__name__}, not a function.")
    return handler


def load_flow(path: str) -> TriggerFlow:
    """Import ``"package.module:attribute"`` and return the TriggerFlow it names."""
    flow = _import_attribute(path, "flow", "myapp.flows:refund_flow")
    if isinstance(flow, TriggerFlow):
        return flow
    if is_agently_flow(flow):
        # The converted flow (the object the plugin serves): executions run on Temporal.
        return TriggerFlow.from_agently(flow)
    raise CLIError(f"{path!r} is a {type(flow).__name__}, not a TriggerFlow.")


def flow_paths(env: Mapping[str, str], paths: Sequence[str] = ()) -> list[str]:
    """Flow import paths from arguments, else from ``TRIGGERFLOW_FLOWS``."""
    if paths:
        return list(paths)
    return [part.strip() for part in env.get(ENV_FLOWS, "").split(",") if part.strip()]


def resolve_flow(ref: str, env: Mapping[str, str]) -> TriggerFlow:
    """A flow by import path, or by name among ``TRIGGERFLOW_FLOWS`` and the examples."""
    if ":" in ref:
        return load_flow(ref)
    known: dict[str, TriggerFlow] = {}
    for path in [*flow_paths(env), *BUILTIN_FLOWS]:
        flow = load_flow(path)
        known.setdefault(flow.name, flow)
    if ref in known:
        return known[ref]
    raise CLIError(
        f"Unknown flow {ref!r}; known by name: {sorted(known)}. Name it by import path "
        f"('package.module:flow') or list it in {ENV_FLOWS}."
    )


# ---------------------------------------------------------------------- worker settings
@dataclass
class WorkerSettings:
    """What a worker process serves and how; see :func:`worker_settings`."""

    flows: list[str]
    connect: dict[str, Any]
    task_queue: str
    workspace: str | None
    workspace_token: str | None
    max_concurrent_activities: int
    max_concurrent_workflow_tasks: int
    max_cached_workflows: int
    graceful_shutdown_seconds: float
    health_host: str
    health_port: int | None


def worker_settings(
    env: Mapping[str, str],
    *,
    flows: Sequence[str] = (),
    address: str | None = None,
    namespace: str | None = None,
    task_queue: str | None = None,
    workspace: str | None = None,
    health_port: int | None = None,
    require_flows: bool = True,
) -> WorkerSettings:
    """Resolve a worker's settings: arguments first, then the environment, then defaults.

    Raises:
        CLIError: Naming the variable or argument that is missing or malformed.
    """
    paths = flow_paths(env, flows)
    if require_flows and not paths:
        raise CLIError(
            f"No flows to serve: pass them as arguments ('myapp.flows:refund_flow') or set "
            f"{ENV_FLOWS}='myapp.flows:refund_flow,myapp.flows:other_flow'."
        )
    for path in paths:
        if path.count(":") != 1:
            raise CLIError(f"{ENV_FLOWS} entry {path!r} is not of the form 'pkg.module:flow'.")
    queue = task_queue or env.get(ENV_TASK_QUEUE, "").strip() or DEFAULT_TASK_QUEUE
    if health_port is not None and not 0 <= health_port <= 65535:
        raise CLIError(f"--health-port {health_port} is not a port number (0-65535).")
    return WorkerSettings(
        flows=paths,
        connect=connect_options(env, address=address, namespace=namespace),
        task_queue=queue,
        workspace=workspace or env.get(ENV_WORKSPACE, "").strip() or None,
        workspace_token=env.get(ENV_WORKSPACE_TOKEN, "").strip() or None,
        max_concurrent_activities=_env_int(
            env, ENV_MAX_CONCURRENT_ACTIVITIES, DEFAULT_MAX_CONCURRENT_ACTIVITIES
        ),
        max_concurrent_workflow_tasks=_env_int(
            env, ENV_MAX_CONCURRENT_WORKFLOW_TASKS, DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS, minimum=2
        ),
        max_cached_workflows=_env_int(
            env, ENV_MAX_CACHED_WORKFLOWS, DEFAULT_MAX_CACHED_WORKFLOWS, minimum=0
        ),
        graceful_shutdown_seconds=_env_float(
            env, ENV_GRACEFUL_SHUTDOWN, DEFAULT_GRACEFUL_SHUTDOWN_SECONDS
        ),
        health_host=env.get(ENV_HEALTH_HOST, "").strip() or DEFAULT_HEALTH_HOST,
        health_port=(health_port or None)
        if health_port is not None
        else _env_port(env, ENV_HEALTH_PORT),
    )


def workspace_target(url: str | None, token: str | None) -> Any:
    """The Workspace the worker binds: a client of the service at ``url``, or None."""
    if url is None:
        if token:
            raise CLIError(f"{ENV_WORKSPACE_TOKEN} is set but {ENV_WORKSPACE} is not.")
        return None
    if url.split("://", 1)[0].lower() in ("http", "https"):
        from workspace import WorkspaceClient

        return WorkspaceClient(url, token)
    if token:
        raise CLIError(f"{ENV_WORKSPACE_TOKEN} only applies to an http(s) {ENV_WORKSPACE}.")
    return url
