"""The ``triggerflow-temporal`` CLI against the session dev server (issue 4 item 6, 5 item 4/6).

Commands run in-process (``run_command`` in a thread, its own event loop) against a worker
from the ``runtime`` fixture, or as real processes where the process is the point (exit
without traceback, SIGTERM, ``dev``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from triggerflow_temporal import TriggerFlow
from triggerflow_temporal.cli import WORKER_ENV, run_command, run_worker
from triggerflow_temporal.cli.config import (
    ENV_API_KEY,
    ENV_FLOWS,
    ENV_GRACEFUL_SHUTDOWN,
    ENV_HEALTH_PORT,
    ENV_MAX_CACHED_WORKFLOWS,
    ENV_MAX_CONCURRENT_ACTIVITIES,
    ENV_MAX_CONCURRENT_WORKFLOW_TASKS,
    ENV_TASK_QUEUE,
    ENV_TLS,
    ENV_TLS_CERT,
    ENV_TLS_KEY,
    ENV_WORKSPACE,
    ENV_WORKSPACE_TOKEN,
    CLIError,
    load_event_handler,
    load_flow,
    worker_settings,
)
from triggerflow_temporal.cli.main import build_parser
from triggerflow_temporal.examples.approval import refund_flow

REPO = Path(__file__).resolve().parents[1]
STORY_INPUT = '{"refund_id": "r-77", "amount": "12.5", "reason": "late"}'


async def begin(data):
    return data.input


async def greet(data):
    await data.async_set_state("greeted", data.input)
    return f"hello {data.input}"


ping_flow = TriggerFlow(name="cli-ping")
ping_flow.to(begin)
ping_flow.when("ping").to(greet)


# ------------------------------------------------------------------------- helpers
def address_of(temporal_env: Any) -> str:
    return temporal_env.client.service_client.config.target_host


def queue_of(client: Any) -> str:
    return client.config()["plugins"][0].task_queue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class CLI:
    """Runs commands in-process against one server; returns (exit code, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], address: str) -> None:
        self.capsys = capsys
        self.address = address

    async def __call__(self, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = await asyncio.to_thread(run_command, [*argv, "--address", self.address], env or {})
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], temporal_env: Any) -> CLI:
    return CLI(capsys, address_of(temporal_env))


