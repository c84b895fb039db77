"""A real local HTTP receiver for notification tests (asyncio, HTTP/1.1, one request per
connection), recording every POST, and a Standard Webhooks consumer built on the gateway's
own verifier and replay guard."""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from triggerflow_temporal.gateway._config_types import WebhookSender
from triggerflow_temporal.gateway._jsonpath import JSONPath
from triggerflow_temporal.gateway._problems import Problem
from triggerflow_temporal.gateway._webhooks import ReplayGuard, verify

_ORDER = itertools.count(1)  # one sequence over every receiver: which request came first


def new_secret() -> tuple[str, bytes]:
    """A fresh ``whsec_`` secret and its key."""
    key = secrets.token_bytes(32)
    return "whsec_" + base64.b64encode(key).decode(), key


@dataclass
class Received:
    """One request as it arrived, and what was answered (None: no answer yet)."""

    seq: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[["Received"], "int | Awaitable[int]"]


@dataclass
class Receiver:
    """``await start()`` then POST to ``url``; ``answer(request)`` decides each status."""

    answer: Answer = lambda request: 200
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _server: asyncio.AbstractServer | None = None
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split()[:2]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Received(next(_ORDER), method, path, headers, body)
            self.requests.append(request)
            status = self.answer(request)
            if inspect.isawaitable(status):
                status = await status
            request.status = status
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()


class DedupConsumer:
    """What Standard Webhooks asks of a receiver, as the gateway's ``/v1/webhooks`` does it:
    verify the signature (the gateway's ``verify``), then process each ``webhook-id`` once
    (the gateway's ``ReplayGuard``); a repeated id is acknowledged without processing."""

    def __init__(self, key: bytes, hold_first: asyncio.Event | None = None) -> None:
        self.sender = WebhookSender(
            sender="notifications",
            secrets=(key,),
            tenant="t",
            message_name="m",
            correlation_key=JSONPath.parse("$.execution_id"),
        )
        self.guard = ReplayGuard()
        self.processed: list[dict[str, Any]] = []
        self.duplicates = 0
        self.refused: list[str] = []
        self.hold_first = hold_first
        self.held = asyncio.Event()

    async def __call__(self, request: Received) -> int:
        try:
            webhook_id = verify(self.sender, request.headers, request.body)
        except Problem as problem:
            self.refused.append(problem.detail)
            return 401
        claim = self.guard.claim(self.sender.sender, webhook_id, 600)
        if claim != "new":
            self.duplicates += 1
            return 200 if claim == "done" else 409
        self.processed.append(request.json())
        self.guard.delivered(self.sender.sender, webhook_id, 600)
        if self.hold_first is not None and not self.held.is_set():
            # Processed, but the answer is late: the sender may die before it arrives.
            self.held.set()
            await self.hold_first.wait()
        return 200
