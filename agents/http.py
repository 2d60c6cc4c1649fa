"""The one HTTP client helper for agents that call external APIs (order systems, catalogues...).

`ApiClient(base_url, name=..., api_key=...)` gives a `requests.Session` with connect/read
timeouts, retries (exponential backoff with jitter; a 429's Retry-After is honoured up to a cap)
on 429, 5xx and connection errors, a circuit breaker per base URL shared by every client of that
URL (`vertex_interface.breaker.CircuitBreaker`), and JSON decoding with a size cap.

Failures surface as `agents.base.ToolUnavailable` (the system is down: the answer says so) or
`ToolError` (a request the API refused). Messages are short and safe: the client's name and an
HTTP status, never URLs with query strings, headers or keys.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import tenacity
from pydantic import BaseModel, ConfigDict, Field

from agents.base import ToolError, ToolUnavailable
from vertex_interface.breaker import BreakerState, CircuitBreaker
from vertex_interface.config import BreakerPolicy

log = logging.getLogger(__name__)


class HttpClientConfig(BaseModel):
    """Timeouts, retries, breaker and size limits of one API client (typed, validated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout_s: float = Field(2.0, gt=0, le=60)
    read_timeout_s: float = Field(5.0, gt=0, le=120)
    max_attempts: int = Field(3, ge=1, le=10)
    initial_backoff_s: float = Field(0.2, ge=0, le=30)
    max_backoff_s: float = Field(2.0, ge=0, le=60)
    jitter_s: float = Field(0.2, ge=0, le=10)
    # A Retry-After longer than this fails now rather than sleeping through an agent's timeout.
    max_retry_after_s: float = Field(5.0, ge=0, le=120)
    # Whole call incl. retries: no new attempt starts after this.
    total_deadline_s: float = Field(15.0, gt=0, le=300)
    max_response_bytes: int = Field(2_000_000, ge=1024, le=100_000_000)
    breaker: BreakerPolicy = BreakerPolicy(failure_threshold=5, reset_timeout_s=30.0)
    user_agent: str = "zendesk-sidebar-assistant"


class BreakerRegistry:
    """One breaker per base URL. Share one registry per process so every client of an API
    (one per tenant or session) sees the same state."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def for_url(self, base_url: str, policy: BreakerPolicy) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(base_url)
            if breaker is None:
                breaker = self._breakers[base_url] = CircuitBreaker(policy, clock=self._clock)
            return breaker


#: The process-wide default; tests and the backend may pass their own.
DEFAULT_BREAKERS = BreakerRegistry()


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def normalise_base_url(base_url: str) -> str:
    if not isinstance(base_url, str):
        raise ValueError("base_url must be a string")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("base_url must be an absolute http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("base_url must not carry a query, fragment or credentials (use api_key)")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def path_segment(value: str) -> str:
    """Quote one path segment (an order number, a SKU): no '/' or '..' can slip through."""
    text = str(value)
    if not text or text in (".", ".."):
        raise ToolError("invalid identifier")
    return quote(text, safe="")


class ApiClient:
    """JSON over HTTP for one base URL. Thread-safe for concurrent calls (requests' Session
    with its connection pool is shared; per-call state stays local)."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "API",
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        config: HttpClientConfig | None = None,
        breakers: BreakerRegistry | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.name = name
        self.config = config or HttpClientConfig()
        self.breaker = (breakers or DEFAULT_BREAKERS).for_url(self.base_url, self.config.breaker)
        self._sleep = sleep
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = self.config.user_agent
        self._session.headers["Accept"] = "application/json"
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"
        self._session.headers.update(headers or {})

    def __repr__(self) -> str:  # never shows headers (they may hold the key)
        return f"ApiClient({self.name!r}, {self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public --------------------------------------------------------------------------------
    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, not_found: Any = None) -> Any:
        """GET `base_url + path` → decoded JSON; `not_found` is returned for HTTP 404."""
        return self.request_json("GET", path, params=params, not_found=not_found)

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        not_found: Any = None,
    ) -> Any:
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        url = self.base_url + path
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.config.max_attempts)
            | tenacity.stop_before_delay(self.config.total_deadline_s),
            wait=self._wait,
            retry=tenacity.retry_if_exception(self._should_retry),
            sleep=self._sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )
        try:
            return retrying(self._attempt, method, url, params, body, not_found)
        except _Retryable as exc:
            raise ToolUnavailable(exc.message) from None

    # -- one attempt ---------------------------------------------------------------------------
    def _attempt(
        self, method: str, url: str, params: Mapping[str, Any] | None, body: Any, not_found: Any
    ) -> Any:
        if not self.breaker.try_acquire():
            raise ToolUnavailable(
                f"{self.name} is unavailable (circuit open, next try in {self.breaker.retry_in():.0f} s)"
            )
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=body,
                timeout=(self.config.connect_timeout_s, self.config.read_timeout_s),
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout:
            self.breaker.record_failure()
            raise _Retryable(f"{self.name} timed out") from None
        except requests.RequestException:
            self.breaker.record_failure()
            raise _Retryable(f"{self.name} could not be reached") from None
        with response:
            status = response.status_code
            if status == 429 or status >= 500:
                self.breaker.record_failure()
                retry_after = (
                    _parse_retry_after(response.headers.get("Retry-After")) if status == 429 else None
                )
                raise _Retryable(f"{self.name} is unavailable (HTTP {status})", retry_after)
            if status == 404:
                self.breaker.record_success()  # the API answered; the record just isn't there
                return not_found
            if status in (401, 403):
                self.breaker.release()
                raise ToolUnavailable(f"{self.name} refused our credentials (HTTP {status})")
            if status >= 300:
                self.breaker.release()
                raise ToolError(f"{self.name} rejected the request (HTTP {status})")
            try:
                raw = self._read_capped(response)
            except requests.RequestException:
                self.breaker.record_failure()
                raise _Retryable(f"{self.name} broke off the response") from None
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self.breaker.record_failure()
            raise ToolUnavailable(f"{self.name} returned a malformed response") from None
        self.breaker.record_success()
        return data

    def _read_capped(self, response: requests.Response) -> bytes:
        cap = self.config.max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            self.breaker.release()
            raise ToolError(f"{self.name} response is larger than {cap} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > cap:
                self.breaker.release()
                raise ToolError(f"{self.name} response is larger than {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- retry policy --------------------------------------------------------------------------
    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, _Retryable):
            return False
        # Waiting longer than we are willing to would only burn the agent's timeout.
        return exc.retry_after is None or exc.retry_after <= self.config.max_retry_after_s

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.config.max_retry_after_s)
        return tenacity.wait_exponential_jitter(
            initial=self.config.initial_backoff_s, max=self.config.max_backoff_s, jitter=self.config.jitter_s
        )(state)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info(
            "%s attempt %d failed (%s); retrying in %.2fs",
            self.name,
            state.attempt_number,
            exc,
            state.next_action.sleep if state.next_action else 0.0,
        )

    @property
    def available(self) -> bool:
        return self.breaker.state is not BreakerState.OPEN
