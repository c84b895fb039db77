"""Hostile input at the Workspace service and its storage (issue 17, Workspace findings).

A catalogue: each case sends what an outside attacker (or a buggy client) can send and asserts
the typed error or HTTP status AND that nothing changed in storage (row counts and ids of every
table, all tenants). Storage cases run on SQLite and PostgreSQL (marker ``postgres``); library
cases also on the memory backend. See docs/security.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.workspace.ws_helpers import (
    create_pg_database,
    drop_pg_database,
    free_port,
    new_tenant,
    run_server,
)
from workspace import BaseWorkspace, MemoryWorkspace, SQLWorkspace, WorkspaceClient, errors
from workspace.http.guard import MAX_JSON_DEPTH
from workspace.http.service import DEFAULT_MAX_BODY_BYTES, create_app
from workspace.paging import encode_cursor
from workspace.storage.records import new_id, now_us
from workspace.storage.sql.schema import links as links_table

MAX_INT64 = 2**63 - 1
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
LIBRARY_BACKENDS = ["memory", *SQL_BACKENDS]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SQLWorkspace]:
    path = tmp_path_factory.mktemp("sec_ws") / "hostile.db"
    async with SQLWorkspace.from_url(path) as store:
        yield store


@pytest.fixture(scope="module")
async def postgres_store() -> AsyncIterator[SQLWorkspace]:
    url = await create_pg_database()
    try:
        async with SQLWorkspace.from_url(url) as store:
            yield store
    finally:
        await drop_pg_database(url)


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request: pytest.FixtureRequest) -> SQLWorkspace:
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(params=LIBRARY_BACKENDS)
def library(request: pytest.FixtureRequest) -> BaseWorkspace:
    """A library backend on a fresh tenant."""
    if request.param == "memory":
        return MemoryWorkspace(tenant=new_tenant())
    store: SQLWorkspace = request.getfixturevalue(f"{request.param}_store")
    return store.for_tenant(new_tenant())


@dataclass
class Service:
    """The app in process over ASGI, a token for a fresh tenant, and the shared store."""

    app: Any
    http: httpx.AsyncClient
    token: str
    tenant: str
    store: SQLWorkspace

    @property
    def ws(self) -> SQLWorkspace:
        return self.store.for_tenant(self.tenant)


@pytest.fixture
async def service(sql_store: SQLWorkspace) -> AsyncIterator[Service]:
    tenant, token = new_tenant(), f"tok-{new_tenant()}-0123456789"
    app = create_app(workspace=sql_store, tokens={token: tenant})
    app.state.workspace = sql_store  # what the lifespan does; the store is already set up
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://workspace",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ) as http:
        yield Service(app, http, token, tenant, sql_store)


async def storage_state(store: SQLWorkspace) -> dict[str, Any]:
    """Every table's row count and ids (all tenants): equal before and after means untouched."""
    state: dict[str, Any] = {}
    async with store.engine.connect() as conn:
        for table, key in (("ws_records", "id"), ("ws_links", "id"), ("ws_record_tags", "tag")):
            rows = (await conn.exec_driver_sql(f"SELECT {key} FROM {table} ORDER BY 1")).all()
            state[table] = [row[0] for row in rows]
    return state


async def seed(ws: BaseWorkspace) -> tuple[list[str], list[str]]:
    """A few records, links and checkpoints, so 'nothing changed' has something to lose."""
    refs = [
        await ws.ingest(f"canary report {i}", "artifacts", "report", scope={"task": "s"})
        for i in range(3)
    ]
    links = [await ws.link(refs[0], ref, "cites") for ref in refs[1:]]
    for i in range(3):
        await ws.checkpoint("run-canary", {"i": i})
    return [r.id for r in refs], [x.id for x in links]


def forged(cursor: str | None, **changes: Any) -> str:
    """A real cursor with some fields replaced (its fingerprint stays valid)."""
    assert cursor is not None
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return encode_cursor({**payload, **changes})


def assert_problem(response: httpx.Response, status: int, error: str, *words: str) -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"] == error, payload
    for word in words:
        assert word in payload["message"], (word, payload["message"])


# -- 1. authentication before the body; size and shape limits before parsing -------------------


