"""Definition room: re-derive the ids of an Agently ``trigger_flow/v1`` config.

Agently derives its ids from each handler's file path and line number (and ``collect`` from
random uuids). :func:`canonical_config` rewrites every id, event name and group id the way
this package's builder derives them (from structure and handler names, with
:func:`~.ids.digest`), so a converted Agently flow has the blueprint hash of the same graph
built with the builder. Pure: it reads and returns config dicts only (agently is never
imported).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from .flow_config import OPERATOR_KINDS
from .ids import digest
from .sub_flow_bindings import compile_spec

_UUID_HEX = re.compile(r"[0-9a-f]{32}")


def canonical_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return an Agently ``trigger_flow/v1`` config with this package's ids.

    Every id, event name and group id is re-derived from structure and handler names the
    way :class:`TriggerFlow`'s builder derives them, chunks after a ``case`` listen to the
    case's route signal (the interpreter routes there directly), sub-flow capture/write-back
    use the flat ``{"target.path": "source.path"}`` form, and handler refs keep names only.
    """
    return _Canonicalizer(config).run()


class _Canonicalizer:
    """Maps the old (Agently) id tokens of one flow config to this package's ids.

    A token is an id fragment that event names, operator ids and group ids embed: a chunk
    id, a batch / for_each / match / case / when / sub-flow digest, a collect uuid. Each new
    token is computed on demand from the operator that defines it (its renamed listen
    signals, its names), memoised; a dependency cycle keeps the old token.
    """

    # Operator kinds whose name embeds a group or operator id ("batch:<id>"); the other
    # kinds are named by the user (chunk, collect, sub-flow, intervention point, result).
    _NAMED_BY_ID = OPERATOR_KINDS - {
        "chunk",
        "collect_branch",
        "sub_flow",
        "intervention_point",
        "result_sink",
    }

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.ops: list[dict[str, Any]] = [copy.deepcopy(dict(op)) for op in config["operators"]]
        self.producers: dict[str, dict[str, Any]] = {}
        self.branch_events: dict[str, str] = {}
        self.openers: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, tuple[str, dict[str, Any], Any]] = {}
        self.new: dict[str, str] = {}
        self.busy: set[str] = set()
        for op in self.ops:
            for signal in op.get("emit_signals") or []:
                self.producers.setdefault(signal["trigger_event"], op)
            self._register(op)
        ordered = sorted(self.tokens, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(t) for t in ordered)) if ordered else None

    def _register(self, op: dict[str, Any]) -> None:
        kind, op_id = op["kind"], str(op["id"])
        options: dict[str, Any] = op.get("options") or {}
        if kind == "chunk":
            self.tokens[op_id] = ("chunk", op, None)
        elif kind == "batch_fanout":
            self.tokens[str(op["group_id"])] = ("batch", op, None)
        elif kind == "for_each_split":
            self.tokens[str(op["group_id"])] = ("for_each", op, None)
            self.openers[str(op["group_id"])] = op
        elif kind == "match_route":
            self.tokens[str(op["group_id"])] = ("match", op, None)
            self.openers[str(op["group_id"])] = op
            for case in options.get("cases", []):
                self.tokens[str(case["case_id"])] = ("case", op, case)
        elif kind == "match_case":
            # Chunks after a case listen to "<route event>-Branch" in Agently's export.
            route = op["listen_signals"][0]["trigger_event"]
            for signal in op.get("emit_signals") or []:
                self.branch_events[signal["trigger_event"]] = route
        elif kind == "signal_gate" and op_id.startswith("when-"):
            self.tokens[op_id[len("when-") :]] = ("when", op, None)
        elif kind == "collect_branch":
            self.tokens.setdefault(str(options["collect_id"]), ("collect", op, None))
            branch = str(options["branch_id"])
            if _UUID_HEX.fullmatch(branch):  # Agently's default branch id is a uuid
                self.tokens[branch] = ("branch", op, None)
        elif kind == "sub_flow" and op_id.startswith("sub-flow-"):
            self.tokens[op_id[len("sub-flow-") :]] = ("sub_flow", op, None)
        elif kind in ("intervention_point", "result_sink"):
            self.tokens[op_id] = (kind, op, None)

    # ------------------------------------------------------------------ renaming
    def rename(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda found: self.token(found.group(0)), text)

    def rename_deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.rename(value)
        if isinstance(value, list):
            return [self.rename_deep(item) for item in value]
        if isinstance(value, dict):
            return {self.rename(str(k)): self.rename_deep(v) for k, v in value.items()}
        return value

    def listen(self, signal: Mapping[str, Any]) -> dict[str, Any]:
        """A renamed listen signal, role dropped, ``-Branch`` routed to its case signal."""
        event = str(signal["trigger_event"])
        event = self.rename(self.branch_events.get(event, event))
        trigger_type = str(signal["trigger_type"])
        return {
            "id": f"{trigger_type}:{event}",
            "trigger_type": trigger_type,
            "trigger_event": event,
        }

    def listens(self, op: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [self.listen(signal) for signal in op.get("listen_signals") or []]

    def group(self, group_id: Any) -> Any:
        return self.token(str(group_id)) if group_id is not None else None

    def token(self, old: str) -> str:
        if old in self.new:
            return self.new[old]
        if old not in self.tokens or old in self.busy:
            return old
        self.busy.add(old)
        try:
            new = self._compute(old)
        finally:
            self.busy.discard(old)
        self.new[old] = new
        return new

    def _compute(self, old: str) -> str:
        kind, op, case = self.tokens[old]
        options: dict[str, Any] = op.get("options") or {}
        if kind == "chunk":
            return "chunk-" + digest({"kind": "chunk", "name": _chunk_name(op)})
        if kind == "batch":
            chunk_ids = [
                self.token(s["trigger_event"].split("-Input-", 1)[1])
                for s in op.get("emit_signals") or []
                if "-Input-" in s["trigger_event"]
            ]
            return digest(
                {
                    "kind": "batch",
                    "listen_signals": self.listens(op),
                    "chunk_ids": chunk_ids,
                    "concurrency": options.get("concurrency"),
                    "parent_group_id": self.group(op.get("parent_group_id")),
                }
            )
        if kind == "for_each":
            return digest(
                {
                    "kind": "for_each",
                    "listen_signals": self.listens(op),
                    "concurrency": options.get("concurrency"),
                    "parent_group_id": self.group(op.get("parent_group_id")),
                }
            )
        if kind == "match":
            return digest(
                {
                    "kind": "match",
                    "mode": options.get("mode", "hit_first"),
                    "listen_signals": self.listens(op),
                    "parent_group_id": self.group(op.get("parent_group_id")),
                }
            )
        if kind == "case":
            ref = case.get("condition_ref")
            return digest(
                {
                    "kind": "match_case",
                    "match_id": self.token(str(op["group_id"])),
                    "condition_ref": {"kind": "registered", "name": ref.get("name")}
                    if ref
                    else None,
                    "condition_value": None if ref else case.get("condition_value"),
                }
            )
        if kind == "when":
            return digest(
                {
                    "kind": "when",
                    "mode": options.get("mode", "and"),
                    "signals": sorted(signal["id"] for signal in self.listens(op)),
                }
            )
        if kind == "collect":
            return digest(
                {"kind": "collect", "root": self.root_id(op), "name": options["collection_name"]}
            )
        if kind == "branch":
            return digest({"branch": [signal["id"] for signal in self.listens(op)]}, 12)
        if kind == "sub_flow":
            return digest(
                {
                    "kind": "sub_flow",
                    "name": op.get("name") or options.get("sub_flow_name"),
                    "flow": options.get("sub_flow_name"),
                    "listen_signals": self.listens(op),
                    "capture": compile_spec(options.get("capture"), mode="capture"),
                    "write_back": compile_spec(options.get("write_back"), mode="write_back"),
                }
            )
        if kind == "intervention_point":
            return "intervention-point-" + digest(
                {"kind": "intervention_point", "name": op.get("name")}
            )
        # result_sink
        group_id, _ = self.process_group(op)
        return "result-" + digest(
            {
                "kind": "result_sink",
                "listen_signals": self.listens(op),
                "group_id": self.group(group_id),
            }
        )

    # ------------------------------------------------------- structure lookups
    def root_id(self, op: Mapping[str, Any]) -> str:
        """The signal id of the root chain ``op`` hangs off (START or a ``when``)."""
        signals = op.get("listen_signals") or []
        if not signals:
            return "event:START"
        signal: Mapping[str, Any] = signals[0]
        seen: set[int] = set()
        while True:
            event = str(signal["trigger_event"])
            event = self.branch_events.get(event, event)
            producer = self.producers.get(event)
            if (
                signal["trigger_type"] != "event"
                or producer is None
                or producer["kind"] == "signal_gate"
                or id(producer) in seen
                or not producer.get("listen_signals")
            ):
                return self.listen(signal)["id"]
            seen.add(id(producer))
            signal = producer["listen_signals"][0]

    def parent_of(self, group_id: Any) -> tuple[Any, Any]:
        """The (new) group enclosing the for_each/match block ``group_id`` (an old id)."""
        if group_id is None:
            return None, None
        opener = self.openers.get(str(group_id))
        if opener is None:
            return None, None
        return self.group(opener.get("parent_group_id")), opener.get("parent_group_kind")

    def process_group(self, op: Mapping[str, Any]) -> tuple[Any, Any]:
        """The (old) group of the builder position ``op`` was attached at, and its kind."""
        if op["kind"] == "collect_branch":  # Agently records it as the parent group
            return op.get("parent_group_id"), op.get("parent_group_kind")
        signals = op.get("listen_signals") or []
        return self.signal_group(signals[0]) if signals else (None, None)

    def signal_group(self, signal: Mapping[str, Any]) -> tuple[Any, Any]:
        """The (old) group of a builder position that listens to ``signal``."""
        event = str(signal["trigger_event"])
        event = self.branch_events.get(event, event)
        producer = self.producers.get(event)
        if producer is None or producer["kind"] == "signal_gate":
            return None, None
        kind = producer["kind"]
        if (kind == "for_each_split" and event.endswith("-Send")) or kind == "match_route":
            return producer.get("group_id"), producer.get("group_kind")
        if kind in ("batch_collect", "for_each_collect", "match_collect", "collect_branch") or (
            kind == "chunk" and producer.get("group_kind") == "batch"
        ):
            # Closing a block, or a collect (Agently records its position as the parent).
            return producer.get("parent_group_id"), producer.get("parent_group_kind")
        return producer.get("group_id"), producer.get("group_kind")

    # ------------------------------------------------------------------ output
    def operator(self, op: dict[str, Any]) -> dict[str, Any]:
        kind = op["kind"]
        options: dict[str, Any] = dict(op.get("options") or {})
        options.pop("usage_groups", None)  # Agently-only bookkeeping
        sub_config = options.pop("sub_flow_config", None)
        new_options: dict[str, Any] = self.rename_deep(options)
        group_fields = {
            "group_id": self.group(op.get("group_id")),
            "group_kind": op.get("group_kind"),
            "parent_group_id": self.group(op.get("parent_group_id")),
            "parent_group_kind": op.get("parent_group_kind"),
        }
        listen = (
            [dict(self.rename_deep(s), id=self.rename(s["id"])) for s in op["listen_signals"]]
            if kind == "match_case"
            else self.listens(op)
        )
        for signal in listen:
            signal.pop("role", None)
        handler_ref = None
        condition_ref = None
        name = op.get("name")
        if kind == "chunk":
            name = _chunk_name(op)
            handler_ref = {"kind": "registered", "name": name}
            new_options = {}
            signals = op.get("listen_signals") or []
            if (
                len(signals) > 1
                and op.get("group_id") is not None
                and self.signal_group(signals[0])[0] != op.get("group_id")
            ):
                # A chunk wired in several places: Agently groups it by the first grouped
                # place, this package's builder by the first place (here: ungrouped).
                group_fields = dict.fromkeys(group_fields)
        elif kind in self._NAMED_BY_ID and isinstance(name, str):
            name = self.rename(name)
        if kind == "match_case" and op.get("condition_ref"):
            condition_ref = {"kind": "registered", "name": op["condition_ref"].get("name")}
        elif kind == "match_route":
            new_options.setdefault("else_signal", None)
            for case in new_options.get("cases", []):
                ref = case.get("condition_ref")
                case["condition_ref"] = (
                    {"kind": "registered", "name": ref.get("name")} if ref else None
                )
        elif kind == "for_each_collect":
            new_options = {"for_each_id": self.group(op.get("group_id"))}
        elif kind == "match_collect":
            new_options = {"match_id": self.group(op.get("group_id"))}
        elif kind in ("collect_branch", "result_sink"):
            # Grouped like the builder position they hang off (this package's builder).
            group_id, group_kind = self.process_group(op)
            parent_id, parent_kind = self.parent_of(group_id)
            group_fields = {
                "group_id": self.group(group_id),
                "group_kind": group_kind if group_id is not None else None,
                "parent_group_id": parent_id,
                "parent_group_kind": parent_kind,
            }
        elif kind == "sub_flow":
            new_options["capture"] = compile_spec(options.get("capture"), mode="capture")
            new_options["write_back"] = compile_spec(options.get("write_back"), mode="write_back")
            if sub_config is not None:
                new_options["sub_flow_config"] = canonical_config(sub_config)
        return {
            "id": self.rename(str(op["id"])),
            "kind": kind,
            "name": name,
            "listen_signals": listen,
            "emit_signals": [self.rename_deep(s) for s in op.get("emit_signals") or []],
            "options": new_options,
            "handler_ref": handler_ref,
            "condition_ref": condition_ref,
            **group_fields,
        }

    def run(self) -> dict[str, Any]:
        operators = [self.operator(op) for op in self.ops if not unattached(op)]
        return {
            "version": self.config.get("version"),
            "name": self.config.get("name"),
            "meta": copy.deepcopy(dict(self.config.get("meta") or {})),
            "contract": {},
            "operators": operators,
        }


def unattached(op: Mapping[str, Any]) -> bool:
    """A chunk created (``flow.chunk(fn)``) but never wired: Agently exports it, it never runs.

    This package's builder adds a chunk operator only when the chunk is wired, so dropping
    it keeps the blueprint hash equal to the same graph built here.
    """
    return op.get("kind") == "chunk" and not op.get("listen_signals")


def _chunk_name(op: Mapping[str, Any]) -> str:
    """The chunk's registered name, as the flow-config loader reads it."""
    return str((op.get("handler_ref") or {}).get("name") or op.get("name"))
