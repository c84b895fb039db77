"""Batch ingest: ``ingest_many`` on every backend and ``POST /v1/records/batch`` over HTTP.

A batch is stored all or nothing: one invalid record refuses it with ``InvalidBatchItemError``
naming the record's index and field (HTTP 422), a batch over the size bound is refused whole
(HTTP 400), tenancy is the single-record endpoint's, and the client sends every request over
one kept-open connection pool.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import exc as sa_exc
from ws_helpers import HttpServer, free_port, new_tenant, run_server

from workspace import BaseWorkspace, MemoryWorkspace, SQLWorkspace, WorkspaceClient, errors
from workspace.http.service import create_app
from workspace.storage import records as records_module
from workspace.validation import MAX_INGEST_BATCH

BATCH = "/v1/records/batch"


def _rec(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "content": f"batch note {i} zebrafish",
        "collection": "artifacts",
        "kind": "note",
        **extra,
    }


async def _all_ids(ws: BaseWorkspace) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        page = await ws.search(limit=1000, cursor=cursor)
        ids.update(ref.id for ref in page.items)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


# -- every backend: memory, SQLite, PostgreSQL, HTTP -------------------------------------------


async def test_batch_stores_every_record_in_order(ws: BaseWorkspace) -> None:
    blob = bytes(range(256))
    batch: list[dict[str, Any]] = [
        {
            "content": "the zebrafish report",
            "collection": "artifacts",
            "kind": "report",
            "summary": "zebrafish summary",
            "scope": {"task_id": "t1"},
            "source": "https://example.org/r",
            "meta": {"pinned": True},
        },
        {
            "content": {"answer": 42, "nested": [1, {"a": None}]},
            "collection": "decisions",
            "kind": "go",
            "scope": {"task_id": "t2"},
        },
        {"content": blob, "collection": "observations", "kind": "image"},
        {"content": ["a", "list"], "collection": "checkpoints", "kind": "snapshot"},
    ]
    refs = await ws.ingest_many(batch)
    assert [r.kind for r in refs] == ["report", "go", "image", "snapshot"]
    assert [r.content_type for r in refs] == ["text", "json", "bytes", "json"]
    assert len({r.id for r in refs}) == 4
    for ref, rec in zip(refs, batch, strict=True):
        assert await ws.get(ref.id) == ref
        assert await ws.get_data(ref) == rec["content"]
    first = refs[0]
    assert (first.summary, first.scope, first.source, first.meta) == (
        "zebrafish summary",
        {"task_id": "t1"},
        "https://example.org/r",
        {"pinned": True},
    )
    # The same records a loop of ingest() would store: searchable, filterable, pinned.
    assert [r.id for r in (await ws.search("zebrafish")).items] == [first.id]
    assert [r.id for r in (await ws.search(scope={"task_id": "t2"})).items] == [refs[1].id]
    assert await _all_ids(ws) == {r.id for r in refs}
    pack = await ws.build_context("anything", budget={"tokens": 10})
    assert first.id in {blk.ref.id for blk in pack.blocks if blk.reason == "pinned"}
    assert await ws.ingest_many([]) == []


async def test_a_bad_record_refuses_the_whole_batch(ws: BaseWorkspace) -> None:
    before = await ws.ingest("kept from before", "artifacts", "note")
    batch = [_rec(0), _rec(1), _rec(2), {**_rec(3), "collection": "nope"}, _rec(4)]
    with pytest.raises(errors.InvalidBatchItemError) as caught:
        await ws.ingest_many(batch)
    err = caught.value
    assert isinstance(err, errors.InvalidInputError)
    assert (err.index, err.field) == (3, "collection")
    assert [e["index"] for e in err.errors] == [3]
    assert err.errors[0]["error"] == "UnknownCollectionError"
    assert "record 3" in str(err) and "collection" in str(err) and "nothing was stored" in str(err)
    assert await _all_ids(ws) == {before.id}

    # Every invalid record is listed, each with its field; still nothing is stored.
    worse: list[Any] = [
        _rec(0),
        {**_rec(1), "kind": ""},
        _rec(2),
        {**_rec(3), "kind": 5},
        {"content": "no collection", "kind": "k"},
        {**_rec(5), "tenant": "someone-else"},
        {**_rec(6), "scope": "not a dict"},
        {**_rec(7), "content": {1, 2}},
        "not a record",
        _rec(9),
    ]
    expected = {
        1: "kind",
        3: "kind",
        4: "collection",
        5: "tenant",
        6: "scope",
        7: "content",
        8: None,
    }
    with pytest.raises(errors.InvalidBatchItemError) as caught:
        await ws.ingest_many(worse)
    found = {e["index"]: e["field"] for e in caught.value.errors}
    if isinstance(ws, WorkspaceClient):
        # Over HTTP the request model's checks run before the storage checks, so the empty
        # kind of record 1 (well typed) is only reported once the others are fixed.
        assert found == {i: f for i, f in expected.items() if i != 1}
    else:
        assert found == expected
    first = min(found)
    assert (caught.value.index, caught.value.field) == (first, expected[first])
    assert await _all_ids(ws) == {before.id}


async def test_batch_size_is_bounded(ws: BaseWorkspace) -> None:
    with pytest.raises(errors.InvalidInputError, match=f"at most {MAX_INGEST_BATCH} records") as c:
        await ws.ingest_many([_rec(i) for i in range(MAX_INGEST_BATCH + 1)])
    assert not isinstance(c.value, errors.InvalidBatchItemError)
    assert "1001" in str(c.value)
    assert await _all_ids(ws) == set()
    for bad in ("a string", {"content": "a dict"}, None, 42):
        with pytest.raises(errors.InvalidInputError):
            await ws.ingest_many(bad)  # type: ignore[arg-type]
    refs = await ws.ingest_many([_rec(i) for i in range(MAX_INGEST_BATCH)])
    assert len(refs) == MAX_INGEST_BATCH
    assert await _all_ids(ws) == {r.id for r in refs}
    assert await ws.get_data(refs[-1]) == f"batch note {MAX_INGEST_BATCH - 1} zebrafish"


async def test_bound_view_merges_its_scope_into_each_record(ws: BaseWorkspace) -> None:
    view = ws.bound(task_id="t1", execution_id="e1")
    refs = await view.ingest_many([_rec(0), _rec(1, scope={"step": "s"})])
    assert [r.scope for r in refs] == [
        {"task_id": "t1", "execution_id": "e1"},
        {"task_id": "t1", "execution_id": "e1", "step": "s"},
    ]
    with pytest.raises(errors.InvalidBatchItemError) as caught:
        await view.ingest_many([_rec(2), _rec(3, scope={"task_id": "t2"})])
    assert (caught.value.index, caught.value.field) == (1, "scope")
    assert await _all_ids(ws) == {r.id for r in refs}


# -- tenancy -----------------------------------------------------------------------------------


async def test_library_batches_stay_in_their_tenant(store: MemoryWorkspace | SQLWorkspace) -> None:
    other = store.for_tenant(new_tenant())
    refs = await store.ingest_many([_rec(0), _rec(1)])
    assert await _all_ids(other) == set()
    assert (await other.search("zebrafish")).items == []
    for ref in refs:
        with pytest.raises(errors.RecordNotFoundError):
            await other.get(ref.id)
    assert await _all_ids(store) == {r.id for r in refs}


async def test_http_batch_is_bound_to_the_token_tenant(http_server: HttpServer) -> None:
    tenant_a = new_tenant()
    token_a = http_server.token_for(tenant_a)
    token_b = http_server.token_for(new_tenant())
    async with (
        WorkspaceClient(http_server.url, token_a) as a,
        WorkspaceClient(http_server.url, token_b) as b,
    ):
        refs = await a.ingest_many([_rec(0), _rec(1)])
        for ref in refs:
            with pytest.raises(errors.RecordNotFoundError):
                await b.get(ref.id)
            assert await a.get_data(ref) == await a.get_data(ref.id)
        assert await _all_ids(b) == set()
        assert await _all_ids(a) == {r.id for r in refs}

        async with httpx.AsyncClient(base_url=http_server.url) as http:
            body = {"records": [_rec(7)]}
            # No token, a malformed one, an unknown one: 401 before the body is read.
            for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nope"}):
                response = await http.post(BATCH, json=body, headers=headers)
                assert response.status_code == 401, response.text
                assert response.json()["error"] == "AuthenticationError"
            # A record cannot pick its tenant: "tenant" is an unknown field (422, index 0).
            as_b = {"Authorization": f"Bearer {token_b}"}
            sneaky = {"records": [{**_rec(8), "tenant": tenant_a}]}
            response = await http.post(BATCH, json=sneaky, headers=as_b)
            assert response.status_code == 422
            assert (response.json()["index"], response.json()["field"]) == (0, "tenant")
            sneaky_top = {"records": [_rec(9)], "tenant": "x"}
            response = await http.post(BATCH, json=sneaky_top, headers=as_b)
            assert (response.status_code, response.json()["error"]) == (422, "ValidationError")
        assert await _all_ids(a) == {r.id for r in refs}
        assert await _all_ids(b) == set()


# -- the HTTP wire format ----------------------------------------------------------------------


async def _stored_count(http: httpx.AsyncClient) -> int:
    response = await http.post("/v1/search", json={"limit": 1000})
    assert response.status_code == 200
    return len(response.json()["items"])


async def test_http_batch_answers_201_with_refs_in_order(http: httpx.AsyncClient) -> None:
    blob = b"\x00\x01binary"
    response = await http.post(
        BATCH,
        json={
            "records": [
                _rec(0),
                {
                    "content": base64.b64encode(blob).decode(),
                    "content_type": "bytes",
                    "collection": "observations",
                    "kind": "bin",
                },
                {"content": {"x": 1}, "collection": "decisions", "kind": "d"},
            ]
        },
    )
    assert response.status_code == 201, response.text
    refs = response.json()["records"]
    assert [(r["kind"], r["content_type"]) for r in refs] == [
        ("note", "text"),
        ("bin", "bytes"),
        ("d", "json"),
    ]
    data = (await http.get(f"/v1/records/{refs[1]['id']}/data")).json()
    assert base64.b64decode(data["content"]) == blob
    assert await _stored_count(http) == 3
    spec = (await http.get("/openapi.json")).json()
    assert BATCH in spec["paths"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({**_rec(0), "kind": 5}, "kind"),  # refused by the request model
        ({**_rec(0), "bogus": 1}, "bogus"),
        ({"content": "x", "kind": "k"}, "collection"),
        ({**_rec(0), "collection": "nope"}, "collection"),  # refused by the storage checks
        ({**_rec(0), "kind": ""}, "kind"),
        ({**_rec(0), "content": "%%%", "content_type": "bytes"}, "content"),
        ({**_rec(0), "content": "nul\u0000"}, "content"),
        ({**_rec(0), "scope": {"task_id": "x\u0000"}}, "scope"),
        ("not an object", None),
    ],
)
async def test_http_bad_record_is_422_naming_index_and_field(
    http: httpx.AsyncClient, bad: Any, field: str | None
) -> None:
    records = [_rec(0), _rec(1), bad, _rec(3)]
    response = await http.post(BATCH, json={"records": records})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "InvalidBatchItemError"
    assert (body["index"], body["field"]) == (2, field)
    assert [e["index"] for e in body["errors"]] == [2]
    assert "record 2" in body["message"]
    assert "nothing was stored" in body["message"]
    assert await _stored_count(http) == 0


async def test_http_batch_over_the_bound_is_400_and_stores_nothing(
    http: httpx.AsyncClient,
) -> None:
    tiny = {"content": "x", "collection": "artifacts", "kind": "k"}
    response = await http.post(BATCH, json={"records": [tiny] * (MAX_INGEST_BATCH + 1)})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "InvalidInputError"
    assert f"at most {MAX_INGEST_BATCH} records, got {MAX_INGEST_BATCH + 1}" in body["message"]
    assert await _stored_count(http) == 0
    for malformed in ({}, {"records": "x"}, {"records": {"0": tiny}}, [tiny]):
        response = await http.post(BATCH, json=malformed)
        assert (response.status_code, response.json()["error"]) == (422, "ValidationError")
    assert await _stored_count(http) == 0


# -- atomicity of the write itself (SQL) --------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_a_failing_write_stores_none_of_the_batch(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = request.getfixturevalue("sqlite_store" if backend == "sqlite" else "pg_store")
    assert isinstance(shared, SQLWorkspace)
    ws = shared.for_tenant(new_tenant())
    existing = await ws.ingest("already here", "artifacts", "note")
    real_new_id = records_module.new_id
    calls = 0

    def colliding_new_id(prefix: str, created_us: int) -> str:
        # The third record of the batch reuses an existing id: the INSERT fails in the database,
        # after the first two rows were sent in the same transaction.
        nonlocal calls
        calls += 1
        return existing.id if calls == 3 else real_new_id(prefix, created_us)

    monkeypatch.setattr(records_module, "new_id", colliding_new_id)
    with pytest.raises(sa_exc.IntegrityError) as caught:
        await ws.ingest_many([_rec(0), _rec(1), _rec(2), _rec(3)])
    assert "unique" in str(caught.value).lower()
    monkeypatch.setattr(records_module, "new_id", real_new_id)
    assert await _all_ids(ws) == {existing.id}
    assert await ws.get_data(existing) == "already here"
    # The connection is usable again and the next batch goes through.
    refs = await ws.ingest_many([_rec(4)])
    assert await _all_ids(ws) == {existing.id, refs[0].id}


# -- the client's connection pool --------------------------------------------------------------


@pytest.fixture(scope="module")
def counting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Any]]]:
    """A service that records the client address (host, port) of every HTTP request."""
    path: Path = tmp_path_factory.mktemp("ws_batch_pool") / "pool.db"
    inner = create_app(database_url=str(path), tokens={})
    peers: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            peers.append(tuple(scope["client"]))
        await inner(scope, receive, send)

    port = free_port()
    server, thread = run_server(app, port)
    yield f"http://127.0.0.1:{port}", peers
    server.should_exit = True
    thread.join(timeout=30)


async def test_client_reuses_one_connection(counting_server: tuple[str, list[Any]]) -> None:
    url, peers = counting_server
    async with WorkspaceClient(url) as client:
        start = len(peers)
        for round_ in range(5):
            await client.ingest_many([_rec(10 * round_ + i) for i in range(20)])
            await client.ingest("single", "artifacts", "note")
            await client.search("zebrafish")
        seen = peers[start:]
        assert len(seen) == 15
        # Fifteen requests, one TCP connection (one client port): the pool stays open.
        assert len(set(seen)) == 1, seen
    async with WorkspaceClient(url) as again:
        await again.ingest_many([_rec(99)])
    # A new client is a new pool, hence a new connection: the count above is meaningful.
    assert peers[-1] != seen[-1]
