"""Definition room: structural ids and signal records.

Every operator id, event name and group id of a flow is derived here from structure and
handler *names* only (never from file paths, line numbers or uuids), so a definition built
twice, or moved to another file, is the same graph with the same blueprint hash. The
Agently importer re-derives Agently's ids with the same :func:`digest`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Literal

TriggerType = Literal["event", "runtime_data", "flow_data"]


def digest(identity: Any, length: int = 16) -> str:
    """Return a short, stable hex digest of a JSON-ready identity.

    Args:
        identity: What makes the id unique (kind, names, listen signals, ...).
        length: How many hex digits to keep.

    Returns:
        The first ``length`` hex digits of the sha1 of the canonical JSON text.
    """
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def make_signal(trigger_type: str, trigger_event: str, role: str | None = None) -> dict[str, Any]:
    """Return a definition signal record in Agently's flow-config shape.

    Args:
        trigger_type: ``"event"``, ``"runtime_data"`` or ``"flow_data"``.
        trigger_event: The event name (or state key).
        role: ``"continuation"`` or ``"declared_emit"`` on emitted signals.
    """
    signal: dict[str, Any] = {
        "id": f"{trigger_type}:{trigger_event}",
        "trigger_type": trigger_type,
        "trigger_event": trigger_event,
    }
    if role is not None:
        signal["role"] = role
    return signal


def merge_signals(target: list[dict[str, Any]], extra: list[dict[str, Any]]) -> None:
    """Append to ``target`` (in place) the signals of ``extra`` it does not have yet, by id."""
    seen = {signal["id"] for signal in target}
    for signal in extra:
        if signal["id"] not in seen:
            target.append(copy.deepcopy(signal))
            seen.add(signal["id"])
