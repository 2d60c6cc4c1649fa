"""Shape, integrity and reproducibility checks for the demo tenant (store/demo_data)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from store import demo_data
from store.demo_data import DEMO_DATA_DIR

VOID = {"br", "hr", "img", "input", "meta", "link", "col", "wbr"}
PLACEHOLDER = re.compile(r"\{\{\s*[a-z_]+(?:\.[a-z0-9_]+)+\s*\}\}")
NOW = "2026-11-20T09:00:00Z"  # the demo tenant's fixed "now" (build/common.py EPOCH)
ORDER_STATUSES = {"processing", "shipped", "delivered", "returned", "cancelled", "refunded"}


def load(rel: str) -> Any:
    return json.loads((DEMO_DATA_DIR / rel).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def articles() -> list[dict[str, Any]]:
    return load("help_center/articles.json")["articles"]


@pytest.fixture(scope="module")
def tickets() -> list[dict[str, Any]]:
    return load("tickets/tickets.json")["tickets"]


@pytest.fixture(scope="module")
def macros() -> list[dict[str, Any]]:
    return load("macros/macros.json")["macros"]


@pytest.fixture(scope="module")
def users() -> dict[int, dict[str, Any]]:
    return {u["id"]: u for u in load("users.json")["users"]}


@pytest.fixture(scope="module")
def orders() -> dict[str, dict[str, Any]]:
    return {o["order_number"]: o for o in load("commerce/orders.json")["orders"]}


@pytest.fixture(scope="module")
def queries() -> list[dict[str, Any]]:
    lines = (DEMO_DATA_DIR / "eval/retrieval_queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


class StrictHTML(HTMLParser):
    """Fails on unbalanced or mis-nested tags; the article bodies are hand-written HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def parse_html(text: str) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(text)
    parser.close()
    if parser.stack:
        parser.errors.append(f"unclosed {parser.stack}")
    return parser


# ----------------------------------------------------------------------------- help center


def test_help_center_shapes_and_counts(articles: list[dict[str, Any]]) -> None:
    payload = load("help_center/articles.json")
    assert set(payload) == {"articles", "count", "next_page"}
    assert payload["count"] == len(articles) and payload["next_page"] is None
    required = {"id", "url", "html_url", "title", "body", "locale", "source_locale", "section_id", "author_id",
                "label_names", "draft", "promoted", "position", "vote_sum", "created_at", "updated_at", "edited_at"}  # fmt: skip
    for a in articles:
        assert required <= set(a), a["id"]
        assert a["draft"] is False
        assert a["html_url"].startswith(
            f"https://brambleandoak.zendesk.com/hc/{a['locale']}/articles/{a['id']}-"
        )
        assert a["created_at"] <= a["updated_at"]
    en = [a for a in articles if a["locale"] == "en-us"]
    assert len(en) >= 60
    assert {a["locale"] for a in articles} == {"en-us", "de"}
    assert len({a["id"] for a in articles}) == len(articles)


def test_articles_are_substantive_html(articles: list[dict[str, Any]]) -> None:
    for a in articles:
        parsed = parse_html(a["body"])
        assert not parsed.errors, (a["id"], parsed.errors)
        words = len(re.sub(r"<[^>]+>", " ", a["body"]).split())
        if a["locale"] == "en-us":
            assert words >= 120, (a["id"], words)
            assert parsed.tags["h2"] >= 1 and parsed.tags["p"] >= 1, a["id"]


def test_sections_and_categories_link_up(articles: list[dict[str, Any]]) -> None:
    sections = {s["id"]: s for s in load("help_center/sections.json")["sections"]}
    categories = {c["id"] for c in load("help_center/categories.json")["categories"]}
    assert len(categories) >= 6
    assert all(s["category_id"] in categories for s in sections.values())
    used = {a["section_id"] for a in articles}
    assert used <= set(sections)
    per_category = Counter(
        sections[a["section_id"]]["category_id"] for a in articles if a["locale"] == "en-us"
    )
    assert len(per_category) == 6 and min(per_category.values()) >= 6


# ----------------------------------------------------------------------------- tickets


