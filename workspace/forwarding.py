"""Forwarding a contract method through a scoped view (``BoundWorkspace``).

Each view method is the wrapped workspace's, with the view's fixed scope merged into the
``scope`` argument; typed as the contract method itself, so the view keeps its signatures.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

_Method = TypeVar("_Method", bound=Callable[..., Any])


def forward(method: _Method) -> _Method:
    """The view's version of ``method``: the wrapped workspace's, with the fixed scope merged in.

    Only methods with a ``scope`` parameter are scoped (an id is its own capability). The result
    is typed as ``method`` itself, so the view keeps the contract's exact signatures.
    """
    name = method.__name__
    signature = inspect.signature(method)
    scoped = "scope" in signature.parameters

    async def forward(view: Any, *args: Any, **kwargs: Any) -> Any:
        if scoped:
            call = signature.bind(view, *args, **kwargs)
            call.arguments["scope"] = view.merge_scope(call.arguments.get("scope"))
            args, kwargs = call.args[1:], call.kwargs
        return await getattr(view.inner, name)(*args, **kwargs)

    # Not functools.wraps: it would copy __isabstractmethod__ and leave the view abstract.
    forward.__name__ = name
    forward.__qualname__ = f"BoundWorkspace.{name}"
    forward.__doc__ = f"See :meth:`BaseWorkspace.{name}`" + (
        "; the bound scope is merged in." if scoped else "."
    )
    forward.__signature__ = signature  # type: ignore[attr-defined]  # help() shows the contract's
    return cast(_Method, forward)
