"""What a chunk run may read of the state when it declares ``reads_state``.

The workflow sends such a chunk only the declared paths (``spec.state.select_paths``);
this guard refuses a read the run cannot answer (:class:`StateNotSentError`) instead of
answering it wrongly from the partial state. A path the run set or deleted is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import StateNotSentError
from ..spec.state import normalize_paths, path_covered, select_paths


class StateReads:
    """The paths a run was sent plus the ones it wrote; no guard without a declaration."""

    def __init__(self, declared: Sequence[str] | None, sent: dict[str, Any]) -> None:
        # Ignored when the state sent holds more than the declaration covers: the worker's
        # flow differs from the spec the execution runs, which chose what was sent.
        self.paths: list[str] | None = None
        self._written: list[str] = []
        if declared is not None:
            paths = normalize_paths(declared)
            if select_paths(sent, paths) == sent:
                self.paths = paths

    def _known(self) -> list[str]:
        return [*(self.paths or []), *self._written]

    def readable(self, key: str | None) -> bool:
        """Whether the run knows the value at ``key`` (always, without a declaration)."""
        if self.paths is None:
            return True
        return key is not None and path_covered(key, self._known())

    def listed(self, key: str) -> bool:
        """Whether a top-level key was sent or written (what ``data.state`` iterates)."""
        if self.paths is None:
            return True
        return any(path == key or path.startswith(key + ".") for path in self._known())

    def check(self, key: str | None, *, flow: str, chunk: str) -> None:
        """Raise :class:`StateNotSentError` for a read the run cannot answer."""
        if self.readable(key):
            return
        reads = list(self.paths or [])
        if key is None:
            message = (
                f"Chunk '{chunk}' of flow '{flow}' read the whole state, but it declares "
                f"reads_state={reads}, so only those keys were sent to it. Read single keys, "
                f"or drop reads_state of chunk '{chunk}' to send the whole state."
            )
        else:
            message = (
                f"Chunk '{chunk}' of flow '{flow}' read state key '{key}', which was not sent "
                f"to it: it declares reads_state={reads}. Add '{key}' to reads_state of chunk "
                f"'{chunk}', or drop reads_state to send the whole state."
            )
        raise StateNotSentError(
            message, flow_name=flow, chunk_name=chunk, key=key, reads_state=reads
        )

    def wrote(self, op: list[Any]) -> None:
        """Note a state write: after ``set`` or ``del`` the value at its key is known.

        After an ``append`` to a path that was not sent it is not (only the workflow has
        the list).
        """
        if self.paths is not None and op[0] in ("set", "del") and not self.readable(op[1]):
            self._written.append(op[1])
