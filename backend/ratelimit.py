"""Per-user rate limiting: a token bucket in Redis, shared by every instance.

Turns are the expensive thing a user can ask for, so `chat:message` and `chat:retry` spend a
token; a refused message is not stored, and the client may resend it (same id) later.
"""

from __future__ import annotations

import math

import redis

from orchestrator.turn import Principal

# Atomic refill-and-take. Redis' own clock, so instances with skewed clocks agree.
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed, wait = 0, 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.1f}s")
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, client: redis.Redis, *, per_minute: int, burst: int, prefix: str = "sa:rl") -> None:
        self.per_minute, self.burst, self.prefix = per_minute, burst, prefix
        self._script = client.register_script(_BUCKET)

    def check(self, principal: Principal, action: str = "turn") -> None:
        """Spend one token or raise RateLimited. `per_minute=0` disables the limit."""
        if self.per_minute <= 0:
            return
        key = f"{self.prefix}:{action}:{principal.tenant}:{principal.user_id}"
        allowed, wait = self._script(keys=[key], args=[self.per_minute / 60.0, self.burst])
        if not int(allowed):
            raise RateLimited(math.ceil(float(wait) * 10) / 10)
