"""Behaviour of the five built-in agents on the demo tenant (real index, local model, demo store)."""

from __future__ import annotations

import json

import pytest

from agents.base import AgentContext, ToolCall, ToolRequest
from agents.common import question_only, search_documents
from agents.http import BreakerRegistry, HttpClientConfig
from agents.macros.agent import fill_placeholders, quotable_text  # type: ignore[import-not-found]
from store.demo import DEMO_DATA_DIR
from tests.fakes.fake_commerce import FakeCommerce
from tests.unit.agents.conftest import sidebar_ticket
from vertex_interface import Veto
from vertex_interface.config import BreakerPolicy

ORDER_FIELD = 360011112221


@pytest.fixture(scope="module")
def articles() -> dict[str, str]:
    raw = json.loads((DEMO_DATA_DIR / "help_center" / "articles.json").read_text(encoding="utf-8"))
    return {a["title"]: f"article:{a['id']}" for a in raw["articles"]}


def ids(result) -> list[str]:
    return [e.id for e in result.evidence]


# --- knowledge_base -------------------------------------------------------------------------------
def test_return_window_question_finds_the_return_policy(registry, make_ctx, articles):
    result = registry.get("knowledge_base").run(
        "How many days does a customer have to return an item?", make_ctx()
    )
    assert result.status == "ok"
    assert articles["Our return policy"] in ids(result)[:2]
    top = result.evidence[0]
    assert top.kind == "article" and top.url.startswith("https://") and "30 days" in top.text
    assert "30 days" in result.summary  # extractive: quotes the article
    assert len(set(ids(result))) == len(ids(result))


@pytest.mark.parametrize("query", ["What is the capital of France?", "write me a poem about the sea"])
def test_unrelated_question_is_empty(registry, make_ctx, query):
    result = registry.get("knowledge_base").run(query, make_ctx())
    assert result.status == "empty" and result.evidence == []


def test_ticket_locale_searches_that_language(registry, make_ctx):
    ctx = make_ctx({"id": "5", "locale": "de"})
    result = registry.get("knowledge_base").run("Versandkosten und Lieferzeiten nach Deutschland", ctx)
    assert result.status == "ok"
    assert all("/hc/de/" in (e.url or "") for e in result.evidence)


def test_the_questions_language_picks_the_articles_not_the_requesters_locale(registry, make_ctx):
    """An English question on a French customer's ticket wants the English article (the
    customer's language matters for the reply, not for what the support agent reads)."""
    agent = registry.get("knowledge_base")
    result = agent.run("How long do refunds take?", make_ctx({"id": "5", "locale": "fr"}))
    assert [c.arguments.get("locale") for c in result.tool_calls] == [None]
    assert result.status == "ok" and all("/hc/en-us/" in (e.url or "") for e in result.evidence)
    german = agent.run("Wie lange dauert die Erstattung?", make_ctx({"id": "5", "locale": "fr"}))
    assert german.tool_calls[0].arguments.get("locale") == "de"
    assert german.status == "ok" and any("/hc/de/" in (e.url or "") for e in german.evidence)


def test_retry_uses_the_question_without_ticket_boilerplate(registry, make_ctx):
    agent = registry.get("knowledge_base")
    query = "Hi there,\nTicket: Order BO-100101 stuck\nCustomer: Lars\nHow long do refunds take to arrive?\nThanks"
    call = agent.offline_tool_call(query, make_ctx(), attempt=2)
    assert call == ToolCall("search_articles", {"query": "How long do refunds take to arrive?"}, call.reason)
    assert question_only("How long do refunds take?") is None  # nothing to strip: no pointless retry


def test_empty_first_search_retries_once_and_thinks(registry, make_ctx):
    lines: list[str] = []
    ctx = make_ctx(think=lines.append)
    result = registry.get("knowledge_base").run(
        "Context: zxqv wvut\nWhat is our refund timing for PayPal?", ctx
    )
    assert result.status == "ok" and len(result.tool_calls) in (1, 2)
    nothing = registry.get("knowledge_base").run("Subject: blorp\nquantum chromodynamics lecture notes?", ctx)
    assert nothing.status == "empty" and len(nothing.tool_calls) == 2
    assert any("trying once more" in line for line in lines)


