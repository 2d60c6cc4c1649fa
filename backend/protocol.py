"""Socket.IO protocol: event names and payload schemas, validated on every event.

docs/protocol.md describes the same events for client authors; tests keep them in step.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Labels a reviewer may give instead of agents: the question needed no sources, or was too vague.
# The wire spelling ("respond", "clarify") of the routing pseudo labels, mapped in one place.
from orchestrator.routing.decisions import WIRE_LABELS as PSEUDO_LABELS

# Client → server
JOIN = "session:join"
MESSAGE = "chat:message"
RETRY = "chat:retry"
FEEDBACK = "chat:feedback"
# The agent put an answer into the ticket reply (the sidebar's Insert): counted by the insights page.
INSERT = "chat:insert"
CLIENT_EVENTS = (JOIN, MESSAGE, RETRY, FEEDBACK, INSERT)

# Server → client
STATE = "session:state"
ACK = "chat:ack"
THINKING = "chat:thinking"
DELTA = "chat:delta"
DONE = "chat:done"
ERROR = "chat:error"
FEEDBACK_ACK = "chat:feedback:ack"
INSERT_ACK = "chat:insert:ack"
# The ticket brief on join (backend/briefs.py): start, sections as they are known, the whole brief.
BRIEF_START = "brief:start"
BRIEF_SECTION = "brief:section"
BRIEF_DONE = "brief:done"
BRIEF_ERROR = "brief:error"
SERVER_EVENTS = (
    STATE, ACK, THINKING, DELTA, DONE, ERROR, FEEDBACK_ACK, INSERT_ACK, BRIEF_START, BRIEF_SECTION, BRIEF_DONE, BRIEF_ERROR
)  # fmt: skip

ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
AGENT_NAME_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"  # as agents.base.NAME_PATTERN (kept light: no agents import)
MAX_EXPECTED_AGENTS = 5
MAX_TICKET_JSON_BYTES = 64_000


class ProtocolError(ValueError):
    """A payload that fails validation; `code` goes to the client in chat:error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Ticket(BaseModel):
    """What the sidebar knows of the open ticket. Extra ZAF fields are kept (bounded in size)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=ID_PATTERN)
    subject: str = Field("", max_length=1000)
    description: str = Field("", max_length=20_000)
    status: str | None = Field(None, max_length=32)
    tags: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, v: Any) -> Any:
        # ZAF returns numeric ticket ids; bool is an int subclass and is never an id.
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v


class JoinPayload(_Strict):
    ticket: Ticket
    # Optional: a client resuming a session it was told about; it must be the caller's own.
    session_id: str | None = Field(None, pattern=ID_PATTERN)


# Where a question may be restricted to (the ask box's chips): agents join a group through their
# manifest's `source_group` (agents.base.SOURCE_GROUPS, the same names; a test keeps them equal).
SOURCE_GROUPS = ("help_center", "tickets", "macros", "store")


class MessagePayload(_Strict):
    id: str = Field(pattern=ID_PATTERN, description="Client-generated id; resends are deduplicated.")
    text: str = Field(min_length=1)
    # Only these source groups answer; absent or empty: every source.
    sources: list[str] | None = Field(None, max_length=len(SOURCE_GROUPS))

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str] | None) -> list[str] | None:
        if not v:
            return None
        unknown = [g for g in v if g not in SOURCE_GROUPS]
        if unknown:
            raise ValueError(f"unknown source {str(unknown[0])[:40]!r}; use {', '.join(SOURCE_GROUPS)}")
        return list(dict.fromkeys(v))


class RetryPayload(_Strict):
    id: str = Field(pattern=ID_PATTERN, description="Id of the user message whose reply was interrupted.")


class FeedbackPayload(_Strict):
    message_id: str = Field(pattern=ID_PATTERN)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)
    reasons: list[Literal["wrong_sources", "incorrect", "incomplete", "too_slow", "other"]] = Field(
        default_factory=list, max_length=5
    )
    # With `wrong_sources`: the agents that should have answered (or respond/clarify alone): the
    # label of a routing example (docs/learning_loop.md). Checked against the enabled agents.
    expected_agents: list[str] = Field(default_factory=list, max_length=MAX_EXPECTED_AGENTS)

    @field_validator("expected_agents")
    @classmethod
    def _expected(cls, v: list[str]) -> list[str]:
        names = list(dict.fromkeys(a.strip() for a in v))  # de-duplicated, first order kept
        bad = [a for a in names if not re.match(AGENT_NAME_PATTERN, a)]
        if bad:
            raise ValueError(f"not an agent name: {bad[0][:64]!r}")
        pseudo = [a for a in names if a in PSEUDO_LABELS]
        if pseudo and len(names) > 1:
            raise ValueError(f"{pseudo[0]!r} cannot be combined with other agents")
        return names

    @model_validator(mode="after")
    def _expected_needs_reason(self) -> FeedbackPayload:
        if self.expected_agents and "wrong_sources" not in self.reasons:
            raise ValueError("expected_agents is only accepted with the reason 'wrong_sources'")
        return self


class InsertPayload(_Strict):
    """The agent inserted the answer `message_id` (an assistant reply) into the ticket's reply."""

    message_id: str = Field(pattern=ID_PATTERN)


def parse(model: type[BaseModel], data: Any, *, max_message_chars: int | None = None) -> Any:
    """Validate one event payload, turning every failure into a ProtocolError with a clear message."""
    if not isinstance(data, dict):
        raise ProtocolError("invalid_payload", f"expected a JSON object, got {type(data).__name__}")
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ProtocolError("invalid_payload", f"{where}: {first['msg']}") from None
    if isinstance(parsed, MessagePayload) and max_message_chars and len(parsed.text) > max_message_chars:
        raise ProtocolError(
            "message_too_long", f"message is {len(parsed.text)} characters; the limit is {max_message_chars}"
        )
    if isinstance(parsed, JoinPayload):
        size = len(json.dumps(data.get("ticket"), default=str))
        if size > MAX_TICKET_JSON_BYTES:
            raise ProtocolError(
                "ticket_too_large", f"ticket context is {size} bytes; the limit is {MAX_TICKET_JSON_BYTES}"
            )
    return parsed


def error(
    code: str,
    message: str,
    *,
    retryable: bool = False,
    id: str | None = None,
    event: str | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """A chat:error payload. `id`: the user message it concerns; `event`: the client event that
    caused it (absent for a turn's own failures, which reach the whole session's room)."""
    payload: dict[str, Any] = {"code": code, "message": message, "retryable": retryable}
    if id is not None:
        payload["id"] = id
    if event is not None:
        payload["event"] = event
    if retry_after is not None:
        payload["retry_after"] = retry_after
    return payload


def cause_id(event: str, data: Any) -> str | None:
    """The message id a client event names, when it names a valid one: the id every chat:error
    it causes carries, so a client can tie the refusal to that message (even when the payload
    is refused for another reason)."""
    key = {MESSAGE: "id", RETRY: "id", FEEDBACK: "message_id", INSERT: "message_id"}.get(event)
    value = data.get(key) if key and isinstance(data, dict) else None
    return value if isinstance(value, str) and re.fullmatch(ID_PATTERN, value) else None
