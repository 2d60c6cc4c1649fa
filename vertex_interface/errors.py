"""Typed errors: every failure of an LLM call surfaces as one of these, never as an SDK/HTTP exception.

Callers degrade on the type (``InvalidOutput`` -> deterministic fallback, ``Unavailable`` -> offline
answer, ``Blocked`` -> tell the user, ...). ``retryable`` says whether trying the same call again later
could succeed; the vertex backend already retried retryable errors before raising them.
"""

from __future__ import annotations

from typing import Any


class LLMError(Exception):
    """Base class. ``model`` names the model the call was for, when known."""

    retryable: bool = False

    def __init__(self, message: str, *, model: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.model = model
        if retryable is not None:
            self.retryable = retryable


class RateLimited(LLMError):
    """HTTP 429 / RESOURCE_EXHAUSTED. ``retry_after`` is the server's Retry-After in seconds, if sent."""

    retryable = True

    def __init__(self, message: str, *, model: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, model=model)
        self.retry_after = retry_after


class Timeout(LLMError):
    """The call (or one read of a stream) took longer than the configured timeout, or a 408/504."""

    retryable = True


class Unavailable(LLMError):
    """The model cannot be reached or used: 5xx, connection failure, malformed reply, circuit open,
    or a capability the backend does not offer (offline ``generate_json``)."""

    retryable = False


class Blocked(LLMError):
    """Safety filters blocked the prompt (``promptFeedback.blockReason``) or the answer
    (``finishReason`` SAFETY and friends). ``safety`` holds the ratings the model returned."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        reason: str,
        safety: tuple[Any, ...] = (),
        usage: Any = None,
    ) -> None:
        super().__init__(message, model=model)
        self.reason = reason
        self.safety = safety
        self.usage = usage


class InvalidOutput(LLMError):
    """The model answered, but not in a usable shape (JSON that does not validate after one repair
    attempt, or an empty answer). ``raw`` is the last text received; ``detail`` the validation error."""

    def __init__(self, message: str, *, model: str | None = None, raw: str = "", detail: str = "") -> None:
        super().__init__(message, model=model)
        self.raw = raw
        self.detail = detail


class Vetoed(LLMError):
    """A before-callback refused the request. ``reason`` is its explanation, ``callback`` its name."""

    def __init__(self, reason: str, *, callback: str = "", model: str | None = None) -> None:
        super().__init__(f"vetoed by {callback or 'callback'}: {reason}", model=model)
        self.reason = reason
        self.callback = callback
