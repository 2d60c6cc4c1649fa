"""The server's Redis connections over a real network path: Memorystore-style TLS with a private
CA, a pub/sub connection that goes silent, and the Socket.IO listener's end at app shutdown."""

from __future__ import annotations

import logging
import time

import pytest
import redis

from backend import redis_manager
from backend.redis_embedded import EmbeddedRedis
from backend.redis_manager import redis_connection_options
from testkit.client import SidebarClient
from tests.support.redis_proxy import RedisProxy, make_private_ca

pytestmark = pytest.mark.integration

TICKET = {"id": "4242", "subject": "Where is my order?"}
CHANNEL = "sidebar-assistant"


def wait_for_subscribers(redis_url: str, n: int, timeout: float = 15) -> None:
    """Pub/sub is at-most-once: a turn published before an instance's listener has subscribed
    never reaches that instance's tabs."""
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while (count := dict(client.pubsub_numsub(CHANNEL))[CHANNEL.encode()]) < n:
            assert time.monotonic() < deadline, f"{count} of {n} listeners subscribed"
            time.sleep(0.1)
    finally:
        client.close()


def _two_tabs_on_two_instances(live_app, tokens, direct_url: str, **settings):
    a, b = live_app(settings=settings), live_app(settings=settings)
    tab_a, tab_b = SidebarClient(), SidebarClient()
    tab_a.connect(a.url, tokens.mint("acme", "alice"))
    tab_b.connect(b.url, tokens.mint("acme", "alice"))
    tab_a.join(TICKET)
    tab_b.join(TICKET)
    wait_for_subscribers(direct_url, 2)
    return (a, b), (tab_a, tab_b)


def test_memorystore_tls_with_the_instance_ca_serves_both_redis_clients(
    live_app, tokens, redis_url, tmp_path
):
    """Memorystore in-transit encryption
    (https://cloud.google.com/memorystore/docs/redis/in-transit-encryption): "When in-transit
    encryption is enabled Redis clients communicate exclusively across a secure port connection.
    Redis clients that are not configured for TLS will be blocked", and each client needs "A
    Certificate Authority installed on the client machine" — the instance's own CA, downloaded as
    described in https://cloud.google.com/memorystore/docs/redis/manage-in-transit-encryption.
    python-socketio's RedisManager: "To use a TLS connection, use rediss://"
    (https://python-socketio.readthedocs.io/en/stable/api.html#socketio.RedisManager).

    Here Redis is reachable only through TLS with a certificate from a private CA. With
    REDIS_TLS_CA_FILE both clients work: sessions (the join) and Socket.IO pub/sub (a turn on
    instance A streams to a tab on instance B). Without the CA the server is refused."""
    tls = make_private_ca(tmp_path / "tls")
    proxy = RedisProxy(redis_url, tls=tls.server_context())
    try:
        url = proxy.url("rediss")
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            redis.Redis.from_url(url, **redis_connection_options(url)).ping()  # system CAs only
        (_a, _b), (tab_a, tab_b) = _two_tabs_on_two_instances(
            live_app, tokens, redis_url, redis_url=url, redis_tls_ca_file=tls.ca
        )
        tab_a.ask("tls-1", "over TLS")
        done = tab_b.wait_for("chat:done", lambda d: d["id"] == "tls-1", timeout=15)
        assert done["message"]["text"] == "echo: over TLS"
        for tab in (tab_a, tab_b):
            tab.disconnect()
    finally:
        proxy.close()


def test_silently_dead_pubsub_connection_is_noticed_and_replaced(live_app, tokens, redis_url, monkeypatch):
    """redis-py (https://github.com/redis/redis-py/commit/f60b2b07caba276b9308340b8ea06e5844f3f0ab):
    for PubSub connections, "calling get_message() or listen() will send a health check anytime a
    message has not been read on the PubSub connection for health_check_interval seconds" — a
    check happens only when the listener calls in; a listen() blocked on a connection whose peer
    vanished without FIN/RST never returns, and the instance stops hearing other instances.

    The proxy swallows everything on the existing pub/sub connections (kept open, no error): the
    listener must notice within its health-check period and resubscribe, after which a turn on
    instance A reaches the tab on instance B again."""
    monkeypatch.setattr(redis_manager, "HEALTH_CHECK_INTERVAL_S", 1)
    monkeypatch.setattr(redis_manager, "PONG_TIMEOUT_S", 1.0)
    proxy = RedisProxy(redis_url)
    try:
        (_a, _b), (tab_a, tab_b) = _two_tabs_on_two_instances(
            live_app, tokens, redis_url, redis_url=proxy.url()
        )
        tab_a.ask("before", "first")
        tab_b.wait_for("chat:done", lambda d: d["id"] == "before", timeout=10)
        assert proxy.silence_subscribers() == 2
        # The silenced connections still count at the server (it never heard them go); the
        # listeners' new subscriptions come on top: quiet period + PING deadline + reconnect.
        wait_for_subscribers(redis_url, 4, timeout=10)
        tab_a.ask("after", "second")
        done = tab_b.wait_for("chat:done", lambda d: d["id"] == "after", timeout=10)
        assert done["message"]["text"] == "echo: second"
        for tab in (tab_a, tab_b):
            tab.disconnect()
    finally:
        proxy.close()


def test_app_shutdown_stops_the_socketio_redis_listener(live_app, tokens, tmp_path):
    """python-socketio's RedisManager runs a listener thread that, on any Redis error, logs
    "Cannot receive from redis... retrying" and reconnects, forever
    (https://python-socketio.readthedocs.io/en/stable/server.html#using-a-message-queue: the
    manager "subscribes" each server to the queue for its lifetime). An app that has shut down
    must end it; otherwise every finished app keeps logging once its Redis is gone."""
    own = EmbeddedRedis(tmp_path / "redis", persist=False)
    try:
        app = live_app(settings={"redis_url": own.url})
        tab = SidebarClient()
        tab.connect(app.url, tokens.mint("acme", "alice"))  # the first connect starts the listener
        tab.join(TICKET)
        tab.disconnect()
        manager = app.services.socketio.server.manager
        assert manager.thread is not None
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = records.append  # type: ignore[method-assign]
        logger = manager._get_logger()
        logger.addHandler(handler)
        try:
            app.services.shutdown()
            own.shutdown()
            time.sleep(2.5)  # the old listener retried every second
        finally:
            logger.removeHandler(handler)
        assert [r.getMessage() for r in records if "Cannot receive from redis" in r.getMessage()] == []
        assert manager.stop(timeout=5) is True  # the thread has exited
    finally:
        own.shutdown()
