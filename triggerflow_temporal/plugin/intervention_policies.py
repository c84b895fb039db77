"""Intervention policies on the worker: naming, the registry and the local activity.

Natively ``create_execution(intervention_mode="auto", intervention_policy=fn)`` calls
``fn(context)`` (sync or async) before each operator while interventions are pending, and
inserts the ids it returns instead of selecting by target. On Temporal user code cannot run
in workflow code, so the policy is a function registered on the worker,
``TriggerFlowPlugin(intervention_policies=[fn, ...])``, under :func:`policy_key`
(``module.qualname``); an execution names it (``create_execution(intervention_policy=fn``
or its key)), and the workflow runs it as the local activity
:data:`~..interpreter.interventions.POLICY_ACTIVITY`. Its answer is recorded in history as
a marker: a replay never runs the policy again.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ..interpreter.interventions import POLICY_ACTIVITY, POLICY_NOT_REGISTERED


def policy_key(policy: Any) -> str:
    """The name a worker registers ``policy`` under and an execution refers to it by.

    Raises:
        ValueError: A lambda, a nested function, a callable without ``__module__`` /
            ``__qualname__`` (a partial, an instance), or one defined in ``__main__``:
            a worker could not look it up by name.
    """
    qualname = getattr(policy, "__qualname__", None)
    module = getattr(policy, "__module__", None)
    if not callable(policy) or not isinstance(qualname, str) or not isinstance(module, str):
        raise ValueError(
            "intervention_policy must be a named function a worker can look up "
            f"(module.qualname), got {policy!r}. Define it with `def` in a module and "
            "register it with TriggerFlowPlugin(intervention_policies=[...])."
        )
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise ValueError(
            f"intervention_policy {qualname!r} is a lambda or a nested function, which a "
            "worker cannot look up by name: the policy runs on the worker as a local "
            "activity. Define it with `def` at module level and register it with "
            "TriggerFlowPlugin(intervention_policies=[...])."
        )
    if module == "__main__":
        raise ValueError(
            f"intervention_policy {qualname!r} is defined in __main__, which a worker "
            "cannot import: define it in a module and register it on the worker with "
            "TriggerFlowPlugin(intervention_policies=[...])."
        )
    return f"{module}.{qualname}"


def execution_policy(policy: Any) -> str | None:
    """``create_execution(intervention_policy=...)`` as the name the execution records.

    A function becomes its :func:`policy_key`; a string is taken as a registered name.

    Raises:
        ValueError: A function a worker cannot look up (:func:`policy_key`), or an empty
            name.
        TypeError: Neither a function, a name nor None.
    """
    if policy is None:
        return None
    if isinstance(policy, str):
        if not policy.strip():
            raise ValueError("intervention_policy must not be an empty name.")
        return policy
    if not callable(policy):
        raise TypeError(
            "intervention_policy takes a function registered on the worker "
            "(TriggerFlowPlugin(intervention_policies=[fn])), its name "
            f"('module.qualname') or None, got {type(policy).__name__}."
        )
    return policy_key(policy)


def register_policies(policies: Sequence[Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """``TriggerFlowPlugin(intervention_policies=...)`` as ``{key: function}``.

    Raises:
        TypeError: Not a list of functions.
        ValueError: A function a worker cannot look up by name, or two functions with one
            key.
    """
    if isinstance(policies, (str, bytes)) or not isinstance(policies, Sequence):
        raise TypeError(
            "TriggerFlowPlugin(intervention_policies=...) takes a list of functions, e.g. "
            "intervention_policies=[pick_intervention]."
        )
    registered: dict[str, Callable[..., Any]] = {}
    for policy in policies:
        if isinstance(policy, str) or not callable(policy):
            raise TypeError(
                f"TriggerFlowPlugin(intervention_policies=...) takes functions, got {policy!r}."
            )
        key = policy_key(policy)
        other = registered.setdefault(key, policy)
        if other is not policy:
            raise ValueError(
                f"Two intervention policies are named {key!r}; each needs its own module.qualname."
            )
    return registered


def choose_ids(result: Any) -> list[str]:
    """A policy's answer as ids, as Agently reads it.

    None: nothing; a string: that id; anything else is iterated (a dict gives its keys)
    and each item made a string. A non-iterable raises ``TypeError`` (then, natively, the
    policy counts as failed).
    """
    if result is None:
        return []
    if isinstance(result, str):
        return [result]
    return [str(item) for item in result]


def make_policy_activity(policies: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    """The local activity that runs an execution's policy on this worker.

    Always registered, so an execution naming a policy this worker lacks gets an error
    that names the policy and the fix (non-retryable ``InterventionPolicyNotRegistered``).
    A policy that raises (or answers with a non-iterable) is reported in the result, not
    raised: natively that is a WARNING event and nothing inserted, never a retry.
    """

    @activity.defn(name=POLICY_ACTIVITY)
    async def run_intervention_policy(request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("policy"))
        policy = policies.get(name)
        if policy is None:
            info = activity.info()
            raise ApplicationError(
                f"TriggerFlow intervention policy {name!r} of execution {info.workflow_id!r} "
                f"is unknown to this worker (it has {sorted(policies) or 'none'}). Register "
                "the function on every worker of task queue "
                f"{info.task_queue!r}: TriggerFlowPlugin(intervention_policies=[...]). The "
                "execution waits and goes on once a worker that has it runs it.",
                type=POLICY_NOT_REGISTERED,
                non_retryable=True,
            )
        context = request.get("context") or {}
        try:
            if inspect.iscoroutinefunction(policy):
                result = await policy(context)
            else:
                # Sync policies run in a thread so they never block the worker's loop.
                result = await asyncio.to_thread(policy, context)
                if inspect.isawaitable(result):
                    result = await result
            return {"ids": choose_ids(result)}
        except Exception as error:
            return {
                "ids": [],
                "error": {
                    "type": type(error).__name__,
                    "message": str(error),
                    "module": type(error).__module__,
                },
            }

    return run_intervention_policy
