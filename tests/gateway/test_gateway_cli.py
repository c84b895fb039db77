"""``triggerflow-temporal gateway`` as a process (gateway.md "Running it"): it serves the
flows named on the command line against the Temporal server of the settings, and it refuses
to start on a public address without authentication.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from .test_gateway_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, key: str) -> Path:
    config = {
        "auth": {
            "api_keys": [
                {
                    "sha256": hashlib.sha256(key.encode()).hexdigest(),
                    "subject": "ops",
                    "tenant": "acme",
                    "groups": [],
                }
            ]
        }
    }
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    return path


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "triggerflow_temporal.cli", "gateway", *args]


async def test_the_gateway_command_serves_the_flows(tmp_path, temporal_env: WorkflowEnvironment):
    key = "tfk-" + secrets.token_urlsafe(24)
    port = free_port()
    address = temporal_env.client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        *command(
            "tests.gateway.flows:quick",
            "--config",
            str(write_config(tmp_path, key)),
            "--port",
            str(port),
            "--address",
            address,
        ),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.returncode is None, (await proc.stdout.read()).decode()  # type: ignore[union-attr]
                await asyncio.sleep(0.1)
            unauthenticated = await http.post("/v1/flows/gw_quick/executions", json={"input": 1})
            assert unauthenticated.status_code == 401
            assert (await http.get("/openapi.json")).json()["info"]["title"]
            # A flow the gateway was not given is unknown to it.
            unknown = await http.post(
                "/v1/flows/gw_approval/executions",
                json={"input": 1},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert unknown.status_code == 404
    finally:
        proc.terminate()
        await proc.wait()


def test_a_public_address_without_authentication_is_refused(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    done = subprocess.run(
        command("tests.gateway.flows:quick", "--config", str(empty), "--host", "0.0.0.0"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TEMPORAL_ADDRESS": "127.0.0.1:1"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "0.0.0.0" in done.stderr