# --- similar_tickets -----------------------------------------------------------------------------
def test_similar_tickets_never_return_the_current_ticket(registry, make_ctx):
    # Take the open ticket from the index itself (the demo data may be regenerated under us).
    ctx = make_ctx({"id": "999999"})
    [seed] = search_documents(ctx.knowledge, "demo", "parcel tracking stuck", kinds=("ticket",), k=1)
    query = f"{seed.title}\n{seed.text}"
    assert seed.doc_id in [
        m.doc_id for m in search_documents(ctx.knowledge, "demo", query, kinds=("ticket",), k=5)
    ]
    current = {"id": seed.doc_id.split(":", 1)[1], "subject": seed.title}
    result = registry.get("similar_tickets").run(query, make_ctx(current))
    assert result.status == "ok"
    assert seed.doc_id not in ids(result)  # never shown for itself
    assert all(e.kind == "ticket" and e.id.startswith("ticket:") for e in result.evidence)


def test_similar_tickets_say_how_they_were_resolved(registry, make_ctx):
    result = registry.get("similar_tickets").run(
        "parcel stuck, tracking has not updated for a week", make_ctx()
    )
    assert result.status == "ok"
    assert all("Problem:" in e.text and "Resolved:" in e.text for e in result.evidence)
    assert sum("Resolved: not recorded" not in e.text for e in result.evidence) >= 2
    assert all(e.url and "/agent/tickets/" in e.url for e in result.evidence)


# --- macros ---------------------------------------------------------------------------------------
def test_macro_is_filled_with_the_requesters_first_name(registry, make_ctx):
    ticket = {
        "id": "41999",
        "subject": "Where is my parcel?",
        "requester": {"name": "Grace Hopper", "email": "grace@example.com"},
        "custom_fields": [{"id": ORDER_FIELD, "value": "BO-100222"}],
    }
    ctx = make_ctx(ticket, user_name="Sam Rivera")
    result = registry.get("macros").run("parcel is late and tracking is not updating", ctx)
    assert result.status == "ok"
    macro = result.data["macro"]
    assert macro["id"] == result.evidence[0].id and macro["id"].startswith("macro:")
    assert macro["text"].startswith("Hi Grace")
    assert "{{" not in macro["text"] and macro["unfilled"] == []
    assert "Sam\n" in macro["text"]
    assert result.evidence[0].text == macro["text"]


def test_macro_name_comes_from_the_order_system_when_the_ticket_has_only_an_id(
    registry, make_ctx, demo_tickets, commerce
):
    raw = demo_tickets["41001"]
    customer = commerce.get_customer(raw["requester_id"])
    result = registry.get("macros").run("customer wants to return an item", make_ctx(sidebar_ticket(raw)))
    assert result.data["macro"]["text"].startswith(f"Hi {customer['first_name']}")
    assert result.data["macro"]["unfilled"] == ["{{current_user.first_name}}"]  # no user_name given


def test_fill_placeholders_covers_zendesk_fields(make_ctx):
    ctx = make_ctx(
        {"id": "123", "subject": "Hello", "requester": {"name": "Ada Lovelace"},
         "custom_fields": [{"id": ORDER_FIELD, "value": "BO-100300"}]},
        user_name="Kim",
        services={},
    )  # fmt: skip
    text, unfilled = fill_placeholders(
        "{{ticket.requester.first_name}} {{ticket.id}} {{ticket.ticket_field_360011112221}} "
        "{{current_user.first_name}} {{ticket.title}} {{ticket.organization.name}}",
        ctx,
    )
    assert text == "Ada 123 BO-100300 Kim Hello {{ticket.organization.name}}"
    assert unfilled == ["{{ticket.organization.name}}"]


