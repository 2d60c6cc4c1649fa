"""The ticket brief's parts, without a model or an index: versions, the recap quoted from the
ticket, internal notes, state lines from the order system's records, language / urgency /
sentiment, and how suggestions explain themselves."""

from __future__ import annotations

import copy

import pytest

from agents.base import Evidence
from agents.commerce import LocalCommerceAPI
from bench.answers.payload import sidebar_ticket
from orchestrator.brief import (
    BriefDone,
    BriefRequest,
    BriefSection,
    build_brief,
    customer_state,
    order_state,
    product_state,
    ticket_version,
)
from orchestrator.suggestions import suggestion_query, why_matched


@pytest.fixture(scope="module")
def commerce() -> LocalCommerceAPI:
    return LocalCommerceAPI()


def brief_of(ticket: dict, commerce, **kwargs) -> tuple[list[str], dict]:
    events = list(
        build_brief(BriefRequest("s1", "demo", "Dana", ticket, **kwargs), services={"commerce": commerce})
    )
    assert isinstance(events[-1], BriefDone)
    return [e.name for e in events if isinstance(e, BriefSection)], events[-1].brief


def test_a_new_comment_or_the_internal_switch_is_a_new_version() -> None:
    ticket = sidebar_ticket(41308)
    same = copy.deepcopy(ticket)
    assert ticket_version(ticket) == ticket_version(same)
    same["comments"].append({"author": "Felix", "role": "end-user", "public": True, "text": "Any news?"})
    assert ticket_version(same) != ticket_version(ticket)
    assert ticket_version(ticket, include_internal=True) != ticket_version(ticket)
    # Key order is not a change (the sidebar may build the object in any order).
    assert ticket_version(dict(reversed(list(ticket.items())))) == ticket_version(ticket)


def test_recap_quotes_the_ticket(commerce) -> None:
    sections, brief = brief_of(sidebar_ticket(41308), commerce)
    assert sections == ["recap", "entities", "signals"]  # no suggester: no suggestions section
    r = brief["recap"]
    assert r["problem"] == (
        "Received BO-100693, but something's missing: I ordered the Lumo Garden Light Starter Kit too."
    )
    assert r["ask"] == "Please send it."
    assert r["done"].startswith("Don't worry – your order was sent in two parcels.")
    assert r["promised"] == "It should arrive within a day or two."
    assert r["next_step"] == ""  # the promise above is the next step: said once
    assert brief["mode"] == "extractive" and brief["sources"][0] == "ticket:41308"
    assert "Customer wants: Please send it." in brief["text"]


def test_waiting_on_us_when_the_customer_wrote_last(commerce) -> None:
    _, brief = brief_of(sidebar_ticket(41312), commerce)
    r = brief["recap"]
    assert r["waiting_on"] == "us" and r["next_step"] == "Where's the rest?"
    assert r["done"] == "No public reply from support yet."
    assert "Next step (our reply is due): Where's the rest?" in brief["text"]


def test_internal_notes_stay_out_unless_enabled(commerce) -> None:
    ticket = sidebar_ticket(41308)
    ticket["comments"].append(
        {
            "author": "Amira",
            "role": "agent",
            "public": False,
            "text": "Warehouse says the kit was never packed.",
        }
    )
    _, public = brief_of(ticket, commerce)
    assert "never packed" not in str(public) and public["recap"]["internal_notes"] == 1
    _, admin = brief_of(ticket, commerce, include_internal=True)
    assert admin["recap"]["internal"] == ["Internal note by Amira: Warehouse says the kit was never packed."]
    assert "never packed" not in admin["text"]  # marked apart, never mixed into the public recap
    assert admin["version"] != public["version"]


def test_state_lines_from_the_records(commerce) -> None:
    _, brief = brief_of(sidebar_ticket(41312), commerce)
    states = [e["state"] for e in brief["entities"]]
    assert states == [
        "BO-100667 · returned 2026-10-31 · 3 items · €84.15 refunded",
        "AP-411 · Ridge Fleece Jacket · in stock (40) · 2-year warranty",
        "Lea Yilmaz · 2 orders · Innsbruck, AT",
    ]
    assert [e["id"] for e in brief["entities"]][:2] == ["order:BO-100667", "product:AP-411"]
    order = next(e for e in brief["entities"] if e["kind"] == "order")
    assert order["detail"].startswith("Order BO-100667")  # the order agent's own sentence


