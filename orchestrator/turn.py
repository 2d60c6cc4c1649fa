"""The contract between the backend and whatever produces a chat turn.

The backend owns transport and persistence; a TurnHandler owns thinking. A handler is a
generator of events (ADK style): the backend streams each one to the sidebar as it arrives
and records the final one on the session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Principal:
    """Who is asking: derived from a verified token, never from client-supplied fields."""

    tenant: str
    user_id: str
    user_name: str
    # The agent's Zendesk group ids when the verified token names them; None when unknown (content
    # restricted to groups is then not shown to this agent).
    group_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TurnRequest:
    session_id: str
    principal: Principal
    message_id: str
    text: str
    ticket: dict[str, Any]
    # Read-only views of the session as it was when the turn started.
    thread: list[dict[str, Any]]
    model_history: list[dict[str, Any]]
    routing_history: list[dict[str, Any]]
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Thinking:
    text: str
    agent: str | None = None


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Done:
    """Final event: the whole answer plus what the session should remember of the turn."""

    text: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    routing: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    model_history: list[dict[str, Any]] = field(default_factory=list)


TurnEvent = Thinking | Delta | Done


class TurnFailed(Exception):
    """Raised by a handler for a failure the user should see (code, message, retryable)."""

    def __init__(self, code: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@runtime_checkable
class TurnHandler(Protocol):
    def handle(self, request: TurnRequest) -> Iterator[TurnEvent]:
        """Yield Thinking/Delta events, then exactly one Done. Check request.cancel between steps."""
        ...