def test_macro_fills_fields_the_sidebar_sends_by_title(registry, make_ctx):
    """ZAF tickets carry custom fields as {title: value}; the manifest maps ids to titles."""
    ticket = {
        "id": "77",
        "requester": {"name": "Noor de Vries", "email": "noor@example.com"},
        "custom_fields": {"Order number": "BO-100123"},
    }
    result = registry.get("macros").run(
        "customer asks where the order is, it is in transit", make_ctx(ticket)
    )
    filled = [result.data["macro"], *result.data["alternatives"]]
    assert all("{{ticket.ticket_field_360011112221}}" not in m["text"] for m in filled)
    assert any("BO-100123" in m["text"] for m in filled)
    assert all(m["text"].startswith("Hi Noor") for m in filled)


def test_fields_sent_by_zaf_name_or_in_another_case_are_filled(make_ctx):
    labels = {str(ORDER_FIELD): "Order number"}
    template = "Order {{ticket.ticket_field_360011112221}} is cancelled."
    for fields in ({f"custom_field_{ORDER_FIELD}": "BO-100501"}, {"order NUMBER": "BO-100501"}):
        ctx = make_ctx({"id": "5", "custom_fields": fields}, services={})
        assert fill_placeholders(template, ctx, {}, labels) == ("Order BO-100501 is cancelled.", [])


def test_quotable_text_drops_sentences_with_unfilled_placeholders():
    text = (
        "Hi Ada,\n\nYour order {{ticket.ticket_field_360011112221}} is cancelled. The refund follows in "
        "3–5 business days.\n\nBest,\n{{current_user.first_name}}"
    )
    assert quotable_text(text) == "Hi Ada,\n\nThe refund follows in 3–5 business days.\n\nBest,"
    assert quotable_text("{{ticket.id}}") == ""


def test_a_macro_with_an_unfillable_field_is_never_quoted_raw(registry, make_ctx):
    """No order number on the ticket: the evidence (what answers quote) leaves the sentence out;
    the macro offered for insertion keeps it, for Zendesk to fill."""
    ticket = {"id": "78", "requester": {"name": "Noor de Vries"}, "custom_fields": {}}
    result = registry.get("macros").run(
        "customer asks where the order is, it is in transit", make_ctx(ticket, user_name="Sam")
    )
    filled = [result.data["macro"], *result.data["alternatives"]]
    assert any("{{ticket.ticket_field_360011112221}}" in m["text"] for m in filled)
    assert result.evidence and all("{{" not in e.text for e in result.evidence)


def test_unrelated_question_has_no_macro(registry, make_ctx):
    result = registry.get("macros").run("What is the capital of France?", make_ctx())
    assert result.status == "empty" and "macro" not in result.data


# --- order_lookup ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def order_ticket(demo_tickets, commerce) -> tuple[dict, dict]:
    for t in demo_tickets.values():
        number = next((f["value"] for f in t["custom_fields"] if f["id"] == ORDER_FIELD and f["value"]), None)
        if number and commerce.get_order(number) and number not in t["subject"] + t["description"]:
            return t, commerce.get_order(number)
    raise AssertionError("no demo ticket with an order number field")


def test_order_number_in_the_ticket_finds_that_order(registry, make_ctx, order_ticket):
    raw, order = order_ticket
    result = registry.get("order_lookup").run("where is this order?", make_ctx(sidebar_ticket(raw)))
    assert result.status == "ok" and result.confidence == 1.0
    assert ids(result) == [f"order:{order['order_number']}"]
    assert result.data["order"] == order
    text = result.evidence[0].text
    # One self-contained sentence per line, each naming the order.
    assert all(f"order {order['order_number']}".lower() in line.lower() for line in text.splitlines())
    assert text.startswith(f"Order {order['order_number']} ") and order["status"] in text.splitlines()[0]
    assert order["payment_method"] in text
    assert all(i["sku"] in text for i in order["items"])
    if order["tracking_number"]:
        assert order["tracking_number"] in text
    # "where is it?" is answered by its status line first.
    assert result.evidence[0].facts[0] == text.splitlines()[0]
    assert order["status"] in result.summary
    assert result.data["requester_owns_order"] is True