def test_ticket_shapes_and_counts(tickets: list[dict[str, Any]]) -> None:
    assert len(tickets) >= 300
    required = {"id", "url", "subject", "description", "status", "priority", "type", "tags", "requester_id",
                "assignee_id", "organization_id", "via", "custom_fields", "created_at", "updated_at", "comments"}  # fmt: skip
    statuses = Counter(t["status"] for t in tickets)
    assert statuses["solved"] + statuses["closed"] >= max(300, 0.85 * len(tickets))
    assert statuses["open"] + statuses["pending"] + statuses["new"] > 0
    assert {t["via"]["channel"] for t in tickets} >= {"email", "web", "chat"}
    for t in tickets:
        assert required <= set(t), t["id"]
        comments = t["comments"]
        assert comments and t["description"] == comments[0]["body"]
        assert comments[0]["author_id"] == t["requester_id"]
        times = [c["created_at"] for c in comments]
        assert times == sorted(times) and t["created_at"] <= times[0] and times[-1] <= t["updated_at"], t[
            "id"
        ]
        assert t["updated_at"] <= NOW, t["id"]
        for c in comments:
            assert c["type"] == "Comment" and isinstance(c["public"], bool)
            assert not parse_html(c["html_body"]).errors
        if t["status"] in ("solved", "closed"):
            assert len(comments) >= 3
            assert any(c["author_id"] != t["requester_id"] and c["public"] for c in comments)
    assert sum(1 for t in tickets for c in t["comments"] if not c["public"]) >= 20  # internal notes exist
    assert len({t["id"] for t in tickets}) == len(tickets)


def test_ticket_text_has_no_unfilled_placeholders(tickets: list[dict[str, Any]]) -> None:
    for t in tickets:
        for text in [t["subject"], *(c["body"] for c in t["comments"])]:
            assert "{" not in text and "}" not in text, (t["id"], text[:80])


def test_tickets_vary(tickets: list[dict[str, Any]]) -> None:
    openers = Counter(t["description"] for t in tickets)
    assert openers.most_common(1)[0][1] <= 4  # short chat openers may repeat, but only a few times
    assert len(openers) >= 0.9 * len(tickets)
    reasons = Counter(
        next(f["value"] for f in t["custom_fields"] if f["id"] == 360011112222) for t in tickets
    )
    assert len(reasons) >= 60


def test_ticket_people_exist(tickets: list[dict[str, Any]], users: dict[int, dict[str, Any]]) -> None:
    for t in tickets:
        assert users[t["requester_id"]]["role"] == "end-user"
        if t["assignee_id"] is not None:
            assert users[t["assignee_id"]]["role"] in ("agent", "admin")
        for c in t["comments"]:
            assert c["author_id"] in users
            if c["author_id"] != t["requester_id"]:
                assert users[c["author_id"]]["role"] in ("agent", "admin")


def test_ticket_orders_match_commerce(
    tickets: list[dict[str, Any]], orders: dict[str, dict[str, Any]], users: dict[int, dict[str, Any]]
) -> None:
    tracking_owner = {o["tracking_number"]: n for n, o in orders.items() if o["tracking_number"]}
    with_order = 0
    for t in tickets:
        fields = {f["id"]: f["value"] for f in t["custom_fields"]}
        number = fields[360011112221]
        if number is None:
            continue
        with_order += 1
        order = orders[number]
        assert order["customer_id"] == users[t["requester_id"]]["external_id"], t["id"]
        assert fields[360011112223] in {i["sku"] for i in order["items"]}
        assert order["created_at"] <= t["created_at"]
        text = " ".join(c["body"] for c in t["comments"])
        for other in re.findall(r"BO-\d{6}", text):
            assert other == number, (t["id"], other)
        for token in re.findall(r"\b[0-9A-Z-]{10,}\b", text):
            assert tracking_owner.get(token, number) == number, (
                t["id"],
                token,
            )  # never another order's parcel
        if order["tracking_number"] and f"tracking number {order['tracking_number']}" in text:
            assert order["carrier"] in text
    assert with_order >= 200


# ----------------------------------------------------------------------------- commerce


