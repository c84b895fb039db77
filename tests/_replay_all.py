"""Session-end replay: every workflow history the tests produced replays deterministically.

Enabled by ``TRIGGERFLOW_FORCE_REPLAY=1`` (with workers that keep no workflow cache) or
``TRIGGERFLOW_REPLAY_HISTORIES=1`` (cached workers). ``tests/conftest.py`` then

* records every :class:`TriggerFlowPlugin` the tests build (the replay uses the plugin that
  served a run: same flows, handlers and conditions, matched by task queue and workflow
  type),
* archives the histories of each dev server started with ``start_dev_server`` just before
  it stops (module and test servers stop before the session ends), and
* appends :func:`test_every_history_of_the_session_replays` as the session's last test: it
  lists the session server's workflows, fetches their histories and replays them with the
  archived ones, concurrently, and fails naming each workflow that does not replay.

Not collected on its own (the file name does not start with ``test_``); see docs/testing.md.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from triggerflow_temporal import TriggerFlowPlugin
from triggerflow_temporal.spec.audit import AUDIT_WORKFLOW
from triggerflow_temporal.spec.mailbox import MAILBOX_WORKFLOW
from triggerflow_temporal.spec.notifications import NOTIFY_WORKFLOW
from triggerflow_temporal.testing import (
    ReplayOutcome,
    fetch_histories,
    force_replay,
    on_dev_server_shutdown,
    replay_histories,
)
from triggerflow_temporal.testing import history_type as _history_type

REPLAY_HISTORIES_ENV = "TRIGGERFLOW_REPLAY_HISTORIES"
# Seconds to read a stopping server's histories (a server a test broke does not hang it).
ARCHIVE_TIMEOUT = 60.0

# Every TriggerFlowPlugin built in this session, oldest first.
PLUGINS: list[TriggerFlowPlugin] = []
# (workflow id, run id) -> the newest history fetched from a server that has stopped.
ARCHIVE: dict[tuple[str, str], WorkflowHistory] = {}
SESSION_START = datetime.now(timezone.utc)
# Summary lines for the terminal report (conftest's pytest_terminal_summary).
REPORT: list[str] = []
_state: dict[str, Any] = {"installed": False, "done": False, "archived_servers": 0}


def enabled() -> bool:
    """Whether this session replays its histories at the end."""
    value = os.environ.get(REPLAY_HISTORIES_ENV, "").strip().lower()
    return force_replay() or value not in ("", "0", "false", "no", "off")


def install() -> None:
    """Record plugins and archive stopping servers from now on (idempotent)."""
    if _state["installed"]:
        return
    _state["installed"] = True
    original = TriggerFlowPlugin.__init__

    def recording_init(self: TriggerFlowPlugin, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        PLUGINS.append(self)

    TriggerFlowPlugin.__init__ = recording_init  # type: ignore[method-assign]
    on_dev_server_shutdown(_archive)


async def _archive(env: WorkflowEnvironment) -> None:
    if _state["done"]:
        return  # the session server, stopping after the final replay
    try:
        histories = await asyncio.wait_for(fetch_histories(env.client), ARCHIVE_TIMEOUT)
    except Exception as error:  # a server a test broke on purpose: note it, go on
        REPORT.append(f"could not read the histories of a stopping dev server: {error!r}")
        return
    _state["archived_servers"] += 1
    for history in histories:
        if history.events:
            ARCHIVE[(history.workflow_id, history.run_id)] = history


def _queues(plugin: TriggerFlowPlugin) -> set[str]:
    return {
        queue
        for queue in (
            getattr(plugin, "_explicit_task_queue", None),
            getattr(plugin, "_worker_task_queue", None),
        )
        if queue
    }


def plugin_for(history: WorkflowHistory) -> TriggerFlowPlugin | None:
    """The newest plugin that served this run: its task queue and workflow type, else any
    plugin that has the workflow type (a run started by a process that is gone)."""
    kind, queue = _history_type(history)
    if kind in (MAILBOX_WORKFLOW, AUDIT_WORKFLOW, NOTIFY_WORKFLOW):  # every plugin serves these
        return next(
            (p for p in reversed(PLUGINS) if queue in _queues(p)), PLUGINS[-1] if PLUGINS else None
        )
    fallback = None
    for plugin in reversed(PLUGINS):
        if kind not in plugin.flows:
            continue
        if queue in _queues(plugin):
            return plugin
        fallback = fallback or plugin
    return fallback


@pytest.mark.timeout(1500)  # every history of the session: more than one test's budget
async def test_every_history_of_the_session_replays(temporal_env: WorkflowEnvironment) -> None:
    started = time.monotonic()
    query = None
    if os.environ.get("TRIGGERFLOW_TEMPORAL_ADDRESS"):
        # A shared server: only what this session started.
        query = f"StartTime >= '{SESSION_START.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    live = await fetch_histories(temporal_env.client, query)
    _state["done"] = True
    histories = dict(ARCHIVE)
    for history in live:
        if history.events:
            histories[(history.workflow_id, history.run_id)] = history
    fetched = time.monotonic() - started
    outcome: ReplayOutcome = await replay_histories(histories.values(), plugin_for)
    workflows = len({workflow_id for workflow_id, _ in histories})
    REPORT.append(
        f"replayed {outcome.replayed} histories ({workflows} workflows, "
        f"{_state['archived_servers'] + 1} dev servers) in {fetched + outcome.seconds:.1f} s "
        f"(fetch {fetched:.1f} s, replay {outcome.seconds:.1f} s); "
        f"{len(outcome.nondeterministic)} nondeterministic, {len(outcome.failed)} failed"
    )
    if outcome.skipped:
        REPORT.append(
            "not replayed, no plugin of this session serves their workflow type: "
            + ", ".join(f"{kind} ({count})" for kind, count in sorted(outcome.skipped.items()))
        )
    if outcome.failed_live_too:
        REPORT.append(
            f"{len(outcome.failed_live_too)} replays failed where their live runs failed a "
            "workflow task too (flows that wedge on purpose): "
            + ", ".join(sorted({f"{wid} ({kind})" for wid, _, kind, _ in outcome.failed_live_too}))
        )
    problems = [
        f"{workflow_id} run {run_id} ({kind}): {error.splitlines()[0][:600]}"
        for workflow_id, run_id, kind, error in outcome.problems
    ]
    assert not problems, f"{len(problems)} recorded histories do not replay:\n" + "\n".join(
        sorted(problems)
    )