def test_someone_elses_order_number_is_flagged(registry, make_ctx, order_ticket, commerce):
    raw, order = order_ticket
    other = next(o for o in commerce.all("orders") if o["email"] != order["email"])
    result = registry.get("order_lookup").run(f"check {other['order_number']}", make_ctx(sidebar_ticket(raw)))
    assert result.data["requester_owns_order"] is False
    assert "belongs to a different customer" in result.evidence[0].text
    # ...and is stated whatever was asked.
    assert any("belongs to a different customer" in f for f in result.evidence[0].facts)


def test_order_number_in_the_question_wins(registry, make_ctx, order_ticket, commerce):
    raw, order = order_ticket
    other = next(o for o in commerce.all("orders") if o["order_number"] != order["order_number"])
    result = registry.get("order_lookup").run(
        f"and {other['order_number'].lower()}?", make_ctx(sidebar_ticket(raw))
    )
    assert ids(result) == [f"order:{other['order_number']}"]


def test_requester_email_lists_their_orders(registry, make_ctx, commerce):
    email = next(c["email"] for c in commerce.all("customers") if c["order_count"] >= 2)
    ctx = make_ctx({"id": "8", "subject": "question", "requester": {"name": "X", "email": email}})
    result = registry.get("order_lookup").run("show me this customer's recent orders", ctx)
    expected = [o["order_number"] for o in commerce.orders_for_customer(email)][:5]
    # A question about the customer: their record first, then their orders, newest first.
    assert ids(result) == [f"customer:{email}", *(f"order:{n}" for n in expected)]
    assert result.data["customer"]["email"] == email
    assert [o["order_number"] for o in result.data["orders"]] == expected


def test_unknown_order_number_is_said(registry, make_ctx):
    result = registry.get("order_lookup").run("status of BO-000001?", make_ctx({"id": "9"}))
    assert result.status == "empty"
    assert result.data["not_found"] == "BO-000001"


def test_nothing_to_look_up_is_empty(registry, make_ctx):
    assert registry.get("order_lookup").run("what's up?", make_ctx({"id": "10"})).status == "empty"


def test_order_system_down_is_reported_as_unavailable(registry, make_ctx, order_ticket, commerce):
    from agents.commerce import HttpCommerceAPI

    raw, _ = order_ticket
    config = HttpClientConfig(max_attempts=2, initial_backoff_s=0, jitter_s=0, breaker=BreakerPolicy())
    with FakeCommerce(commerce) as server:
        server.fail("503", times=10)
        api = HttpCommerceAPI(server.url, config=config, breakers=BreakerRegistry(), sleep=lambda s: None)
        result = registry.get("order_lookup").run(
            "where is it?", make_ctx(sidebar_ticket(raw), services={"commerce": api})
        )
        api.close()
    assert result.status == "unavailable"
    assert result.error == "Order system is unavailable (HTTP 503)"
    assert result.evidence == []


def test_order_lookup_over_http_matches_local(registry, make_ctx, order_ticket, commerce):
    from agents.commerce import HttpCommerceAPI

    raw, order = order_ticket
    with FakeCommerce(commerce) as server:
        api = HttpCommerceAPI(server.url, breakers=BreakerRegistry())
        result = registry.get("order_lookup").run(
            "where is it?", make_ctx(sidebar_ticket(raw), services={"commerce": api})
        )
        api.close()
    assert result.data["order"] == order


# --- product_catalog ------------------------------------------------------------------------------
def test_product_by_name(registry, make_ctx, commerce):
    result = registry.get("product_catalog").run("is the Fjord teak bench in stock?", make_ctx({"id": "1"}))
    bench = commerce.get_product("OF-101")
    assert ids(result)[0] == "product:OF-101"
    assert result.evidence[0].kind == "product" and result.evidence[0].url == bench["url"]
    assert f"in stock ({bench['stock']} units)" in result.evidence[0].text or bench["stock"] == 0
    assert "5-year warranty (60 months)" in result.evidence[0].text
    assert bench["care_notes"] in result.evidence[0].text
    assert result.evidence[0].facts == (f"{bench['name']} (OF-101) is in stock ({bench['stock']} units).",)


