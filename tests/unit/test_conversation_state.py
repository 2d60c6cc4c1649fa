"""Follow-ups that point back ("it", "her other order") and the product-level routing cues."""

from __future__ import annotations

from orchestrator.context import resolve_reference
from orchestrator.coverage import is_policy_question, is_ticket_question


def answered(question: str, citations: list[dict], orders: list[str] | None = None) -> list[dict]:
    return [
        {"role": "user", "text": question},
        {
            "role": "assistant",
            "status": "complete",
            "text": "…",
            "citations": citations,
            "meta": {"routing": {"facts": {"order_numbers": orders or []}}},
        },
    ]


PLUG = {"n": 1, "id": "product:LU-605", "kind": "product", "title": "Lumo Smart Plug (LU-605)", "cited": True}
ARTICLE = {"n": 2, "id": "article:1", "kind": "article", "title": "Wi-Fi setup", "cited": True}


def test_it_means_the_product_the_previous_answer_cited():
    thread = answered("does the lumo plug work with wpa3?", [ARTICLE, PLUG])
    ref = resolve_reference("and how long is the warranty on it?", thread)
    assert ref.about == "Lumo Smart Plug (LU-605)"
    assert ref.skus == ["LU-605"]
    assert ref.apply("warranty on it?") == "warranty on it? (about: Lumo Smart Plug (LU-605))"


def test_without_cited_records_the_previous_question_is_the_context():
    thread = answered("customer's lumo plug won't connect, her router is WPA3 only", [ARTICLE])
    ref = resolve_reference("and how long is the warranty on it?", thread)
    assert "lumo plug" in ref.about
    assert ref.reason == "refers to the previous question"


def test_her_other_order_skips_the_order_the_answer_led_with():
    cites = [
        {"n": 1, "id": "order:BO-100001", "kind": "order", "title": "Order BO-100001", "cited": True},
        {"n": 2, "id": "order:BO-100002", "kind": "order", "title": "Order BO-100002", "cited": True},
    ]
    ref = resolve_reference("and her other order?", answered("show me her orders", cites))
    assert ref.order_numbers == ["BO-100002"]


def test_a_question_that_names_its_subject_or_has_no_history_needs_nothing():
    thread = answered("does the lumo plug work with wpa3?", [PLUG])
    assert resolve_reference("is BO-100693 shipped? and it's tracking?", thread).about == ""
    assert resolve_reference("how long is the warranty on it?", []).about == ""
    assert resolve_reference("what is the return window", thread).about == ""


def test_policy_cues_are_narrow():
    for q in (
        "can she still return it?",
        "do we cover import fees for swiss customers",
        "is shipping free over 75",
        "how long do refunds take to paypal",
        "wie lange dauert die erstattung",
    ):
        assert is_policy_question(q), q
    for q in ("where is this order", "what's the tracking number", "summarise the ticket"):
        assert not is_policy_question(q), q


def test_ticket_cues():
    for q in (
        "summarise the ticket",
        "what did the customer say in the last comment?",
        "what did we promise her",
        "has anyone replied yet",
        "tl;dr pls",
    ):
        assert is_ticket_question(q), q
    for q in ("where is this order", "how long do refunds take", "is it in stock"):
        assert not is_ticket_question(q), q


def test_an_elliptical_follow_up_asks_the_previous_question_again():
    camera = {
        "n": 1,
        "id": "product:LU-605",
        "kind": "product",
        "title": "Lumo Bird Camera (LU-605)",
        "cited": True,
    }
    thread = answered("how long is the warranty on the lumo bird camera?", [camera])
    ref = resolve_reference("and the pan?", thread)
    assert ref.asked_again == "how long is warranty on"
    assert ref.apply("and the pan?") == "and the pan? (how long is warranty on)"
    assert resolve_reference("and what is the return window for sale items in the UK?", thread).found is False


def test_the_one_before_that_points_at_the_cited_order():
    order = {"n": 1, "id": "order:BO-100002", "kind": "order", "title": "Order BO-100002", "cited": True}
    ref = resolve_reference("and the one before that?", answered("what did she order last?", [order]))
    assert ref.order_numbers == ["BO-100002"]