def test_orders_are_consistent(orders: dict[str, dict[str, Any]]) -> None:
    products = {p["sku"]: p for p in load("commerce/products.json")["products"]}
    customers = {c["id"] for c in load("commerce/customers.json")["customers"]}
    assert len(products) >= 30
    for o in orders.values():
        assert re.fullmatch(r"BO-\d{6}", o["order_number"])
        assert o["status"] in ORDER_STATUSES
        assert o["customer_id"] in customers
        assert all(i["sku"] in products for i in o["items"])
        total = o["subtotal"] - o["discount"] + o["shipping_cost"] + o["duties_and_taxes"]
        assert abs(total - o["total"]) < 0.011, o["order_number"]
        stamps = [o[k] for k in ("created_at", "shipped_at", "delivered_at") if o[k]]
        assert stamps == sorted(stamps), o["order_number"]
        assert o["updated_at"] <= NOW, o["order_number"]
        if o["status"] in ("shipped", "delivered", "returned") and o["shipping_method"] != "email":
            assert o["tracking_number"] and o["carrier"]
        if o["status"] == "delivered":
            assert o["delivered_at"]
        if o["status"] == "cancelled":
            assert o["cancelled_at"] and not o["shipped_at"]
        if o["status"] in ("returned", "refunded"):
            assert o["refunds"], o["order_number"]
        assert all(r["amount"] > 0 for r in o["refunds"]), o["order_number"]
        if o["shipping_method"] == "express":
            assert o["shipping_cost"] > 0 and o["shipping_address"]["country"] not in ("CH", "NO")
    assert {o["status"] for o in orders.values()} == ORDER_STATUSES


def test_every_customer_is_a_zendesk_user(users: dict[int, dict[str, Any]]) -> None:
    customers = load("commerce/customers.json")["customers"]
    by_external = {u["external_id"]: u for u in users.values() if u["external_id"]}
    for c in customers:
        assert by_external[c["id"]]["id"] == c["zendesk_user_id"]
        assert by_external[c["id"]]["email"] == c["email"]


# ----------------------------------------------------------------------------- macros


def test_macros_shape_and_placeholders(macros: list[dict[str, Any]]) -> None:
    assert len(macros) >= 25
    assert sum(1 for m in macros if not m["active"]) >= 2
    for m in macros:
        assert {"id", "url", "title", "active", "description", "position", "restriction", "actions"} <= set(m)
        assert "::" in m["title"]
        fields = [a["field"] for a in m["actions"]]
        assert "comment_value" in fields
        for action in m["actions"]:
            value = str(action["value"])
            stripped = PLACEHOLDER.sub("", value)
            assert "{" not in stripped and "}" not in stripped, (m["id"], value[:80])
        comment = next(a["value"] for a in m["actions"] if a["field"] == "comment_value")
        assert PLACEHOLDER.search(comment), m["title"]


# ----------------------------------------------------------------------------- eval set


def test_eval_queries_reference_real_documents(
    queries: list[dict[str, Any]],
    articles: list[dict[str, Any]],
    tickets: list[dict[str, Any]],
    macros: list[dict[str, Any]],
) -> None:
    assert len(queries) >= 100
    known = {f"article:{a['id']}" for a in articles} | {f"ticket:{t['id']}" for t in tickets}
    known |= {f"macro:{m['id']}" for m in macros}
    hints = Counter(q["kind_hint"] for q in queries)
    assert hints["article"] >= 60 and hints["ticket"] >= 10 and hints["macro"] >= 10
    titles = [a["title"].lower() for a in articles]
    searchable = {f"ticket:{t['id']}" for t in tickets if t["status"] in ("solved", "closed")}
    searchable |= {f"macro:{m['id']}" for m in macros if m["active"]} | {
        f"article:{a['id']}" for a in articles
    }
    for q in queries:
        assert q["relevant"] and set(q["relevant"]) <= known, q["query"]
        assert set(q["relevant"]) <= searchable, q[
            "query"
        ]  # only what ingest indexes (solved tickets, active macros)
        assert q["kind_hint"] in ("article", "ticket", "macro")
        assert q["relevant"][0].split(":")[0] == q["kind_hint"]
        assert all(q["query"].lower() not in t and t not in q["query"].lower() for t in titles), q["query"]
    assert len({q["query"] for q in queries}) == len(queries)


# ----------------------------------------------------------------------------- generator


def test_generator_is_reproducible(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "store.demo_data.generate", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        cwd=DEMO_DATA_DIR.parent.parent,
        timeout=120,
    )
    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(produced) == 11  # + help_center/user_segments.json
    for rel in produced:
        assert (tmp_path / rel).read_bytes() == (DEMO_DATA_DIR / rel).read_bytes(), (
            f"{rel} differs from the committed file"
        )


def test_module_paths_point_at_files() -> None:
    paths = [demo_data.HELP_CENTER_ARTICLES, demo_data.TICKETS, demo_data.MACROS, demo_data.USERS]
    paths += [demo_data.CUSTOMERS, demo_data.PRODUCTS, demo_data.ORDERS, demo_data.EVAL_QUERIES]
    assert all(p.is_file() for p in paths)
    assert set(demo_data.INGEST_SOURCES) == {"help-center", "tickets", "macros"}
