"""The scheduler's durable state: what continue-as-new carries and a snapshot re-runs.

Part of :class:`~.scheduler.Scheduler` (kept apart so each module stays single-purpose);
workflow code, deterministic.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

from .scheduler_fanout import FanoutMixin


class SchedulerStateMixin(FanoutMixin):
    """Export, restore and the snapshot's pending work of the scheduler."""

    queue: deque[dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    roots: dict[str, dict[str, Any]]
    done_roots: dict[str, dict[str, Any]]
    fanouts: dict[str, dict[str, Any]]
    frames: int
    _fill: list[str]

    def export(self) -> dict[str, Any]:
        """The durable state (carried over continue-as-new; no task is in flight then)."""
        return {
            **self.export_net(),
            "queue": copy.deepcopy(list(self.queue)),
            "groups": copy.deepcopy(self.groups),
            "roots": copy.deepcopy(self.roots),
            "done_roots": copy.deepcopy(self.done_roots),
            "fanouts": copy.deepcopy(self.fanouts),
            "frames": self.frames,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`export`."""
        self.restore_net(data)
        self.queue = deque(copy.deepcopy(data.get("queue") or []))
        self.groups = copy.deepcopy(data.get("groups") or {})
        self.roots = copy.deepcopy(data.get("roots") or {})
        self.done_roots = copy.deepcopy(data.get("done_roots") or {})
        self.fanouts = copy.deepcopy(data.get("fanouts") or {})
        self.frames = int(data.get("frames") or 0)
        self._fill = [i for i, r in self.fanouts.items() if r["items"]]

    def pending_work(self, inflight: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What a snapshot taken now must run on load, in the snapshot's ``pending`` form.

        ``inflight``: the chunk runs in flight (re-run on load, at least once).
        """
        # No copies here: build_snapshot copies what it keeps (once per step, not twice).
        work = list(inflight)
        frames = [
            g["owner"]["item"]
            for g in self.groups.values()
            if (g["owner"] or {}).get("k") == "frame"
        ]
        for item in [*frames, *self.queue]:
            entry = {key: value for key, value in item.items() if key not in ("g", "top", "slot")}
            work.append({"kind": "work", "op": entry.get("op"), "item": entry})
        for instance, record in self.fanouts.items():
            if record["items"]:
                work.append({"kind": "fanout", "instance": instance, **record})
        return work
