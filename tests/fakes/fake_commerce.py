"""A local HTTP server speaking the commerce tool API (see agents/commerce.py for the routes).

Serves the demo store's data through `LocalCommerceAPI`, checks a bearer key when one is set,
and injects faults per request: `server.fail(kind, times=..., path=...)` queues HTTP 429 (with
Retry-After), 500/503, a slow answer, a garbage body, an oversized body or a dropped connection.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from agents.commerce import LocalCommerceAPI


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or refuse an oversized body hang up mid-write: expected here.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Fault:
    kind: str  # "429" | "500" | "503" | "slow" | "garbage" | "huge" | "drop"
    path: str = ""  # only requests whose path starts with this
    retry_after: str | None = "0"
    delay_s: float = 1.0


class FakeCommerce:
    def __init__(self, api: LocalCommerceAPI | None = None, *, api_key: str | None = None) -> None:
        self.api = api or LocalCommerceAPI()
        self.api_key = api_key
        self.faults: deque[Fault] = deque()
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path with query, headers)
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, kind: str, *, times: int = 1, path: str = "", **options: Any) -> None:
        with self._lock:
            self.faults.extend(Fault(kind, path, **options) for _ in range(times))

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.path):
                    self.faults.remove(fault)
                    return fault
        return None

    def __enter__(self) -> FakeCommerce:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- routing --------------------------------------------------------------------------------
    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        api = self.api
        match parts:
            case ["orders", number]:
                order = api.get_order(number)
                return (200, order) if order else (404, {"error": "not found"})
            case ["customers"]:
                key = (query.get("email") or query.get("zendesk_user_id") or [""])[0]
                customer = api.get_customer(key) if key else None
                return 200, {"customers": [customer] if customer else []}
            case ["customers", cid]:
                customer = api.get_customer(cid)
                return (200, customer) if customer else (404, {"error": "not found"})
            case ["customers", cid, "orders"]:
                customer = api.get_customer(cid)
                if not customer:
                    return 404, {"error": "not found"}
                return 200, {"orders": api.orders_for_customer(customer["email"])}
            case ["products"]:
                q = (query.get("q") or [""])[0]
                limit = int((query.get("limit") or ["5"])[0])
                return 200, {"products": api.search_products(q, limit) if q else []}
            case ["products", sku]:
                product = api.get_product(sku)
                return (200, product) if product else (404, {"error": "not found"})
        return 404, {"error": "no such route"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                with fake._lock:
                    fake.requests.append((self.path, dict(self.headers)))
                fault = fake._next_fault(parsed.path)
                if fault is not None:
                    if fault.kind == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if fault.kind == "slow":
                        time.sleep(fault.delay_s)
                    elif fault.kind == "429":
                        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                        return self._send(429, b'{"error": "rate limited"}', extra)
                    elif fault.kind in ("500", "503"):
                        return self._send(int(fault.kind), b"<html>upstream error</html>")
                    elif fault.kind == "garbage":
                        return self._send(200, b"<html>not json{{")
                    elif fault.kind == "huge":
                        return self._send(200, b'{"pad": "' + b"x" * 3_000_000 + b'"}')
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(401, b'{"error": "unauthorized"}')
                status, payload = fake.route(parsed.path, parse_qs(parsed.query))
                self._send(status, json.dumps(payload).encode())

        return Handler