async def _asgi(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, Any, int]:
    """Call the ASGI app directly; returns (status, JSON body, times receive() was awaited)."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/records",
        "raw_path": b"/v1/records",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"workspace"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(payload), reads


def tiny_elements(size: int) -> bytes:
    """``[[],[],...]``: the cheapest bytes per JSON value."""
    return b"[" + b"[]," * ((size - 2) // 3 - 1) + b"[]]"


BAD_AUTH = [
    [],
    [(b"authorization", b"Bearer")],
    [(b"authorization", b"Basic dXNlcjpwYXNz")],
    [(b"authorization", b"Bearer not-the-token-0123456789")],
    [(b"authorization", b"Bearer " + b"x" * 10_000)],
]


@pytest.mark.parametrize("headers", BAD_AUTH, ids=["none", "empty", "basic", "unknown", "huge"])
async def test_unauthenticated_bodies_are_refused_without_being_read(
    service: Service, headers: list[tuple[bytes, bytes]]
) -> None:
    await seed(service.ws)
    before = await storage_state(service.store)
    body = tiny_elements(DEFAULT_MAX_BODY_BYTES)
    started = time.perf_counter()
    status, payload, reads = await _asgi(service.app, headers, body)
    assert (status, payload["error"]) == (401, "AuthenticationError")
    assert reads == 0  # the body was never received, let alone parsed
    assert time.perf_counter() - started < 1.0
    assert await storage_state(service.store) == before


async def test_unauthenticated_request_is_answered_before_its_body_arrives(
    sql_store: SQLWorkspace,
) -> None:
    """Over a real socket: headers announce 8 MiB, no body byte is sent, 401 comes back."""
    before = await storage_state(sql_store)
    # The server runs its own event loop, so it opens its own store on the same database.
    url = sql_store.engine.url.render_as_string(hide_password=False)
    app = create_app(database_url=url, tokens={"a-real-token-0123456789": new_tenant()})
    port = free_port()
    server, thread = run_server(app, port)
    try:

        def exchange() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                sock.sendall(
                    b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {DEFAULT_MAX_BODY_BYTES}\r\n\r\n".encode()
                )
                return sock.recv(65536)

        answer = await asyncio.to_thread(exchange)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"www-authenticate: bearer" in answer.lower()
    assert await storage_state(sql_store) == before


async def test_a_flood_of_tiny_elements_is_refused_before_parsing(service: Service) -> None:
    await seed(service.ws)
    before = await storage_state(service.store)
    body = tiny_elements(DEFAULT_MAX_BODY_BYTES - 64)
    auth = [(b"authorization", f"Bearer {service.token}".encode())]
    tracemalloc.start()
    try:
        status, payload, _ = await _asgi(service.app, auth, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (status, payload["error"]) == (400, "InvalidInputError")
    assert "100000" in payload["message"] and "max_json_elements" in payload["message"]
    # Parsing it took +200 MB (1.35 GB through validation); refusing it costs copies of the body.
    assert peak < 64 * 1024 * 1024, peak
    assert await storage_state(service.store) == before


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


SHAPES: list[tuple[str, str, Any, str]] = [
    (
        "many values in content",
        "/v1/records",
        {"content": list(range(150_000)), "collection": "artifacts", "kind": "k"},
        "100000",
    ),
    (
        "many values in meta",
        "/v1/records",
        {"content": "x", "collection": "artifacts", "kind": "k", "meta": {"a": [0] * 120_000}},
        "100000",
    ),
    ("many filter values", "/v1/search", {"filters": {"meta.k": [[]] * 120_000}}, "100000"),
    (
        "deep content",
        "/v1/records",
        {"content": _nested(MAX_JSON_DEPTH + 5), "collection": "artifacts", "kind": "k"},
        str(MAX_JSON_DEPTH),
    ),
    ("deep search", "/v1/search", {"filters": {"meta.k": _nested(500)}}, str(MAX_JSON_DEPTH)),
]


@pytest.mark.parametrize(
    ("path", "body", "limit"), [c[1:] for c in SHAPES], ids=[c[0] for c in SHAPES]
)
async def test_json_bodies_over_the_shape_limits_get_400(
    service: Service, path: str, body: Any, limit: str
) -> None:
    await seed(service.ws)
    before = await storage_state(service.store)
    response = await service.http.post(path, json=body)
    assert_problem(response, 400, "InvalidInputError", limit)
    assert await storage_state(service.store) == before


async def test_raw_deep_nesting_gets_400_not_a_crash(service: Service) -> None:
    before = await storage_state(service.store)
    for raw in (b"[" * 100_000, b"{" * 100_000, b'{"content":' + b"[" * 50_000):
        response = await service.http.post(
            "/v1/records", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 400, "InvalidInputError", str(MAX_JSON_DEPTH))
    assert await storage_state(service.store) == before


async def test_bodies_within_the_limits_still_work(service: Service) -> None:
    content = {"rows": [{"a": i, "b": [i, "x, [y] {z}"]} for i in range(15_000)]}
    response = await service.http.post(
        "/v1/records", json={"content": content, "collection": "artifacts", "kind": "table"}
    )
    assert response.status_code == 201, response.text
    assert await service.ws.get_data(response.json()["id"]) == content


async def test_size_limit_still_applies_before_parsing(service: Service) -> None:
    await seed(service.ws)
    before = await storage_state(service.store)
    body = b'{"content": "' + b"x" * DEFAULT_MAX_BODY_BYTES + b'"}'
    response = await service.http.post(
        "/v1/records", content=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "PayloadTooLargeError", str(DEFAULT_MAX_BODY_BYTES))
    assert await storage_state(service.store) == before


# -- 2. integers and filter sizes the database cannot take -------------------------------------


async def _hostile_requests(service: Service) -> list[tuple[str, str, Any, int, str, str]]:
    """(method, path, json body, status, error, word of the message) for this tenant's data."""
    ids, _ = await seed(service.ws)
    keyset = (await service.http.post("/v1/search", json={"limit": 1})).json()["next_cursor"]
    ranked = (await service.http.post("/v1/search", json={"query": "canary", "limit": 1})).json()
    links = (await service.http.get("/v1/links", params={"ref": ids[0], "limit": 1})).json()
    history = (
        await service.http.post(
            "/v1/checkpoints/history", json={"run_id": "run-canary", "limit": 1}
        )
    ).json()
    big, limit_text = 2**70, str(MAX_INT64)
    rows: list[tuple[str, str, Any, int, str, str]] = []
    for position in (big, MAX_INT64 + 1, -1):
        rows += [
            (
                "POST",
                "/v1/search",
                {"limit": 1, "cursor": forged(keyset, c=position)},
                400,
                "InvalidCursorError",
                limit_text,
            ),
            (
                "POST",
                "/v1/search",
                {
                    "query": "canary",
                    "limit": 1,
                    "cursor": forged(ranked["next_cursor"], o=position),
                },
                400,
                "InvalidCursorError",
                limit_text,
            ),
            (
                "GET",
                f"/v1/links?ref={ids[0]}&cursor={forged(links['next_cursor'], c=position)}",
                None,
                400,
                "InvalidCursorError",
                limit_text,
            ),
            (
                "POST",
                "/v1/checkpoints/history",
                {"run_id": "run-canary", "cursor": forged(history["next_cursor"], c=position)},
                400,
                "InvalidCursorError",
                limit_text,
            ),
        ]
    rows += [
        (
            "POST",
            "/v1/search",
            {"limit": 1, "cursor": forged(keyset, i=12)},
            400,
            "InvalidCursorError",
            "cursor",
        ),
        ("POST", "/v1/search", {"cursor": "x" * 600}, 400, "InvalidCursorError", "512"),
        (
            "GET",
            f"/v1/records/{ids[0]}/read?offset={2**64}",
            None,
            400,
            "InvalidInputError",
            limit_text,
        ),
        (
            "GET",
            f"/v1/records/{ids[0]}/read?offset={MAX_INT64 + 1}",
            None,
            400,
            "InvalidInputError",
            "offset",
        ),
        (
            "GET",
            f"/v1/records/{ids[0]}/read?limit={2**64}",
            None,
            400,
            "InvalidInputError",
            "limit",
        ),
        ("POST", "/v1/search", {"limit": 10**30}, 400, "InvalidInputError", "1000"),
        (
            "POST",
            "/v1/search",
            {"filters": {f"meta.k{i}": 1 for i in range(1001)}},
            400,
            "InvalidInputError",
            "32",
        ),
        (
            "POST",
            "/v1/search",
            {"filters": {f"scope.k{i}": 1 for i in range(33)}},
            400,
            "InvalidInputError",
            "filter keys",
        ),
        (
            "POST",
            "/v1/search",
            {"scope": {f"k{i}": 1 for i in range(1001)}},
            400,
            "InvalidInputError",
            "32",
        ),
        (
            "POST",
            "/v1/search",
            {"filters": {"meta.k": list(range(40_000))}},
            400,
            "InvalidInputError",
            "1000",
        ),
        (
            "POST",
            "/v1/search",
            {"filters": {"id": [f"rec_{i:024x}" for i in range(40_000)]}},
            400,
            "InvalidInputError",
            "1000",
        ),
        (
            "POST",
            "/v1/context",
            {"goal": "g", "scope": {f"k{i}": 1 for i in range(1001)}},
            400,
            "InvalidInputError",
            "32",
        ),
        (
            "POST",
            "/v1/context",
            {"goal": "g", "required": [f"rec_{i:024x}" for i in range(1001)]},
            400,
            "InvalidInputError",
            "1000",
        ),
        ("POST", "/v1/prune", {"keep_last": 2**64}, 400, "InvalidInputError", limit_text),
        (
            "POST",
            "/v1/prune",
            {"keep_last": 0, "scope": {f"k{i}": 1 for i in range(1001)}},
            400,
            "InvalidInputError",
            "32",
        ),
        ("POST", "/v1/prune", {"older_than_seconds": 1e20}, 400, "InvalidInputError", "older_than"),
        (
            "POST",
            "/v1/prune",
            {"older_than_seconds": 1e15},
            400,
            "InvalidInputError",
            "999999999 days",
        ),
        ("GET", f"/v1/links?ref={ids[0]}&limit=1001", None, 400, "InvalidInputError", "1000"),
        ("GET", f"/v1/links?ref={ids[0]}&limit=0", None, 400, "InvalidInputError", "1000"),
        (
            "POST",
            "/v1/checkpoints/history",
            {"run_id": "run-canary", "limit": 1001},
            400,
            "InvalidInputError",
            "1000",
        ),
        (
            "POST",
            "/v1/checkpoints/history",
            {"run_id": "run-canary", "limit": 10**6},
            400,
            "InvalidInputError",
            "1000",
        ),
    ]
    return rows


