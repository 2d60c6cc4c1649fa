"""The Redis connection options and the python-socketio range backend/redis_manager.py relies on."""

from __future__ import annotations

import inspect
import re
import socket
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import socketio
from packaging.specifiers import SpecifierSet
from socketio.pubsub_manager import PubSubManager

from backend.redis_manager import SOCKETIO_SPEC, redis_connection_options
from backend.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _pyproject_spec(name: str) -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        m = re.match(rf"^{re.escape(name)}\s*(\[[^\]]*\])?\s*(?P<spec>[^;]*)", dep)
        if m:
            return m["spec"].strip()
    raise AssertionError(f"{name} is not a dependency in pyproject.toml")


def test_python_socketio_stays_in_the_range_the_manager_override_was_checked_against():
    """backend/redis_manager.py overrides RedisManager internals (_redis_listen_with_retries,
    _thread) and relies on _redis_connect() and `redis_options`. python-socketio's change log
    (https://github.com/miguelgrinberg/python-socketio/blob/main/CHANGES.md) shows these moving
    between releases: 5.14.0 "Replace pickle with json in message queue communications" (all
    instances must agree), 5.14.1 "Restore support for rediss:// URLs" and "Add support for Redis
    connections using unix sockets", 5.15.0 "Retry initial Redis connection", 5.16.3 "Catch all
    exceptions in redis and rabbitmq client managers". So the dependency is pinned to the
    releases checked, and this test fails when the installed version leaves them."""
    assert _pyproject_spec("python-socketio") == SOCKETIO_SPEC
    installed = version("python-socketio")
    assert installed in SpecifierSet(SOCKETIO_SPEC), (
        f"python-socketio {installed} is outside {SOCKETIO_SPEC}: re-check backend/redis_manager.py "
        "against its RedisManager and widen the range"
    )
    # The internals the override touches, with the shapes it assumes.
    assert "redis_options" in inspect.signature(socketio.RedisManager.__init__).parameters
    for name in ("_redis_connect", "_redis_listen_with_retries", "_listen"):
        assert callable(getattr(socketio.RedisManager, name, None)), name
    assert "_redis_listen_with_retries" in inspect.getsource(socketio.RedisManager._listen)
    assert "self._listen()" in inspect.getsource(PubSubManager._thread)
    assert "self.server.start_background_task(self._thread)" in inspect.getsource(PubSubManager.initialize)


def test_tcp_connections_get_health_checks_keepalive_and_timeouts():
    """redis-py (https://github.com/redis/redis-py/commit/f60b2b07caba276b9308340b8ea06e5844f3f0ab):
    `health_check_interval=N` "ensures that a health check is performed just before command
    execution anytime the underlying connection has been idle for more than N seconds"; off by
    default. TCP keepalive (`socket_keepalive`) is off by default too."""
    opts = redis_connection_options("redis://10.0.0.3:6379/0")
    assert opts["health_check_interval"] > 0
    assert opts["socket_keepalive"] is True
    assert opts["socket_timeout"] and opts["socket_connect_timeout"]
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert opts["socket_keepalive_options"][socket.TCP_KEEPIDLE] <= 60
    # A unix socket takes no TCP options (redis-py's UnixDomainSocketConnection refuses them).
    unix = redis_connection_options("unix:///tmp/redis.sock")
    assert "socket_keepalive" not in unix and unix["health_check_interval"] > 0
    import redis

    redis.Redis.from_url("unix:///tmp/redis.sock", **unix).connection_pool.make_connection()


def test_rediss_url_with_a_ca_file_verifies_the_server(tmp_path):
    """Memorystore in-transit encryption
    (https://cloud.google.com/memorystore/docs/redis/in-transit-encryption): "Redis clients that
    are not configured for TLS will be blocked", and clients need "A Certificate Authority
    installed on the client machine accessing your Redis instance" — the instance's own server CA
    (https://cloud.google.com/memorystore/docs/redis/manage-in-transit-encryption, "Downloading
    the Certificate Authority")."""
    import redis

    ca = tmp_path / "server-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    url = "rediss://:auth@10.0.0.3:6378/0"
    opts = redis_connection_options(url, ca_file=ca)
    assert opts["ssl_ca_certs"] == str(ca) and opts["ssl_cert_reqs"] == "required"
    pool = redis.Redis.from_url(url, **opts).connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["ssl_ca_certs"] == str(ca)
    with pytest.raises(ValueError, match="rediss://"):
        redis_connection_options("redis://10.0.0.3:6379/0", ca_file=ca)

    s = Settings(_env_file=None, redis_url=url, redis_tls_ca_file=ca)
    assert s.redis_tls_ca_file == ca
    with pytest.raises(ValueError, match="rediss://"):
        Settings(_env_file=None, redis_url="redis://10.0.0.3:6379/0", redis_tls_ca_file=ca)
    with pytest.raises(ValueError, match="not a file"):
        Settings(_env_file=None, redis_url=url, redis_tls_ca_file=tmp_path / "missing.pem")
