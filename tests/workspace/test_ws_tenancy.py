"""Tenant isolation, in the library backends and over HTTP with bearer tokens."""

from __future__ import annotations

import httpx
import pytest
from ws_helpers import HttpServer, new_tenant

from workspace import BaseWorkspace, MemoryWorkspace, SQLWorkspace, WorkspaceClient, errors


async def _assert_isolated(a: BaseWorkspace, b: BaseWorkspace) -> None:
    secret = await a.ingest(
        "tenant A secret plan", "artifacts", "plan", scope={"task_id": "shared"}
    )
    evidence = await a.ingest("tenant A evidence", "observations", "e", scope={"task_id": "shared"})
    await a.link(secret, evidence, "answers")
    await a.checkpoint("run-shared", {"owner": "A"})
    mine = await b.ingest("tenant B note about the plan", "artifacts", "plan")

    for call in (b.get, b.get_data, b.read_bounded, b.delete):
        with pytest.raises(errors.RecordNotFoundError):
            await call(secret.id)
    with pytest.raises(errors.RecordNotFoundError):
        await b.link(mine, secret, "steals")
    with pytest.raises(errors.RecordNotFoundError):
        await b.links(secret)
    with pytest.raises(errors.RecordNotFoundError):
        await b.build_context("plan", required=[secret.id])
    assert [r.id for r in (await b.search("secret plan")).items] == []
    assert [r.id for r in (await b.search("plan")).items] == [mine.id]
    assert [r.id for r in (await b.search(scope={"task_id": "shared"})).items] == []
    assert await b.links() == []
    assert await b.latest_checkpoint("run-shared") is None
    pack = await b.build_context("secret plan evidence", budget={"tokens": 10_000})
    assert [blk.ref.id for blk in pack.blocks] == [mine.id]
    assert await b.prune(keep_last=0) == 1

    # A is untouched by everything B did.
    assert await a.get_data(secret) == "tenant A secret plan"
    assert len(await a.links(secret)) == 1
    assert (await a.latest_checkpoint("run-shared")).state == {"owner": "A"}  # type: ignore[union-attr]
    assert {r.id for r in (await a.search("plan")).items} == {secret.id}
    with pytest.raises(errors.RecordNotFoundError):
        await a.get(mine.id)


async def test_library_backends_isolate_tenants(store: MemoryWorkspace | SQLWorkspace) -> None:
    other = store.for_tenant(new_tenant())
    assert other.tenant != store.tenant
    await _assert_isolated(store, other)


async def test_default_tenant_and_bad_tenant_names() -> None:
    assert MemoryWorkspace().tenant == "default"
    for bad in ("", "x" * 200, "nul\x00"):
        with pytest.raises(errors.InvalidInputError):
            MemoryWorkspace(tenant=bad)
        with pytest.raises(errors.InvalidInputError):
            MemoryWorkspace().for_tenant(bad)


async def test_http_tokens_bind_tenants(http_server: HttpServer) -> None:
    token_a = http_server.token_for(new_tenant())
    token_b = http_server.token_for(new_tenant())
    async with (
        WorkspaceClient(http_server.url, token_a) as a,
        WorkspaceClient(http_server.url, token_b) as b,
    ):
        await _assert_isolated(a, b)


async def test_http_other_tenant_ids_are_404_not_403(http_server: HttpServer) -> None:
    token_a = http_server.token_for(new_tenant())
    token_b = http_server.token_for(new_tenant())
    async with WorkspaceClient(http_server.url, token_a) as a:
        ref = await a.ingest("private", "artifacts", "doc")
    async with httpx.AsyncClient(base_url=http_server.url) as http:
        as_b = {"Authorization": f"Bearer {token_b}"}
        for method, path in (
            ("GET", f"/v1/records/{ref.id}"),
            ("GET", f"/v1/records/{ref.id}/data"),
            ("GET", f"/v1/records/{ref.id}/read"),
            ("DELETE", f"/v1/records/{ref.id}"),
            ("GET", f"/v1/links?ref={ref.id}"),
        ):
            response = await http.request(method, path, headers=as_b)
            assert response.status_code == 404, (method, path, response.text)
            body = response.json()
            assert body["error"] == "RecordNotFoundError"
            assert body["id"] == ref.id
            assert "secret" not in response.text
        missing = "rec_0000000000000000000000cc"
        response = await http.get(f"/v1/records/{missing}", headers=as_b)
        assert response.status_code == 404
        assert response.json()["message"].replace(missing, "X") == body["message"].replace(
            ref.id, "X"
        )
        own = await http.get(
            f"/v1/records/{ref.id}/data", headers={"Authorization": f"Bearer {token_a}"}
        )
        assert own.status_code == 200
        assert own.json()["content"] == "private"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Token abc"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "bearer' OR '1'='1"},
    ],
)
async def test_http_requires_a_known_bearer_token(
    http_server: HttpServer, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=http_server.url) as http:
        response = await http.post(
            "/v1/records",
            json={"content": "x", "collection": "artifacts", "kind": "k"},
            headers=headers,
        )
        assert response.status_code == 401
        assert response.json()["error"] == "AuthenticationError"
        assert response.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/healthz")).status_code == 200
    async with WorkspaceClient(http_server.url, "not-a-real-token") as client:
        with pytest.raises(errors.AuthenticationError):
            await client.search()