def test_order_state_counts_parcels_and_says_what_is_open() -> None:
    order = {
        "order_number": "BO-100693",
        "status": "shipped",
        "shipped_at": "2026-11-13T15:58:53Z",
        "additional_tracking_numbers": ["JJD002222136683247776"],
        "items": [{"qty": 1}, {"qty": 2}],
    }
    assert order_state(order) == "BO-100693 · shipped 2026-11-13 · in 2 parcels · not delivered yet · 3 items"
    order.update(status="delivered", delivered_at="2026-11-15T13:10:03Z")
    assert order_state(order) == "BO-100693 · shipped in 2 parcels · delivered 2026-11-15 · 3 items"
    assert order_state({"order_number": "BO-1", "status": "processing", "preorder": True}) == (
        "BO-1 · pre-order, not shipped yet"
    )
    assert product_state({"sku": "XX-001", "name": "Kit", "stock": 0, "lifetime_warranty": True}) == (
        "XX-001 · Kit · out of stock · lifetime warranty"
    )
    assert customer_state(
        {"first_name": "Ann", "oak_club_member": True, "order_count": 1, "country": "DE"}
    ) == ("Ann · Oak Club member · 1 order · DE")


def test_an_unknown_order_and_a_down_order_system(commerce) -> None:
    ticket = {"id": "7", "subject": "Where is BO-999999?", "description": "Order BO-999999 never came."}
    _, brief = brief_of(ticket, commerce)
    assert brief["entities"][0]["state"] == "BO-999999 · not found in the order system"

    class Down:
        def get_order(self, number):
            from agents.base import ToolUnavailable

            raise ToolUnavailable("timed out")

    _, brief = brief_of(ticket, Down())
    assert brief["entities"] == [] and "unavailable" in brief["entity_notes"][0]
    # The brief stands. Nothing asked in so many words: what the customer reported is the ask.
    assert brief["recap"]["ask"] == "Order BO-999999 never came." and brief["recap"]["ask_stated"] is False
    assert brief["recap"]["problem"] == "Where is BO-999999?"  # the subject, not the same line twice
    assert "Customer reports: Order BO-999999 never came." in brief["text"]


def test_language_urgency_and_sentiment(commerce) -> None:
    german = {
        "id": "8",
        "subject": "Paket fehlt",
        "priority": "high",
        "description": "Hallo, meine Bestellung ist immer noch nicht da. Das ist wirklich ärgerlich! "
        "Bitte schicken Sie mir sofort eine Antwort.",
    }
    _, brief = brief_of(german, commerce)
    s = brief["signals"]
    assert s["language"] == {"code": "de", "name": "German", "from": "the customer's comments"}
    assert s["urgency"]["level"] == "high" and s["urgency"]["why"][0] == "priority high"
    assert "“sofort”" in s["urgency"]["why"]
    assert s["sentiment"] == {"label": "negative", "why": ["“ärgerlich”"]}
    calm = {"id": "9", "subject": "Question", "priority": "low", "description": "Thanks, I love the bench."}
    _, brief = brief_of(calm, commerce)
    assert brief["signals"]["urgency"]["level"] == "low"
    assert brief["signals"]["sentiment"]["label"] == "positive"
    assert brief["signals"]["language"]["code"] == "en"


def test_suggestions_say_why_they_matched() -> None:
    recap = {"problem": "I ordered the Lumo Garden Light Starter Kit too.", "ask": "Please send it."}
    query = suggestion_query({"subject": "Item missing"}, recap)
    assert query == "I ordered the Lumo Garden Light Starter Kit too. Please send it."
    e = Evidence(id="article:1", title="Pairing Lumo Garden Lights", text="The starter kit pairs with the hub.",
                 kind="article", score=0.91)  # fmt: skip
    why = why_matched(query, e)
    assert why.startswith("shares “") and "“lumo”" in why and "“garden”" in why
    assert why.endswith("search score 0.91")
    assert "please" not in why  # filler is never a reason


def test_brief_cases_score_the_ask_and_the_state_lines_apart_from_the_answers() -> None:
    from bench.answers.run import brief_scored_text
    from bench.answers.score import summarise

    brief = {
        "recap": {"ask": "Please send it.", "problem": "Something's missing."},
        "entities": [{"kind": "order", "state": "BO-100693 · delivered 2026-11-15 · 2 items"}],
    }
    assert (
        brief_scored_text(brief)
        == "Customer wants: Please send it.\nOrder: BO-100693 · delivered 2026-11-15 · 2 items"
    )

    def case(category: str, right: bool) -> dict:
        verdict = {"kind": "fact", "right": right, "declined": False, "wrong_fact": False, "cited": ["x"],
                   "cited_holding": 1}  # fmt: skip
        return {"split": "dev", "category": category, "turns": [{"verdict": verdict}]}

    s = summarise([case("policy", False), case("brief", True), case("brief", True)])
    assert s["by_split"]["dev"]["fact_accuracy"] == 0.0  # the answers' headline: the brief is apart
    assert s["by_category"]["brief"]["dev"]["fact_accuracy"] == 1.0
