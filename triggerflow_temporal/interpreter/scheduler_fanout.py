"""for_each fan-outs of the runtime-version-3 scheduler (workflow side, deterministic).

A fan-out is a record of the items not started yet and how many run; items start as
concurrency permits, each as its own group whose completion is counted. The record is
part of the durable state, so a fan-out goes on over continue-as-new.
"""

from __future__ import annotations

from typing import Any

from .signal_net import DEFAULT_FANOUT_CONCURRENCY, SignalNet


class FanoutMixin(SignalNet):
    """Starting and counting for_each items (part of :class:`~.scheduler.Scheduler`)."""

    # Set by Scheduler.__init__ (and restored from the carry).
    fanouts: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    _fill: list[str]

    # Defined by the Scheduler.
    def _emit(self, item: dict[str, Any], emissions: list[Any]) -> None:
        raise NotImplementedError

    def _push_front(self, items: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _fanout(self, item: dict[str, Any], op: dict[str, Any]) -> None:
        """Start a batch or for_each: a record of the items, started ``limit`` at a time.

        The record counts as pending work of the item's group until its last item's chain
        is done; an item is taken out of it when it starts, so the record holds exactly
        the items no run has started (continue-as-new carries them).
        """
        signal = item["s"]
        limit = op["options"].get("concurrency") or DEFAULT_FANOUT_CONCURRENCY
        if op["kind"] == "batch_fanout":
            marks = [*signal["layer_marks"], self.next_id("m")]
            branches = [s["trigger_event"] for s in op["emit_signals"]]
            record = {
                "op": op["id"],
                "signal": signal,
                "marks": marks,
                "items": [[None, event] for event in branches],
                "concurrency": limit,
            }
        else:
            end = op["emit_signals"][1]["trigger_event"]
            value = signal["value"]
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if isinstance(value, (list, tuple)) and not values:
                self._emit(item, [(end, [], signal["layer_marks"])])
                return
            instance = self.next_id("m")
            item_marks = [self.next_id("m") for _ in values]
            self.joins["for_each_results"][instance] = {
                "operator": op["id"],
                "order": item_marks,
                "values": {},
            }
            record = {
                "op": op["id"],
                # The items travel in the record; the split's value (the whole list) would
                # double the carry.
                "signal": {**signal, "value": None},
                "items": [[v, mark] for v, mark in zip(values, item_marks, strict=True)],
                "concurrency": limit,
                "instance": instance,
            }
        instance = record.get("instance") or record["marks"][-1]
        record["g"] = item["g"]
        record["running"] = 0
        self.fanouts[instance] = record
        self.groups[item["g"]]["n"] += 1
        self._fill.append(instance)

    def _start_items(self, instance: str) -> None:
        record = self.fanouts.get(instance)
        if record is None or record["g"] not in self.groups:
            return
        op = self.ops[record["op"]]
        signal = record["signal"]
        started: list[dict[str, Any]] = []
        while record["items"] and record["running"] < record["concurrency"]:
            value, mark = record["items"].pop(0)
            if "marks" in record:  # a batch branch: ``mark`` is its event
                event, marks, value = mark, record["marks"], signal["value"]
            else:
                event = op["emit_signals"][0]["trigger_event"]
                marks = [*signal["layer_marks"], instance, mark]
            group = self.next_id("g-")
            self.groups[group] = {
                "n": 0,
                "root": self.groups[record["g"]]["root"],
                "owner": {"k": "fanout", "fo": instance},
            }
            record["running"] += 1
            started.append(
                {
                    "k": "sig",
                    "s": self.child_signal(signal, event, value, marks, source="operator"),
                    "g": group,
                }
            )
        self._push_front(started)
