"""docker-compose.yml and deploy/ are consistent with the code (no Docker engine runs here).

Checks what would otherwise only fail at ``docker compose up``: pinned images, healthchecks,
the variables each service reads (taken from the code, not copied), entry points that
exist, values the services' own validators accept, the dynamic config and search
attributes the embedded dev server uses, and the trace path worker -> collector -> Jaeger.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import workspace.__main__ as workspace_cli
from triggerflow_temporal.cli import WORKER_ENV
from triggerflow_temporal.cli.config import (
    ENV_FLOWS,
    ENV_GRACEFUL_SHUTDOWN,
    ENV_HEALTH_PORT,
    ENV_WORKSPACE,
    ENV_WORKSPACE_TOKEN,
    load_flow,
    worker_settings,
)
from triggerflow_temporal.cli.devserver import FAST_DYNAMIC_CONFIG, SEARCH_ATTRIBUTES
from workspace.http.guard import parse_tokens

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Run once and exit 0; everything else runs until stopped.
JOBS = {"temporal-schema", "temporal-setup"}
OTEL_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME")


def resolve(value: Any) -> str:
    """Compose interpolation with the defaults (nothing exported in the shell)."""
    text = str(value)
    text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", "", text)


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: resolve(value) for key, value in env.items()}


def dockerfile(service: str) -> Path:
    build = SERVICES[service]["build"]
    return ROOT / build["context"] / build.get("dockerfile", "Dockerfile")


def host_port(url_or_address: str) -> tuple[str, int]:
    parts = urlsplit(url_or_address if "://" in url_or_address else f"x://{url_or_address}")
    assert parts.hostname and parts.port, url_or_address
    return parts.hostname, parts.port


def published_target(service: str, container_port: int) -> bool:
    return any(str(p).endswith(f":{container_port}") for p in SERVICES[service].get("ports", []))


def test_the_stack_has_every_part():
    assert {
        "postgres",
        "temporal",
        "temporal-ui",
        "workspace",
        "worker",
        "otel-collector",
        "jaeger",
    } <= set(SERVICES)
    assert SERVICES["temporal"]["environment"]["DB"] == "postgres12"
    assert urlsplit(environment("workspace")["WORKSPACE_DATABASE_URL"]).scheme.startswith(
        "postgresql"
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned_or_built(name):
    service = SERVICES[name]
    if "build" in service:
        path = dockerfile(name)
        assert path.is_file(), path
        for base in re.findall(r"^FROM\s+(\S+)", path.read_text(), flags=re.M):
            repo, _, tag = base.partition(":")
            assert tag and tag != "latest" and re.search(r"\d", tag), f"{path}: FROM {base}"
        return
    image = service["image"]
    repo, _, tag = image.rpartition(":")
    assert repo and "/" not in tag, f"{name}: {image} has no tag"
    assert tag != "latest" and re.fullmatch(r"v?\d+(\.\d+)+(-[\w.]+)?", tag), f"{name}: {image}"


@pytest.mark.parametrize("name", sorted(set(SERVICES) - JOBS))
def test_every_long_running_service_has_a_healthcheck(name):
    check = SERVICES[name].get("healthcheck")
    assert check and check.get("test") and not check.get("disable"), name
    assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_wait_for_health_or_completion():
    for name, service in SERVICES.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if target in JOBS:
                assert condition == "service_completed_successfully", (name, target)
            else:
                assert condition == "service_healthy", (name, target)
                assert SERVICES[target].get("healthcheck"), (name, target)
    for job in JOBS:
        assert str(SERVICES[job]["restart"]).startswith("on-failure"), job


def test_mounted_files_exist():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_worker_env_sets_every_variable_the_worker_reads():
    env = environment("worker")
    assert set(WORKER_ENV) <= set(env), sorted(set(WORKER_ENV) - set(env))
    assert set(OTEL_ENV) <= set(env)
    # The worker's own validation accepts every value (TLS/API key are empty: off).
    settings = worker_settings(env)
    assert "tls" not in settings.connect and "api_key" not in settings.connect
    flows = [load_flow(path) for path in settings.flows]
    assert [flow.name for flow in flows] == ["refund_approval"]
    assert env[ENV_FLOWS] == ",".join(settings.flows)
    # It reaches the Temporal service, the Workspace service with a token the service knows.
    host, port = host_port(settings.connect["target_host"])
    assert (host, port) == ("temporal", 7233)
    workspace_env = environment("workspace")
    host, port = host_port(env[ENV_WORKSPACE])
    assert (host, port) == ("workspace", int(workspace_env["WORKSPACE_PORT"]))
    assert parse_tokens(workspace_env["WORKSPACE_TOKENS"])[env[ENV_WORKSPACE_TOKEN]] == "default"
    # The healthcheck asks the port the worker serves /readyz on; stop waits out the grace.
    assert f"127.0.0.1:{settings.health_port}/readyz" in " ".join(
        SERVICES["worker"]["healthcheck"]["test"]
    )
    assert settings.health_port == int(env[ENV_HEALTH_PORT])
    grace = float(env[ENV_GRACEFUL_SHUTDOWN])
    assert int(SERVICES["worker"]["stop_grace_period"].rstrip("s")) > grace


def test_workspace_env_sets_every_variable_the_service_reads():
    env = environment("workspace")
    assert set(workspace_cli.SERVE_ENV) <= set(env)
    assert set(OTEL_ENV) <= set(env)
    config = workspace_cli.serve_config(workspace_cli._parser().parse_args(["serve"]), env)
    assert config.host == "0.0.0.0"
    assert f"127.0.0.1:{config.port}/healthz" in " ".join(
        SERVICES["workspace"]["healthcheck"]["test"]
    )
    assert published_target("workspace", config.port)
    assert int(SERVICES["workspace"]["stop_grace_period"].rstrip("s")) > (
        config.graceful_shutdown_seconds
    )
    database = urlsplit(env["WORKSPACE_DATABASE_URL"])
    init = (ROOT / "deploy/postgres/init-workspace.sql").read_text()
    assert database.hostname == "postgres"
    assert f"CREATE ROLE {database.username} LOGIN PASSWORD '{database.password}'" in init
    assert f"CREATE DATABASE {database.path.lstrip('/')} OWNER {database.username}" in init


def test_commands_name_real_entry_points():
    worker_cmd = SERVICES["worker"]["command"]
    assert worker_cmd == ["python", "worker.py"]
    assert 'run_command(["worker"' in (ROOT / "worker.py").read_text()
    assert SERVICES["workspace"]["command"] == ["python", "-m", "workspace", "serve"]
    assert workspace_cli._parser().parse_args(["serve"]).command == "serve"
    # The image holds both entry points: the Dockerfile copies them and its ignore file lets
    # them through.
    text = dockerfile("worker").read_text()
    assert "COPY worker.py" in text and "COPY workspace" in text
    assert dockerfile("workspace") == dockerfile("worker")
    ignore = (ROOT / "deploy/Dockerfile.dockerignore").read_text().split()
    for needed in ("!worker.py", "!workspace/", "!triggerflow_temporal/", "!pyproject.toml"):
        assert needed in ignore
    extras = re.search(r'pip install "\.\[([\w,]+)\]"', text)
    assert extras, "the Dockerfile installs the project with extras"
    pyproject = (ROOT / "pyproject.toml").read_text()
    for extra in extras.group(1).split(","):
        assert re.search(rf"^{extra} = \[", pyproject, flags=re.M), f"extra {extra!r} missing"


def test_temporal_gets_the_fast_dynamic_config():
    env = SERVICES["temporal"]["environment"]
    mount = next(v for v in SERVICES["temporal"]["volumes"] if "dynamicconfig" in v)
    source, target = mount.split(":")[:2]
    relative = Path(env["DYNAMIC_CONFIG_FILE_PATH"]).relative_to("config/dynamicconfig")
    assert target == "/etc/temporal/config/dynamicconfig"
    config = yaml.safe_load((ROOT / source / relative).read_text())
    for entry in FAST_DYNAMIC_CONFIG:
        key, value = entry.split("=")
        assert config[key][0]["value"] == int(value), key


def test_search_attributes_are_registered():
    script = (ROOT / "deploy/temporal/setup-namespace.sh").read_text()
    registered = dict(re.findall(r"^register (\w+) (\w+)$", script, flags=re.M))
    assert registered == SEARCH_ATTRIBUTES
    assert SERVICES["temporal-setup"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize("script", ["setup-schema.sh", "setup-namespace.sh"])
def test_setup_scripts_parse(script):
    done = subprocess.run(
        ["sh", "-n", str(ROOT / "deploy/temporal" / script)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_traces_flow_from_the_services_to_jaeger():
    collector = yaml.safe_load((ROOT / "deploy/otel-collector.yaml").read_text())
    pipeline = collector["service"]["pipelines"]["traces"]
    assert "otlp" in pipeline["receivers"]
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    for name in ("worker", "workspace"):
        host, port = host_port(environment(name)["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert (host, port) == ("otel-collector", host_port(http)[1]), name
        assert SERVICES[name]["depends_on"]["otel-collector"]["condition"] == "service_healthy"
    (exporter,) = pipeline["exporters"]
    assert host_port(collector["exporters"][exporter]["endpoint"])[0] == "jaeger"
    assert published_target("jaeger", 16686)
    health = host_port(collector["extensions"]["health_check"]["endpoint"])[1]
    assert f"127.0.0.1:{health}/" in " ".join(SERVICES["otel-collector"]["healthcheck"]["test"])
    # The collector image is distroless; its healthcheck runs the busybox the build adds.
    assert "COPY --from=probe /bin/busybox /busybox" in dockerfile("otel-collector").read_text()
    assert SERVICES["otel-collector"]["healthcheck"]["test"][1] == "/busybox"


def test_ui_and_server_are_published():
    assert published_target("temporal", 7233)
    ui = SERVICES["temporal-ui"]
    assert ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert any(str(p).startswith("8233:") for p in ui["ports"])


def test_operations_doc_covers_every_variable_and_server_setting():
    doc = (ROOT / "docs/operations.md").read_text()
    for name in [*WORKER_ENV, *workspace_cli.SERVE_ENV]:
        assert f"| `{name}` |" in doc, name
    for entry in FAST_DYNAMIC_CONFIG:
        key, value = entry.split("=")
        assert f"{key}:\n  - value: {value}" in doc, key
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert f"--name {name} --type {kind}" in doc, name
