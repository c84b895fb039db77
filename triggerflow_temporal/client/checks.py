"""Client side: refuse values Temporal history cannot carry, before they are sent.

Every value a caller hands the execution handle (start value, event value, state value,
resume value, intervention payload, runtime resources) is recorded in workflow history.
Checking it here fails the call with a clear ``TypeError``/``ValueError`` at the call
site instead of a payload error from the server or a workflow task that cannot decode it.
"""

from __future__ import annotations

from typing import Any

from ..interpreter.interrupt_records import resume_size_problem
from ..spec.limits import MAX_PAYLOAD_BYTES
from ..spec.state import describe_size, json_size

__all__ = ["check_json", "check_resume_value"]


def check_json(what: str, value: Any) -> None:
    """Refuse a value history cannot hold.

    Args:
        what: What the value is, for the message (``"start value"``, ...).
        value: The value to send.

    Raises:
        TypeError: ``value`` is not JSON-ready data.
        ValueError: ``value`` is over :data:`MAX_PAYLOAD_BYTES` of JSON.
    """
    try:
        size = json_size(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"The {what} must be JSON-ready data (it is stored in Temporal history): {error}. "
            "Keep live objects in TriggerFlowPlugin(runtime_resources=...) and large data in "
            "the Workspace."
        ) from None
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"The {what} is {describe_size(size)} of JSON, over the "
            f"{describe_size(MAX_PAYLOAD_BYTES)} this runtime carries through Temporal history "
            "(Temporal refuses payloads over 2 MiB). Store the content in the Workspace and "
            "pass its ref instead."
        )


def check_resume_value(interrupt_id: str, value: Any) -> None:
    """Refuse a resume value the workflow would reject (checked before a signal is sent).

    The update variant of ``continue_with`` gets the workflow's own refusal; a signal
    cannot answer, so the same limit (one definition, in the interpreter) is applied here.

    Raises:
        TypeError: ``value`` is not JSON-ready data.
        ValueError: ``value`` is over the size a resume value may be.
    """
    check_json("continue value", value)
    problem = resume_size_problem(interrupt_id, value)
    if problem:
        raise ValueError(problem)
