"""The plugin's payload converter: Temporal's pydantic converter with shared type adapters.

temporalio builds a new payload converter for every workflow instance, each with an empty
``TypeAdapter`` cache, so every execution re-derived the pydantic schemas of this runtime's
boundary dataclasses (``WorkflowInput``, ``ChunkInput``, ``ChunkOutput``, ...): 1-1.6 ms of
worker CPU each, per execution, plus ~45 KB of memory per cached workflow (bench/RESULTS.md,
finding F1). Those types never change in a worker process, so their adapters are shared
process-wide here. Any other type hint (a user's pydantic model, possibly re-created by the
workflow sandbox for each instance) keeps the per-instance cache, so nothing of a sandboxed
module is pinned.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

import temporalio.api.common.v1
from pydantic import TypeAdapter
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

__all__ = ["TriggerFlowPayloadConverter", "triggerflow_data_converter"]

# Modules whose types are stable for the life of the process (never sandbox re-imports).
_STABLE_MODULES = ("builtins", "typing", "collections.abc", "types")
_PACKAGE = __name__.split(".", 1)[0]

_shared_adapter = functools.lru_cache(maxsize=256)(TypeAdapter)


def _is_stable(hint: Any) -> bool:
    """True for Any, builtins, typing generics of stable args and this package's types."""
    if hint is Any or hint is None or hint is type(None):
        return True
    origin = typing.get_origin(hint)
    if origin is not None:
        return _is_stable(origin) and all(_is_stable(arg) for arg in typing.get_args(hint))
    module = getattr(hint, "__module__", None)
    if not isinstance(module, str):
        return False
    return module in _STABLE_MODULES or module == _PACKAGE or module.startswith(_PACKAGE + ".")


class _SharedAdapterJSONConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic JSON converter whose adapters for stable types are shared process-wide."""

    def from_payload(
        self,
        payload: temporalio.api.common.v1.Payload,
        type_hint: type | None = None,
    ) -> Any:
        hint: Any = Any if type_hint is None else type_hint
        try:
            stable = _is_stable(hint)
        except TypeError:  # an unhashable or exotic hint: the per-instance path copes
            stable = False
        if stable:
            try:
                adapter = _shared_adapter(hint)
            except TypeError:  # unhashable (e.g. a generic with a list arg)
                pass
            else:
                return adapter.validate_json(payload.data)
        return super().from_payload(payload, type_hint)


class TriggerFlowPayloadConverter(CompositePayloadConverter):
    """``PydanticPayloadConverter`` with the shared-adapter JSON converter."""

    def __init__(self) -> None:
        json_converter = _SharedAdapterJSONConverter()
        super().__init__(
            *(
                json_converter if isinstance(converter, JSONPlainPayloadConverter) else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


triggerflow_data_converter = DataConverter(payload_converter_class=TriggerFlowPayloadConverter)
"""The data converter TriggerFlowPlugin installs (pydantic, with shared type adapters)."""
