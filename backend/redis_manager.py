"""Redis connections: the options both clients share, and the Socket.IO Redis manager.

The manager differs from python-socketio's in three ways:

- **Short reconnect backoff.** python-socketio's subscriber doubles its wait after each failed
  reconnect up to 60 s, and every event published meanwhile is lost to this instance's clients
  (pub/sub is at-most-once). After a Memorystore failover that means up to a minute of silent
  sidebars although Redis is back after seconds; the wait here is one second.
- **A listener that notices a dead connection.** python-socketio reads with a blocking
  `pubsub.listen()`. redis-py sends its health-check PING only when `get_message()`/`listen()` is
  called, so a connection that died silently (no FIN/RST: a failover, a NAT or VPC path reset)
  blocks that read forever and the instance stops receiving other instances' events. Here the
  listener polls with `get_message(timeout=…)`, PINGs after a quiet `HEALTH_CHECK_INTERVAL_S`
  and reconnects when the PONG does not come back within `PONG_TIMEOUT_S`.
- **A clean stop.** `stop()` ends the listener thread and closes its connection, so an app that
  shut down (every test app, a draining instance) does not go on logging "Cannot receive from
  redis… retrying" once its Redis is gone.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import socketio

# The python-socketio releases this module was checked against (pyproject.toml pins the same
# range; tests/unit/test_redis_connections.py fails when the installed version leaves it). What
# it relies on beyond the public API: RedisManager._redis_connect() builds self.redis and
# self.pubsub from self.redis_url and self.redis_options; RedisManager._listen() iterates
# self._redis_listen_with_retries(); PubSubManager._thread() is the listener thread's target
# and loops over self._listen(). 5.14.1 is the first release that accepts unix:// (the embedded
# Redis) and rediss:// (Memorystore TLS) URLs and carries JSON, not pickle, on the channel.
SOCKETIO_SPEC = ">=5.14.1,<5.19"

MAX_RETRY_SLEEP_S = 1.0
HEALTH_CHECK_INTERVAL_S = 10  # redis-py's health check and the listener's quiet period
PONG_TIMEOUT_S = 5.0  # no PONG this long after the listener's PING: the connection is dead
POLL_S = 0.5  # the listener's read timeout: how quickly it sees stop() and its PING deadline
SOCKET_TIMEOUT_S = 10.0  # a command on a silently dead connection fails instead of hanging
CONNECT_TIMEOUT_S = 5.0
LIVENESS_PING = "sidebar-assistant-listener"
# TCP keepalive: the kernel probes an idle connection after 30 s and gives up after 3 unanswered
# probes 10 s apart, so an idle connection to a vanished peer errors instead of lingering.
_KEEPALIVE = {
    name: value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}


def redis_connection_options(url: str, *, ca_file: Path | str | None = None) -> dict[str, Any]:
    """Keyword arguments for `redis.Redis.from_url(url, ...)`, the same for every client.

    Health checks and timeouts on every connection; TCP keepalive on TCP connections;
    with `rediss://`, the server certificate is verified against `ca_file` (Memorystore's
    in-transit encryption uses a per-instance CA that no system trust store has).
    """
    scheme = urlparse(url).scheme.lower()
    options: dict[str, Any] = {
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
    }
    if scheme in ("redis", "rediss"):  # unix:// connections take no TCP options
        options["socket_keepalive"] = True
        options["socket_keepalive_options"] = {getattr(socket, k): v for k, v in _KEEPALIVE.items()}
    if ca_file is not None:
        if scheme != "rediss":
            raise ValueError("a Redis CA file needs a rediss:// URL (TLS); the URL is not TLS")
        options["ssl_ca_certs"] = str(ca_file)
        options["ssl_cert_reqs"] = "required"
    return options


class _ListenerStopped(BaseException):
    """Ends the listener thread: a BaseException so python-socketio's `except Exception` retry
    loop in PubSubManager._thread() lets it through instead of logging and listening again."""


class RedisManager(socketio.RedisManager):
    def __init__(self, url: str, *, channel: str, ca_file: Path | str | None = None, **kwargs: Any) -> None:
        super().__init__(
            url, channel=channel, redis_options=redis_connection_options(url, ca_file=ca_file), **kwargs
        )
        self._stopping = threading.Event()
        self._listener_done = threading.Event()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop receiving (app shutdown). The listener exits within POLL_S and closes its
        connection; with `timeout`, wait that long for it. True once it has exited."""
        self._stopping.set()
        if getattr(self, "thread", None) is None:  # never initialised: no listener to wait for
            return True
        return self._listener_done.wait(timeout) if timeout else self._listener_done.is_set()

    def _thread(self) -> None:
        try:
            if not self._stopping.is_set():
                super()._thread()
        except _ListenerStopped:
            pass
        finally:
            self._listener_done.set()

    def _redis_listen_with_retries(self) -> Iterator[Any]:
        pubsub = None
        while not self._stopping.is_set():
            try:
                if pubsub is None:
                    self._redis_connect()
                    # Our own reference: a failed publish reconnects and replaces self.pubsub
                    # with a fresh, unsubscribed one.
                    pubsub = self.pubsub
                    pubsub.subscribe(self.channel)
                    last_read, ping_sent = time.monotonic(), None
                message = pubsub.get_message(timeout=POLL_S)
                now = time.monotonic()
                if message is not None:
                    last_read, ping_sent = now, None
                    if message.get("type") != "pong":
                        yield message
                elif ping_sent is None and now - last_read > HEALTH_CHECK_INTERVAL_S:
                    pubsub.ping(LIVENESS_PING)
                    ping_sent = now
                elif ping_sent is not None and now - ping_sent > PONG_TIMEOUT_S:
                    raise ConnectionError(f"no PONG from redis within {PONG_TIMEOUT_S:g} s")
            except Exception as exc:  # any failure means: reconnect and resubscribe
                if self._stopping.is_set():
                    break
                self._get_logger().error(
                    f"Cannot receive from redis... retrying in {MAX_RETRY_SLEEP_S} secs",
                    extra={"redis_exception": str(exc)},
                )
                _close(pubsub)
                pubsub = None
                self._stopping.wait(MAX_RETRY_SLEEP_S)
        _close(pubsub)
        raise _ListenerStopped


def _close(pubsub: Any) -> None:
    if pubsub is not None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            pubsub.close()
