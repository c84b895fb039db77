"""Client side: typed errors rebuilt from workflow and update failures.

A chunk failure or a workflow rejection reaches the client as a Temporal
``ApplicationError`` whose ``type`` is the original exception's class name and whose
details name its module. :func:`rebuild_error` turns it back into an exception of that
type (also a :class:`~triggerflow_temporal.ChunkFailedError` or
:class:`~triggerflow_temporal.ExecutionStateError`), so ``except ValueError`` written
for Agently keeps working.

The failure's details are data from the workflow's history, which anyone who can start a
workflow on the namespace can write: the class is therefore looked up only among modules
this process has already imported, never imported by name.
"""

from __future__ import annotations

import builtins
import sys

from temporalio.exceptions import ApplicationError

from .._errors import ChunkFailedError, ExecutionStateError, TriggerFlowError

__all__ = ["rebuild_error"]

_BUILTIN_ERRORS = {
    name: obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, Exception)
}


def rebuild_error(error: BaseException) -> BaseException:
    """Turn a Temporal failure carrying a chunk or workflow error back into its type.

    Args:
        error: A ``WorkflowFailureError``, ``WorkflowUpdateFailedError`` or any error whose
            cause chain holds an ``ApplicationError``.

    Returns:
        ``error`` itself when no ``ApplicationError`` is in its cause chain; for a chunk
        failure a :class:`ChunkFailedError` that is also an instance of the original
        type when that type is found; for a rejection by the workflow an
        :class:`ExecutionStateError` likewise. When the original type is not found, the
        message names it with its module.
    """
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__ or getattr(cause, "cause", None)
    if not isinstance(cause, ApplicationError):
        return error
    details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    type_name = cause.type or "Exception"
    module = details.get("module")
    message = cause.message
    original = _error_class(type_name, module)
    if original is None and module not in (None, "builtins"):
        message = f"{message} (raised as {module}.{type_name}, not loaded in this process)"
    if "chunk" not in details:
        # A rejection from the workflow itself (unknown interrupt, close refused, ...).
        base = original if original is not None else RuntimeError
        try:
            err_cls = type(type_name, (ExecutionStateError, base), {})
            return err_cls(message)
        except TypeError:
            return ExecutionStateError(message)
    kwargs = {
        "flow_name": details.get("flow"),
        "chunk_name": details.get("chunk"),
        "error_type": type_name,
        "error_message": details.get("message"),
    }
    if original is not None and issubclass(original, TriggerFlowError):
        return original(message)
    if original is not None:
        try:
            err_cls = type(type_name, (ChunkFailedError, original), {"__module__": __name__})
            return err_cls(message, **kwargs)
        except TypeError:
            pass
    return ChunkFailedError(message, **kwargs)


def _error_class(name: str, module: object) -> type[Exception] | None:
    """The exception class ``module.name`` if this process already has it, else None.

    Never imports: the module name comes from workflow history, and importing an arbitrary
    module runs its code (issue 17). The module's own namespace is read (not ``getattr``),
    so a module-level ``__getattr__`` cannot import on our behalf either.
    """
    if module in (None, "builtins"):
        found = _BUILTIN_ERRORS.get(name)
        if found is not None or module == "builtins":
            return found
    if not isinstance(module, str) or not module:
        return None
    loaded = sys.modules.get(module)
    if loaded is None:
        return None
    # sys.modules may hold non-module objects: read whatever namespace it has.
    candidate = getattr(loaded, "__dict__", {}).get(name)
    if isinstance(candidate, type) and issubclass(candidate, Exception):
        return candidate
    return None