async def test_hostile_integers_and_filter_sizes_get_400_naming_the_limit(
    service: Service,
) -> None:
    rows = await _hostile_requests(service)
    before = await storage_state(service.store)
    for method, path, body, status, error, word in rows:
        response = await service.http.request(method, path, json=body)
        assert response.status_code != 500, (path, body and str(body)[:80], response.text)
        assert_problem(response, status, error, word)
    assert await storage_state(service.store) == before


async def test_offsets_past_any_content_read_empty_on_every_backend(service: Service) -> None:
    ids, _ = await seed(service.ws)
    for offset in (2**31 - 1, 2**31, 2**40, MAX_INT64):
        response = await service.http.get(f"/v1/records/{ids[0]}/read", params={"offset": offset})
        assert response.status_code == 200, response.text
        part = response.json()
        assert (part["data"], part["offset"], part["has_more"]) == ("", offset, False)


# -- the same refusals from the library backends (typed errors) --------------------------------


async def test_library_backends_refuse_hostile_integers_with_typed_errors(
    library: BaseWorkspace,
) -> None:
    ids, _ = await seed(library)
    keyset = (await library.search(limit=1)).next_cursor
    ranked = (await library.search("canary", limit=1)).next_cursor
    links = (await library.links_page(ids[0], limit=1)).next_cursor
    history = (await library.checkpoint_history_page("run-canary", limit=1)).next_cursor
    listing = sorted(r.id for r in (await library.search(limit=100)).items)
    calls: list[tuple[Any, type[Exception], str]] = [
        (
            library.search(cursor=forged(keyset, c=2**70), limit=1),
            errors.InvalidCursorError,
            str(MAX_INT64),
        ),
        (
            library.search("canary", cursor=forged(ranked, o=2**64), limit=1),
            errors.InvalidCursorError,
            str(MAX_INT64),
        ),
        (
            library.links_page(ids[0], cursor=forged(links, c=-(2**70)), limit=1),
            errors.InvalidCursorError,
            str(MAX_INT64),
        ),
        (
            library.checkpoint_history_page("run-canary", cursor=forged(history, c=2**63), limit=1),
            errors.InvalidCursorError,
            str(MAX_INT64),
        ),
        (library.read_bounded(ids[0], 2**64), errors.InvalidInputError, "offset"),
        (
            library.search(filters={f"meta.k{i}": 1 for i in range(1001)}),
            errors.InvalidInputError,
            "32",
        ),
        (library.search(filters={"meta.k": list(range(40_000))}), errors.InvalidInputError, "1000"),
        (
            library.build_context("g", required=[f"rec_{i:024x}" for i in range(1001)]),
            errors.InvalidInputError,
            "1000",
        ),
        (library.prune(keep_last=2**64), errors.InvalidInputError, "keep_last"),
        (library.prune(older_than=1e20), errors.InvalidInputError, "older_than"),
        (library.links_page(ids[0], limit=5000), errors.InvalidInputError, "1000"),
    ]
    for call, error, word in calls:
        with pytest.raises(error) as info:
            await call
        assert word in str(info.value)
    assert sorted(r.id for r in (await library.search(limit=100)).items) == listing
    assert [x.id for x in await library.links(ids[0])] != []


