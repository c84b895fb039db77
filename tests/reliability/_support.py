"""Worker subprocesses, bounded waits and error checks shared by the reliability tests."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client

from triggerflow_temporal import TriggerFlowPlugin

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


class WorkerProcess:
    """``triggerflow-temporal worker <flows>`` in its own process (killable for real)."""

    def __init__(
        self,
        flows: Iterable[str],
        *,
        address: str,
        task_queue: str,
        log: Path,
        args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._log = log
        self._file = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "triggerflow_temporal.cli",
                "worker",
                *flows,
                "--address",
                address,
                "--task-queue",
                task_queue,
                *args,
            ],
            cwd=REPO_ROOT,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        )

    def sigkill(self) -> None:
        """Kill the worker with no chance to clean up (no graceful shutdown)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._file.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._file.close()

    def output(self) -> str:
        """What the worker printed so far (for assertion messages)."""
        return self._log.read_text(errors="replace")[-4000:]


def client_for(base: Client, flows: list[Any], task_queue: str) -> Client:
    """A client with the plugin attached (starts executions) and no worker in this process."""
    plugin = TriggerFlowPlugin(flows, task_queue=task_queue)
    client = Client(**{**base.config(), "plugins": [plugin]})
    plugin.attach_client(client)
    return client


def address_of(client: Client) -> str:
    """``host:port`` of the server ``client`` is connected to."""
    return client.service_client.config.target_host


async def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, poll: float = 0.05
) -> None:
    """Poll ``predicate`` (sync or async) until true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(poll)


def free_port() -> int:
    """A TCP port that was free a moment ago (for a dev server restarted on the same port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def bounded(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """Await with a deadline; a timeout fails with a short message naming ``what``.

    The timeout's own traceback (a cancelled RPC deep inside the Temporal bridge) is
    dropped: it says nothing and pytest's source rendering of it can crash on 3.11.
    """
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        pass
    raise AssertionError(f"{what} did not finish within {seconds}s (wedged or hanging?)")


async def expect_raises(
    awaitable: Awaitable[Any],
    expected: type[BaseException] | tuple[type[BaseException], ...],
    match: str | None = None,
    *,
    seconds: float = 30.0,
) -> BaseException:
    """Await and return the ``expected`` error (``match``: regex on its text).

    Like ``pytest.raises``, but a wrong outcome becomes a one-line AssertionError naming
    what happened instead: the wrong error's traceback runs through the Temporal client,
    and rendering it has crashed pytest itself (CPython 3.11.7 ``ast.parse`` SystemError
    on temporalio/client/_client.py), which would hide every later result.
    """
    names = (
        " or ".join(e.__name__ for e in expected)
        if isinstance(expected, tuple)
        else expected.__name__
    )
    try:
        await asyncio.wait_for(awaitable, seconds)
        outcome = "nothing was raised"
    except asyncio.TimeoutError:
        outcome = f"it did not finish within {seconds}s (wedged or hanging?)"
    except expected as error:
        if match is None or re.search(match, str(error)):
            return error
        outcome = f"the message does not match: {str(error)[:600]!r}"
    except Exception as error:  # the wrong type: report it without its traceback
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
        outcome = f"{kind} was raised: {str(error)[:600]!r}"
    wanted = f"{names} matching {match!r}" if match else names
    raise AssertionError(f"expected {wanted}; {outcome}")


async def expect_ignored(awaitable: Awaitable[Any], match: str = "not open") -> None:
    """The call returns None with a ``RuntimeWarning`` (native: ignored after close)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = await asyncio.wait_for(awaitable, 30)
        except Exception as error:  # see expect_raises: no traceback through the client
            kind = f"{type(error).__module__}.{type(error).__qualname__}"
            outcome = f"{kind} was raised: {str(error)[:600]!r}"
            raise AssertionError(f"expected None and a RuntimeWarning; {outcome}") from None
    assert result is None, result
    texts = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(re.search(match, text) for text in texts), texts
