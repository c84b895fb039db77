"""Flow contracts: ``flow.set_contract(initial_input=, stream=, result=, meta=)``.

As Agently 4.1.4.10 (``core/orchestration/TriggerFlow/Contract.py``): each part is a
pydantic ``TypeAdapter`` of a model, a Python type or a typing annotation; a value that
does not validate raises ``ValueError("TriggerFlow contract validation failed for
'<part>': <pydantic's message>")``, and a part that is no type raises ``TypeError``.
Natively the start input is checked when the execution starts, stream items when a chunk
puts them (system items are not), and results when ``set_result`` writes them; the
validated value (coerced: ``"7"`` for an ``int`` is 7) is what the chain, the stream or the
result gets. Here the values then travel through Temporal as JSON data, so the validated
value is dumped to JSON (a model becomes its dict): :meth:`TriggerFlowContract.check`.

The flow config's ``contract`` section is :meth:`TriggerFlowContract.export_metadata`:
``{}`` without a contract, else the label and JSON schema of each part, ``meta`` and the
schemas of the system stream items (recorded from agently 4.1.4.10 in
``contract_system_stream.json``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

Part = Literal["initial_input", "stream", "result"]

# Marks an argument set_contract() was not given (None clears a part, as natively).
CONTRACT_UNSET: Any = object()

_SYSTEM_STREAM_PATH = Path(__file__).with_name("contract_system_stream.json")
_SYSTEM_STREAM: dict[str, Any] | None = None


def system_stream_metadata() -> dict[str, Any]:
    """The ``system_stream`` entry of contract metadata (interrupt and intervention items)."""
    global _SYSTEM_STREAM
    if _SYSTEM_STREAM is None:
        with _SYSTEM_STREAM_PATH.open(encoding="utf-8") as file:
            recorded = json.load(file)
        _SYSTEM_STREAM = {key: recorded[key] for key in ("interrupt", "intervention")}
    return copy.deepcopy(_SYSTEM_STREAM)


@dataclass
class TriggerFlowContractSpec:
    """What ``flow.get_contract()`` returns (Agently's ``TriggerFlowContractSpec``)."""

    initial_input: Any | None = None
    stream: Any | None = None
    result: Any | None = None
    meta: dict[str, Any] = field(default_factory=lambda: {})


class TriggerFlowContract:
    """The types a flow's start input, stream items and results must have."""

    def __init__(self) -> None:
        self.parts: dict[str, Any] = {"initial_input": None, "stream": None, "result": None}
        self.meta: dict[str, Any] = {}
        self._adapters: dict[str, TypeAdapter[Any] | None] = {
            "initial_input": None,
            "stream": None,
            "result": None,
        }

    def update(
        self,
        *,
        initial_input: Any = CONTRACT_UNSET,
        stream: Any = CONTRACT_UNSET,
        result: Any = CONTRACT_UNSET,
        meta: Any = CONTRACT_UNSET,
    ) -> None:
        """Set the given parts (None clears one); raises ``TypeError`` for a non-type."""
        given = {"initial_input": initial_input, "stream": stream, "result": result}
        adapters = {
            part: _adapter(part, contract)
            for part, contract in given.items()
            if contract is not CONTRACT_UNSET
        }
        for part, adapter in adapters.items():
            self.parts[part] = given[part]
            self._adapters[part] = adapter
        if meta is not CONTRACT_UNSET:
            self.meta = dict(meta) if isinstance(meta, dict) else {}

    @property
    def empty(self) -> bool:
        """No part and no meta: nothing to check or export."""
        return all(value is None for value in self.parts.values()) and not self.meta

    def spec(self) -> TriggerFlowContractSpec:
        """The parts as given (``flow.get_contract()``)."""
        return TriggerFlowContractSpec(meta=self.meta.copy(), **self.parts)

    def export_metadata(self) -> dict[str, Any]:
        """The flow config's ``contract`` section, as Agently exports it."""
        if self.empty:
            return {}
        return {
            "initial_input": self._entry("initial_input"),
            "stream": self._entry("stream"),
            "result": self._entry("result"),
            "meta": self.meta.copy(),
            "system_stream": system_stream_metadata(),
        }

    def _entry(self, part: str) -> dict[str, Any] | None:
        contract = self.parts[part]
        if contract is None:
            return None
        adapter = self._adapters[part]
        schema = None
        if adapter is not None:
            try:
                schema = adapter.json_schema()
            except Exception:  # as natively: a type without a JSON schema has none
                schema = None
        label = schema.get("title") if isinstance(schema, dict) else None
        if not isinstance(label, str):
            label = None
        if label is None and isinstance(contract, type):
            label = contract.__name__
        return {"label": str(label if label is not None else contract), "schema": schema}

    def validate(self, part: Part, value: Any) -> Any:
        """``value`` validated against ``part`` (as is when the part is not set).

        Raises:
            ValueError: Agently's "TriggerFlow contract validation failed for ..." text.
        """
        adapter = self._adapters[part]
        if adapter is None:
            return value
        try:
            return adapter.validate_python(value)
        except ValidationError as error:
            raise ValueError(
                f"TriggerFlow contract validation failed for '{part}': {error}"
            ) from error

    def check(self, part: Part, value: Any) -> Any:
        """:meth:`validate`, then the validated value as JSON data (what Temporal carries)."""
        adapter = self._adapters[part]
        if adapter is None:
            return value
        return adapter.dump_python(self.validate(part, value), mode="json")


def _adapter(part: str, contract: Any) -> TypeAdapter[Any] | None:
    if contract is None:
        return None
    try:
        return TypeAdapter(contract)
    except Exception as error:
        raise TypeError(
            f"Invalid TriggerFlow contract '{part}': {contract}\n"
            "Tips: use a Pydantic model, a Python type, or a supported typing annotation."
        ) from error
