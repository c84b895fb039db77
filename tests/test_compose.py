"""docker-compose.yml and deploy/ are consistent with the code (no Docker engine runs here).

Checks what would otherwise only fail at ``docker compose up``: pinned images, healthchecks,
the variables each service reads (taken from the code, not copied), entry points that
exist, values the services' own validators accept, the dynamic config and search
attributes the embedded dev server uses, and the trace path worker -> collector -> Jaeger.
And the deployment rules: the gateway is the only service published beyond loopback, its
config file loads, and no secret has a default (each is required from the shell).
"""

from __future__ import annotations

import base64
import importlib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import workspace.__main__ as workspace_cli
from triggerflow_temporal.cli import WORKER_ENV, build_parser
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
from triggerflow_temporal.gateway import check_bind, load_config
from workspace.http.guard import parse_tokens

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Run once and exit 0; everything else runs until stopped.
JOBS = {"temporal-schema", "temporal-setup"}
OTEL_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME")
IMAGE = "triggerflow-temporal:local"
# A variable whose name says it holds a secret: compose must require it (`${VAR:?message}`).
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|PWD")
# `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`.
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _token() -> str:
    return secrets.token_urlsafe(32)


# What the operator exports before `docker compose up` (docker-compose.yml's header): fresh
# values in the formats the services accept. Every required variable must have one here.
SHELL = {
    "POSTGRES_PASSWORD": _token(),
    "WORKSPACE_DB_PASSWORD": _token(),
    "WORKSPACE_TOKEN": _token(),
    "GATEWAY_JWT_SECRET": _token(),
    "GATEWAY_LINK_SECRET": _token(),
    "PAYMENTS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
}


def resolve(value: Any) -> str:
    """Compose interpolation: defaults apply, required variables come from ``SHELL``."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if operator is None:
            return ""  # not exported: compose substitutes an empty string
        if operator.endswith("-"):
            return argument
        if name not in SHELL:
            raise AssertionError(f"${{{name}}} is required: give it a test value in SHELL")
        return SHELL[name]

    return REFERENCE.sub(one, str(value))


def required_variables() -> set[str]:
    return {name for name, operator, _ in REFERENCE.findall(COMPOSE_TEXT) if "?" in operator}


def raw_environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def environment(service: str) -> dict[str, str]:
    return {key: resolve(value) for key, value in raw_environment(service).items()}


def dockerfile(service: str) -> Path:
    build = SERVICES[service]["build"]
    return ROOT / build["context"] / build.get("dockerfile", "Dockerfile")


def host_port(url_or_address: str) -> tuple[str, int]:
    parts = urlsplit(url_or_address if "://" in url_or_address else f"x://{url_or_address}")
    assert parts.hostname and parts.port, url_or_address
    return parts.hostname, parts.port


def publications(service: str) -> list[tuple[str | None, str, int]]:
    """(host interface or None for all, host port or "" for any, container port) per entry."""
    found = []
    for spec in SERVICES[service].get("ports") or []:
        if isinstance(spec, dict):  # long syntax
            found.append((spec.get("host_ip"), str(spec.get("published", "")), int(spec["target"])))
            continue
        parts = str(spec).split("/")[0].rsplit(":", 2)  # [[IP:]HOST:]CONTAINER[/proto]
        assert all(parts) and parts[-1].isdigit(), f"{service}: cannot read ports entry {spec!r}"
        host_ip = parts[0] if len(parts) == 3 else None
        found.append((host_ip, parts[-2] if len(parts) > 1 else "", int(parts[-1])))
    return found


def is_loopback(host_ip: str | None) -> bool:
    if host_ip is None:
        return False  # no interface named: every interface
    host = host_ip.strip("[]")
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def mounted(service: str, target: str) -> Path:
    """The host file a service sees at ``target``."""
    for volume in SERVICES[service].get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target:
            assert source.startswith("."), f"{service}: {target} is not a file of this repository"
            return ROOT / source
    raise AssertionError(f"{service} mounts nothing at {target}")


def gateway_args() -> Any:
    return build_parser().parse_args(SERVICES["gateway"]["command"][1:])


def test_the_stack_has_every_part():
    assert {
        "postgres",
        "temporal",
        "temporal-ui",
        "workspace",
        "worker",
        "otel-collector",
        "jaeger",
        "gateway",
    } <= set(SERVICES)
    assert SERVICES["temporal"]["environment"]["DB"] == "postgres12"
    assert urlsplit(environment("workspace")["WORKSPACE_DATABASE_URL"]).scheme.startswith(
        "postgresql"
    )


# A pulled image is `name:tag@sha256:<64 hex>`: the tag names the release, the digest fixes
# the bytes (a re-pushed tag changes nothing). deploy/IMAGES.md says where each came from;
# scripts/pin-images.sh re-resolves them where a registry is reachable.
PINNED = re.compile(
    r"(?P<name>(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9][a-z0-9._/-]*)"
    r":(?P<tag>v?\d+(?:\.\d+)+(?:-[\w.-]+)?)@sha256:[0-9a-f]{64}"
)
# Built by compose from a Dockerfile of this repository, not pulled (their bases are pinned).
BUILT = {IMAGE, "triggerflow-otel-collector:local"}
# Not searched for Dockerfiles: version control, caches, virtual environments.
NOT_SOURCE = {".git", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}


def dockerfiles() -> list[Path]:
    """Every Dockerfile of the repository (`Dockerfile`, `*.Dockerfile`, `Dockerfile.*`)."""
    found = []
    for directory, subdirectories, names in os.walk(ROOT):
        subdirectories[:] = [
            d
            for d in subdirectories
            if d not in NOT_SOURCE and not (Path(directory, d) / "pyvenv.cfg").exists()
        ]
        for name in names:
            if name.endswith(".dockerignore"):
                continue
            if (
                name == "Dockerfile"
                or name.endswith(".Dockerfile")
                or name.startswith("Dockerfile.")
            ):
                found.append(Path(directory, name))
    return sorted(found)


def dockerfile_bases(path: Path) -> list[str]:
    """The images a Dockerfile's FROM lines pull; a stage named by an earlier `AS` is not one."""
    stages: set[str] = set()
    bases = []
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        args = [word for word in words[1:] if not word.startswith("--")]
        if args[0].lower() not in stages and args[0] != "scratch":
            bases.append(args[0])
        if len(args) >= 3 and args[1].upper() == "AS":
            stages.add(args[2].lower())
    return bases


