"""Pure unit tests of the shared ranking/packing logic and of the query translation."""

from __future__ import annotations

import pytest

from workspace import Profile, RecordRef, errors
from workspace.context import (
    BUILTIN_PROFILES,
    Candidate,
    approx_tokens,
    assemble,
    check_budget,
    check_profile,
    word_tokens,
)
from workspace.query import goal_terms, parse_query, stem, to_fts5, to_websearch


def _ref(rid: str, collection: str = "artifacts", **kw: object) -> RecordRef:
    fields: dict[str, object] = {
        "id": rid,
        "collection": collection,
        "kind": "k",
        "sha256": "0" * 64,
        "size": 1,
        "summary": None,
        "scope": {},
        "source": None,
        "meta": {},
        "created_at": "2025-01-01T00:00:00+00:00",
        **kw,
    }
    return RecordRef(**fields)  # type: ignore[arg-type]


def _cand(rid: str, text: str, relevance: float, created_us: int = 0, **kw: object) -> Candidate:
    return Candidate(_ref(rid, **kw), created_us, text, relevance)


def _pack(cands: list[Candidate], budget: int = 1000, profile: str = "default", **kw: object):
    return assemble(
        cands,
        goal="g",
        profile_name=profile,
        profile=BUILTIN_PROFILES[profile],
        budget_tokens=budget,
        token_counter=approx_tokens,
        **kw,  # type: ignore[arg-type]
    )


def test_token_counters() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("abcd") == 1
    assert approx_tokens("abcde") == 2
    assert word_tokens("Hello, world! x=1") == 7


def test_ties_break_by_id_and_relevance_is_normalized() -> None:
    cands = [_cand("b", "same", 2.0), _cand("a", "same", 2.0), _cand("c", "x", 8.0)]
    pack = _pack(cands)
    assert [b.ref.id for b in pack.blocks] == ["c", "a", "b"]
    assert pack.blocks[0].score == pytest.approx(0.7 * 1.0 + 0.3 * 1.0)
    assert pack.blocks[1].score == pytest.approx(0.7 * 0.25 + 0.3 * 1.0)
    reordered = _pack(list(reversed(cands)))
    assert reordered.to_dict() == pack.to_dict()


def test_recency_decays_by_half_life_from_the_newest_candidate() -> None:
    day_us = 86_400 * 1_000_000
    cands = [_cand("old", "x", 0.0, created_us=0), _cand("new", "x", 0.0, created_us=day_us)]
    pack = _pack(cands)
    scores = {b.ref.id: b.score for b in pack.blocks}
    assert scores["new"] == pytest.approx(0.3)
    assert scores["old"] == pytest.approx(0.15)
    assert all(b.reason == "recent" for b in pack.blocks)


def test_budget_is_filled_greedily_and_exactly() -> None:
    cands = [
        _cand("a", "x" * 40, 3.0),  # 10 tokens
        _cand("b", "x" * 80, 2.0),  # 20 tokens, does not fit after a
        _cand("c", "x" * 40, 1.0),  # 10 tokens, fits exactly
    ]
    pack = _pack(cands, budget=20)
    assert [b.ref.id for b in pack.blocks] == ["a", "c"]
    assert pack.used_tokens == 20
    assert [(o.ref.id, o.reason, o.tokens) for o in pack.omissions] == [("b", "over_budget", 20)]


def test_min_relevance_only_applies_when_the_goal_has_terms() -> None:
    cands = [_cand("hit", "x", 1.0), _cand("miss", "y", 0.0)]
    review = _pack(cands, profile="document_review")
    assert [(o.ref.id, o.reason) for o in review.omissions] == [("miss", "low_relevance")]
    no_terms = _pack(cands, profile="document_review", has_terms=False)
    assert {b.ref.id for b in no_terms.blocks} == {"hit", "miss"}


