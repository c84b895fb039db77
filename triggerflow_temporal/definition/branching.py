"""Definition room: the block operators of a process (``for_each`` and ``match``/``if``).

A block opens a body (a new :class:`~.position.Block`) whose chain the matching ``end_*``
closes; its operators share a group id derived from where the block was opened.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any, Literal

from .._errors import FlowDefinitionError
from .ids import digest, make_signal, merge_signals
from .position import Block, ProcessBase, check_concurrency

if TYPE_CHECKING:
    from typing_extensions import Self


class BranchingProcess(ProcessBase):
    """Process operators that open and close blocks: ``for_each`` and ``match``/``if``."""

    # ------------------------------------------------------------------ for_each
    def for_each(self, *, concurrency: int | None = None) -> Self:
        """Run the following chain once per item of a (non-``str``) sequence input."""
        check_concurrency("for_each", concurrency)
        for_each_id = digest(
            {
                "kind": "for_each",
                "listen_signals": self._signals,
                "concurrency": concurrency,
                "parent_group_id": self._group_id,
            }
        )
        send = f"ForEach-{for_each_id}-Send"
        end = f"ForEach-{for_each_id}-End"
        self._graph.add_operator(
            id=f"for_each-split-{for_each_id}",
            kind="for_each_split",
            name=f"for_each:{for_each_id}",
            listen_signals=self._signals,
            emit_signals=[
                make_signal("event", send, role="continuation"),
                make_signal("event", end, role="continuation"),
            ],
            options={"concurrency": concurrency},
            group_id=for_each_id,
            group_kind="for_each",
            parent_group_id=self._group_id,
            parent_group_kind=self._group_kind,
        )
        block = Block(
            outer=self._block,
            data={
                "for_each_id": for_each_id,
                "outer_group_id": self._group_id,
                "outer_group_kind": self._group_kind,
            },
        )
        return self._new(send, block=block, group_id=for_each_id, group_kind="for_each")

    def end_for_each(self) -> Self:
        """Close the ``for_each`` body; the next step gets the results in input order."""
        if "for_each_id" not in self._block.data:
            raise FlowDefinitionError("Cannot use .end_for_each() without .for_each().")
        for_each_id = self._block.data["for_each_id"]
        end = f"ForEach-{for_each_id}-End"
        outer_id = self._block.data.get("outer_group_id")
        outer_kind = self._block.data.get("outer_group_kind")
        self._graph.add_operator(
            id=f"for_each-collect-{for_each_id}",
            kind="for_each_collect",
            name=f"for_each_collect:{for_each_id}",
            listen_signals=self._signals,
            emit_signals=[make_signal("event", end, role="continuation")],
            options={"for_each_id": for_each_id},
            group_id=for_each_id,
            group_kind="for_each",
            parent_group_id=outer_id,
            parent_group_kind=outer_kind,
        )
        return self._new(
            end,
            block=self._block.outer or Block(),
            group_id=outer_id,
            group_kind=outer_kind,
        )

    # --------------------------------------------------------------------- match
    def match(self, *, mode: Literal["hit_first", "hit_all"] = "hit_first") -> Self:
        """Open a match block: add branches with ``case``/``case_else``, then ``end_match``."""
        if mode not in ("hit_first", "hit_all"):
            raise FlowDefinitionError(
                f"match(mode={mode!r}) is not supported; use 'hit_first' or 'hit_all'."
            )
        match_id = digest(
            {
                "kind": "match",
                "mode": mode,
                "listen_signals": self._signals,
                "parent_group_id": self._group_id,
            }
        )
        result_signal = make_signal("event", f"Match-{match_id}-Result", role="continuation")
        route_id = f"match-route-{match_id}"
        block = Block(
            outer=self._block,
            data={
                "match_id": match_id,
                "route_id": route_id,
                "branch_ends": [],
                "is_first_case": True,
                "has_else": False,
                "result_signal": result_signal,
                "outer_group_id": self._group_id,
                "outer_group_kind": self._group_kind,
            },
        )
        if route_id not in self._graph.operators:
            self._graph.add_operator(
                id=route_id,
                kind="match_route",
                name=f"match:{match_id}",
                listen_signals=self._signals,
                emit_signals=[result_signal],
                options={"mode": mode, "cases": [], "else_signal": None},
                group_id=match_id,
                group_kind="match",
                parent_group_id=self._group_id,
                parent_group_kind=self._group_kind,
            )
        return self._new(
            self.trigger_event,
            block=block,
            trigger_type=self.trigger_type,
            signals=self._signals,
            group_id=match_id,
            group_kind="match",
        )

    def _close_branch(self, match_id: str) -> None:
        if not self.trigger_event.startswith(f"Match-{match_id}"):
            self._block.data["branch_ends"].extend(copy.deepcopy(self._signals))

    def _add_branch(self, operator_id: str, name: str, trigger: str, **fields: Any) -> None:
        """Add the ``match_case`` operator of a branch listening to ``trigger``."""
        self._graph.add_operator(
            id=operator_id,
            kind="match_case",
            name=name,
            listen_signals=[make_signal("event", trigger)],
            emit_signals=[make_signal("event", f"{trigger}-Branch", role="continuation")],
            group_id=self._block.data["match_id"],
            group_kind="match",
            parent_group_id=self._block.data.get("outer_group_id"),
            parent_group_kind=self._block.data.get("outer_group_kind"),
            **fields,
        )

    def case(self, condition: Any) -> Self:
        """Add a branch taken when ``condition(data) is True`` or ``data.value == condition``."""
        if "match_id" not in self._block.data:
            raise FlowDefinitionError("Cannot use .case() before .match().")
        match_id = self._block.data["match_id"]
        condition_ref: dict[str, Any] | None = None
        condition_value: Any = None
        if callable(condition):
            condition_name = self._graph.name_condition(condition)
            condition_ref = {"kind": "registered", "name": condition_name}
        else:
            try:
                json.dumps(condition)
            except TypeError as error:
                raise FlowDefinitionError(
                    f"case({condition!r}): a value condition must be JSON-serialisable so the "
                    "flow can be exported and compared in the workflow; use a named condition "
                    "function instead."
                ) from error
            condition_value = condition
        case_id = digest(
            {
                "kind": "match_case",
                "match_id": match_id,
                "condition_ref": condition_ref,
                "condition_value": condition_value,
            }
        )
        if self._block.data["is_first_case"]:
            self._block.data["is_first_case"] = False
        else:
            self._close_branch(match_id)
        case_trigger = f"Match-{match_id}-Case-{case_id}"
        # The route record is the live one: its cases grow as branches are added.
        route = self._graph.operators[self._block.data["route_id"]]
        case_config = {
            "case_id": case_id,
            "route_signal": make_signal("event", case_trigger),
            "condition_ref": condition_ref,
            "condition_value": condition_value,
            "is_else": False,
        }
        if not any(c["case_id"] == case_id for c in route["options"]["cases"]):
            route["options"]["cases"].append(case_config)
            route["emit_signals"].append(make_signal("event", case_trigger))
            self._graph.touch()
        self._add_branch(
            f"match-case-{case_id}",
            f"case:{case_id}",
            case_trigger,
            condition_ref=condition_ref,
            options={"condition_value": condition_value} if condition_ref is None else {},
        )
        return self._new(case_trigger, group_id=match_id, group_kind="match")

    def case_else(self) -> Self:
        """Add the branch taken when no case matched."""
        if "match_id" not in self._block.data:
            raise FlowDefinitionError("Cannot use .case_else() before .match().")
        if self._block.data["is_first_case"]:
            raise FlowDefinitionError("Cannot use .case_else() before any .case().")
        match_id = self._block.data["match_id"]
        self._block.data["has_else"] = True
        self._close_branch(match_id)
        else_trigger = f"Match-{match_id}-Else"
        route = self._graph.operators[self._block.data["route_id"]]
        if route["options"].get("else_signal") is None:
            route["options"]["else_signal"] = make_signal("event", else_trigger)
            route["emit_signals"].append(make_signal("event", else_trigger))
            self._graph.touch()
        self._add_branch(
            f"match-else-{match_id}", f"else:{match_id}", else_trigger, options={"is_else": True}
        )
        return self._new(else_trigger, group_id=match_id, group_kind="match")

    def end_match(self) -> Self:
        """Close the match block; the next step gets the branch result (or results)."""
        if "match_id" not in self._block.data:
            raise FlowDefinitionError("Cannot use .end_match() before .match().")
        match_id = self._block.data["match_id"]
        self._close_branch(match_id)
        outer_id = self._block.data.get("outer_group_id")
        outer_kind = self._block.data.get("outer_group_kind")
        collect_id = f"match-collect-{match_id}"
        ends = self._block.data["branch_ends"]
        existing = self._graph.operators.get(collect_id)
        if existing is None:
            self._graph.add_operator(
                id=collect_id,
                kind="match_collect",
                name=f"match_result:{match_id}",
                listen_signals=ends,
                emit_signals=[self._block.data["result_signal"]],
                options={"match_id": match_id},
                group_id=match_id,
                group_kind="match",
                parent_group_id=outer_id,
                parent_group_kind=outer_kind,
            )
        else:
            merge_signals(existing["listen_signals"], ends)
            self._graph.touch()
        return self._new(
            f"Match-{match_id}-Result",
            block=self._block.outer or Block(),
            group_id=outer_id,
            group_kind=outer_kind,
        )

    # ------------------------------------------------------------- if aliases
    def if_condition(self, condition: Any) -> Self:
        """Alias of ``match().case(condition)``."""
        return self.match().case(condition)

    def elif_condition(self, condition: Any) -> Self:
        """Alias of ``case(condition)``."""
        return self.case(condition)

    def else_condition(self) -> Self:
        """Alias of ``case_else()``."""
        return self.case_else()

    def end_condition(self) -> Self:
        """Alias of ``end_match()``."""
        return self.end_match()
