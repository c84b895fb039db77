"""Conformance suite: every backend must pass exactly these tests (see conftest ``ws``)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from workspace import BaseWorkspace, Profile, RecordRef, errors
from workspace.types import Checkpoint

# -- records ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ("plain text with ünïcode ✓ and emoji 🚀", "text"),
        ({"b": [1, 2.5, None, True], "a": {"nested": "x"}}, "json"),
        ([{"k": 1}, "two", 3], "json"),
        (b"\x00\xff\xfe binary \x80", "bytes"),
        ("", "text"),
    ],
)
async def test_ingest_round_trips_content_with_its_type(
    ws: BaseWorkspace, content: object, content_type: str
) -> None:
    ref = await ws.ingest(
        content,  # type: ignore[arg-type]
        collection="artifacts",
        kind="report",
        summary="a summary",
        scope={"task_id": "t1"},
        source="unit-test",
        meta={"author": "me"},
    )
    data = await ws.get_data(ref)
    assert data == content
    assert type(data) is type(content)
    if isinstance(content, bytes):
        raw = content
    elif isinstance(content, str):
        raw = content.encode()
    else:
        raw = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    assert ref.sha256 == hashlib.sha256(raw).hexdigest()
    assert ref.size == len(raw)
    assert ref.content_type == content_type
    assert (ref.collection, ref.kind, ref.summary, ref.source) == (
        "artifacts",
        "report",
        "a summary",
        "unit-test",
    )
    assert ref.scope == {"task_id": "t1"}
    assert ref.meta == {"author": "me"}
    created = datetime.fromisoformat(ref.created_at)
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=5)
    assert set(ref.to_dict()) >= {
        "id",
        "collection",
        "kind",
        "sha256",
        "size",
        "summary",
        "scope",
        "source",
        "meta",
        "created_at",
    }
    assert RecordRef.from_dict(ref.to_dict()) == ref


async def test_get_by_ref_or_id_returns_the_same_ref(ws: BaseWorkspace) -> None:
    ref = await ws.ingest("x", "observations", "note")
    assert await ws.get(ref) == ref
    assert await ws.get(ref.id) == ref
    other = await ws.ingest("y", "observations", "note")
    assert other.id != ref.id


async def test_ref_is_immutable_and_state_safe(ws: BaseWorkspace) -> None:
    meta = {"k": [1]}
    ref = await ws.ingest("x", "observations", "note", meta=meta)
    meta["k"].append(2)
    assert (await ws.get(ref)).meta == {"k": [1]}
    with pytest.raises(AttributeError):
        ref.id = "other"  # type: ignore[misc]
    json.dumps(ref.to_dict())


@pytest.mark.parametrize("collection", ["notes", "Artifacts", "", "artifacts ", 5])
async def test_unknown_collection_is_a_typed_value_error(
    ws: BaseWorkspace, collection: object
) -> None:
    with pytest.raises(errors.UnknownCollectionError) as info:
        await ws.ingest("x", collection, "k")  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, errors.WorkspaceError)
    message = str(info.value)
    assert repr(collection) in message
    for allowed in ("observations", "artifacts", "decisions", "checkpoints"):
        assert allowed in message
    assert (await ws.search()).items == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": 42},
        {"content": None},
        {"content": {1, 2}},
        {"content": "x", "kind": ""},
        {"content": "x", "kind": "k" * 129},
        {"content": "x", "summary": 5},
        {"content": "x", "scope": ["not", "a", "dict"]},
        {"content": "x", "meta": "pinned"},
        {"content": {"x": float("nan")}},
        {"content": "nul\x00char"},
        {"content": "x", "meta": {"when": datetime(2020, 1, 1)}},
    ],
)
async def test_invalid_ingest_arguments_raise_invalid_input(
    ws: BaseWorkspace, kwargs: dict[str, object]
) -> None:
    args: dict[str, object] = {"collection": "artifacts", "kind": "k", **kwargs}
    with pytest.raises(errors.InvalidInputError):
        await ws.ingest(**args)  # type: ignore[arg-type]
    assert (await ws.search()).items == []


async def test_read_bounded_slices_text(ws: BaseWorkspace) -> None:
    text = "".join(f"{i:04d}" for i in range(1000))
    ref = await ws.ingest(text, "artifacts", "log")
    first = await ws.read_bounded(ref, 0, 10)
    assert (first.data, first.total, first.has_more) == (text[:10], 4000, True)
    middle = await ws.read_bounded(ref.id, first.next_offset, 20)
    assert middle.data == text[10:30]
    last = await ws.read_bounded(ref, 3990, 100)
    assert (last.data, last.has_more) == (text[3990:], False)
    past = await ws.read_bounded(ref, 5000, 10)
    assert (past.data, past.total, past.has_more) == ("", 4000, False)


async def test_read_bounded_counts_characters_for_text_and_bytes_for_bytes(
    ws: BaseWorkspace,
) -> None:
    text_ref = await ws.ingest("héllo wörld", "artifacts", "t")
    part = await ws.read_bounded(text_ref, 1, 4)
    assert (part.data, part.total, part.content_type) == ("éllo", 11, "text")
    blob = bytes(range(256))
    blob_ref = await ws.ingest(blob, "artifacts", "b")
    chunk = await ws.read_bounded(blob_ref, 250, 100)
    assert chunk.data == blob[250:]
    assert isinstance(chunk.data, bytes)
    assert (chunk.total, chunk.has_more, chunk.content_type) == (256, False, "bytes")
    json_ref = await ws.ingest({"a": "b"}, "artifacts", "j")
    whole = await ws.read_bounded(json_ref, 0, 100)
    assert json.loads(whole.data) == {"a": "b"}


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, 0), (0, -5), ("0", 10), (0, 1.5)])
async def test_read_bounded_rejects_bad_ranges(
    ws: BaseWorkspace, offset: object, limit: object
) -> None:
    ref = await ws.ingest("abc", "artifacts", "t")
    with pytest.raises(errors.InvalidInputError):
        await ws.read_bounded(ref, offset, limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad_id",
    ["rec_0000000000000000000000ff", "does-not-exist", "", "'; DROP TABLE ws_records; --"],
)
async def test_unknown_ids_raise_record_not_found(ws: BaseWorkspace, bad_id: str) -> None:
    ref = await ws.ingest("keep me", "artifacts", "t")
    for call in (ws.get, ws.get_data, ws.read_bounded, ws.delete):
        with pytest.raises(errors.RecordNotFoundError) as info:
            await call(bad_id)
        assert isinstance(info.value, KeyError)
        assert repr(bad_id) in str(info.value)
    assert await ws.get_data(ref) == "keep me"


async def test_delete_removes_the_record_everywhere(ws: BaseWorkspace) -> None:
    keep = await ws.ingest("zebra keep", "artifacts", "t")
    gone = await ws.ingest("zebra gone", "artifacts", "t")
    await ws.delete(gone)
    with pytest.raises(errors.RecordNotFoundError):
        await ws.get(gone.id)
    with pytest.raises(errors.RecordNotFoundError):
        await ws.delete(gone.id)
    assert [r.id for r in (await ws.search("zebra")).items] == [keep.id]
    assert [r.id for r in (await ws.search()).items] == [keep.id]


# -- search -----------------------------------------------------------------------------------


async def test_listing_is_newest_first_and_paginates_without_gaps(ws: BaseWorkspace) -> None:
    refs = [await ws.ingest(f"item {i}", "observations", "n") for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await ws.search(limit=3, cursor=cursor)
        pages += 1
        seen += [r.id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == [r.id for r in reversed(refs)]


async def test_full_text_search_matches_content_and_summary(ws: BaseWorkspace) -> None:
    alpha = await ws.ingest("The quarterly budget review is due", "artifacts", "report")
    beta = await ws.ingest("lunch menu", "observations", "note", summary="quarterly lunch")
    await ws.ingest("nothing relevant here", "observations", "note")
    assert {r.id for r in (await ws.search("quarterly")).items} == {alpha.id, beta.id}
    assert [r.id for r in (await ws.search("QUARTERLY budget")).items] == [alpha.id]
    assert [r.id for r in (await ws.search("lunch")).items] == [beta.id]
    assert (await ws.search("nonexistentword")).items == []


async def test_search_words_are_anded_phrases_and_or_work(ws: BaseWorkspace) -> None:
    a = await ws.ingest("red apple pie", "artifacts", "t")
    b = await ws.ingest("apple red wine", "artifacts", "t")
    c = await ws.ingest("green pear", "artifacts", "t")
    assert {r.id for r in (await ws.search("red apple")).items} == {a.id, b.id}
    assert [r.id for r in (await ws.search('"red apple"')).items] == [a.id]
    assert {r.id for r in (await ws.search("pie OR pear")).items} == {a.id, c.id}


async def test_search_stems_plurals(ws: BaseWorkspace) -> None:
    ref = await ws.ingest("one report about invoices", "artifacts", "t")
    assert [r.id for r in (await ws.search("reports")).items] == [ref.id]
    assert [r.id for r in (await ws.search("invoice")).items] == [ref.id]


async def test_search_ranks_by_relevance_then_recency(ws: BaseWorkspace) -> None:
    strong = await ws.ingest(
        "migration migration migration plan", "artifacts", "t", summary="migration plan"
    )
    filler = " ".join(f"word{i}" for i in range(300))
    weak = await ws.ingest(f"a note that mentions migration once {filler}", "artifacts", "t")
    same1 = await ws.ingest("kiwi", "artifacts", "t")
    same2 = await ws.ingest("kiwi", "artifacts", "t")
    assert [r.id for r in (await ws.search("migration")).items] == [strong.id, weak.id]
    # Equal relevance: newer first.
    assert [r.id for r in (await ws.search("kiwi")).items] == [same2.id, same1.id]


async def test_query_results_paginate_with_cursor(ws: BaseWorkspace) -> None:
    refs = {(await ws.ingest(f"mango number {i}", "artifacts", "t")).id for i in range(5)}
    first = await ws.search("mango", limit=2)
    second = await ws.search("mango", limit=2, cursor=first.next_cursor)
    third = await ws.search("mango", limit=2, cursor=second.next_cursor)
    ids = [r.id for p in (first, second, third) for r in p.items]
    assert third.next_cursor is None
    assert len(ids) == 5
    assert set(ids) == refs


async def test_cursor_from_another_query_or_garbage_is_rejected(ws: BaseWorkspace) -> None:
    for i in range(3):
        await ws.ingest(f"melon {i}", "artifacts", "t")
    listing = await ws.search(limit=1)
    ranked = await ws.search("melon", limit=1)
    assert listing.next_cursor and ranked.next_cursor
    with pytest.raises(errors.InvalidCursorError):
        await ws.search("melon", limit=1, cursor=listing.next_cursor)
    with pytest.raises(errors.InvalidCursorError):
        await ws.search(limit=1, cursor=ranked.next_cursor)
    with pytest.raises(errors.InvalidCursorError):
        await ws.search(filters={"kind": "t"}, limit=1, cursor=listing.next_cursor)
    for garbage in ("not-a-cursor", "eyJ4IjoxfQ", "%%%", "x" * 600):
        with pytest.raises(errors.InvalidCursorError) as info:
            await ws.search(limit=1, cursor=garbage)
        assert isinstance(info.value, ValueError)


async def test_exact_filters(ws: BaseWorkspace) -> None:
    a = await ws.ingest(
        "a", "artifacts", "report", scope={"task_id": "t1"}, meta={"n": 1, "deep": {"x": "y"}}
    )
    b = await ws.ingest("b", "decisions", "choice", scope={"task_id": "t2"}, meta={"n": "1"})
    c = await ws.ingest("c", "observations", "note", scope={"task_id": "t3", "extra": True})

    async def ids(**kwargs: object) -> set[str]:
        page = await ws.search(**kwargs)  # type: ignore[arg-type]
        return {r.id for r in page.items}

    assert await ids(filters={"collection": "decisions"}) == {b.id}
    assert await ids(filters={"kind": ["report", "note"]}) == {a.id, c.id}
    assert await ids(filters={"scope.task_id": "t1"}) == {a.id}
    assert await ids(filters={"scope.task_id": ["t1", "t3"]}) == {a.id, c.id}
    assert await ids(scope={"task_id": "t2"}) == {b.id}
    assert await ids(scope={"task_id": "t3", "extra": True}) == {c.id}
    assert await ids(scope={"task_id": "t3", "extra": False}) == set()
    # Typed: 1 and "1" are different values.
    assert await ids(filters={"meta.n": 1}) == {a.id}
    assert await ids(filters={"meta.n": "1"}) == {b.id}
    assert await ids(filters={"meta.deep.x": "y"}) == {a.id}
    assert await ids(filters={"meta.deep": {"x": "y"}}) == {a.id}
    assert await ids(filters={"id": [a.id, c.id], "collection": "artifacts"}) == {a.id}
    assert await ids(filters={"scope.task_id": []}) == set()
    assert await ids(filters={"collection": "artifacts", "scope.task_id": "t2"}) == set()


async def test_filters_combine_with_full_text(ws: BaseWorkspace) -> None:
    a = await ws.ingest("shared topic", "artifacts", "t", scope={"task_id": "1"})
    await ws.ingest("shared topic", "artifacts", "t", scope={"task_id": "2"})
    page = await ws.search("topic", scope={"task_id": "1"})
    assert [r.id for r in page.items] == [a.id]


@pytest.mark.parametrize(
    "filters",
    [
        {"unknown": 1},
        {"scope": 1},
        {"meta.": 1},
        {"collection": "bogus"},
        {"meta.x": {1, 2}},
    ],
)
async def test_bad_filters_raise_invalid_input(
    ws: BaseWorkspace, filters: dict[str, object]
) -> None:
    with pytest.raises(errors.InvalidInputError):
        await ws.search(filters=filters)


@pytest.mark.parametrize("limit", [0, -1, 1001, "10", 2.0, True])
async def test_bad_limit_raises_invalid_input(ws: BaseWorkspace, limit: object) -> None:
    with pytest.raises(errors.InvalidInputError):
        await ws.search(limit=limit)  # type: ignore[arg-type]


# -- links ------------------------------------------------------------------------------------


async def test_links_connect_decisions_to_evidence(ws: BaseWorkspace) -> None:
    evidence1 = await ws.ingest("log line", "observations", "log")
    evidence2 = await ws.ingest("metric", "observations", "metric")
    decision = await ws.ingest("ship it", "decisions", "go")
    l1 = await ws.link(decision, evidence1, "answers", meta={"weight": 1})
    l2 = await ws.link(decision.id, evidence2.id, "answers")
    l3 = await ws.link(evidence2, evidence1, "derived_from")
    assert (l1.source, l1.target, l1.relation, l1.meta) == (
        decision.id,
        evidence1.id,
        "answers",
        {"weight": 1},
    )
    assert datetime.fromisoformat(l1.created_at).utcoffset() == timedelta(0)
    assert [x.id for x in await ws.links(decision)] == [l2.id, l1.id]
    assert [x.id for x in await ws.links(source=decision)] == [l2.id, l1.id]
    assert [x.id for x in await ws.links(target=evidence1)] == [l3.id, l1.id]
    assert [x.id for x in await ws.links(evidence2)] == [l3.id, l2.id]
    assert [x.id for x in await ws.links(relation="derived_from")] == [l3.id]
    assert [x.id for x in await ws.links(evidence1, relation="answers")] == [l1.id]
    assert {x.id for x in await ws.links()} == {l1.id, l2.id, l3.id}
    assert await ws.links(source=evidence1) == []


async def test_link_to_unknown_record_raises_not_found(ws: BaseWorkspace) -> None:
    real = await ws.ingest("x", "observations", "n")
    missing = "rec_0000000000000000000000aa"
    with pytest.raises(errors.RecordNotFoundError) as info:
        await ws.link(real, missing, "answers")
    assert missing in str(info.value)
    with pytest.raises(errors.RecordNotFoundError):
        await ws.link(missing, real, "answers")
    with pytest.raises(errors.RecordNotFoundError):
        await ws.links(missing)
    with pytest.raises(errors.InvalidInputError):
        await ws.link(real, real, "")
    assert await ws.links(real) == []


async def test_deleting_a_record_deletes_its_links(ws: BaseWorkspace) -> None:
    a = await ws.ingest("a", "observations", "n")
    b = await ws.ingest("b", "decisions", "n")
    c = await ws.ingest("c", "observations", "n")
    await ws.link(b, a, "answers")
    keep = await ws.link(b, c, "answers")
    await ws.delete(a)
    assert [x.id for x in await ws.links(b)] == [keep.id]


async def test_links_come_in_pages(ws: BaseWorkspace) -> None:
    hub = await ws.ingest("hub", "decisions", "d")
    others = [await ws.ingest(f"evidence {i}", "observations", "e") for i in range(5)]
    made = [await ws.link(hub, other, "answers") for other in others]
    newest_first = [x.id for x in reversed(made)]
    seen: list[str] = []
    cursor = None
    for expected_size in (2, 2, 1):
        page = await ws.links_page(hub, limit=2, cursor=cursor)
        assert len(page.items) == expected_size
        seen += [x.id for x in page.items]
        cursor = page.next_cursor
    assert cursor is None
    assert seen == newest_first
    everything = await ws.links_page(source=hub)  # default page size 100
    assert ([x.id for x in everything.items], everything.next_cursor) == (newest_first, None)
    assert [x.id for x in (await ws.links_page(relation="answers", limit=1000)).items] == (
        newest_first
    )
    first = await ws.links_page(hub, limit=2)
    with pytest.raises(errors.InvalidCursorError):  # a cursor only continues its own listing
        await ws.links_page(others[0], limit=2, cursor=first.next_cursor)
    search_cursor = (await ws.search(limit=1)).next_cursor
    with pytest.raises(errors.InvalidCursorError):
        await ws.links_page(hub, limit=2, cursor=search_cursor)
    for bad_limit in (0, 1001, -1):
        with pytest.raises(errors.InvalidInputError):
            await ws.links_page(hub, limit=bad_limit)
    with pytest.raises(errors.RecordNotFoundError):
        await ws.links_page("rec_0000000000000000000000dd")


# -- checkpoints ------------------------------------------------------------------------------


async def test_checkpoints_history_and_latest(ws: BaseWorkspace) -> None:
    assert await ws.latest_checkpoint("run-1") is None
    c1 = await ws.checkpoint("run-1", {"step": 1}, step_id="a")
    c2 = await ws.checkpoint("run-1", {"step": 2}, step_id="b")
    c3 = await ws.checkpoint("run-1", {"step": 3}, step_id="a")
    other = await ws.checkpoint("run-2", {"step": 9})
    assert (c1.collection, c1.kind) == ("checkpoints", "snapshot")
    assert c1.scope == {"run_id": "run-1", "step_id": "a"}
    assert other.scope == {"run_id": "run-2"}
    assert [r.id for r in await ws.checkpoint_history("run-1")] == [c3.id, c2.id, c1.id]
    assert [r.id for r in await ws.checkpoint_history("run-1", step_id="a")] == [c3.id, c1.id]
    assert [r.id for r in await ws.checkpoint_history("run-1", limit=2)] == [c3.id, c2.id]
    latest = await ws.latest_checkpoint("run-1")
    assert isinstance(latest, Checkpoint)
    assert latest.ref.id == c3.id
    assert latest.state == {"step": 3}
    assert (await ws.latest_checkpoint("run-2")).state == {"step": 9}  # type: ignore[union-attr]


async def test_checkpoint_history_comes_in_pages(ws: BaseWorkspace) -> None:
    made = [await ws.checkpoint("run-pages", {"n": i}, step_id="s") for i in range(5)]
    await ws.checkpoint("run-other", {"n": 0})
    newest_first = [r.id for r in reversed(made)]
    seen: list[str] = []
    cursor = None
    while True:
        page = await ws.checkpoint_history_page("run-pages", limit=2, cursor=cursor)
        assert len(page.items) <= 2
        seen += [r.id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == newest_first
    default = await ws.checkpoint_history_page("run-pages", step_id="s")
    assert ([r.id for r in default.items], default.next_cursor) == (newest_first, None)
    assert [r.id for r in await ws.checkpoint_history("run-pages", limit=3)] == newest_first[:3]
    first = await ws.checkpoint_history_page("run-pages", limit=2)
    with pytest.raises(errors.InvalidCursorError):
        await ws.checkpoint_history_page("run-other", limit=2, cursor=first.next_cursor)
    for bad_limit in (0, 1001):
        with pytest.raises(errors.InvalidInputError):
            await ws.checkpoint_history_page("run-pages", limit=bad_limit)
    bound = ws.bound(task_id="elsewhere")
    assert (await bound.checkpoint_history_page("run-pages")).items == []


async def test_checkpoint_state_keeps_its_type(ws: BaseWorkspace) -> None:
    await ws.checkpoint("run-t", b"\x01\x02")
    assert (await ws.latest_checkpoint("run-t")).state == b"\x01\x02"  # type: ignore[union-attr]
    await ws.checkpoint("run-t", "text state")
    assert (await ws.latest_checkpoint("run-t")).state == "text state"  # type: ignore[union-attr]


async def test_checkpoint_rejects_bad_run_ids(ws: BaseWorkspace) -> None:
    for bad in ("", None, 5):
        with pytest.raises(errors.InvalidInputError):
            await ws.checkpoint(bad, {"x": 1})  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInputError):
        await ws.checkpoint("r", {"x": 1}, scope={"run_id": "other"})


# -- retention --------------------------------------------------------------------------------


async def test_prune_keep_last_and_older_than(ws: BaseWorkspace) -> None:
    old = [await ws.ingest(f"o{i}", "observations", "n", scope={"task_id": "p"}) for i in range(5)]
    pinned = await ws.ingest(
        "pin", "observations", "n", scope={"task_id": "p"}, meta={"pinned": True}
    )
    elsewhere = await ws.ingest("x", "observations", "n", scope={"task_id": "q"})
    artifact = await ws.ingest("a", "artifacts", "n", scope={"task_id": "p"})
    # Nothing is an hour old yet.
    assert await ws.prune(scope={"task_id": "p"}, older_than=timedelta(hours=1)) == 0
    # Keep the 2 newest observations in scope p; the pinned one never counts or goes.
    assert await ws.prune(scope={"task_id": "p"}, keep_last=2, collection="observations") == 3
    remaining = {r.id for r in (await ws.search(limit=100)).items}
    assert remaining == {old[3].id, old[4].id, pinned.id, elsewhere.id, artifact.id}
    # older_than=0 deletes everything created before now, except keep_last newest.
    assert await ws.prune(scope={"task_id": "p"}, older_than=0, keep_last=1) == 2
    remaining = {r.id for r in (await ws.search(limit=100)).items}
    assert remaining == {artifact.id, pinned.id, elsewhere.id}
    assert await ws.prune(keep_last=0) == 2
    assert [r.id for r in (await ws.search()).items] == [pinned.id]


async def test_prune_requires_a_criterion(ws: BaseWorkspace) -> None:
    await ws.ingest("x", "observations", "n")
    with pytest.raises(errors.InvalidInputError):
        await ws.prune()
    with pytest.raises(errors.InvalidInputError):
        await ws.prune(keep_last=-1)
    with pytest.raises(errors.UnknownCollectionError):
        await ws.prune(keep_last=0, collection="bogus")
    assert len((await ws.search()).items) == 1


# -- context ----------------------------------------------------------------------------------


async def _context_fixture(ws: BaseWorkspace) -> dict[str, RecordRef]:
    scope = {"task_id": "ctx"}
    return {
        "match_strong": await ws.ingest(
            "Database migration plan: migrate the billing database in three steps.",
            "artifacts",
            "plan",
            scope=scope,
        ),
        "match_weak": await ws.ingest(
            "Meeting notes. Someone mentioned the database briefly. " + "Filler words. " * 20,
            "observations",
            "notes",
            scope=scope,
        ),
        "unrelated": await ws.ingest(
            "Lunch options near the office.", "observations", "notes", scope=scope
        ),
        "decision": await ws.ingest(
            "Decision: run the migration on Sunday.", "decisions", "decision", scope=scope
        ),
        "checkpoint": await ws.checkpoint("r", {"migration": "database"}, scope=scope),
        "out_of_scope": await ws.ingest(
            "database migration elsewhere", "artifacts", "plan", scope={"task_id": "other"}
        ),
    }


async def test_build_context_ranks_by_relevance_within_scope(ws: BaseWorkspace) -> None:
    refs = await _context_fixture(ws)
    pack = await ws.build_context(
        "database migration", scope={"task_id": "ctx"}, budget={"tokens": 10_000}
    )
    order = [b.ref.id for b in pack.blocks]
    assert order[0] == refs["match_strong"].id
    assert order.index(refs["match_weak"].id) < order.index(refs["unrelated"].id)
    assert refs["out_of_scope"].id not in order
    assert refs["checkpoint"].id not in order  # default profile gives checkpoints no weight
    assert set(order) == {
        refs[k].id for k in ("match_strong", "match_weak", "unrelated", "decision")
    }
    reasons = {b.ref.id: b.reason for b in pack.blocks}
    assert reasons[refs["match_strong"].id] == "relevant"
    assert reasons[refs["unrelated"].id] == "recent"
    assert pack.used_tokens == sum(b.tokens for b in pack.blocks) <= 10_000
    assert pack.budget == {"tokens": 10_000}
    assert pack.omissions == []
    assert not pack.over_budget
    block = pack.blocks[0]
    assert block.content == await ws.get_data(refs["match_strong"])
    assert block.tokens == (len(block.content) + 3) // 4


async def test_build_context_respects_the_budget(ws: BaseWorkspace) -> None:
    refs = await _context_fixture(ws)
    strong_tokens = (len(await ws.get_data(refs["match_strong"])) + 3) // 4
    pack = await ws.build_context(
        "database migration", scope={"task_id": "ctx"}, budget={"tokens": strong_tokens + 12}
    )
    assert pack.blocks[0].ref.id == refs["match_strong"].id
    assert pack.used_tokens <= strong_tokens + 12
    omitted = {o.ref.id: o.reason for o in pack.omissions}
    assert omitted[refs["match_weak"].id] == "over_budget"
    included = {b.ref.id for b in pack.blocks}
    assert included.isdisjoint(omitted)
    assert included | set(omitted) == {
        refs[k].id for k in ("match_strong", "match_weak", "unrelated", "decision")
    }
    empty = await ws.build_context("database", scope={"task_id": "ctx"}, budget={"tokens": 0})
    assert empty.blocks == []
    assert empty.used_tokens == 0
    assert len(empty.omissions) == 4


async def test_pinned_and_required_records_blow_the_budget_and_say_so(
    ws: BaseWorkspace,
) -> None:
    big = "pinned material " * 100
    pinned = await ws.ingest(big, "observations", "rule", scope={"s": 1}, meta={"pinned": True})
    required = await ws.ingest("required text " * 50, "artifacts", "r", scope={"s": 2})
    normal = await ws.ingest("normal", "artifacts", "r", scope={"s": 1})
    pack = await ws.build_context(
        "anything", scope={"s": 1}, budget={"tokens": 10}, required=[required.id]
    )
    assert [b.ref.id for b in pack.blocks] == [required.id, pinned.id]
    assert [b.reason for b in pack.blocks] == ["required", "pinned"]
    assert pack.over_budget
    assert pack.used_tokens > 10
    assert pack.warnings
    assert [(o.ref.id, o.reason) for o in pack.omissions] == [(normal.id, "over_budget")]


async def test_required_unknown_record_raises_not_found(ws: BaseWorkspace) -> None:
    with pytest.raises(errors.RecordNotFoundError):
        await ws.build_context("x", required=["rec_0000000000000000000000bb"])


async def test_summary_replaces_content_that_does_not_fit(ws: BaseWorkspace) -> None:
    ref = await ws.ingest(
        "long detailed body " * 200, "artifacts", "doc", summary="short summary of the doc"
    )
    pack = await ws.build_context("doc", budget={"tokens": 20})
    assert [(b.ref.id, b.form, b.content) for b in pack.blocks] == [
        (ref.id, "summary", "short summary of the doc")
    ]


async def test_binary_records_are_omitted_unless_summarized(ws: BaseWorkspace) -> None:
    raw = await ws.ingest(b"\x00\x01", "artifacts", "image")
    described = await ws.ingest(b"\x02", "artifacts", "image", summary="a chart of sales")
    pack = await ws.build_context("sales chart", budget={"tokens": 100})
    assert [(b.ref.id, b.content) for b in pack.blocks] == [(described.id, "a chart of sales")]
    assert [(o.ref.id, o.reason) for o in pack.omissions] == [(raw.id, "binary_content")]


async def test_document_review_profile_prefers_artifacts_and_drops_non_matches(
    ws: BaseWorkspace,
) -> None:
    refs = await _context_fixture(ws)
    default = await ws.build_context("database", scope={"task_id": "ctx"})
    review = await ws.build_context("database", scope={"task_id": "ctx"}, profile="document_review")
    assert review.profile == "document_review"
    assert review.blocks[0].ref.id == refs["match_strong"].id
    low = {o.ref.id for o in review.omissions if o.reason == "low_relevance"}
    assert refs["unrelated"].id in low
    assert refs["unrelated"].id in {b.ref.id for b in default.blocks}


async def test_registered_profile_changes_the_ranking(ws: BaseWorkspace) -> None:
    refs = await _context_fixture(ws)
    ws.register_profile(
        "decisions_first",
        Profile(
            collection_weights={"decisions": 10.0, "artifacts": 0.1, "checkpoints": 1.0},
            relevance_weight=0.5,
            recency_weight=0.5,
        ),
    )
    pack = await ws.build_context("migration", scope={"task_id": "ctx"}, profile="decisions_first")
    order = [b.ref.id for b in pack.blocks]
    assert pack.profile == "decisions_first"
    assert order[0] == refs["decision"].id
    assert refs["checkpoint"].id in order
    assert refs["match_weak"].id not in order  # observations have no weight here
    inline = await ws.build_context(
        "migration", scope={"task_id": "ctx"}, profile=Profile(collection_weights={"artifacts": 1})
    )
    assert [b.ref.id for b in inline.blocks] == [refs["match_strong"].id]


async def test_build_context_is_deterministic(ws: BaseWorkspace) -> None:
    await _context_fixture(ws)
    for i in range(6):
        await ws.ingest("identical twin text", "observations", "twin", scope={"task_id": "ctx"})
        del i
    first = await ws.build_context("twin database", scope={"task_id": "ctx"}, budget={"tokens": 60})
    second = await ws.build_context(
        "twin database", scope={"task_id": "ctx"}, budget={"tokens": 60}
    )
    assert first.to_dict() == second.to_dict()
    assert first.omissions


async def test_build_context_rejects_bad_arguments(ws: BaseWorkspace) -> None:
    with pytest.raises(errors.UnknownProfileError) as info:
        await ws.build_context("x", profile="nope")
    assert "nope" in str(info.value)
    assert "default" in str(info.value)
    for budget in ({"tokens": -1}, {"words": 5}, {"tokens": "5"}, "lots"):
        with pytest.raises(errors.InvalidInputError):
            await ws.build_context("x", budget=budget)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInputError):
        await ws.build_context("x", profile=Profile(collection_weights={"artifacts": -1.0}))
    with pytest.raises(errors.InvalidInputError):
        await ws.build_context("x", profile=Profile(collection_weights={"bogus": 1.0}))


# -- bound views ------------------------------------------------------------------------------


async def test_bound_view_merges_its_scope_into_every_scoped_call(ws: BaseWorkspace) -> None:
    view = ws.bound(task_id="T", execution_id="E")
    ref = await view.ingest("bound report about kiwis", collection="artifacts", kind="report")
    assert ref.scope == {"task_id": "T", "execution_id": "E"}
    extra = await view.ingest("more kiwis", "artifacts", "report", scope={"part": 2})
    assert extra.scope == {"task_id": "T", "execution_id": "E", "part": 2}
    outside = await ws.ingest("unbound kiwis", "artifacts", "report", scope={"task_id": "X"})
    assert {r.id for r in (await view.search("kiwis")).items} == {ref.id, extra.id}
    assert {r.id for r in (await ws.search("kiwis")).items} == {ref.id, extra.id, outside.id}
    pack = await view.build_context("kiwis")
    assert {b.ref.id for b in pack.blocks} == {ref.id, extra.id}
    cp = await view.checkpoint("run", {"s": 1}, step_id="st")
    assert cp.scope == {"task_id": "T", "execution_id": "E", "run_id": "run", "step_id": "st"}
    assert (await view.latest_checkpoint("run")).ref.id == cp.id  # type: ignore[union-attr]
    assert await ws.bound(task_id="X").latest_checkpoint("run") is None
    assert await view.get_data(ref.id) == "bound report about kiwis"
    narrower = view.bound(part=2)
    assert [r.id for r in (await narrower.search()).items] == [extra.id]
    with pytest.raises(errors.InvalidInputError):
        await view.ingest("x", "artifacts", "r", scope={"task_id": "other"})
    with pytest.raises(errors.InvalidInputError):
        await view.search(scope={"execution_id": "other"})
    assert await view.prune(keep_last=0, collection="artifacts") == 2
    assert [r.id for r in (await ws.search(filters={"collection": "artifacts"})).items] == [
        outside.id
    ]
