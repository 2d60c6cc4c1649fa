"""Turn handlers the backend can run without the orchestrator."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.turn import TurnEvent, TurnFailed, TurnRequest


class NotConfiguredHandler:
    """Says plainly that no assistant is wired in, instead of pretending to answer.

    The default until the orchestrator provides the real handler (set TURN_HANDLER).
    """

    def handle(self, request: TurnRequest) -> Iterator[TurnEvent]:
        raise TurnFailed(
            "not_configured",
            "No assistant is configured on this server (TURN_HANDLER). Your message was saved.",
            retryable=True,
        )
        yield  # pragma: no cover - makes this a generator like every handler