# -- 6. bounded responses: links and checkpoint history come in pages ---------------------------


async def test_links_and_history_are_paginated_with_a_default_and_a_maximum(
    service: Service,
) -> None:
    ws = service.ws
    hub = await ws.ingest("hub", "decisions", "d")
    leaves = await asyncio.gather(
        *(ws.ingest(f"leaf {i}", "observations", "o") for i in range(150))
    )
    made = [await ws.link(hub, leaf, "cites") for leaf in leaves]
    await asyncio.gather(*(ws.checkpoint("run-big", {"i": i}) for i in range(150)))
    before = await storage_state(service.store)

    first = (await service.http.get("/v1/links", params={"ref": hub.id})).json()
    assert len(first["items"]) == 100 and first["next_cursor"]
    rest = (
        await service.http.get("/v1/links", params={"ref": hub.id, "cursor": first["next_cursor"]})
    ).json()
    assert len(rest["items"]) == 50 and rest["next_cursor"] is None
    assert [x["id"] for x in first["items"] + rest["items"]] == [x.id for x in reversed(made)]

    page = (await service.http.post("/v1/checkpoints/history", json={"run_id": "run-big"})).json()
    assert len(page["items"]) == 100 and page["next_cursor"]
    tail = (
        await service.http.post(
            "/v1/checkpoints/history",
            json={"run_id": "run-big", "limit": 1000, "cursor": page["next_cursor"]},
        )
    ).json()
    assert len(tail["items"]) == 50 and tail["next_cursor"] is None
    assert await storage_state(service.store) == before