async def wait_for(check: Callable[[], Any], what: str, seconds: float = 15.0) -> Any:
    """Poll an async check until it returns a truthy value (visibility is eventual)."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


# -------------------------------------------------------------- the approval story
async def test_approval_story_start_list_continue_show(runtime, cli):
    async with runtime([refund_flow]) as client:
        queue = queue_of(client)
        rid = f"cli-refund-{uuid.uuid4().hex[:8]}"
        code, out, err = await cli(
            "start", "refund_approval", "--id", rid, "--input", STORY_INPUT, "--task-queue", queue
        )
        assert code == 0, err
        assert f"started {rid} (refund_approval" in out
        assert "waiting on approve-R-77 (approval)" in out
        assert f"triggerflow-temporal continue {rid} approve-R-77" in out

        async def listed_waiting() -> Any:
            code, out, err = await cli("list", "--waiting", "--flow", "refund_approval", "--json")
            assert code == 0, err
            return next((row for row in json.loads(out) if row["execution_id"] == rid), None)

        row = await wait_for(listed_waiting, "the execution to be listed as waiting")
        assert row["status"] == "waiting"
        assert row["flow"] == "refund_approval"
        assert list(row["pending_interrupts"]) == ["approve-R-77"]
        assert row["pending_interrupts"]["approve-R-77"]["payload"] == {
            "refund_id": "R-77",
            "amount": 12.5,
        }
        code, table, _ = await cli("list", "--waiting", "--flow", "refund_approval")
        line = next(line for line in table.splitlines() if line.startswith(rid))
        assert line.split()[1:4] == ["refund_approval", "waiting", "approve-R-77"]

        code, out, _ = await cli("show", rid)
        assert code == 0
        assert "waiting (lifecycle open)" in out
        assert 'approve-R-77 (approval): {"amount": 12.5, "refund_id": "R-77"}' in out
        assert '"approval_requested": true' in out

        # A second process approves it; the execution closes itself once idle.
        code, out, err = await cli(
            "continue", rid, "approve-R-77", "--value", '{"approved": true, "by": "cli"}'
        )
        assert (code, err) == (0, "")
        assert out.strip() == f"approve-R-77 resumed; {rid} is completed"
        code, out, _ = await cli("show", rid, "--json")
        shown = json.loads(out)
        assert (shown["status"], shown["lifecycle_state"]) == ("completed", "closed")
        assert shown["state"]["outcome"] == "refunded"
        assert shown["state"]["decision"] == {"approved": True, "by": "cli"}

        async def listed_completed() -> Any:
            code, out, _ = await cli("list", "--status", "completed", "--json", "--limit", "200")
            return any(row["execution_id"] == rid for row in json.loads(out))

        await wait_for(listed_completed, "the execution to be listed as completed")
        code, out, _ = await cli("list", "--waiting", "--flow", "refund_approval", "--json")
        assert rid not in {row["execution_id"] for row in json.loads(out)}


async def test_continue_errors_are_one_line_with_exit_2(runtime, cli):
    async with runtime([refund_flow]) as client:
        rid = f"cli-err-{uuid.uuid4().hex[:8]}"
        code, _, err = await cli(
            "start", "refund_approval", "--id", rid, "--input", STORY_INPUT,
            "--task-queue", queue_of(client),
        )  # fmt: skip
        assert code == 0, err

        code, out, err = await cli("continue", rid, "approve-NOPE", "--value", "true")
        assert (code, out) == (2, "")
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "'approve-NOPE': unknown interrupt id" in err and "approve-R-77" in err

        code, _, err = await cli("continue", rid, "approve-R-77", "--value", "{approved: yes}")
        assert code == 2
        assert err.startswith("error: --value is not valid JSON")

        code, _, err = await cli("continue", f"{rid}-missing", "approve-R-77", "--value", "1")
        assert code == 2
        assert f"No execution '{rid}-missing' in namespace 'default'" in err

        code, _, err = await cli("start", "refund_approval", "--id", rid, "--input", "{}")
        assert code == 2
        assert f"Execution {rid!r} already exists and is open" in err

        code, _, err = await cli("close", rid)
        assert code == 2
        assert "still waiting" in err and "approve-R-77" in err

        code, out, err = await cli("close", rid, "--cancel-pending")
        assert code == 0, err
        assert json.loads(out)["refund"]["refund_id"] == "R-77"
        code, _, err = await cli("continue", rid, "approve-R-77", "--value", "true")
        assert code == 2
        assert f"Execution {rid!r} has already closed" in err
        code, out, _ = await cli("show", rid)
        assert "cancelled (lifecycle closed, close reason manual)" in out


async def test_start_by_import_path_emit_and_close(runtime, cli):
    async with runtime([ping_flow]) as client:
        eid = f"cli-ping-{uuid.uuid4().hex[:8]}"
        code, out, err = await cli(
            "start", "tests.test_cli:ping_flow", "--id", eid, "--input", '"go"',
            "--no-auto-close", "--task-queue", queue_of(client),
        )  # fmt: skip
        assert code == 0, err
        assert f"started {eid} (cli-ping" in out and out.rstrip().endswith("running")

        code, out, err = await cli("emit", eid, "ping", "--value", '"cli"')
        assert code == 0, err
        assert json.loads(out) == ["hello cli"]

        code, out, err = await cli("close", eid, "--reason", "done")
        assert code == 0, err
        assert json.loads(out)["greeted"] == "cli"
        code, _, err = await cli("emit", eid, "ping")
        assert code == 2 and "has already closed" in err


async def test_save_and_load_a_waiting_execution(runtime, cli, tmp_path):
    async with runtime([refund_flow]) as client:
        rid = f"cli-save-{uuid.uuid4().hex[:8]}"
        code, _, err = await cli(
            "start", "refund_approval", "--id", rid, "--input", STORY_INPUT,
            "--task-queue", queue_of(client),
        )  # fmt: skip
        assert code == 0, err
        code, out, err = await cli("save", rid)
        assert code == 0, err
        saved = json.loads(out)
        assert saved["execution_id"] == rid and "approve-R-77" in saved["interrupts"]
        path = tmp_path / "saved.json"
        path.write_text(out)

        code, _, err = await cli("load", str(path))
        assert code == 2
        assert "still open" in err

        copy = f"{rid}-copy"
        code, out, err = await cli("load", str(path), "--id", copy)
        assert code == 0, err
        assert out.strip() == f"loaded {copy}: waiting"
        code, out, err = await cli("continue", copy, "approve-R-77", "--value", '{"approved": 0}')
        assert code == 0, err
        code, out, _ = await cli("show", copy, "--json")
        assert json.loads(out)["state"]["outcome"] == "rejected"
        code, out, _ = await cli("show", rid, "--json")
        assert json.loads(out)["status"] == "waiting"  # the original is untouched

        path.write_text("{not json")
        code, _, err = await cli("load", str(path))
        assert code == 2 and "is not JSON" in err
        path.write_text('{"kind": "something-else"}')
        code, _, err = await cli("load", str(path))
        assert code == 2 and "Not a TriggerFlow execution snapshot" in err
        code, _, err = await cli("load", str(tmp_path / "missing.json"))
        assert code == 2 and "Cannot read" in err
        code, _, err = await cli("save", f"{rid}-nope")
        assert code == 2 and "No execution" in err


async def test_list_rejects_contradictions(cli):
    code, _, err = await cli("list", "--waiting", "--status", "completed")
    assert code == 2 and "--waiting contradicts --status completed" in err
    code, _, err = await cli("list", "--flow", "it's")
    assert code == 2 and "quotes" in err
    code, _, err = await cli("start", "no_such_flow")
    assert code == 2 and "Unknown flow 'no_such_flow'" in err and "refund_approval" in err


# ------------------------------------------------------------------ process level
def run_process(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "triggerflow_temporal.cli", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_unreachable_server_is_one_line_and_exit_2():
    done = run_process("list", "--waiting", "--address", f"127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: Cannot reach the Temporal server at 127.0.0.1:")
    assert "triggerflow-temporal dev" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_worker_without_flows_names_the_variable():
    env = {key: value for key, value in os.environ.items() if key != ENV_FLOWS}
    done = subprocess.run(
        [sys.executable, "worker.py"], cwd=REPO, capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert ENV_FLOWS in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------- worker settings
def test_worker_settings_read_every_variable(tmp_path):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    env = {
        "TEMPORAL_ADDRESS": "temporal.example:7233",
        "TEMPORAL_NAMESPACE": "prod",
        ENV_TASK_QUEUE: "approvals",
        ENV_FLOWS: "myapp.flows:a, myapp.flows:b",
        ENV_WORKSPACE: "http://workspace:8080",
        ENV_WORKSPACE_TOKEN: "secret",
        ENV_MAX_CONCURRENT_ACTIVITIES: "7",
        ENV_MAX_CONCURRENT_WORKFLOW_TASKS: "5",
        ENV_MAX_CACHED_WORKFLOWS: "0",
        ENV_GRACEFUL_SHUTDOWN: "2.5",
        ENV_HEALTH_PORT: "8081",
        ENV_TLS_CERT: str(cert),
        ENV_TLS_KEY: str(key),
        ENV_API_KEY: "key-123",
    }
    settings = worker_settings(env)
    assert settings.flows == ["myapp.flows:a", "myapp.flows:b"]
    assert settings.connect["target_host"] == "temporal.example:7233"
    assert settings.connect["namespace"] == "prod"
    assert settings.connect["api_key"] == "key-123"
    tls = settings.connect["tls"]
    assert (tls.client_cert, tls.client_private_key) == (b"CERT", b"KEY")
    assert settings.task_queue == "approvals"
    assert (settings.workspace, settings.workspace_token) == ("http://workspace:8080", "secret")
    assert settings.max_concurrent_activities == 7
    assert settings.max_concurrent_workflow_tasks == 5
    assert settings.max_cached_workflows == 0
    assert settings.graceful_shutdown_seconds == 2.5
    assert (settings.health_host, settings.health_port) == ("0.0.0.0", 8081)
    # Arguments win over the environment.
    settings = worker_settings(env, flows=["x.y:z"], address="other:1", task_queue="q")
    assert (settings.flows, settings.connect["target_host"]) == (["x.y:z"], "other:1")
    assert settings.task_queue == "q"
    # An API key alone turns TLS on; nothing set means plain localhost.
    assert worker_settings({ENV_API_KEY: "k"}, flows=["a:b"]).connect["tls"] is not None
    plain = worker_settings({}, flows=["a:b"]).connect
    assert plain == {"target_host": "localhost:7233", "namespace": "default"}
    assert set(env) - {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} <= set(WORKER_ENV)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({ENV_MAX_CONCURRENT_ACTIVITIES: "many"}, f"{ENV_MAX_CONCURRENT_ACTIVITIES}='many'"),
        ({ENV_MAX_CONCURRENT_ACTIVITIES: "0"}, f"{ENV_MAX_CONCURRENT_ACTIVITIES}=0 is too small"),
        ({ENV_MAX_CONCURRENT_WORKFLOW_TASKS: "1"}, ENV_MAX_CONCURRENT_WORKFLOW_TASKS),
        ({ENV_GRACEFUL_SHUTDOWN: "-1"}, ENV_GRACEFUL_SHUTDOWN),
        ({ENV_HEALTH_PORT: "70000"}, ENV_HEALTH_PORT),
        ({ENV_TLS: "maybe"}, ENV_TLS),
        ({ENV_TLS_CERT: "/nonexistent/cert.pem"}, ENV_TLS_CERT),
        ({"TEMPORAL_ADDRESS": "no-port"}, "TEMPORAL_ADDRESS"),
        ({ENV_FLOWS: "myapp.flows"}, ENV_FLOWS),
        ({ENV_FLOWS: ""}, ENV_FLOWS),
    ],
)
def test_worker_settings_errors_name_the_variable(env, message):
    with pytest.raises(CLIError, match=message):
        worker_settings({ENV_FLOWS: "myapp.flows:flow", **env})


def test_tls_cert_without_key_is_rejected(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_bytes(b"C")
    with pytest.raises(CLIError, match=f"{ENV_TLS_KEY} is not set"):
        worker_settings({ENV_TLS_CERT: str(cert)}, flows=["a:b"])


# ------------------------------------------------- health endpoints, graceful stop
async def test_worker_health_endpoints_and_graceful_stop(temporal_env):
    port = free_port()
    queue = f"cli-health-{uuid.uuid4().hex[:8]}"
    settings = worker_settings(
        {ENV_HEALTH_PORT: str(port), "TRIGGERFLOW_HEALTH_HOST": "127.0.0.1"},
        flows=["triggerflow_temporal.examples.approval:refund_flow"],
        address=address_of(temporal_env),
        task_queue=queue,
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(run_worker([refund_flow], stop=stop, settings=settings))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

        async def ready() -> Any:
            try:
                response = await http.get("/readyz")
            except httpx.HTTPError:
                return None
            return response if response.status_code == 200 else None

        response = await wait_for(ready, "/readyz to answer 200")
        assert response.json() == {"task_queue": queue, "polling": True, "status": "ready"}
        health = await http.get("/healthz")
        assert (health.status_code, health.json()["status"]) == (200, "ok")
        assert (await http.get("/nope")).status_code == 404
        stop.set()
        await asyncio.wait_for(task, 30)
    assert not port_open(port)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_worker_process_stops_gracefully_on_sigterm(temporal_env, tmp_path):
    port = free_port()
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "TEMPORAL_ADDRESS": address_of(temporal_env),
            ENV_FLOWS: "triggerflow_temporal.examples.approval:refund_flow",
            ENV_TASK_QUEUE: f"cli-sigterm-{uuid.uuid4().hex[:8]}",
            ENV_HEALTH_PORT: str(port),
            ENV_GRACEFUL_SHUTDOWN: "5",
        },
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        else:
            raise AssertionError("worker never became ready")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert "worker: serving refund_approval on task queue" in output
    assert f"health on 0.0.0.0:{port}" in output
    assert output.rstrip().endswith(
        "worker: stopped (in-flight activities finished or were handed back)"
    )


# ---------------------------------------------------------------------------- dev
def test_dev_starts_the_stack_and_stops_cleanly(tmp_path, capsys):
    ports = {"--port": free_port(), "--ui-port": free_port(), "--workspace-port": free_port()}
    log_path = tmp_path / "dev.log"
    log = log_path.open("w")
    argv = [sys.executable, "-m", "triggerflow_temporal.cli", "dev", "--data-dir",
            str(tmp_path / "data")]  # fmt: skip
    for option, port in ports.items():
        argv += [option, str(port)]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while "Ready." not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        output = log_path.read_text()
        assert (
            f"Temporal UI   http://localhost:{ports['--ui-port']}/namespaces/default/workflows"
            in output
        )
        assert (
            "[1/3] Temporal dev server" in output and "[3/3] worker for refund_approval" in output
        )
        assert (
            f"triggerflow-temporal list --waiting --address localhost:{ports['--port']}" in output
        )
        assert port_open(ports["--ui-port"]) and port_open(ports["--workspace-port"])
        children = _children(proc.pid)
        assert len(children) >= 2  # the temporal server and the Workspace service
        assert (tmp_path / "data" / "temporal.db").exists()

        # The printed next step works against it.
        address = f"localhost:{ports['--port']}"
        code = run_command(
            ["start", "refund_approval", "--id", "dev-r-1", "--input", STORY_INPUT,
             "--address", address], {},
        )  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0 and "waiting on approve-R-77" in out
        health = httpx.get(f"http://127.0.0.1:{ports['--workspace-port']}/healthz", timeout=5)
        assert health.json() == {"status": "ok"}

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
    assert log_path.read_text().rstrip().endswith("stopped.")
    assert [pid for pid in children if _alive(pid)] == []
    assert not any(port_open(port) for port in ports.values())


async def test_no_worker_is_a_clear_timeout(cli, temporal_env):
    eid = f"cli-orphan-{uuid.uuid4().hex[:8]}"
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    try:
        code, out, err = await cli(
            "start", "refund_approval", "--id", eid, "--task-queue", queue, "--timeout", "1"
        )
        assert (code, out) == (2, "")
        assert f"Execution {eid!r} was created, but no worker ran it within 1 s" in err
        assert f"task queue {queue!r}" in err
        code, _, err = await cli("show", eid, "--timeout", "1")
        assert code == 2 and "no answer in time" in err and "Traceback" not in err
    finally:
        await temporal_env.client.get_workflow_handle(eid).terminate("test cleanup")


async def test_no_worker_fails_within_seconds_naming_queue_and_worker_command(
    runtime, cli, temporal_env, tmp_path
):
    """Issue 12 item 5: the CLI says what NoWorkerError says, one line, exit 2."""
    address = address_of(temporal_env)
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    eid = f"cli-noworker-{uuid.uuid4().hex[:8]}"
    copy = f"{eid}-copy"
    worker = f"triggerflow-temporal worker tests.test_cli:ping_flow --task-queue {queue}"
    try:
        began = time.monotonic()
        code, out, err = await cli(
            "start", "tests.test_cli:ping_flow", "--id", eid, "--input", '"go"',
            "--no-auto-close", "--task-queue", queue,
        )  # fmt: skip
        assert time.monotonic() - began < 30  # loose: the default --timeout is 30 s
        assert (code, out) == (2, ""), err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "No worker serves flow 'cli-ping'" in err and f"task queue {queue!r}" in err
        assert f"`{worker} --address {address}`" in err
        assert f"Execution {eid!r} was created and stays open" in err

        code, out, err = await cli("emit", eid, "ping", "--value", '"x"')
        assert (code, out) == (2, "")
        assert f"task queue {queue!r}" in err and "this 'emit' request was not accepted" in err

        # A snapshot loaded onto a queue nobody polls.
        async with runtime([ping_flow]) as client:
            sid = f"{eid}-src"
            code, _, err = await cli(
                "start", "tests.test_cli:ping_flow", "--id", sid, "--input", '"go"',
                "--no-auto-close", "--task-queue", queue_of(client),
            )  # fmt: skip
            assert code == 0, err
            path = tmp_path / "saved.json"
            code, _, err = await cli("save", sid, "--output", str(path))
            assert code == 0, err
            code, _, err = await cli("close", sid)
            assert code == 0, err
        code, out, err = await cli("load", str(path), "--id", copy, "--task-queue", queue)
        assert (code, out) == (2, "")
        assert f"The snapshot was loaded into execution {copy!r}" in err
        assert f"task queue {queue!r}" in err and "triggerflow-temporal worker" in err
    finally:
        for workflow_id in (eid, copy):
            try:
                await temporal_env.client.get_workflow_handle(workflow_id).terminate("cleanup")
            except Exception:
                pass


def test_a_file_in_the_working_directory_does_not_shadow_an_installed_module(tmp_path, monkeypatch):
    # issue 17: the CLI used to put the working directory first on sys.path.
    (tmp_path / "colorsys.py").write_text("raise RuntimeError('shadowed by the cwd')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    load_flow("triggerflow_temporal.examples.approval:refund_flow")
    assert sys.path[-1] == str(tmp_path)  # the flows of a checkout still resolve
    module = importlib.import_module("colorsys")
    assert not module.__file__.startswith(str(tmp_path))


# ------------------------------------------------------- execution.on() handlers
def test_worker_event_handlers_are_loaded_by_import_path():
    args = build_parser().parse_args(
        [
            "worker",
            "--event-handler",
            "tests.conformance.test_dynamic_bindings:db_on_ping",
            "--event-handler",
            "tests.conformance.test_dynamic_bindings:db_on_ping_again",
        ]
    )
    handlers = [load_event_handler(path) for path in args.event_handler]
    assert [h.__name__ for h in handlers] == ["db_on_ping", "db_on_ping_again"]
    with pytest.raises(CLIError, match="package.module:name"):
        load_event_handler("no_colon")
    with pytest.raises(CLIError, match="has no attribute"):
        load_event_handler("tests.conformance.test_dynamic_bindings:nope")
    with pytest.raises(CLIError, match="not a function"):
        load_event_handler("tests.conformance.test_dynamic_bindings:NATIVE")


async def test_run_worker_serves_event_handlers(temporal_env):
    from tests.conformance import test_dynamic_bindings as bindings

    queue = f"cli-on-{uuid.uuid4().hex[:8]}"
    settings = worker_settings(
        {}, flows=["a:b"], address=address_of(temporal_env), task_queue=queue
    )
    stop = asyncio.Event()
    handler = load_event_handler("tests.conformance.test_dynamic_bindings:db_on_ping")
    task = asyncio.ensure_future(
        run_worker([bindings.flow], stop=stop, settings=settings, event_handlers=[handler])
    )
    try:
        execution = bindings.flow.create_execution(
            client=temporal_env.client, task_queue=queue, auto_close=False
        )
        execution.on("ping", handler, binding_id="cli")
        await execution.async_start(1)
        assert await execution.async_emit("ping", 4) == ["handled:4"]
        await execution.async_close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
