"""The live importer pages through Zendesk as Zendesk documents it, and the fake answers as Zendesk does.

Zendesk's pagination reference (https://developer.zendesk.com/api-reference/introduction/pagination/):

    "To use cursor pagination, include the page[size] parameter in the request parameters. [...]
    Most endpoints limit this to a maximum of 100. If you omit the page[size] parameter, offset
    pagination is used."  The response carries `meta.has_more`, `meta.after_cursor`,
    `meta.before_cursor`, `links.next` and `links.prev`.

"New limits for offset-based pagination" (https://support.zendesk.com/hc/en-us/articles/5591904358938):

    "OBP requests over the first 10,000 records (100 pages) will result in an error message:
    '400 Bad Request.' In order to request data sets larger than 10,000 records, customers will
    need to transition to CBP."

Help Center "List Articles" and Support "List Macros" / "List Comments" support both styles
(https://developer.zendesk.com/api-reference/help_center/help-center-api/articles/#list-articles,
https://developer.zendesk.com/api-reference/ticketing/business-rules/macros/#list-macros,
https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#list-comments).
"""

from __future__ import annotations

import base64

import requests

from store.ingest.zendesk_api import ZendeskClient, ZendeskCredentials
from tests.fakes.fake_zendesk import FakeZendesk, FakeZendeskData

TOKEN = "secret-token"
AUTH = ("agent@example.com/token", TOKEN)


def _get(fake: FakeZendesk, path: str, **params: object) -> requests.Response:
    return requests.get(fake.url + path, params=params, auth=AUTH, timeout=10)


def _client(fake: FakeZendesk) -> ZendeskClient:
    creds = ZendeskCredentials("acme", "agent@example.com", TOKEN, base_url=fake.url)
    return ZendeskClient(creds, sleep=lambda s: None)


def _articles(n: int) -> list[dict]:
    return [{"id": i, "title": f"A{i}", "body": "x", "locale": "en-us"} for i in range(n)]


def test_the_fake_refuses_offset_pagination_past_100_pages_as_zendesk_does():
    with FakeZendesk(FakeZendeskData(articles=_articles(10_050)), page_size=100) as fake:
        last = _get(fake, "/api/v2/help_center/en-us/articles.json", page=100, per_page=100)
        assert last.status_code == 200 and len(last.json()["articles"]) == 100
        assert last.json()["next_page"]  # 50 more records exist ...
        beyond = _get(fake, "/api/v2/help_center/en-us/articles.json", page=101, per_page=100)
        assert beyond.status_code == 400  # ... but offset pagination cannot reach them
        # Offset pages default to 30 articles ("the articles endpoint returns 30 items per page").
        assert len(_get(fake, "/api/v2/help_center/en-us/articles.json").json()["articles"]) == 30


def test_the_fake_answers_page_size_with_cursor_pagination():
    with FakeZendesk(FakeZendeskData(macros=[{"id": i} for i in range(250)]), page_size=100) as fake:
        first = _get(fake, "/api/v2/macros.json", **{"page[size]": 100}).json()
        assert len(first["macros"]) == 100 and "next_page" not in first
        assert first["meta"]["has_more"] is True
        assert {"after_cursor", "before_cursor"} <= first["meta"].keys()
        assert first["links"]["prev"] is None
        nxt = requests.get(first["links"]["next"], auth=AUTH, timeout=10).json()
        assert [m["id"] for m in nxt["macros"]] == list(range(100, 200))
        last = requests.get(nxt["links"]["next"], auth=AUTH, timeout=10).json()
        assert len(last["macros"]) == 50 and last["meta"]["has_more"] is False
        assert last["links"]["next"] is None
        # "Most endpoints limit this to a maximum of 100."
        assert len(_get(fake, "/api/v2/macros.json", **{"page[size]": 500}).json()["macros"]) == 100
        bogus = base64.urlsafe_b64encode(b"nope").decode()
        assert (
            _get(fake, "/api/v2/macros.json", **{"page[size]": 10, "page[after]": bogus}).status_code == 400
        )


def test_importer_reads_more_than_10000_articles_and_macros_with_cursor_pagination():
    data = FakeZendeskData(
        articles=_articles(10_050), macros=[{"id": i, "title": "m"} for i in range(10_001)]
    )
    with FakeZendesk(data, page_size=100) as fake:
        client = _client(fake)
        articles = list(client.articles())
        macros = list(client.macros())
    assert [a["id"] for a in articles] == list(range(10_050))
    assert len(macros) == 10_001
    # Every request asked for cursor pages; none used offset parameters.
    assert all("page%5Bsize%5D=100" in p or "page[size]=100" in p for p in fake.requests)
    assert not any("per_page=" in p or "?page=" in p or "&page=" in p for p in fake.requests)
    assert len(fake.requests) == 101 + 101


def test_ticket_comments_use_cursor_pagination_too():
    comments = {7: [{"id": i, "body": f"c{i}", "public": True} for i in range(5)]}
    with FakeZendesk(FakeZendeskData(comments=comments), page_size=2) as fake:
        got = _client(fake).ticket_comments(7)
    assert [c["id"] for c in got] == [0, 1, 2, 3, 4]
    assert len(fake.requests) == 3 and all("page%5Bsize%5D" in p for p in fake.requests)
