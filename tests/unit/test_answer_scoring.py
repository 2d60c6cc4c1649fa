"""bench/answers/score.py: what counts as a right answer, a wrong fact, a decline, and the metrics."""

from __future__ import annotations

import pytest

from bench.answers.cases import Turn
from bench.answers.score import (
    holds_fact,
    is_decline,
    metrics,
    score_turn,
    source_matches,
    summarise,
    target_status,
)
from vertex_interface.extractive import NOTHING_FOUND

RETURN = Turn(
    ask="how long has a customer got to send stuff back?",
    expect=[r"\b30 days\b"],
    forbid=[r"\b14 days\b"],
    sources=["article:360000301"],
)
ORDER = Turn(ask="where is this order?", expect=[r"shipped"], sources=["order:"])
DECLINE = Turn(ask="who won the world cup in 1998?", decline=True)
CONTEXT = Turn(ask="customer's lumo plug won't connect")


def cite(*ids: str, cited: bool = True) -> list[dict]:
    return [{"n": i, "id": x, "cited": cited} for i, x in enumerate(ids, 1)]


def test_source_patterns_exact_and_prefix():
    assert source_matches("article:360000301", "article:360000301")
    assert not source_matches("article:3600003010", "article:360000301")
    assert source_matches("order:BO-100693", "order:")
    assert source_matches("article:360000301", "article:*")
    assert source_matches("product:AP-412", "product:AP*")
    assert not source_matches("product:AP-412", "order:")
    # A part of a source is that source: the ticket's internal notes are the ticket.
    assert source_matches("ticket:41316:internal", "ticket:41316")
    assert not source_matches("ticket:413160", "ticket:41316")
    assert holds_fact("order:BO-1", ["article:1", "order:"])


def test_a_right_fact_turn():
    v = score_turn(RETURN, "Customers have 30 DAYS to return an item [1].", cite("article:360000301"))
    assert v.kind == "fact" and v.right and not v.wrong_fact and not v.declined
    assert v.cited == ["article:360000301"] and v.cited_holding == 1


@pytest.mark.parametrize(
    ("text", "citations", "reason"),
    [
        ("You have 14 days, or 30 days for members [1].", cite("article:360000301"), "forbidden"),
        ("Returns are free [1].", cite("article:360000301"), "missing"),
        ("Customers have 30 days [1].", cite("article:999"), "cites none"),
        ("Customers have 30 days.", cite("article:360000301", cited=False), "cites no source"),
        (f"{NOTHING_FOUND} 30 days", cite("article:360000301"), "declined"),
    ],
)
def test_a_wrong_fact_turn_says_why(text, citations, reason):
    v = score_turn(RETURN, text, citations)
    assert v.right is False
    assert any(reason in r for r in v.reasons), v.reasons
    assert v.wrong_fact == (reason == "forbidden")


def test_prefix_sources_and_retrieved_but_uncited():
    # Retrieved (cited: false) sources do not count; cited ones matching the prefix do.
    cits = [*cite("article:1", cited=False), {"n": 2, "id": "order:BO-100693", "cited": True}]
    assert score_turn(ORDER, "Order BO-100693 has shipped [2].", cits).right


@pytest.mark.parametrize(
    ("text", "routing"),
    [
        (NOTHING_FOUND, None),
        ("I couldn't find anything relevant to this question in: Order system.", None),
        ("I could not find anything relevant in the Help Center.", None),
        ("The sources don't answer this question.", None),
        ("Ich habe nichts Relevantes gefunden.", None),
        ("Could you say a bit more about what you need?", {"action": "clarify"}),
        ("Anything.", {"action": "route", "meta": {"declined": True}}),
    ],
)
def test_declines_are_recognised(text, routing):
    assert is_decline(text, routing)
    v = score_turn(DECLINE, text, [], routing)
    assert v.kind == "decline" and v.right and v.declined


@pytest.mark.parametrize(
    "text",
    [
        "Customers have 30 days to return an item [1].",
        "If we can't find your parcel, we refund it [1].",  # a quoted policy sentence, not a decline
        "Hi! I can look up orders, products and the Help Center.",
    ],
)
def test_answers_are_not_declines(text):
    assert not is_decline(text, {"action": "route"})
    v = score_turn(DECLINE, text, cite("article:1"))
    assert v.right is False and "should have declined" in v.reasons[0]


def test_a_decline_that_states_a_forbidden_fact_is_wrong():
    turn = Turn(ask="what is the CEO's salary?", decline=True, forbid=[r"€\s?\d"])
    v = score_turn(turn, "I couldn't find anything relevant, but it is €90,000.", [])
    assert v.declined and v.wrong_fact and not v.right


