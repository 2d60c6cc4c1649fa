"""The Socket.IO Redis manager with a short reconnect backoff.

python-socketio's subscriber doubles its wait after each failed reconnect up to 60 s, and
every event published meanwhile is lost to this instance's clients (pub/sub is at-most-once).
After a Memorystore failover or restart that means up to a minute of silent sidebars although
Redis is back after seconds. Capping the wait at one second bounds that window; the cost is a
reconnect attempt per second while Redis is really down.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import socketio

MAX_RETRY_SLEEP_S = 1.0


class RedisManager(socketio.RedisManager):
    def _redis_listen_with_retries(self) -> Iterator[Any]:
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    self.pubsub.subscribe(self.channel)
                    subscribed = True
                yield from self.pubsub.listen()
            except Exception as exc:  # any failure means: reconnect and resubscribe
                self._get_logger().error(
                    f"Cannot receive from redis... retrying in {MAX_RETRY_SLEEP_S} secs",
                    extra={"redis_exception": str(exc)},
                )
                subscribed = False
                time.sleep(MAX_RETRY_SLEEP_S)