def pulled_images() -> dict[str, str]:
    """Where each pulled image is named -> its reference."""
    found = {
        f"docker-compose.yml {name}": service["image"]
        for name, service in SERVICES.items()
        if "build" not in service
    }
    for path in dockerfiles():
        for base in dockerfile_bases(path):
            found[f"{path.relative_to(ROOT)} FROM {base.split('@')[0]}"] = base
    return found


PULLED = pulled_images()


def test_built_images_come_from_dockerfiles_here():
    for name, service in SERVICES.items():
        if "build" in service:
            assert service["image"] in BUILT, f"{name}: {service['image']}"
            path = dockerfile(name)
            assert path.is_file() and path in dockerfiles(), path
            assert dockerfile_bases(path), f"{path} pulls no base image"
        else:
            assert service["image"] not in BUILT, f"{name} pulls an image compose builds"
    # Both stages of the collector image pull (the probe stage too), by FROM order.
    bases = dockerfile_bases(ROOT / "deploy/otel-collector.Dockerfile")
    names = [base.split("@")[0].rpartition(":")[0] for base in bases]
    assert names == ["busybox", "otel/opentelemetry-collector-contrib"], bases


@pytest.mark.parametrize("where", sorted(PULLED))
def test_every_pulled_image_is_pinned_by_digest(where):
    reference = PULLED[where]
    assert PINNED.fullmatch(reference), f"{where}: {reference} is not name:tag@sha256:<64 hex>"


def test_the_pin_pattern_refuses_a_tag_or_a_digest_alone():
    digest = "sha256:" + "0" * 64
    assert PINNED.fullmatch(f"postgres:16.6@{digest}")
    assert PINNED.fullmatch(f"ghcr.io/org/image:1.2.3-alpine@{digest}")
    for loose in (
        "postgres:16.6",
        f"postgres@{digest}",
        f"postgres:latest@{digest}",
        f"postgres:16.6@{digest[:-1]}",
        f"postgres:16.6@sha256:{'A' * 64}",
    ):
        assert not PINNED.fullmatch(loose), loose