def test_required_then_pinned_come_first_and_may_exceed_the_budget() -> None:
    cands = [
        _cand("top", "x" * 4, 9.0),
        _cand("pin", "x" * 400, 0.0, meta={"pinned": True}),
        _cand("req", "x" * 400, 0.0),
    ]
    pack = _pack(cands, budget=50, required=["req"])
    assert [(b.ref.id, b.reason) for b in pack.blocks] == [("req", "required"), ("pin", "pinned")]
    assert pack.over_budget
    assert pack.used_tokens == 200
    assert "200" in pack.warnings[0]
    assert [(o.ref.id, o.reason) for o in pack.omissions] == [("top", "over_budget")]


def test_collection_and_kind_weights_multiply() -> None:
    profile = Profile(
        collection_weights={"artifacts": 1.0, "decisions": 2.0}, kind_weights={"minor": 0.1}
    )
    cands = [
        _cand("art", "x", 1.0),
        _cand("dec", "x", 1.0, collection="decisions"),
        _cand("minor", "x", 1.0, collection="decisions", kind="minor"),
    ]
    pack = assemble(
        cands,
        goal="g",
        profile_name="p",
        profile=profile,
        budget_tokens=100,
        token_counter=approx_tokens,
    )
    assert [b.ref.id for b in pack.blocks] == ["dec", "art", "minor"]
    assert pack.blocks[0].score == pytest.approx(2.0)
    assert pack.blocks[2].score == pytest.approx(0.2)


def test_budget_and_profile_validation() -> None:
    assert check_budget({"tokens": 5}) == 5
    assert check_budget(7) == 7
    for bad in ({}, {"tokens": 1.5}, {"tokens": True}, {"tokens": 1, "x": 2}, -1, None):
        with pytest.raises(errors.InvalidInputError):
            check_budget(bad)
    for bad_profile in (
        Profile(recency_half_life_s=0),
        Profile(relevance_weight=float("inf")),
        Profile(candidate_limit=0),
        Profile(kind_weights={"k": -1}),
    ):
        with pytest.raises(errors.InvalidInputError):
            check_profile(bad_profile)
    assert (
        Profile.from_dict(BUILTIN_PROFILES["document_review"].to_dict())
        == BUILTIN_PROFILES["document_review"]
    )


@pytest.mark.parametrize(
    ("query", "groups"),
    [
        ("red apple", ((("red",),), (("apple",),))),
        ('"red apple" pie', ((("red", "apple"),), (("pie",),))),
        ("a OR b c", ((("a",), ("b",)), (("c",),))),
        ("OR a", ((("a",),),)),
        # Punctuation inside a bare token splits it into a phrase of its words.
        ('NEAR(x, 2) "*" ^y', ((("near", "x"),), (("2",),), (("y",),))),
        ("col:v", ((("col", "v"),),)),
        ("'; DROP TABLE t; --", ((("drop",),), (("table",),), (("t",),))),
        ("foo_bar", ((("foo", "bar"),),)),
    ],
)
def test_query_parsing(query: str, groups: object) -> None:
    parsed = parse_query(query)
    assert parsed is not None
    assert parsed.groups == groups


def test_rendered_queries_only_contain_quoted_words() -> None:
    parsed = parse_query('x" OR NEAR(y*) "z w" -q col:v')
    assert parsed is not None
    assert to_fts5(parsed) == '("x" OR "near y") AND ("z w") AND ("q") AND ("col v")'
    assert to_websearch(parsed) == '"x" or "near y" "z w" "q" "col v"'
    assert parse_query("   ") is None
    assert parse_query(None) is None
    empty = parse_query('"*" ()')
    assert empty is not None
    assert empty.empty
    with pytest.raises(errors.InvalidInputError):
        parse_query(5)


def test_goal_terms_and_stemming() -> None:
    assert goal_terms("Summarize the report OR the reports!") == [
        "summarize",
        "the",
        "report",
        "reports",
    ]
    assert stem("reports") == stem("report")
    assert stem("invoices") == stem("invoice")
    assert stem("running") == "run"
    assert stem("boxes") == "box"
    assert stem("class") == "class"
