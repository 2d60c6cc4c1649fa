"""A real python-socketio client that records every server event, for tests and benches."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import socketio

from backend import protocol


class SidebarClient:
    def __init__(self) -> None:
        self.sio = socketio.Client(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._cond = threading.Condition()
        self._queue: queue.Queue = queue.Queue()
        self.connect_errors: list[Any] = []
        for name in protocol.SERVER_EVENTS:
            self.sio.on(name, self._recorder(name))
        self.sio.on("connect_error", self.connect_errors.append)

    def _recorder(self, name: str):
        def record(data: Any = None) -> None:
            with self._cond:
                self.events.append((name, data))
                self._cond.notify_all()

        return record

    def connect(self, url: str, token: str | None, *, transports: list[str] | None = None) -> None:
        auth = {"token": token} if token is not None else None
        self.sio.connect(url, auth=auth, transports=transports or ["websocket"], wait_timeout=10)

    def emit(self, event: str, data: Any = None) -> None:
        self.sio.emit(event, data)

    def wait_for(self, event: str, pred=lambda d: True, timeout: float = 10.0, start: int = 0) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for name, data in self.events[start:]:
                    if name == event and pred(data):
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no {event} within {timeout}s; got {[n for n, _ in self.events][-20:]}"
                    )
                self._cond.wait(left)

    def of(self, event: str) -> list[Any]:
        with self._cond:
            return [d for n, d in self.events if n == event]

    def join(self, ticket: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        start = len(self.events)
        self.emit(protocol.JOIN, {"ticket": ticket})
        return self.wait_for(protocol.STATE, timeout=timeout, start=start)

    def ask(self, message_id: str, text: str, timeout: float = 15.0) -> dict[str, Any]:
        self.emit(protocol.MESSAGE, {"id": message_id, "text": text})
        return self.wait_for(protocol.DONE, lambda d: d["id"] == message_id, timeout=timeout)

    def disconnect(self, *, abort: bool = False) -> None:
        """abort=True drops the socket like a closed laptop lid (no close handshake)."""
        if not self.sio.connected:
            return
        if abort:
            self.sio.eio.disconnect(abort=True)
        else:
            self.sio.disconnect()
