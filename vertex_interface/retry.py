"""Retries with exponential backoff and jitter, honouring Retry-After (tenacity does the looping)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import tenacity

from .config import RetryPolicy
from .errors import LLMError, RateLimited

log = logging.getLogger(__name__)


class _Backoff(tenacity.wait.wait_base):
    """Exponential-with-jitter, except that a server's Retry-After wins when it is sent."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self._exp = tenacity.wait_exponential_jitter(
            initial=policy.initial_backoff_s,
            max=policy.max_backoff_s,
            exp_base=policy.multiplier,
            jitter=policy.jitter_s,
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_retry_after_s)
        return self._exp(retry_state)


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[tenacity.RetryCallState], None] | None = None,
) -> tenacity.Retrying:
    stop = tenacity.stop_after_attempt(policy.max_attempts)
    if policy.total_deadline_s is not None:
        stop = stop | tenacity.stop_before_delay(policy.total_deadline_s)

    def retry_if(exc: BaseException) -> bool:
        if not (isinstance(exc, LLMError) and exc.retryable):
            return False
        # A Retry-After longer than we are willing to wait: fail now instead of sleeping on it.
        return not (
            isinstance(exc, RateLimited)
            and exc.retry_after is not None
            and exc.retry_after > policy.max_retry_after_s
        )

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info(
            "LLM call attempt %d failed (%s); retrying in %.2fs",
            state.attempt_number,
            type(exc).__name__,
            state.next_action.sleep if state.next_action else 0.0,
        )
        if on_retry is not None:
            on_retry(state)

    return tenacity.Retrying(
        stop=stop,
        wait=_Backoff(policy),
        retry=tenacity.retry_if_exception(retry_if),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
