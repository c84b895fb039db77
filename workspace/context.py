"""Context packing shared by every backend: profiles, token counting, ranking and budgeting.

Backends only supply candidate records with a raw full-text rank (see :class:`Candidate`); the
ranking formula, tie-breaks and the packing under the budget live here, so a pack depends only
on the data and the profile, never on the backend. Contract layer: no backend is imported here.

Token counting is pluggable: pass any ``Callable[[str], int]`` as ``token_counter`` to a backend.
The default, :func:`approx_tokens`, is ``ceil(len(text) / 4)``, a dependency-free estimate close
to BPE tokenizers for English prose; :func:`word_tokens` counts words and punctuation marks and is
closer for code and non-English text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workspace.errors import InvalidInputError, UnknownProfileError
from workspace.types import ContextBlock, ContextPack, Omission, Profile, RecordRef
from workspace.validation import COLLECTIONS

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_BUDGET",
    "Candidate",
    "TokenCounter",
    "approx_tokens",
    "assemble",
    "check_budget",
    "check_profile",
    "word_tokens",
]

TokenCounter = Callable[[str], int]

# The budget of build_context when none is given.
DEFAULT_BUDGET: dict[str, int] = {"tokens": 4000}

_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """Estimate tokens as one per four characters (rounded up).

    Args:
        text: The text.

    Returns:
        The estimate.
    """
    return (len(text) + 3) // 4


def word_tokens(text: str) -> int:
    """Count words and punctuation marks.

    Args:
        text: The text.

    Returns:
        The count.
    """
    return len(_WORD_OR_PUNCT.findall(text))


BUILTIN_PROFILES: dict[str, Profile] = {
    "default": Profile(
        description="Balanced: relevance first, then recency; all collections but checkpoints."
    ),
    "document_review": Profile(
        collection_weights={"artifacts": 1.0, "decisions": 0.8, "observations": 0.4},
        relevance_weight=0.85,
        recency_weight=0.15,
        recency_half_life_s=7 * 86400.0,
        min_relevance=0.1,
        description="Reviewing documents: artifacts first, relevance dominates, drop non-matches.",
    ),
}


def _finite_nonneg(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"profile {what} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"profile {what} must be finite and >= 0, got {value!r}")
    return float(value)


def check_profile(profile: object) -> Profile:
    """Validate a profile.

    Args:
        profile: The profile.

    Returns:
        The profile.

    Raises:
        InvalidInputError: If a weight is negative or not finite, a collection is unknown, or the
            candidate limit is outside ``[1, 5000]``.
    """
    if not isinstance(profile, Profile):
        raise InvalidInputError(f"expected a Profile, got {type(profile).__name__}")
    if not isinstance(profile.collection_weights, Mapping):
        raise InvalidInputError("profile collection_weights must be a dict")
    for name, weight in profile.collection_weights.items():
        if name not in COLLECTIONS:
            raise InvalidInputError(
                f"profile weights unknown collection {name!r}; use one of: {', '.join(COLLECTIONS)}"
            )
        _finite_nonneg(weight, f"weight of {name!r}")
    if not isinstance(profile.kind_weights, Mapping):
        raise InvalidInputError("profile kind_weights must be a dict")
    for name, weight in profile.kind_weights.items():
        _finite_nonneg(weight, f"weight of kind {name!r}")
    _finite_nonneg(profile.relevance_weight, "relevance_weight")
    _finite_nonneg(profile.recency_weight, "recency_weight")
    _finite_nonneg(profile.min_relevance, "min_relevance")
    if _finite_nonneg(profile.recency_half_life_s, "recency_half_life_s") <= 0:
        raise InvalidInputError("profile recency_half_life_s must be > 0")
    limit = profile.candidate_limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 5000:
        raise InvalidInputError("profile candidate_limit must be an integer in [1, 5000]")
    return profile


def resolve_profile(registry: Mapping[str, Profile], profile: object) -> tuple[str, Profile]:
    """Look a profile up by name, or accept a ``Profile`` object.

    Args:
        registry: Registered profiles by name.
        profile: A name or a ``Profile``.

    Returns:
        ``(name, profile)``; an inline profile is named ``custom``.

    Raises:
        UnknownProfileError: For an unregistered name.
        InvalidInputError: For other types.
    """
    if isinstance(profile, Profile):
        return "custom", check_profile(profile)
    if not isinstance(profile, str):
        raise InvalidInputError(
            f"profile must be a registered name or a Profile, got {type(profile).__name__}"
        )
    found = registry.get(profile)
    if found is None:
        raise UnknownProfileError(
            f"unknown profile {profile!r}; registered: {', '.join(sorted(registry))}; "
            "add one with register_profile(name, Profile(...))"
        )
    return profile, found


def check_budget(budget: object) -> int:
    """Validate a budget.

    Args:
        budget: ``{"tokens": N}`` or a bare int N.

    Returns:
        N.

    Raises:
        InvalidInputError: Unless N is a non-negative int and no other key is present.
    """
    tokens: object = budget
    if isinstance(budget, Mapping):
        extra = set(budget) - {"tokens"}
        if extra or "tokens" not in budget:
            raise InvalidInputError(
                f'budget must be {{"tokens": N}}; got keys {sorted(map(str, budget))}'
            )
        tokens = budget["tokens"]
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise InvalidInputError(f"budget tokens must be a non-negative integer, got {tokens!r}")
    return tokens


def weighted_collections(profile: Profile) -> list[str]:
    """Return the collections a profile gives a positive weight, in canonical order.

    Args:
        profile: The profile.

    Returns:
        Collection names.
    """
    return [c for c in COLLECTIONS if profile.collection_weights.get(c, 0.0) > 0]


@dataclass(frozen=True)
class Candidate:
    """A record a backend proposes for a context.

    Attributes:
        ref: The record.
        created_us: Creation time in microseconds (for recency).
        text: The text it would contribute, or None for binary content.
        relevance: Raw full-text rank, higher is better; 0 when it does not match the goal.
    """

    ref: RecordRef
    created_us: int
    text: str | None
    relevance: float


def assemble(
    candidates: Sequence[Candidate],
    *,
    goal: str,
    profile_name: str,
    profile: Profile,
    budget_tokens: int,
    token_counter: TokenCounter,
    required: Sequence[str] = (),
    has_terms: bool = True,
) -> ContextPack:
    """Rank candidates and pack them under the budget.

    Required records (in the given order), then pinned records, are always included in full,
    even past the budget (``over_budget`` and a warning report it). The rest go in by descending
    score, ties broken by id; one that does not fit is replaced by its summary when the profile
    allows and the summary fits, else omitted as ``over_budget``.

    Args:
        candidates: Candidates from the backend (duplicates are ignored).
        goal: The goal text.
        profile_name: Name reported in the pack.
        profile: The weights.
        budget_tokens: The token budget.
        token_counter: Counts tokens of a text.
        required: Ids that must be included.
        has_terms: Whether the goal had search terms (enables ``min_relevance``).

    Returns:
        The pack.
    """
    unique: dict[str, Candidate] = {}
    for cand in candidates:
        unique.setdefault(cand.ref.id, cand)
    pool = list(unique.values())
    max_rel = max((c.relevance for c in pool), default=0.0)
    newest = max((c.created_us for c in pool), default=0)
    half_life_us = profile.recency_half_life_s * 1_000_000

    def rel_of(cand: Candidate) -> float:
        return cand.relevance / max_rel if max_rel > 0 else 0.0

    def score_of(cand: Candidate) -> float:
        weight = profile.collection_weights.get(cand.ref.collection, 0.0)
        weight *= profile.kind_weights.get(cand.ref.kind, 1.0)
        recency = 0.5 ** ((newest - cand.created_us) / half_life_us)
        raw = weight * (profile.relevance_weight * rel_of(cand) + profile.recency_weight * recency)
        # Rounded so that float noise between backends cannot flip an otherwise equal order.
        return round(raw, 9)

    required_ids = list(dict.fromkeys(required))
    forced: list[tuple[Candidate, str]] = [
        (unique[rid], "required") for rid in required_ids if rid in unique
    ]
    forced_ids = {c.ref.id for c, _ in forced}
    pinned = [c for c in pool if c.ref.meta.get("pinned") is True and c.ref.id not in forced_ids]
    pinned.sort(key=lambda c: (-score_of(c), c.ref.id))
    forced += [(c, "pinned") for c in pinned]
    forced_ids |= {c.ref.id for c in pinned}

    blocks: list[ContextBlock] = []
    omissions: list[Omission] = []
    warnings: list[str] = []
    used = 0
    for cand, reason in forced:
        content, form = _forced_content(cand)
        tokens = token_counter(content)
        used += tokens
        blocks.append(ContextBlock(cand.ref, content, reason, tokens, 0.0, form))
    over_budget = used > budget_tokens
    if over_budget:
        warnings.append(
            f"required/pinned records use {used} tokens, over the budget of {budget_tokens}; "
            "they were included anyway"
        )

    ranked = [c for c in pool if c.ref.id not in forced_ids]
    ranked.sort(key=lambda c: (-score_of(c), c.ref.id))
    for cand in ranked:
        score = score_of(cand)
        if has_terms and max_rel > 0 and rel_of(cand) < profile.min_relevance:
            omissions.append(Omission(cand.ref, "low_relevance", 0, score))
            continue
        reason = "relevant" if cand.relevance > 0 else "recent"
        summary = cand.ref.summary if profile.use_summaries else None
        if cand.text is not None:
            tokens = token_counter(cand.text)
            if used + tokens <= budget_tokens:
                used += tokens
                blocks.append(ContextBlock(cand.ref, cand.text, reason, tokens, score))
                continue
        else:
            tokens = 0
        if summary:
            summary_tokens = token_counter(summary)
            if used + summary_tokens <= budget_tokens:
                used += summary_tokens
                blocks.append(
                    ContextBlock(cand.ref, summary, reason, summary_tokens, score, "summary")
                )
                continue
        why = "binary_content" if cand.text is None else "over_budget"
        omissions.append(Omission(cand.ref, why, tokens, score))
    return ContextPack(
        goal=goal,
        profile=profile_name,
        budget={"tokens": budget_tokens},
        used_tokens=used,
        blocks=blocks,
        omissions=omissions,
        over_budget=over_budget,
        warnings=warnings,
        considered=len(pool),
    )


def _forced_content(cand: Candidate) -> tuple[str, Any]:
    if cand.text is not None:
        return cand.text, "full"
    if cand.ref.summary:
        return cand.ref.summary, "summary"
    return f"[binary record {cand.ref.id}: {cand.ref.size} bytes, kind {cand.ref.kind}]", "full"
