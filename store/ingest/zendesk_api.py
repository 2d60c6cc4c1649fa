"""Live import from a Zendesk account: Help Center articles, incremental ticket export, macros.

Lists use cursor pagination (`page[size]`, then `links.next` while `meta.has_more`): Zendesk
answers offset pagination (`page`/`per_page`) with "400 Bad Request" past the first 100 pages /
10,000 records (https://developer.zendesk.com/api-reference/introduction/pagination/,
https://support.zendesk.com/hc/en-us/articles/5591904358938). A `next_page` link is still followed
if an endpoint answers in the offset style. The incremental export follows `after_url` until
`end_of_stream`. HTTP 429 waits for `Retry-After`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlparse

import requests

from store.ingest.readers import RawRecord

log = logging.getLogger(__name__)

# `page[size]` asks for cursor pagination; 100 is the largest page most list endpoints allow.
CURSOR_PAGE: dict[str, Any] = {"page[size]": 100}


class ZendeskApiError(RuntimeError):
    """The Zendesk API failed in a way retrying does not fix (auth, 404, exhausted retries)."""


@dataclass(frozen=True)
class ZendeskCredentials:
    subdomain: str
    email: str
    api_token: str = field(repr=False)
    base_url: str | None = None  # overrides https://{subdomain}.zendesk.com (tests, proxies)

    def __post_init__(self) -> None:
        if not self.base_url and not self.subdomain:
            raise ValueError("ZENDESK_SUBDOMAIN is required")
        if self.subdomain and not self.subdomain.replace("-", "").isalnum():
            raise ValueError("ZENDESK_SUBDOMAIN must be the bare subdomain (e.g. 'acme')")
        if not self.email or "@" not in self.email:
            raise ValueError("ZENDESK_EMAIL must be the agent's e-mail address")
        if not self.api_token:
            raise ValueError("ZENDESK_API_TOKEN is required")
        if self.base_url and urlparse(self.base_url).scheme not in {"http", "https"}:
            raise ValueError("ZENDESK_BASE_URL must be an http(s) URL")

    @property
    def root(self) -> str:
        return (self.base_url or f"https://{self.subdomain}.zendesk.com").rstrip("/")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ZendeskCredentials:
        e = os.environ if env is None else env
        return cls(
            subdomain=e.get("ZENDESK_SUBDOMAIN", ""),
            email=e.get("ZENDESK_EMAIL", ""),
            api_token=e.get("ZENDESK_API_TOKEN", ""),
            base_url=e.get("ZENDESK_BASE_URL") or None,
        )


class ZendeskClient:
    """Small, explicit client: GET with auth, retries (429 + Retry-After, 5xx) and pagination."""

    def __init__(
        self,
        credentials: ZendeskCredentials,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_retry_after: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.credentials = credentials
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._session = session or requests.Session()
        # API-token auth: "{email}/token" as user, the token as password (Zendesk's scheme).
        self._session.auth = (f"{credentials.email}/token", credentials.api_token)
        self._session.headers["Accept"] = "application/json"
        self.requests_made = 0
        self.rate_limited = 0

    def __repr__(self) -> str:
        return f"ZendeskClient({self.credentials.root!r}, email={self.credentials.email!r})"

    def _url(self, path_or_url: str) -> str:
        url = (
            urljoin(self.credentials.root + "/", path_or_url.lstrip("/"))
            if "://" not in path_or_url
            else path_or_url
        )
        # Never send the credentials anywhere but the configured account.
        if urlparse(url).netloc != urlparse(self.credentials.root).netloc:
            raise ZendeskApiError(
                f"refusing to follow a pagination link to another host: {urlparse(url).netloc}"
            )
        return url

    def get_json(self, path_or_url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self._url(path_or_url)
        for attempt in range(self.max_retries + 1):
            self.requests_made += 1
            try:
                resp = self._session.get(url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                if attempt >= self.max_retries:
                    raise ZendeskApiError(f"GET {urlparse(url).path} failed: {type(exc).__name__}") from exc
                self._sleep(min(2**attempt, 30))
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                if resp.status_code == 429:
                    self.rate_limited += 1
                if attempt >= self.max_retries:
                    raise ZendeskApiError(
                        f"GET {urlparse(url).path}: HTTP {resp.status_code} after {attempt + 1} tries"
                    )
                self._sleep(self._retry_delay(resp, attempt))
                continue
            if resp.status_code in (401, 403):
                raise ZendeskApiError(
                    f"GET {urlparse(url).path}: HTTP {resp.status_code} — check ZENDESK_EMAIL/ZENDESK_API_TOKEN"
                )
            if resp.status_code >= 400:
                raise ZendeskApiError(f"GET {urlparse(url).path}: HTTP {resp.status_code}")
            try:
                data = resp.json()
            except ValueError as exc:
                raise ZendeskApiError(f"GET {urlparse(url).path}: response is not JSON") from exc
            if not isinstance(data, dict):
                raise ZendeskApiError(f"GET {urlparse(url).path}: expected a JSON object")
            return data
        raise ZendeskApiError("unreachable")  # pragma: no cover

    def _retry_delay(self, resp: requests.Response, attempt: int) -> float:
        header = resp.headers.get("Retry-After")
        try:
            delay = float(header) if header is not None else float(2**attempt)
        except ValueError:
            delay = float(2**attempt)
        if delay > self.max_retry_after:
            raise ZendeskApiError(
                f"rate limited for {delay:.0f}s (more than the {self.max_retry_after:.0f}s we wait)"
            )
        return max(delay, 0.0)

    def paginate(self, path: str, key: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Offset (`next_page`) or cursor (`meta.has_more` + `links.next`) pagination."""
        url: str | None = path
        query = params
        while url:
            page = self.get_json(url, query)
            query = None  # next links carry their own query string
            items = page.get(key)
            if not isinstance(items, list):
                raise ZendeskApiError(f"page of {path} has no {key!r} list")
            yield from items
            meta, links = page.get("meta") or {}, page.get("links") or {}
            if isinstance(meta, dict) and "has_more" in meta:
                url = links.get("next") if meta.get("has_more") else None
            else:
                url = page.get("next_page")

    # --- resources ------------------------------------------------------------------------------

    def articles(self, locale: str = "en-us") -> Iterator[dict[str, Any]]:
        return self.paginate(f"/api/v2/help_center/{locale}/articles.json", "articles", CURSOR_PAGE)

    def macros(self) -> Iterator[dict[str, Any]]:
        return self.paginate("/api/v2/macros.json", "macros", CURSOR_PAGE)

    def ticket_comments(self, ticket_id: int | str) -> list[dict[str, Any]]:
        return list(self.paginate(f"/api/v2/tickets/{ticket_id}/comments.json", "comments", CURSOR_PAGE))

    def incremental_tickets(self, start_time: int = 0) -> Iterator[dict[str, Any]]:
        """Cursor-based incremental export; stops at `end_of_stream`."""
        url: str = "/api/v2/incremental/tickets/cursor.json"
        query: dict[str, Any] | None = {"start_time": int(start_time)}
        while True:
            page = self.get_json(url, query)
            tickets = page.get("tickets")
            if not isinstance(tickets, list):
                raise ZendeskApiError("incremental export page has no 'tickets' list")
            yield from tickets
            if page.get("end_of_stream") or not (page.get("after_url") or page.get("after_cursor")):
                return
            if page.get("after_url"):
                url, query = page["after_url"], None
            else:
                url, query = "/api/v2/incremental/tickets/cursor.json", {"cursor": page["after_cursor"]}


