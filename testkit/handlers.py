"""Turn handlers that drive the backend in tests (the orchestrator is not needed here)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from orchestrator.turn import Delta, Done, Thinking, TurnEvent, TurnFailed, TurnRequest


class EchoHandler:
    """Streams the question back word by word; slows down when TEST_TURN_DELAY is set, so a
    test can kill a server in the middle of a turn. Special texts trigger failures."""

    def __init__(self, delay: float | None = None) -> None:
        self.delay = float(os.environ.get("TEST_TURN_DELAY", "0")) if delay is None else delay

    def handle(self, request: TurnRequest) -> Iterator[TurnEvent]:
        if request.text == "please fail":
            raise TurnFailed("agent_failed", "the test agent failed", retryable=True)
        if request.text == "please crash":
            raise RuntimeError("boom")
        yield Thinking("reading the ticket", agent="test")
        words = f"echo: {request.text}".split(" ")
        for i, word in enumerate(words):
            if request.cancel.is_set():
                return
            if self.delay:
                time.sleep(self.delay)
            yield Delta(word if i == 0 else " " + word)
        yield Done(
            text=" ".join(words),
            citations=[
                {"n": 1, "title": "Test source", "url": "https://example.invalid/1", "kind": "article"}
            ],
            routing={"action": "respond", "router": "test", "routes": []},
            timings={"handler_s": 0.0},
            cost={"input_tokens": len(request.text), "output_tokens": len(words)},
        )


class HangingHandler:
    """Never finishes: exercises the turn timeout."""

    def handle(self, request: TurnRequest) -> Iterator[TurnEvent]:
        yield Thinking("thinking forever")
        request.cancel.wait(60)
