"""The search query language and its translation to each full-text engine (contract layer).

User text is never handed to a full-text engine as syntax. It is parsed here into words
(alphanumeric runs), quoted phrases and ``OR``, then re-rendered with every word quoted, so
characters such as ``"``, ``*``, ``NEAR(``, ``:`` or ``'`` can neither raise a syntax error nor
change the query's meaning.

Semantics, identical on every backend: words are ANDed, ``"two words"`` is a phrase, ``a OR b``
matches either. Matching is case-insensitive with light English stemming.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from workspace.errors import InvalidInputError

MAX_QUERY_CHARS = 2000
MAX_TERMS = 64

_WORD = re.compile(r"[^\W_]+")
_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')

Phrase = tuple[str, ...]


@dataclass(frozen=True)
class ParsedQuery:
    """A query as an AND of groups, each group an OR of phrases (a phrase is 1+ words)."""

    groups: tuple[tuple[Phrase, ...], ...]

    @property
    def empty(self) -> bool:
        """True when the query had no searchable words (only punctuation)."""
        return not self.groups


def words(text: str) -> list[str]:
    """Split text into lowercase alphanumeric words.

    Args:
        text: Any text.

    Returns:
        The words.
    """
    return [w.lower() for w in _WORD.findall(text)]


def parse_query(query: object) -> ParsedQuery | None:
    """Parse a user search query.

    Args:
        query: The query text, or None.

    Returns:
        None for a missing or blank query, else the parsed query (possibly ``empty``).

    Raises:
        InvalidInputError: If the query is not a string or is too long.
    """
    if query is None:
        return None
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string or None, got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInputError(f"query is longer than {MAX_QUERY_CHARS} characters")
    if not query.strip():
        return None
    groups: list[list[Phrase]] = []
    pending_or = False
    count = 0
    for match in _TOKEN.finditer(query):
        quoted, bare = match.group(1), match.group(2)
        if bare is not None and bare.lower() == "or":
            pending_or = bool(groups)
            continue
        phrase = tuple(words(quoted if quoted is not None else bare or ""))
        if not phrase:
            continue
        count += len(phrase)
        if count > MAX_TERMS:
            break
        if pending_or and groups:
            groups[-1].append(phrase)
        else:
            groups.append([phrase])
        pending_or = False
    return ParsedQuery(tuple(tuple(g) for g in groups))


def goal_terms(goal: str) -> list[str]:
    """Extract the distinct words of a context goal (matched with OR semantics).

    Args:
        goal: The goal text.

    Returns:
        Up to 64 distinct words in order of appearance.
    """
    seen: dict[str, None] = {}
    for word in words(goal):
        if word != "or":
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def _quote(phrase: Phrase) -> str:
    return '"' + " ".join(phrase) + '"'


def to_fts5(query: ParsedQuery) -> str:
    """Render for SQLite FTS5 ``MATCH``.

    Args:
        query: A non-empty parsed query.

    Returns:
        The FTS5 expression.
    """
    return " AND ".join("(" + " OR ".join(_quote(p) for p in group) + ")" for group in query.groups)


def to_websearch(query: ParsedQuery) -> str:
    """Render for PostgreSQL ``websearch_to_tsquery``.

    Args:
        query: A non-empty parsed query.

    Returns:
        The websearch text.
    """
    return " ".join(" or ".join(_quote(p) for p in group) for group in query.groups)


def any_query(terms: Sequence[str]) -> ParsedQuery:
    """Build a query matching any of the terms.

    Args:
        terms: Words.

    Returns:
        A one-group query.
    """
    return ParsedQuery((tuple((t,) for t in terms),)) if terms else ParsedQuery(())


def stem(word: str) -> str:
    """Very light English stemming for the memory backend (a rough Porter subset).

    Args:
        word: A lowercase word.

    Returns:
        The stem.
    """
    w = word
    if len(w) <= 3:
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "xes", "zes", "ches", "shes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            if w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def stems(text: str) -> list[str]:
    """Tokenize and stem text the way the memory backend indexes it.

    Args:
        text: Any text.

    Returns:
        Stemmed words in order.
    """
    return [stem(w) for w in words(text)]


def _count(tokens: Sequence[str], phrase: Phrase) -> int:
    target = [stem(w) for w in phrase]
    n = len(target)
    if n == 1:
        return tokens.count(target[0])
    return sum(1 for i in range(len(tokens) - n + 1) if list(tokens[i : i + n]) == target)


def memory_score(
    query: ParsedQuery, kind: Sequence[str], summary: Sequence[str], text: Sequence[str]
) -> float:
    """Score a document against a query in the memory backend.

    Args:
        query: A non-empty parsed query.
        kind: Stemmed tokens of the kind.
        summary: Stemmed tokens of the summary.
        text: Stemmed tokens of the content.

    Returns:
        0.0 when the document does not match, else a positive relevance score (summary hits
        weigh more; long documents are damped).
    """
    total = 0.0
    for group in query.groups:
        hits = 0.0
        for phrase in group:
            hits += 0.5 * _count(kind, phrase) + 2.0 * _count(summary, phrase)
            hits += _count(text, phrase)
        if hits <= 0:
            return 0.0
        total += math.log1p(hits)
    return total / (1.0 + math.log1p(len(text) / 100.0))