async def test_the_client_follows_pages_where_it_returns_full_lists(service: Service) -> None:
    ws = service.ws
    hub = await ws.ingest("hub", "decisions", "d")
    leaves = await asyncio.gather(
        *(ws.ingest(f"leaf {i}", "observations", "o") for i in range(1050))
    )
    # One statement for 1050 links (ws.link commits each one: over a minute on a busy machine).
    rows = []
    for leaf in leaves:
        created = now_us()
        rows.append(
            {
                "id": new_id("lnk", created),
                "tenant": service.tenant,
                "source_id": hub.id,
                "target_id": leaf.id,
                "relation": "cites",
                "meta": {},
                "created_us": created,
            }
        )
    async with service.store.engine.begin() as conn:
        await conn.execute(sa.insert(links_table), rows)
    await asyncio.gather(*(ws.checkpoint("run-long", {"i": i}) for i in range(1050)))
    transport = httpx.ASGITransport(app=service.app)
    client = WorkspaceClient("http://workspace", service.token, transport=transport)
    try:
        assert len(await client.links(hub)) == 1050
        assert len(await client.checkpoint_history("run-long")) == 1050
        assert len(await client.checkpoint_history("run-long", limit=1020)) == 1020
        page = await client.links_page(hub)
        assert len(page.items) == 100 and page.next_cursor
    finally:
        await client.close()
