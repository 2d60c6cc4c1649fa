"""The contract between the backend and whatever produces a chat turn.

The backend owns transport and persistence; a TurnHandler owns thinking. A handler is a
generator of events (ADK style): the backend streams each one to the sidebar as it arrives
and records the final one on the session.
"""

from __future__ import annotations

import threading
import uuid
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


def new_turn_id(message_id: str) -> str:
    """The id of one attempt at answering `message_id`: "<message id>:<6 hex>". Model usage, the
    shadow router's slots and log lines carry it; `message_id_of` reads it back."""
    return f"{message_id}:{uuid.uuid4().hex[:6]}"


def message_id_of(turn_id: str) -> str:
    """The user message a turn id (from `new_turn_id`) answers; message ids may contain ':'."""
    return turn_id.rsplit(":", 1)[0]


@dataclass(frozen=True)
class TurnRequest:
    """One user message to answer, with the session as it was when the turn started."""

    session_id: str
    principal: Principal
    message_id: str
    text: str
    ticket: dict[str, Any]
    # Read-only views of the session as it was when the turn started.
    thread: list[dict[str, Any]]
    model_history: list[dict[str, Any]]
    routing_history: list[dict[str, Any]]
    # Set by the backend when the turn timed out or was abandoned: stop at the next check.
    cancel: threading.Event = field(default_factory=threading.Event)
    # The source groups the agent restricted this question to (agents.base.SOURCE_GROUPS); empty: all.
    sources: tuple[str, ...] = ()


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
    # The routing decision; the session's routing history and later turns read it.
    routing: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    model_history: list[dict[str, Any]] = field(default_factory=list)
    # A shadow router's decision for this turn (orchestrator/routing/shadow.py `collect`), stored
    # beside the live one as the reply's `meta.shadow`; never part of `routing`.
    shadow: dict[str, Any] | None = None


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
    """Whatever answers a turn: the orchestrator's `Assistant`, or a test's scripted handler."""

    def handle(self, request: TurnRequest) -> Iterator[TurnEvent]:
        """Answer one turn as a stream of events.

        Yields `Thinking` and `Delta` events as they happen, then exactly one `Done`. Raises
        `TurnFailed` for a failure the user should see; any other exception is reported as an
        internal error. Called on a background thread per turn, several turns at once: an
        implementation keeps per-turn state in the generator, not on itself. It checks
        `request.cancel` between steps and stops when it is set.
        """
        ...
