"""The HTTP service: CLI and env configuration, OpenAPI, health, wire format and bad input."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ws_helpers import REPO_ROOT, HttpServer, free_port, new_tenant

from workspace import WorkspaceClient, errors
from workspace.http.guard import parse_tokens
from workspace.http.service import create_app

# -- the real CLI -----------------------------------------------------------------------------

# Tokens need at least 16 characters.
ALPHA = "tok-alpha-7f3a9c2e51"
BETA = "tok-beta-0d84b6e2a7"


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("ws_cli") / "cli.db"
    port = free_port()
    env = {
        **os.environ,
        "WORKSPACE_TOKENS": f"{ALPHA}:alpha, {BETA}:beta",
        "WORKSPACE_MAX_BODY_BYTES": "4096",
        "PYTHONPATH": str(REPO_ROOT),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workspace",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            str(db),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError("python -m workspace serve exited early")
            subprocess.run(["sleep", "0.05"], check=True)
        else:
            raise RuntimeError("service did not become healthy")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_cli_serves_openapi_health_and_env_config(cli_server: str) -> None:
    async with httpx.AsyncClient(base_url=cli_server) as http:
        health = await http.get("/healthz")
        assert health.json() == {"status": "ok"}
        docs = await http.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        spec = (await http.get("/openapi.json")).json()
        for path in (
            "/v1/records",
            "/v1/records/{record_id}",
            "/v1/records/{record_id}/data",
            "/v1/records/{record_id}/read",
            "/v1/search",
            "/v1/prune",
            "/v1/links",
            "/v1/checkpoints",
            "/v1/checkpoints/history",
            "/v1/checkpoints/latest",
            "/v1/context",
            "/healthz",
        ):
            assert path in spec["paths"], path
        # WORKSPACE_MAX_BODY_BYTES=4096 is in force.
        big = {"content": "x" * 5000, "collection": "artifacts", "kind": "k"}
        response = await http.post(
            "/v1/records", json=big, headers={"Authorization": f"Bearer {ALPHA}"}
        )
        assert response.status_code == 413
        assert response.json()["error"] == "PayloadTooLargeError"
        # WORKSPACE_TOKENS binds ALPHA and BETA to different tenants.
        assert (await http.post("/v1/search", json={})).status_code == 401
    async with (
        WorkspaceClient(cli_server, ALPHA) as alpha,
        WorkspaceClient(cli_server, BETA) as beta,
    ):
        ref = await alpha.ingest("alpha only", "artifacts", "doc")
        assert await alpha.get_data(ref.id) == "alpha only"
        with pytest.raises(errors.RecordNotFoundError):
            await beta.get(ref.id)


def test_cli_migrate_creates_the_schema(tmp_path: Path) -> None:
    db = tmp_path / "migrated.db"
    result = subprocess.run(
        [sys.executable, "-m", "workspace", "migrate", "--database-url", str(db)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        version = conn.execute("SELECT version_num FROM ws_alembic_version").fetchall()
    assert {"ws_records", "ws_record_tags", "ws_links", "ws_records_fts"} <= tables
    assert version == [("0001",)]


def test_bad_token_spec_fails_fast() -> None:
    a, b = "a" * 16, "b" * 20
    assert parse_tokens(f" {a}:t1 , {b}:t2 ,") == {a: "t1", b: "t2"}
    assert parse_tokens("to:ken:0123456789ab:tenant") == {"to:ken:0123456789ab": "tenant"}
    assert parse_tokens("") == {}
    for bad in ("justatoken", ":tenant", "token:", f"{a}:t1,{a}:t2", "short:t1"):
        with pytest.raises(ValueError):
            parse_tokens(bad)
    with pytest.raises(ValueError):
        create_app(tokens="broken")
    with pytest.raises(ValueError):
        create_app(tokens={"short": "t1"})
    with pytest.raises(ValueError):
        create_app(tokens={}, max_body_bytes=0)


# -- wire format and bad input against the shared server --------------------------------------


async def test_bytes_travel_as_base64_with_explicit_content_type(
    http: httpx.AsyncClient,
) -> None:
    blob = bytes(range(256))
    created = await http.post(
        "/v1/records",
        json={
            "content": base64.b64encode(blob).decode(),
            "content_type": "bytes",
            "collection": "artifacts",
            "kind": "image",
        },
    )
    assert created.status_code == 201
    ref = created.json()
    assert (ref["content_type"], ref["size"]) == ("bytes", 256)
    data = (await http.get(f"/v1/records/{ref['id']}/data")).json()
    assert data["content_type"] == "bytes"
    assert base64.b64decode(data["content"]) == blob
    part = (await http.get(f"/v1/records/{ref['id']}/read?offset=10&limit=5")).json()
    assert base64.b64decode(part["data"]) == blob[10:15]
    assert (part["total"], part["has_more"]) == (256, True)
    as_text = await http.post(
        "/v1/records", json={"content": "aGk=", "collection": "artifacts", "kind": "t"}
    )
    text_id = as_text.json()["id"]
    assert (await http.get(f"/v1/records/{text_id}/data")).json()["content"] == "aGk="


async def test_http_delete_returns_204_and_then_404(http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/v1/records", json={"content": {"a": 1}, "collection": "decisions", "kind": "d"}
    )
    rid = created.json()["id"]
    assert (await http.delete(f"/v1/records/{rid}")).status_code == 204
    assert (await http.delete(f"/v1/records/{rid}")).status_code == 404


GOOD = {"content": "x", "collection": "artifacts", "kind": "k"}

# One request per line reads as a table; the formatter would explode it.
# fmt: off
BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/v1/records", {**GOOD, "collection": "bogus"}, 400, "UnknownCollectionError"),
    ("POST", "/v1/records", {**GOOD, "collection": None}, 400, "UnknownCollectionError"),
    ("POST", "/v1/records", {**GOOD, "kind": 5}, 422, "ValidationError"),
    ("POST", "/v1/records", {**GOOD, "kind": ""}, 400, "InvalidInputError"),
    ("POST", "/v1/records", {**GOOD, "content": 5}, 400, "InvalidInputError"),
    ("POST", "/v1/records", {**GOOD, "content": None}, 400, "InvalidInputError"),
    ("POST", "/v1/records", {**GOOD, "content": [1], "content_type": "text"}, 400, "InvalidInputError"),  # noqa: E501
    ("POST", "/v1/records", {**GOOD, "content": "x", "content_type": "json"}, 400, "InvalidInputError"),  # noqa: E501
    ("POST", "/v1/records", {**GOOD, "content": "!!!", "content_type": "bytes"}, 400, "InvalidInputError"),  # noqa: E501
    ("POST", "/v1/records", {**GOOD, "content": 12, "content_type": "bytes"}, 400, "InvalidInputError"),  # noqa: E501
    ("POST", "/v1/records", {**GOOD, "content_type": "xml"}, 422, "ValidationError"),
    ("POST", "/v1/records", {**GOOD, "scope": "task"}, 422, "ValidationError"),
    ("POST", "/v1/records", {**GOOD, "meta": [1, 2]}, 422, "ValidationError"),
    ("POST", "/v1/records", {**GOOD, "unexpected": 1}, 422, "ValidationError"),
    ("POST", "/v1/records", {"collection": "artifacts"}, 422, "ValidationError"),
    ("POST", "/v1/records", [GOOD], 422, "ValidationError"),
    ("POST", "/v1/records", "just a string", 422, "ValidationError"),
    ("POST", "/v1/records", b"{not json", 422, "ValidationError"),
    ("POST", "/v1/records", b"\xff\xfe\x00garbage", 422, "ValidationError"),
    ("POST", "/v1/records", {**GOOD, "content": "a\u0000b"}, 400, "InvalidInputError"),
    ("POST", "/v1/search", {"limit": "ten"}, 422, "ValidationError"),
    ("POST", "/v1/search", {"limit": 0}, 400, "InvalidInputError"),
    ("POST", "/v1/search", {"limit": 10**20}, 400, "InvalidInputError"),
    ("POST", "/v1/search", {"cursor": "garbage"}, 400, "InvalidCursorError"),
    ("POST", "/v1/search", {"cursor": "eyJtIjoiayJ9"}, 400, "InvalidCursorError"),
    ("POST", "/v1/search", {"filters": {"nope": 1}}, 400, "InvalidInputError"),
    ("POST", "/v1/search", {"filters": {"collection": "x"}}, 400, "UnknownCollectionError"),
    ("POST", "/v1/search", {"filters": "collection=artifacts"}, 422, "ValidationError"),
    ("POST", "/v1/search", {"query": 42}, 422, "ValidationError"),
    ("POST", "/v1/search", {"query": "q" * 5000}, 400, "InvalidInputError"),
    ("POST", "/v1/prune", {}, 400, "InvalidInputError"),
    ("POST", "/v1/prune", {"keep_last": -1}, 400, "InvalidInputError"),
    ("POST", "/v1/prune", {"older_than_seconds": -5}, 422, "ValidationError"),
    ("POST", "/v1/prune", {"keep_last": 0, "collection": "x"}, 400, "UnknownCollectionError"),
    ("POST", "/v1/links", {"source": "a", "target": "b", "relation": "r"}, 404, "RecordNotFoundError"),  # noqa: E501
    ("POST", "/v1/links", {"source": 1, "target": 2, "relation": "r"}, 422, "ValidationError"),
    ("GET", "/v1/links?ref=rec_0000000000000000000000dd", None, 404, "RecordNotFoundError"),
    ("GET", "/v1/records/'%3B%20DROP%20TABLE%20ws_records%3B--", None, 404, "RecordNotFoundError"),
    ("GET", "/v1/records/rec_0000000000000000000000dd/read?offset=-1", None, 422, "ValidationError"),  # noqa: E501
    ("GET", "/v1/records/rec_0000000000000000000000dd/read?limit=abc", None, 422, "ValidationError"),  # noqa: E501
    ("POST", "/v1/checkpoints", {"run_id": "", "state": {}}, 400, "InvalidInputError"),
    ("POST", "/v1/checkpoints", {"run_id": "r", "state": 3}, 400, "InvalidInputError"),
    ("POST", "/v1/checkpoints/history", {"run_id": "r", "limit": 0}, 400, "InvalidInputError"),
    ("POST", "/v1/checkpoints/latest", {"run_id": None}, 422, "ValidationError"),
    ("POST", "/v1/context", {"goal": "g", "profile": "nope"}, 400, "UnknownProfileError"),
    ("POST", "/v1/context", {"goal": "g", "budget": {"tokens": -1}}, 400, "InvalidInputError"),
    ("POST", "/v1/context", {"goal": "g", "budget": {"tokens": "many"}}, 422, "ValidationError"),
    ("POST", "/v1/context", {"goal": "g", "profile": {"relevance_weight": "high"}}, 422, "ValidationError"),  # noqa: E501
    ("POST", "/v1/context", {"goal": "g", "profile": {"collection_weights": {"x": 1}}}, 400, "InvalidInputError"),  # noqa: E501
    ("POST", "/v1/context", {"goal": "g", "required": ["nope"]}, 404, "RecordNotFoundError"),
    ("POST", "/v1/context", {"goal": ["g"]}, 422, "ValidationError"),
    ("GET", "/v1/nowhere", None, 404, "HTTPError"),
    ("PATCH", "/v1/records", None, 405, "HTTPError"),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    BAD_REQUESTS,
    ids=[f"{m} {p} {i}" for i, (m, p, *_rest) in enumerate(BAD_REQUESTS)],
)
async def test_bad_requests_get_clear_4xx_json_and_change_nothing(
    http: httpx.AsyncClient, method: str, path: str, body: Any, status: int, error: str
) -> None:
    keep = (await http.post("/v1/records", json={**GOOD, "content": "keeper"})).json()
    if isinstance(body, bytes):
        response = await http.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    elif body is None:
        response = await http.request(method, path)
    else:
        response = await http.request(method, path, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"] == error
    assert isinstance(payload["message"], str)
    assert payload["message"]
    listing = (await http.post("/v1/search", json={"limit": 100})).json()["items"]
    assert [r["id"] for r in listing] == [keep["id"]]
    data = (await http.get(f"/v1/records/{keep['id']}/data")).json()
    assert data["content"] == "keeper"


async def test_unknown_collection_message_names_value_and_allowed(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/v1/records", json={**GOOD, "collection": "bogus"})
    body = response.json()
    assert body["value"] == "bogus"
    assert body["allowed"] == ["observations", "artifacts", "decisions", "checkpoints"]
    assert "bogus" in body["message"]
    assert "artifacts" in body["message"]


async def test_oversized_bodies_get_413(http: httpx.AsyncClient) -> None:
    limit = 2 * 1024 * 1024
    keep = (await http.post("/v1/records", json=GOOD)).json()
    big = b'{"content": "' + b"x" * (limit + 10) + b'", "collection": "artifacts", "kind": "k"}'
    declared = await http.post(
        "/v1/records", content=big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.json()["error"] == "PayloadTooLargeError"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(0, len(big), 65536):
            yield big[:65536]

    streamed = await http.post(
        "/v1/records", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert "bytes" in streamed.json()["message"]
    just_under = {**GOOD, "content": "y" * (limit - 200)}
    assert (await http.post("/v1/records", json=just_under)).status_code == 201
    listing = (await http.post("/v1/search", json={"limit": 10})).json()["items"]
    assert len(listing) == 2
    assert keep["id"] in {r["id"] for r in listing}


async def test_client_maps_oversized_requests_to_payload_too_large(
    http_server: HttpServer,
) -> None:
    token = http_server.token_for(new_tenant())
    async with WorkspaceClient(http_server.url, token) as client:
        with pytest.raises(errors.PayloadTooLargeError) as info:
            await client.ingest("z" * (3 * 1024 * 1024), "artifacts", "big")
        assert isinstance(info.value, ValueError)
        assert (await client.search()).items == []


async def test_concurrent_bad_requests_never_500(http: httpx.AsyncClient) -> None:
    bodies = [b"", b"null", b"[]", b"{}", b'{"content":', b"\x00" * 100, b"{" * 5000]
    paths = ["/v1/records", "/v1/search", "/v1/links", "/v1/context", "/v1/prune"]
    responses = await asyncio.gather(
        *(
            http.post(p, content=b, headers={"Content-Type": "application/json"})
            for p in paths
            for b in bodies
        )
    )
    pairs = [(p, b) for p in paths for b in bodies]
    for (path, body), response in zip(pairs, responses, strict=True):
        if path == "/v1/search" and body == b"{}":
            # An empty search is valid: it lists the (empty) tenant.
            assert response.status_code == 200
            assert response.json()["items"] == []
        else:
            assert response.status_code in (400, 404, 422), (path, body[:20], response.text)
            assert response.json()["message"]


async def test_client_reports_an_unreachable_service() -> None:
    client = WorkspaceClient(f"http://127.0.0.1:{free_port()}", "t", timeout=2)
    with pytest.raises(errors.ServiceError):
        await client.setup()
    with pytest.raises(errors.ServiceError):
        await client.search()
    await client.close()
