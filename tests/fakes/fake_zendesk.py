"""A local HTTP server speaking the Zendesk REST API subset the live import uses.

Serves Help Center articles, macros and per-ticket comments in both of Zendesk's pagination
styles, as https://developer.zendesk.com/api-reference/introduction/pagination/ documents them:

- cursor pagination when the request has `page[size]` (at most 100 per page): `meta.has_more`,
  `meta.after_cursor`/`before_cursor` (opaque), `links.next`/`links.prev`;
- offset pagination otherwise (`page`, `per_page`; `next_page`, `previous_page`, `count`), which
  answers "400 Bad Request" past the first 100 pages / 10,000 records ("New limits for
  offset-based pagination", https://support.zendesk.com/hc/en-us/articles/5591904358938).

Also the cursor-based incremental ticket export (`after_url`, `after_cursor`, `end_of_stream`);
checks API-token basic auth, and can answer a path with HTTP 429 + Retry-After a given number of
times.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

OFFSET_PAGE_LIMIT = 100
OFFSET_RECORD_LIMIT = 10_000


@dataclass
class FakeZendeskData:
    articles: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    macros: list[dict[str, Any]] = field(default_factory=list)


class FakeZendesk:
    def __init__(
        self,
        data: FakeZendeskData,
        *,
        email: str = "agent@example.com",
        token: str = "secret-token",
        page_size: int = 2,
    ) -> None:
        self.data = data
        # The largest page this fake serves (Zendesk's is 100); tests lower it to see pages.
        self.page_size = page_size
        self._auth = "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()
        self.rate_limit: dict[str, int] = {}  # path -> how many more 429s to send
        self.retry_after = "1"
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeZendesk:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- routing --------------------------------------------------------------------------------

    def respond(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path.startswith("/api/v2/help_center/") and path.endswith("/articles.json"):
            locale = path.split("/")[4]
            items = [a for a in self.data.articles if a.get("locale", "en-us") == locale]
            # Help Center lists return 30 articles per page unless told otherwise.
            return self._list_page(path, "articles", items, query, default_per_page=30)
        if path == "/api/v2/macros.json":
            return self._list_page(path, "macros", self.data.macros, query, default_per_page=100)
        if path == "/api/v2/incremental/tickets/cursor.json":
            return 200, self._export_page(query)
        if path.startswith("/api/v2/tickets/") and path.endswith("/comments.json"):
            ticket_id = int(path.split("/")[4])
            if ticket_id not in self.data.comments:
                return 404, {"error": "RecordNotFound"}
            return self._list_page(
                path, "comments", self.data.comments[ticket_id], query, default_per_page=100
            )
        return 404, {"error": "InvalidEndpoint"}

    def _list_page(
        self, path: str, key: str, items: list, query: dict[str, list[str]], *, default_per_page: int
    ) -> tuple[int, dict[str, Any]]:
        """Cursor pagination when `page[size]` is sent, offset pagination otherwise."""
        if "page[size]" in query:
            return self._cursor_page(path, key, items, query)
        return self._offset_page(path, key, items, query, default_per_page)

    def _offset_page(
        self, path: str, key: str, items: list, query: dict[str, list[str]], default_per_page: int
    ) -> tuple[int, dict[str, Any]]:
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = min(int(query.get("per_page", [str(default_per_page)])[0]), 100, self.page_size)
        except ValueError:
            return 400, {"error": "InvalidPaginationParameter"}
        start = (page - 1) * per_page
        if page > OFFSET_PAGE_LIMIT or start >= OFFSET_RECORD_LIMIT:
            # Zendesk refuses offset requests past the first 100 pages / 10,000 records.
            return 400, {
                "error": "InvalidPaginationParameter",
                "description": "Offset pagination is limited to the first 100 pages; use cursor pagination",
            }
        chunk = items[start : start + per_page]
        more = start + per_page < len(items)
        return 200, {
            key: chunk,
            "next_page": f"{self.url}{path}?page={page + 1}&per_page={per_page}" if more else None,
            "previous_page": f"{self.url}{path}?page={page - 1}&per_page={per_page}" if page > 1 else None,
            "count": len(items),
        }

    def _cursor_page(
        self, path: str, key: str, items: list, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        try:
            size = int(query["page[size]"][0])
            after = query.get("page[after]", [None])[0]
            start = int(base64.urlsafe_b64decode(after.encode()).decode()) if after else 0
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return 400, {"error": "InvalidPaginationParameter"}
        size = max(1, min(size, 100, self.page_size))
        chunk = items[start : start + size]
        more = start + size < len(items)

        def cursor(position: int) -> str:  # opaque to the client, as Zendesk's are
            return base64.urlsafe_b64encode(str(position).encode()).decode()

        after_cursor = cursor(start + len(chunk)) if chunk else None
        before_cursor = cursor(start) if chunk else None
        base = f"{self.url}{path}?page%5Bsize%5D={size}"
        return 200, {
            key: chunk,
            "meta": {"has_more": more, "after_cursor": after_cursor, "before_cursor": before_cursor},
            "links": {
                "next": f"{base}&page%5Bafter%5D={after_cursor}" if more else None,
                "prev": f"{base}&page%5Bbefore%5D={before_cursor}" if start else None,
            },
        }

    def _export_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        if "cursor" in query:
            start = int(base64.b64decode(query["cursor"][0]).decode())
        else:
            since = int(query.get("start_time", ["0"])[0])
            start = 0
            self._export = [t for t in self.data.tickets if int(t.get("generated_timestamp", 0)) >= since]
        items = getattr(self, "_export", self.data.tickets)
        chunk = items[start : start + self.page_size]
        end = start + self.page_size >= len(items)
        cursor = base64.b64encode(str(start + self.page_size).encode()).decode()
        return {
            "tickets": chunk,
            "after_cursor": None if end else cursor,
            "after_url": None
            if end
            else f"{self.url}/api/v2/incremental/tickets/cursor.json?cursor={cursor}",
            "before_cursor": None,
            "end_of_stream": end,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != fake._auth:
                    return self._send(401, {"error": "Couldn't authenticate you"})
                remaining = fake.rate_limit.get(parsed.path, 0)
                if remaining:
                    fake.rate_limit[parsed.path] = remaining - 1
                    return self._send(429, {"error": "TooManyRequests"}, {"Retry-After": fake.retry_after})
                status, body = fake.respond(parsed.path, parse_qs(parsed.query))
                self._send(status, body)

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        return Handler
