"""Client side: inspect and load snapshots for an execution handle (restore, fork).

The flow-independent work (parse, check, start the seeded workflow, replay history) is in
``persistence``; this module adds what the handle's :class:`~.setup.ExecutionSetup`
knows: the runtime resources the plugin serves, the handle's own options and intervention
mode, its task queue and graph, and the id rules of ``async_load``.
"""

from __future__ import annotations

import uuid
from typing import Any

from .._errors import SnapshotError
from ..interpreter.snapshot import parse_snapshot
from ..spec.wire import ExecutionOptions
from .binding_methods import loaded_bindings
from .checks import check_json
from .persistence import (
    execution_history,
    load_execution,
    load_report,
    pick_step,
    saved_options,
    snapshot_key,
)
from .setup import ExecutionSetup

__all__ = ["inspect_snapshot", "load_snapshot", "missing_resources"]

# Marks "the flow has no such resource" (a resource may be None).
_MISSING: Any = object()


def missing_resources(
    setup: ExecutionSetup, parsed: dict[str, Any], runtime_resources: dict[str, Any] | None
) -> list[str]:
    """The required runtime resources of a parsed snapshot that a load here lacks.

    Args:
        setup: The loading handle's setup.
        parsed: The parsed snapshot.
        runtime_resources: The resources the load re-injects (None: the handle's).
    """
    flow = setup.flow
    given = set(runtime_resources or setup.options.runtime_resources)
    plugin = setup.runtime_plugin()
    served = plugin is not None and plugin.serves(flow.name)
    if plugin is not None and served:
        given |= set(plugin.registry.chunk_resources(flow.name, {}))
    needed = [r["key"] for r in parsed.get("resource_requirements") or [] if r.get("required")]
    return sorted(
        key
        for key in needed
        if key not in given
        # Not served here: the flow's own resources are what it would run with.
        and (served or flow.get_runtime_resource(key, _MISSING) is _MISSING)
    )


def inspect_snapshot(
    setup: ExecutionSetup, saved: Any, runtime_resources: dict[str, Any] | None
) -> dict[str, Any]:
    """``execution.inspect_load(saved)``: whether it can be loaded here, without loading."""
    return load_report(
        saved,
        setup.spec(),
        lambda parsed: missing_resources(setup, parsed, runtime_resources),
        key=_key_of(setup),
    )


def _load_options(
    setup: ExecutionSetup, parsed: dict[str, Any], runtime_resources: dict[str, Any] | None
) -> ExecutionOptions:
    """The options of a load: the saved ones, with the handle's resources and mode."""
    options = saved_options(parsed)
    options.runtime_resources = dict(
        runtime_resources if runtime_resources is not None else setup.options.runtime_resources
    )
    if setup.intervention_mode is not ...:
        options.intervention_mode = setup.intervention_mode
    # As natively the policy is the loading handle's (a snapshot keeps only its name).
    options.intervention_policy = setup.options.intervention_policy
    return options


async def load_snapshot(
    setup: ExecutionSetup,
    saved: Any,
    *,
    handle_id: str,
    explicit_id: bool,
    execution_id: str | None,
    from_step: int | None,
    runtime_resources: dict[str, Any] | None,
    validate_resources: bool,
    allow_blueprint_change: bool,
    bindings: dict[str, dict[str, Any]] | None = None,
) -> str:
    """``execution.async_load(...)``: start a workflow seeded from ``saved``; its id.

    Args:
        setup: The loading handle's setup.
        saved: A snapshot; with ``from_step`` a history list or an execution id.
        handle_id: The loading handle's id.
        explicit_id: Whether that id was given to ``create_execution``.
        execution_id: The id asked for by ``async_load``.
        from_step: Fork from the state after this step of the history.
        runtime_resources: Execution resources to re-inject.
        validate_resources: Raise ``RuntimeError`` if a required resource is missing.
        allow_blueprint_change: Load a snapshot saved under another blueprint.
        bindings: The handle's ``execution.on()`` bindings registered before the load.
    """
    client = setup.resolve_client()
    if from_step is not None:
        history = saved
        if isinstance(saved, str):
            history = await execution_history(client, [setup.flow], saved)
        if not isinstance(history, list):
            raise SnapshotError(
                "async_load(..., from_step=N) takes the list from async_get_history() or "
                f"an execution id, got {type(saved).__name__}."
            )
        saved = pick_step(history, from_step)
        if execution_id is None and not explicit_id:
            execution_id = f"{saved['execution_id']}-fork-{from_step}-{uuid.uuid4().hex[:8]}"
    parsed = parse_snapshot(saved, key=snapshot_key(client))
    if runtime_resources is not None:
        check_json("runtime_resources", runtime_resources)
    try:
        restored, missing_handlers = loaded_bindings(parsed, bindings or {})
    except ValueError as error:
        raise SnapshotError(str(error)) from None
    if validate_resources and missing_handlers:
        raise RuntimeError(
            f"Can not load TriggerFlow execution {parsed['execution_id']}; missing resources: "
            f"{missing_handlers}."
        )
    parsed.setdefault("signal_net", {})["bindings"] = restored
    if validate_resources:
        missing = missing_resources(setup, parsed, runtime_resources)
        if missing:
            raise RuntimeError(
                f"Can not load TriggerFlow execution snapshot into flow "
                f"'{setup.flow.name}'; missing resources: {missing}."
            )
    spec = setup.spec()
    options = _load_options(setup, parsed, runtime_resources)
    target_id = execution_id or (handle_id if explicit_id else parsed["execution_id"])
    return await load_execution(
        client,
        parsed,
        execution_id=target_id,
        task_queue=setup.queue(),
        spec=spec,
        options=options,
        allow_blueprint_change=allow_blueprint_change,
        search_attributes=setup.search_attributes(),
        flow=setup.flow,
    )


def _key_of(setup: ExecutionSetup) -> bytes | None:
    """The snapshot key of the plugin this handle uses (no client needed to inspect)."""
    plugin = setup.runtime_plugin()
    if plugin is not None and plugin.snapshot_key is not None:
        return plugin.snapshot_key
    return snapshot_key(setup.client)