class UserSegments(Mapping[str, Mapping[str, Any]]):
    """Help Center user segments by id, read on first use ("Show User Segment",
    `GET /api/v2/help_center/user_segments/{user_segment_id}`,
    https://developer.zendesk.com/api-reference/help_center/help-center-api/user_segments/).
    Only articles restricted to a segment need one; a segment that cannot be read is absent, and
    its articles are then shown to nobody (records.segment_audience)."""

    def __init__(self, client: ZendeskClient) -> None:
        self._client = client
        self._cache: dict[str, Mapping[str, Any] | None] = {}

    def __getitem__(self, segment_id: str) -> Mapping[str, Any]:
        key = str(segment_id)
        if key not in self._cache:
            try:
                found = self._client.get_json(f"/api/v2/help_center/user_segments/{int(key)}.json")
                segment = found.get("user_segment") if isinstance(found, dict) else None
                self._cache[key] = segment if isinstance(segment, dict) else None
            except (ZendeskApiError, ValueError) as exc:
                log.warning("user segment %s unreadable (%s): its articles are shown to nobody", key, exc)
                self._cache[key] = None
        segment = self._cache[key]
        if segment is None:
            raise KeyError(key)
        return segment

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, v in self._cache.items() if v is not None])

    def __len__(self) -> int:
        return sum(1 for v in self._cache.values() if v is not None)


def article_records(client: ZendeskClient, locale: str = "en-us") -> Iterator[RawRecord]:
    for i, article in enumerate(client.articles(locale)):
        yield RawRecord(f"help_center/{locale} article #{i} (id {article.get('id')})", raw=article)


def macro_records(client: ZendeskClient) -> Iterator[RawRecord]:
    for i, macro in enumerate(client.macros()):
        yield RawRecord(f"macro #{i} (id {macro.get('id')})", raw=macro)


def ticket_records(
    client: ZendeskClient, start_time: int = 0, deleted: list[str] | None = None
) -> Iterator[RawRecord]:
    """Tickets with their comments attached; comments are only fetched for solved/closed ones.

    Ids of tickets the export reports as deleted, or no longer solved (reopened), are appended to
    `deleted`: an incremental run cannot sweep, so those removals are explicit."""
    for ticket in client.incremental_tickets(start_time):
        ref = f"ticket {ticket.get('id')}"
        status = str(ticket.get("status", "")).lower()
        if status not in {"solved", "closed"} and deleted is not None and ticket.get("id") is not None:
            deleted.append(f"ticket:{ticket['id']}")
        if status == "deleted":
            continue
        if status in {"solved", "closed"} and ticket.get("id") is not None:
            try:
                ticket = {**ticket, "comments": client.ticket_comments(ticket["id"])}
            except ZendeskApiError as exc:
                yield RawRecord(ref, raw=ticket, error=f"comments unavailable: {exc}")
                continue
        yield RawRecord(ref, raw=ticket)
