"""Recorded native outputs (agently 4.1.4.10) and the small helpers the suite shares.

``expected.json`` is copied from shared/conformance/agently-native/EXPECTED.md (keyed by
script file name), so the suite does not depend on that folder at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPECTED_PATH = Path(__file__).with_name("expected.json")


def load_expected(script: str) -> dict[str, Any]:
    """Return the recorded native output of ``script`` (e.g. ``"01_sequence_chain.py"``)."""
    with EXPECTED_PATH.open(encoding="utf-8") as file:
        return json.load(file)[script]


def normalize(obj: Any) -> Any:
    """Round-trip through JSON as the native scripts print (tuples become lists)."""
    return json.loads(json.dumps(obj, sort_keys=True))


@dataclass
class ReplayCase:
    """One execution of a conformance flow, run by test_replay and tests/histories/record.py.

    The execution starts with ``value`` (auto_close=False), then receives ``emits`` (external
    events) in order, and is closed explicitly; ``hidden=True`` runs it through the
    hidden-execution path of ``flow.async_start`` (auto close timer) instead.
    """

    flow: Any
    value: Any = None
    emits: list[tuple[str, Any]] = field(default_factory=lambda: [])
    hidden: bool = False
    label: str = ""
    raises: type[BaseException] | None = None

    @property
    def name(self) -> str:
        """A readable id: the flow name plus the label."""
        return f"{self.flow.name}{'-' + self.label if self.label else ''}"
