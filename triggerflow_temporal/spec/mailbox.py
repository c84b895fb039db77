"""Message correlation (gateway.md ``POST /v1/messages``): the mailbox contract.

One mailbox workflow per (tenant, message name, correlation key) is the rendezvous of
messages and the pauses that wait for them (``pause_for(correlation={"name", "key"})``).
Messages and registrations are both serialized in that one workflow, so there is no race
between a message and the pause it resolves and no visibility lag: a message that finds
waiters resumes them; one that finds none is buffered until its TTL and delivered, once,
to the first pause that registers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

MAILBOX_WORKFLOW = "triggerflow.mailbox"
"""Workflow type of mailboxes (a flow may not use this name)."""
DELIVER_UPDATE = "deliver"
REGISTER_UPDATE = "register"
WAITERS_QUERY = "waiters"
REGISTER_ACTIVITY = "triggerflow.mailbox.register"
RESUME_ACTIVITY = "triggerflow.mailbox.resume"

DEFAULT_MESSAGE_TTL = 3600.0
MAX_MESSAGE_TTL = 30 * 24 * 3600.0
# Message ids a mailbox remembers (one message_id is one delivery), and how long it lives
# idle to remember them.
MAX_SEEN_MESSAGES = 1000
MAILBOX_IDLE_SECONDS = 24 * 3600.0
# Messages buffered per mailbox before new ones are refused.
MAX_BUFFERED_MESSAGES = 100
# Waiting pauses a mailbox keeps. A pause resolved some other way stays registered until a
# message finds it gone; past this bound the oldest registrations are dropped.
MAX_WAITERS = 1000


def mailbox_id(tenant: str | None, name: str, key: str) -> str:
    """The workflow id of the mailbox of (tenant, name, key); the key is hashed."""
    digest = hashlib.sha256(f"{tenant or 'default'}\0{name}\0{key}".encode()).hexdigest()
    return f"{MAILBOX_WORKFLOW}:{tenant or 'default'}:{digest[:40]}"


@dataclass
class MailboxInput:
    """What a mailbox starts with (and carries over continue-as-new)."""

    tenant: str | None
    name: str
    key: str
    waiters: list[dict[str, Any]] = field(default_factory=lambda: [])
    buffer: list[dict[str, Any]] = field(default_factory=lambda: [])
    seen: dict[str, dict[str, Any]] = field(default_factory=lambda: {})
    # The bound on waiting pauses (MAX_WAITERS); in the input so that it is part of the
    # history a replay reads, and a test can start a mailbox with a small one.
    max_waiters: int = MAX_WAITERS


@dataclass
class Message:
    """One message to a mailbox (``POST /v1/messages``)."""

    message_id: str
    value: Any = None
    ttl_seconds: float = DEFAULT_MESSAGE_TTL
    actor: dict[str, Any] | None = None


@dataclass
class Waiter:
    """A waiting interrupt that a message of its mailbox resumes."""

    execution_id: str
    interrupt_id: str


@dataclass
class ResumeOrder:
    """The resume a mailbox asks for (an activity: ``continue_with`` on the execution)."""

    execution_id: str
    interrupt_id: str
    message_id: str
    value: Any = None
    actor: dict[str, Any] | None = None


@dataclass
class RegisterOrder:
    """A paused execution registering its interrupt at its mailbox (an activity)."""

    tenant: str | None
    name: str
    key: str
    execution_id: str
    interrupt_id: str
    task_queue: str
