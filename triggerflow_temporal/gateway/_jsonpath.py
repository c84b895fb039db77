"""A tiny JSONPath subset for mapping webhook payloads to messages (gateway side, pure).

Grammar: ``$`` followed by any number of ``.name`` and ``[index]`` steps, e.g.
``$.data.invoice_id`` or ``$.items[0].id``. Names are letters, digits, ``_`` and ``-``;
indexes are non-negative integers. Nothing else (no wildcards, filters, quotes or slices):
a correlation key is one value, and a path that names more is a configuration error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d{1,9})\]")

_MISSING: Any = object()


class JSONPathError(ValueError):
    """A path outside the supported subset; the message quotes it and the grammar."""


@dataclass(frozen=True)
class JSONPath:
    """A compiled path: ``str`` keys and ``int`` indexes from the root.

    Attributes:
        text: The path as written.
        steps: The keys and indexes to follow.
    """

    text: str
    steps: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> JSONPath:
        """Compile ``text``.

        Raises:
            JSONPathError: ``text`` is not ``$`` followed by ``.name`` / ``[index]`` steps.
        """
        if not isinstance(text, str) or not text.startswith("$"):
            raise JSONPathError(
                f"JSONPath {text!r} must start with '$', e.g. '$.data.invoice_id' or "
                "'$.items[0].id'."
            )
        steps: list[str | int] = []
        position = 1
        while position < len(text):
            match = _STEP.match(text, position)
            if match is None:
                raise JSONPathError(
                    f"JSONPath {text!r} is not supported at {text[position:]!r}: only '.name' "
                    "and '[index]' steps are (names: letters, digits, '_', '-'; no wildcards, "
                    "filters or quotes)."
                )
            name, index = match.groups()
            steps.append(name if name is not None else int(index))
            position = match.end()
        return cls(text=text, steps=tuple(steps))

    def find(self, document: Any, default: Any = _MISSING) -> Any:
        """The value at this path in ``document``.

        Args:
            document: Parsed JSON.
            default: Returned when the path does not exist; without it, ``KeyError``.

        Raises:
            KeyError: The path does not exist and no default was given; the message names
                the first step that is missing.
        """
        node = document
        for depth, step in enumerate(self.steps):
            if isinstance(step, int):
                found = node[step] if isinstance(node, list) and step < len(node) else _MISSING
            else:
                found = node.get(step, _MISSING) if isinstance(node, dict) else _MISSING
            if found is _MISSING:
                if default is not _MISSING:
                    return default
                where = "$" + "".join(
                    f"[{s}]" if isinstance(s, int) else f".{s}" for s in self.steps[: depth + 1]
                )
                raise KeyError(f"{where} is not in the payload (path {self.text})")
            node = found
        return node