def test_temporal_server_and_admin_tools_are_one_version():
    """The schema tool must be the server's release: one tag for the server and every job."""
    tags: dict[str, set[str]] = {}
    for reference in PULLED.values():
        name, _, tag = reference.split("@")[0].rpartition(":")
        if name in ("temporalio/server", "temporalio/admin-tools"):
            tags.setdefault(name, set()).add(tag)
    assert set(tags) == {"temporalio/server", "temporalio/admin-tools"}, tags
    assert tags["temporalio/server"] == tags["temporalio/admin-tools"], tags
    assert len(tags["temporalio/server"]) == 1, tags


def test_every_pin_says_where_it_came_from():
    record = (ROOT / "deploy/IMAGES.md").read_text()
    for where, reference in PULLED.items():
        assert f"`{reference}`" in record, f"{where}: {reference} is not in deploy/IMAGES.md"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_repin_script_parses():
    script = ROOT / "scripts/pin-images.sh"
    assert os.access(script, os.X_OK), script
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


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
    # Reached inside the network only (the worker's URL above): the gateway has host port 8080.
    assert not SERVICES["workspace"].get("ports")
    assert int(SERVICES["workspace"]["stop_grace_period"].rstrip("s")) > (
        config.graceful_shutdown_seconds
    )
    database = urlsplit(env["WORKSPACE_DATABASE_URL"])
    assert database.hostname == "postgres"
    assert database.password == SHELL["WORKSPACE_DB_PASSWORD"]


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_postgres_init_creates_the_workspace_database(tmp_path):
    """Run the init script against a stand-in psql that prints its arguments and input."""
    database = urlsplit(environment("workspace")["WORKSPACE_DATABASE_URL"])
    (volume,) = [v for v in SERVICES["postgres"]["volumes"] if ":/docker-entrypoint-initdb.d/" in v]
    source, target = volume.split(":")[:2]
    assert target.endswith(".sh"), "the entrypoint runs *.sh init scripts"
    script = ROOT / source
    psql = tmp_path / "psql"
    psql.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\ncat\n")
    psql.chmod(0o755)
    env = {**environment("postgres"), "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    user, name = database.username, database.path.lstrip("/")
    role = re.search(rf"^CREATE ROLE {user} LOGIN PASSWORD :'(\w+)';$", done.stdout, re.M)
    assert role, done.stdout
    assert f"{role.group(1)}={database.password}" in lines  # psql quotes the variable
    assert f"CREATE DATABASE {name} OWNER {user};" in lines
    assert "ON_ERROR_STOP=1" in lines
    # Without the password it stops instead of creating a role with an empty one.
    del env["WORKSPACE_DB_PASSWORD"]
    done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "WORKSPACE_DB_PASSWORD" in done.stderr
    assert "CREATE ROLE" not in done.stdout


def test_postgres_credentials_agree():
    """Temporal's server and schema job log in with the user and password PostgreSQL got."""
    postgres = environment("postgres")
    schema, server = environment("temporal-schema"), environment("temporal")
    assert postgres["POSTGRES_PASSWORD"] == SHELL["POSTGRES_PASSWORD"]
    assert schema["SQL_PASSWORD"] == server["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]
    assert schema["POSTGRES_USER"] == server["POSTGRES_USER"] == postgres["POSTGRES_USER"]


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
    assert dockerfile("workspace") == dockerfile("worker") == dockerfile("gateway")
    assert {SERVICES[name]["image"] for name in ("worker", "workspace", "gateway")} == {IMAGE}
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
    assert publications("jaeger") == [("127.0.0.1", "16686", 16686)]
    health = host_port(collector["extensions"]["health_check"]["endpoint"])[1]
    assert f"127.0.0.1:{health}/" in " ".join(SERVICES["otel-collector"]["healthcheck"]["test"])
    # The collector image is distroless; its healthcheck runs the busybox the build adds.
    assert "COPY --from=probe /bin/busybox /busybox" in dockerfile("otel-collector").read_text()
    assert SERVICES["otel-collector"]["healthcheck"]["test"][1] == "/busybox"


def test_gateway_runs_the_real_entry_point():
    command = SERVICES["gateway"]["command"]
    # The console script pip installs into the image (the Dockerfile installs the project).
    script = re.search(
        rf'^{re.escape(command[0])} = "([\w.]+):(\w+)"$',
        (ROOT / "pyproject.toml").read_text(),
        flags=re.M,
    )
    assert script, f"{command[0]} is not in [project.scripts]"
    assert callable(getattr(importlib.import_module(script.group(1)), script.group(2)))
    assert re.search(r'^RUN pip install "\.', dockerfile("gateway").read_text(), flags=re.M)
    args = gateway_args()
    assert args.command == "gateway"
    assert (args.config, args.host) == ("/etc/triggerflow/gateway.yaml", "0.0.0.0")
    assert f"127.0.0.1:{args.port}/healthz" in " ".join(SERVICES["gateway"]["healthcheck"]["test"])
    assert publications("gateway") == [(None, "8080", args.port)]
    depends = SERVICES["gateway"]["depends_on"]
    assert depends["temporal-setup"]["condition"] == "service_completed_successfully"
    assert depends["worker"]["condition"] == "service_healthy"


def test_gateway_config_loads_with_the_secrets_compose_passes():
    args = gateway_args()
    path = mounted("gateway", args.config)
    assert path == ROOT / "deploy/gateway/gateway.yaml"
    volume = next(v for v in SERVICES["gateway"]["volumes"] if f":{args.config}" in str(v))
    assert str(volume).endswith(":ro")
    env = environment("gateway")
    config = load_config(path, env=env)
    check_bind(config, args.host)  # a non-loopback bind needs an authentication method
    assert config.jwt and config.webhooks and config.links
    # Exactly the secrets the file names (*_env) are passed, each required from the shell.
    named = set(re.findall(r"^\s*-?\s*\w+_env:\s*(\w+)", path.read_text(), flags=re.M))
    assert named == {key for key in env if SECRET_NAME.search(key)}
    for name in named:
        assert raw_environment("gateway")[name].startswith(f"${{{name}:?"), name
    # It serves the flows the worker serves, on its task queue and namespace.
    settings, worker = worker_settings(env), worker_settings(environment("worker"))
    assert settings.flows == worker.flows and settings.task_queue == worker.task_queue
    assert settings.connect == worker.connect
    assert [load_flow(flow).name for flow in settings.flows] == ["refund_approval"]


def test_only_the_gateway_is_published():
    for name, service in SERVICES.items():
        assert service.get("network_mode") != "host", name
    beyond_loopback = {
        name: found
        for name in SERVICES
        if (found := [p for p in publications(name) if not is_loopback(p[0])])
    }
    assert set(beyond_loopback) == {"gateway"}, beyond_loopback
    # Temporal's gRPC port, the Workspace, PostgreSQL and the collector: not even on loopback.
    for name in ("temporal", "workspace", "postgres", "otel-collector", "worker", *JOBS):
        assert not SERVICES[name].get("ports"), name


def test_operator_uis_are_on_loopback():
    ui = SERVICES["temporal-ui"]
    assert ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert publications("temporal-ui") == [
        ("127.0.0.1", "8233", int(ui["environment"]["TEMPORAL_UI_PORT"]))
    ]
    assert publications("jaeger") == [("127.0.0.1", "16686", 16686)]


def test_no_secret_has_a_default():
    references = REFERENCE.findall(COMPOSE_TEXT)
    secret = [(name, op, arg) for name, op, arg in references if SECRET_NAME.search(name)]
    assert {name for name, _, _ in secret} >= set(SHELL)
    for name, operator, argument in secret:
        assert operator == ":?" and argument.strip(), f"${{{name}{operator}{argument}}}"
    assert required_variables() == set(SHELL), "SHELL must hold exactly the required variables"
    values = set(SHELL.values())
    for service in SERVICES:
        for key, raw in raw_environment(service).items():
            if SECRET_NAME.search(key):
                required = [n for n, op, _ in REFERENCE.findall(raw) if op == ":?"]
                assert any(SECRET_NAME.search(n) for n in required), f"{service}: {key}={raw}"
            value = resolve(raw)
            if "://" in value and urlsplit(value).password is not None:
                assert urlsplit(value).password in values, f"{service}: {key} has a password"


def test_operations_doc_covers_every_variable_and_server_setting():
    doc = (ROOT / "docs/operations.md").read_text()
    header = COMPOSE_TEXT.split("\nname:", 1)[0]
    for name in required_variables():
        assert f"`{name}`" in doc and name in header, name
    for name in [*WORKER_ENV, *workspace_cli.SERVE_ENV]:
        assert f"| `{name}` |" in doc, name
    for entry in FAST_DYNAMIC_CONFIG:
        key, value = entry.split("=")
        assert f"{key}:\n  - value: {value}" in doc, key
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert f"--name {name} --type {kind}" in doc, name