def test_product_by_sku(registry, make_ctx, commerce):
    product = commerce.get_product("LU-601")
    result = registry.get("product_catalog").run("what's the warranty on lu-601", make_ctx({"id": "1"}))
    assert result.tool_calls[0].tool == "get_product"
    assert ids(result) == ["product:LU-601"] and product["name"] in result.evidence[0].title


def test_it_means_the_tickets_product(registry, make_ctx):
    ticket = {"id": "2", "custom_fields": [{"id": 360011112223, "value": "OF-102"}]}
    result = registry.get("product_catalog").run("is it back in stock?", make_ctx(ticket))
    assert ids(result) == ["product:OF-102"]


def test_unrelated_question_finds_no_product(registry, make_ctx):
    ticket = {"id": "2", "custom_fields": [{"id": 360011112223, "value": "OF-102"}]}
    result = registry.get("product_catalog").run("What is the capital of France?", make_ctx(ticket))
    assert result.status == "empty"


# --- guardrail: tool callbacks can veto ------------------------------------------------------------
class SpyCommerce:
    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        self.calls += 1
        return getattr(self.inner, name)


def test_tool_callbacks_can_veto_a_tool(registry, make_ctx, order_ticket, commerce):
    raw, _ = order_ticket
    spy = SpyCommerce(commerce)
    seen: list[ToolRequest] = []

    def only_retrieval(request: ToolRequest):
        seen.append(request)
        return Veto("order tools are blocked for this turn") if request.agent == "order_lookup" else None

    ctx: AgentContext = make_ctx(sidebar_ticket(raw), services={"commerce": spy})
    ctx.tool_callbacks.before.append(only_retrieval)
    result = registry.get("order_lookup").run("where is this order?", ctx)
    assert result.status == "error" and "blocked" in (result.error or "")
    assert spy.calls == 0 and result.evidence == []
    assert seen[0].spec is not None and seen[0].call.tool == "get_order"
    # the same chain lets a retrieval agent through
    assert registry.get("knowledge_base").run("how long do refunds take?", ctx).status == "ok"


def test_after_callbacks_see_the_tool_output(registry, make_ctx):
    outputs = []
    ctx = make_ctx()
    ctx.tool_callbacks.after.append(lambda req, out: outputs.append((req.call.tool, out)))
    registry.get("product_catalog").run("teak bench price", ctx)
    assert outputs and outputs[0][0] == "search_products"


# --- tickets exactly as the sidebar sends them (ZAF shape: custom fields by title) ----------------
@pytest.fixture(scope="module")
def zaf_tickets() -> list[dict]:
    from backend.sidebar import demo_tickets

    return [t for t in demo_tickets(limit=400) if (t.get("custom_fields") or {}).get("Order number")]


def test_zaf_ticket_order_field_by_title_finds_the_order(registry, make_ctx, zaf_tickets, commerce):
    ticket = zaf_tickets[0]
    number = ticket["custom_fields"]["Order number"]
    result = registry.get("order_lookup").run("where is this order?", make_ctx(ticket))
    assert ids(result) == [f"order:{number}"]
    assert result.data["order"]["status"] == commerce.get_order(number)["status"]


def test_zaf_ticket_requester_email_lists_orders(registry, make_ctx, zaf_tickets, commerce):
    ticket = {**zaf_tickets[0], "custom_fields": {}, "subject": "hello", "description": "question"}
    email = ticket["requester"]["email"]
    result = registry.get("order_lookup").run("show me their orders", make_ctx(ticket))
    assert result.status == "ok"
    assert [e.id for e in result.evidence] == [
        f"customer:{email}",
        *(f"order:{o['order_number']}" for o in commerce.orders_for_customer(email)[:5]),
    ]


def test_zaf_ticket_product_field_by_title(registry, make_ctx):
    ticket = {"id": "3", "custom_fields": {"Product SKU": "OF-102"}}
    result = registry.get("product_catalog").run("is it back in stock?", make_ctx(ticket))
    assert ids(result) == ["product:OF-102"]
