"""A per-model circuit breaker: fail fast while Vertex is down, let one probe through to close it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from .config import BreakerPolicy


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker.

    CLOSED counts consecutive failures; at ``failure_threshold`` it opens. OPEN rejects calls until
    ``reset_timeout_s`` has passed, then lets exactly one probe through (HALF_OPEN): its success
    closes the breaker, its failure opens it for another cool-down.
    """

    def __init__(self, policy: BreakerPolicy, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current_state()

    def _current_state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.policy.reset_timeout_s
        ):
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
        return self._state

    def try_acquire(self) -> bool:
        """May a call go out now? In HALF_OPEN only the first caller gets True (the probe)."""
        with self._lock:
            state = self._current_state()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            return False

    def retry_in(self) -> float:
        """Seconds until the next probe may go out (0 when not open)."""
        with self._lock:
            if self._current_state() is not BreakerState.OPEN:
                return 0.0
            return max(0.0, self.policy.reset_timeout_s - (self._clock() - self._opened_at))

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probe_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            state = self._current_state()
            self._failures += 1
            if state is BreakerState.HALF_OPEN or self._failures >= self.policy.failure_threshold:
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()
                self._probe_in_flight = False

    def release(self) -> None:
        """The call went out but proved nothing either way (e.g. the caller's own bad request)."""
        with self._lock:
            self._probe_in_flight = False


class BreakerBoard:
    """One breaker per model name, created on first use."""

    def __init__(self, policy: BreakerPolicy, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def for_model(self, model: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(model)
            if breaker is None:
                breaker = self._breakers[model] = CircuitBreaker(self.policy, clock=self._clock)
            return breaker