def test_context_turns_and_errors():
    v = score_turn(CONTEXT, "anything", cite("article:1"))
    assert v.kind == "context" and v.right is None
    v = score_turn(RETURN, "", [], None, error="no chat:done within 90 s")
    assert v.right is False and "no answer" in v.reasons[0]


def _turn(verdict, first=0.1, total=0.2, error=None) -> dict:
    return {"verdict": verdict.as_dict(), "first_token_s": first, "total_s": total, "error": error}


def _case(split, category, *turns) -> dict:
    return {"id": f"{split}-{category}", "split": split, "category": category, "turns": list(turns)}


def test_metrics():
    right = score_turn(RETURN, "30 days [1]", cite("article:360000301", "article:2"))  # precision 1/2
    wrong = score_turn(RETURN, "14 days [1]", cite("article:360000301"))  # forbidden fact; precision 1
    miss = score_turn(RETURN, NOTHING_FOUND, [])  # declined a fact question
    declined = score_turn(DECLINE, NOTHING_FOUND, [])
    answered = score_turn(DECLINE, "It was France [1].", cite("article:9"))
    ctx = score_turn(CONTEXT, "x", [])
    results = [
        _case("dev", "policy", _turn(ctx, 0.05, 0.1), _turn(right, 0.3, 0.5)),
        _case("dev", "policy", _turn(wrong, 0.2, 2.0)),
        _case("dev", "policy", _turn(miss)),
        _case("test", "unanswerable", _turn(declined)),
        _case("test", "unanswerable", _turn(answered)),
    ]
    m = metrics(results)
    assert m["cases"] == 5 and m["turns"] == 6 and m["scored_turns"] == 5
    assert m["case_accuracy"] == pytest.approx(2 / 5, abs=1e-4)
    assert m["fact_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["wrong_fact_turns"] == 1 and m["wrong_fact_rate"] == pytest.approx(1 / 5, abs=1e-4)
    assert m["citation_precision"] == pytest.approx((0.5 + 1.0) / 2, abs=1e-4)
    # Declined: miss (should not have) and declined (should have).
    assert m["decline_precision"] == pytest.approx(1 / 2, abs=1e-4)
    assert m["decline_recall"] == pytest.approx(1 / 2, abs=1e-4)
    assert m["total_ms"]["p95"] == 2000.0 and m["first_token_ms"]["p50"] == 100.0

    s = summarise(results)
    assert set(s["by_split"]) == {"dev", "test", "all"}
    assert s["by_category"]["policy"]["dev"]["fact_turns"] == 3
    assert "test" not in s["by_category"]["policy"]
    assert s["by_category"]["unanswerable"]["test"]["decline_recall"] == pytest.approx(0.5, abs=1e-4)


def test_targets():
    good = {"fact_accuracy": 0.95, "wrong_fact_rate": 0.0, "decline_recall": 1.0, "total_ms": {"p95": 800.0}}
    assert all(t["met"] for t in target_status(good).values())
    bad = {**good, "wrong_fact_rate": 0.01, "total_ms": {"p95": 1200.0}}
    status = target_status(bad)
    assert status["wrong_fact_rate"]["met"] is False and status["p95_total_ms"]["met"] is False
    assert status["fact_accuracy"]["met"] is True
    assert target_status({})["fact_accuracy"]["met"] is None


def test_earlier_answers_are_rescored_with_todays_cases():
    from bench.answers.cases import Case
    from bench.answers.run import rescore

    case = Case(id="policy-return", split="test", category="policy", turns=[RETURN])
    changed = Case(id="policy-other", split="dev", category="policy", turns=[ORDER])
    recorded = score_turn(Turn(ask=RETURN.ask, expect=["nothing like it"], sources=["x"]), "30 days [1]")
    old = [
        {
            "id": "policy-return",
            "split": "dev",
            "category": "order",
            "right": False,
            "turns": [
                {
                    "ask": RETURN.ask,
                    "text": "30 days [1]",
                    "citations": cite("article:360000301"),
                    "routing": None,
                    "error": None,
                    "verdict": recorded.as_dict(),
                }
            ],
        },
        {
            "id": "policy-other",
            "split": "dev",
            "category": "policy",
            "right": True,
            "turns": [{"ask": "a question since reworded", "text": "", "verdict": recorded.as_dict()}],
        },
        {"id": "gone", "split": "dev", "category": "policy", "right": True, "turns": []},
    ]
    again = rescore(old, [case, changed])
    assert [r["id"] for r in again] == ["policy-return"]
    assert again[0]["right"] and again[0]["split"] == "test" and again[0]["category"] == "policy"
    assert again[0]["turns"][0]["verdict"]["right"] is True
