"""Malformed and hostile input on every backend: typed errors, no crash, data left intact."""

from __future__ import annotations

import re

import pytest

from workspace import BaseWorkspace, errors

SQL_INJECTION = [
    "'; DROP TABLE ws_records; --",
    '"; DELETE FROM ws_records WHERE 1=1; --',
    "x' OR '1'='1",
    "1; UPDATE ws_records SET tenant='evil'",
    "\\'; SELECT pg_sleep(5); --",
    "Robert'); DROP TABLE students;--",
]

FTS_SYNTAX = [
    '"',
    '"unterminated phrase',
    "*",
    "report*",
    "NEAR(",
    "NEAR(a b, 2)",
    "a AND",
    "OR",
    "AND OR NOT",
    "(",
    ")",
    "((a)",
    "^start",
    "kind:report",
    "{summary}: x",
    "-",
    "--",
    "!",
    "a & b | c",
    "a <-> b",
    "'",
    "\\",
    ":*",
    "''",
    "\u00a0\u200b",
    "🚀🚀",
    "a" * 1500,
]


def _nested(depth: int) -> list[object]:
    value: list[object] = [1]
    for _ in range(depth):
        value = [value]
    return value


async def _seed(ws: BaseWorkspace) -> list[str]:
    refs = [
        await ws.ingest("the canary report lives here", "artifacts", "report"),
        await ws.ingest({"canary": True}, "observations", "note", scope={"task_id": "s"}),
        await ws.ingest(b"\x00canary", "artifacts", "blob", summary="binary canary"),
    ]
    return [r.id for r in refs]


async def _assert_intact(ws: BaseWorkspace, ids: list[str]) -> None:
    listed = [r.id for r in (await ws.search(limit=100)).items]
    assert set(ids) <= set(listed)
    assert await ws.get_data(ids[0]) == "the canary report lives here"
    assert await ws.get_data(ids[1]) == {"canary": True}
    assert await ws.get_data(ids[2]) == b"\x00canary"
    assert {r.id for r in (await ws.search("canary")).items} == set(ids)


@pytest.mark.parametrize("payload", SQL_INJECTION)
async def test_sql_metacharacters_are_stored_verbatim(ws: BaseWorkspace, payload: str) -> None:
    ids = await _seed(ws)
    ref = await ws.ingest(
        payload,
        "decisions",
        kind=payload[:100],
        summary=payload,
        scope={"task_id": payload, payload: payload},
        source=payload,
        meta={payload: [payload]},
    )
    assert await ws.get_data(ref) == payload
    got = await ws.get(ref.id)
    assert (got.kind, got.summary, got.source) == (payload[:100], payload, payload)
    assert got.scope == {"task_id": payload, payload: payload}
    assert [r.id for r in (await ws.search(scope={"task_id": payload})).items] == [ref.id]
    assert [r.id for r in (await ws.search(filters={"kind": payload[:100]})).items] == [ref.id]
    await ws.search(payload)
    other = await ws.ingest("evidence", "observations", "e")
    link = await ws.link(ref, other, relation=payload[:100], meta={"q": payload})
    assert [x.id for x in await ws.links(ref, relation=payload[:100])] == [link.id]
    await ws.build_context(payload, scope={"task_id": payload})
    await _assert_intact(ws, ids)


@pytest.mark.parametrize("query", FTS_SYNTAX)
async def test_full_text_syntax_characters_never_break_search(
    ws: BaseWorkspace, query: str
) -> None:
    ids = await _seed(ws)
    page = await ws.search(query)
    assert isinstance(page.items, list)
    # Real words around the junk still match, so the junk is neutralized, not fatal.
    around = await ws.search(f"canary {query} report")
    words = {w.lower() for w in re.findall(r"[^\W_]+", query)}
    if words <= {"report"}:
        assert [r.id for r in around.items] == [ids[0]]
    await ws.build_context(query)
    await _assert_intact(ws, ids)


async def test_overlong_query_is_rejected(ws: BaseWorkspace) -> None:
    with pytest.raises(errors.InvalidInputError):
        await ws.search("word " * 1000)


@pytest.mark.parametrize(
    "bad_ref",
    [
        "",
        "rec_",
        "rec_" + "0" * 24,
        "rec_" + "G" * 24,
        "lnk_0000000000000000000000aa",
        "../../etc/passwd",
        "rec_0000000000000000000000aa/../x",
        "x" * 10_000,
        "'; DROP TABLE ws_records; --",
        "rec_\x00",
    ],
)
async def test_hostile_ids_read_as_not_found(ws: BaseWorkspace, bad_ref: str) -> None:
    ids = await _seed(ws)
    with pytest.raises(errors.RecordNotFoundError):
        await ws.get(bad_ref)
    with pytest.raises(errors.RecordNotFoundError):
        await ws.delete(bad_ref)
    with pytest.raises(errors.RecordNotFoundError):
        await ws.link(ids[0], bad_ref, "r")
    with pytest.raises(errors.RecordNotFoundError):
        await ws.build_context("x", required=[bad_ref])
    await _assert_intact(ws, ids)


@pytest.mark.parametrize("bad_ref", [None, 123, 4.5, b"rec_0000", ["rec"], {"id": "x"}])
async def test_non_string_refs_are_invalid_input(ws: BaseWorkspace, bad_ref: object) -> None:
    ids = await _seed(ws)
    with pytest.raises(errors.InvalidInputError):
        await ws.get(bad_ref)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInputError):
        await ws.get_data(bad_ref)  # type: ignore[arg-type]
    await _assert_intact(ws, ids)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"summary": "nul\x00"},
        {"source": "nul\x00"},
        {"kind": "k\x00"},
        {"scope": {"k": "v\x00"}},
        {"meta": {"k\x00": 1}},
        {"content": "lone \ud800 surrogate"},
        {"scope": {"deep": _nested(80)}},
    ],
)
async def test_unstorable_strings_are_invalid_input(
    ws: BaseWorkspace, kwargs: dict[str, object]
) -> None:
    ids = await _seed(ws)
    args: dict[str, object] = {"content": "ok", "collection": "artifacts", "kind": "k", **kwargs}
    with pytest.raises(errors.InvalidInputError):
        await ws.ingest(**args)  # type: ignore[arg-type]
    await _assert_intact(ws, ids)
    assert len((await ws.search(limit=100)).items) == 3


async def test_large_content_round_trips(ws: BaseWorkspace) -> None:
    # Past the 200k-character full-text cap: stored whole, indexed prefix still searchable.
    text = "alpha " + "lorem ipsum dolor " * 15_000 + " omega"
    ref = await ws.ingest(text, "artifacts", "big")
    assert ref.size == len(text)
    assert await ws.get_data(ref) == text
    tail = await ws.read_bounded(ref, len(text) - 5, 100)
    assert tail.data == "omega"
    assert [r.id for r in (await ws.search("alpha")).items] == [ref.id]
