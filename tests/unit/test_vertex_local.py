"""The local (offline) backend: a grounded extractive responder over real text, plus MiniLM embeddings."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from store.knowledge.chunking import html_blocks
from vertex_interface import (
    CallTags,
    LLMConfig,
    Source,
    Unavailable,
    UsageLedger,
    Veto,
    Vetoed,
    create_llm,
)
from vertex_interface.extractive import NOTHING_FOUND, OFFLINE_LABEL, split_sentences
from vertex_interface.local import LocalLLM

RETURNS = """Returns and refunds

You can return most items within 30 days of delivery for a full refund. Items must be unused and in their original packaging, with all tags attached.
To start a return, open Orders in your account, choose the order and select "Return items". We email you a prepaid return label within one business day.
Refunds are issued to the original payment method within 5-7 business days after the returned item reaches our warehouse. Shipping charges are refunded only if the item arrived damaged or was not what you ordered.
Final-sale items, gift cards and personalised products cannot be returned."""

SHIPPING = """Shipping times and costs

Standard shipping takes 3-5 business days within the continental US and is free on orders over $50. Express shipping delivers in 1-2 business days for a flat fee of $14.99.
Orders placed before 2 p.m. Eastern time on a business day ship the same day. You receive a tracking number by email as soon as your parcel leaves the warehouse.
We currently ship to the United States and Canada only. International orders to Canada may be subject to import duties, which are paid by the recipient."""

PASSWORD = """Resetting your password

If you forgot your password, click "Forgot password?" on the sign-in page and enter the email address on your account. We send you a reset link that stays valid for 60 minutes.
Open the link, choose a new password of at least 12 characters and confirm it. For your security, all other devices are signed out after a password change.
If the email does not arrive within a few minutes, check your spam folder. Accounts created through Google or Apple sign-in have no password to reset; use that provider's sign-in instead."""

SOURCES = [
    Source(1, "Returns and refunds", RETURNS, url="https://help.example.com/returns"),
    Source(2, "Shipping times and costs", SHIPPING, url="https://help.example.com/shipping"),
    Source(3, "Resetting your password", PASSWORD, url="https://help.example.com/password"),
]


@pytest.fixture(scope="module")
def llm() -> LocalLLM:
    instance = create_llm(LLMConfig())
    assert isinstance(instance, LocalLLM)
    return instance


_PARAGRAPH = re.compile(r"^(?P<body>.+) \[(?P<n>\d+)\]$", re.DOTALL)
_PIECES = re.compile(r"(?<=[.!?])[\"'\u201d)]*\s+")


def assert_grounded(text: str, sources: Sequence[Source]) -> list[int]:
    """Every paragraph after the label ends with one citation, and every sentence in it is a verbatim
    slice of that cited source. Returns the cited numbers in order."""
    by_number = {s.number: s for s in sources}
    paragraphs = text.split("\n\n")
    assert paragraphs[0] == OFFLINE_LABEL
    cited: list[int] = []
    for paragraph in paragraphs[1:]:
        match = _PARAGRAPH.match(paragraph)
        assert match, f"paragraph without a trailing citation: {paragraph!r}"
        number = int(match["n"])
        assert number in by_number, f"citation [{number}] points at no source"
        for piece in _PIECES.split(match["body"]):
            if piece.strip():
                assert piece.strip() in by_number[number].text, f"{piece!r} is not in source [{number}]"
        cited.append(number)
    return cited


@pytest.mark.parametrize(
    ("question", "source", "must_quote"),
    [
        ("How long do refunds take to show up?", 1, "within 5-7 business days"),
        ("Can I return a gift card?", 1, "gift cards and personalised products cannot be returned"),
        ("How much does express shipping cost?", 2, "flat fee of $14.99"),
        ("Do you ship to Mexico?", 2, "United States and Canada only"),
        ("My password reset link expired, how long is it valid?", 3, "valid for 60 minutes"),
        ("The customer wants to return shoes they bought 2 weeks ago", 1, "within 30 days of delivery"),
    ],
)
def test_answers_quote_the_right_source_verbatim(
    llm: LocalLLM, question: str, source: int, must_quote: str
) -> None:
    resp = llm.generate(question, sources=SOURCES)
    assert resp.finish_reason == "STOP"
    assert resp.offline and resp.label == "offline mode" and resp.backend == "local"
    cited = assert_grounded(resp.text, SOURCES)
    assert cited[0] == source
    assert resp.citations == tuple(cited)
    assert must_quote in resp.text
    # Never more than the configured number of sentences.
    assert len(resp.text.split("\n\n")) - 1 <= llm.config.local.max_sentences


@pytest.mark.parametrize(
    "question",
    [
        "Can I pay with Bitcoin?",
        "What's the weather tomorrow in Paris?",
        "Which programming language is best?",
    ],
)
def test_unrelated_question_says_nothing_found(llm: LocalLLM, question: str) -> None:
    resp = llm.generate(question, sources=SOURCES)
    assert resp.text == NOTHING_FOUND
    assert resp.finish_reason == "NO_RELEVANT_SOURCES"
    assert resp.citations == () and resp.offline


def test_no_sources_means_nothing_found(llm: LocalLLM) -> None:
    assert llm.generate("How do refunds work?").text == NOTHING_FOUND


def test_answers_the_last_user_message_of_a_conversation(llm: LocalLLM) -> None:
    history = [
        {"role": "user", "text": "How much is express shipping?"},
        {"role": "model", "text": "It is $14.99 [2]."},
        {"role": "user", "text": "And how do I reset my password?"},
    ]
    resp = llm.generate(history, sources=SOURCES, system="ignored offline")
    assert assert_grounded(resp.text, SOURCES)[0] == 3


def test_stream_yields_the_same_answer_in_chunks(llm: LocalLLM) -> None:
    question = "How long do refunds take?"
    deltas = list(llm.stream(question, sources=SOURCES))
    final = deltas[-1]
    assert final.is_final and final.response is not None
    assert len(deltas) > 3  # streamed in pieces, like a model
    assert "".join(d.text for d in deltas[:-1]) == final.response.text
    assert final.response.text == llm.generate(question, sources=SOURCES).text


class Decision(BaseModel):
    agent: str


def test_generate_json_is_unavailable_offline(llm: LocalLLM) -> None:
    with pytest.raises(Unavailable, match="local router") as info:
        llm.generate_json("route this", schema=Decision)
    assert not info.value.retryable


def test_embed_is_normalised_minilm_and_semantic(llm: LocalLLM) -> None:
    vectors = llm.embed(
        [
            "How do I get my money back?",
            "Refunds are issued within 5-7 business days.",
            "Reset your password",
        ],
        task_type="RETRIEVAL_DOCUMENT",
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    with pytest.raises(ValueError, match="task_type"):
        llm.embed(["x"], task_type="nope")


def test_local_calls_are_recorded_at_zero_cost_and_callbacks_run() -> None:
    ledger = UsageLedger()
    seen: list[str] = []
    llm = create_llm(LLMConfig(), ledger=ledger)
    llm.callbacks.after.append(lambda req, resp: seen.append(f"{req.kind}:{resp.usage.model}"))
    llm.generate("How long do refunds take?", sources=SOURCES, tags=CallTags("s", "t", "synth"))
    totals = ledger.totals(session_id="s", turn_id="t")
    assert totals.calls == 1 and totals.cost_usd == 0.0
    assert 0 < totals.context_tokens < totals.input_tokens
    assert ledger.records()[0].usage.estimated
    assert seen == ["generate:local-extractive"]

    llm.callbacks.before.append(
        lambda req: Veto("no refunds talk") if "refund" in req.contents[-1].text else None
    )
    with pytest.raises(Vetoed, match="no refunds talk"):
        llm.stream("refund please", sources=SOURCES)
    assert ledger.totals().calls == 1


def test_sentence_splitter_keeps_verbatim_slices() -> None:
    text = (
        "Getting help\n"
        'Click "Forgot password?" on the sign-in page. Orders placed before 2 p.m. Eastern ship today.\n'
        "- Refunds take 5-7 days, e.g. for cards. Gift cards are final.\n"
        "1. Open the app and tap Orders."
    )
    source = Source(7, "Getting help", text)
    spans = split_sentences(source)
    assert [s.text for s in spans] == [
        'Click "Forgot password?" on the sign-in page.',
        "Orders placed before 2 p.m. Eastern ship today.",
        "Refunds take 5-7 days, e.g. for cards.",
        "Gift cards are final.",
        "Open the app and tap Orders.",
    ]
    for span in spans:
        assert text[span.start : span.start + len(span.text)] == span.text


def test_a_list_intro_carries_its_list_and_questions_are_never_quoted(llm: LocalLLM) -> None:
    text = (
        "Ordered as a guest? Use the link in your confirmation email.\n"
        "We currently deliver to these countries:\n"
        "- Netherlands, Belgium and Germany\n"
        "- France and Spain\n"
        "Delivery to islands takes two extra days.\n"
    )
    source = Source(1, "Countries", text)
    spans = [s.text for s in split_sentences(source)]
    assert (
        spans[2]
        == "We currently deliver to these countries:\n- Netherlands, Belgium and Germany\n- France and Spain"
    )
    assert spans[3] == "Delivery to islands takes two extra days."
    resp = llm.generate("Which countries do you deliver to?", sources=[source])
    assert "- France and Spain [1]" in resp.text
    assert "Ordered as a guest?" not in resp.text


# --- over the real demo Help Center ------------------------------------------------------------------

ARTICLES = Path(__file__).resolve().parents[2] / "store" / "demo_data" / "help_center" / "articles.json"


def article_text(body: str) -> str:
    """Article HTML as the ingest chunker hands it over: one block per line, table rows with headers."""
    return "\n".join(b.text for b in html_blocks(body))


def demo_sources(titles: list[str]) -> list[Source]:
    articles = {a["title"]: a for a in json.loads(ARTICLES.read_text())["articles"]}
    missing = [t for t in titles if t not in articles]
    if missing:
        pytest.skip(f"demo Help Center changed; articles not found: {missing}")
    out = []
    for i, title in enumerate(titles, start=1):
        text = article_text(articles[title]["body"])
        out.append(Source(i, title, text, url=articles[title]["html_url"], id=str(articles[title]["id"])))
    return out


DEMO_TITLES = [
    "Changing or cancelling an order",
    "Which countries do you ship to?",
    "When will I get my refund?",
    "Items that can't be returned",
    "Tracking your parcel",
    "Warranty: what's covered and how to claim",
]


@pytest.mark.skipif(not ARTICLES.exists(), reason="demo Help Center not generated yet")
@pytest.mark.parametrize(
    ("question", "expected_title"),
    [
        ("Can I still cancel my order after it has shipped?", "Changing or cancelling an order"),
        ("How long until my refund reaches my bank account?", "When will I get my refund?"),
        ("Which countries do you deliver to?", "Which countries do you ship to?"),
    ],
)
def test_demo_articles_answer_from_the_right_article(
    llm: LocalLLM, question: str, expected_title: str
) -> None:
    sources = demo_sources(DEMO_TITLES)
    resp = llm.generate(question, sources=sources)
    cited = assert_grounded(resp.text, sources)
    assert sources[cited[0] - 1].title == expected_title


@pytest.mark.skipif(not ARTICLES.exists(), reason="demo Help Center not generated yet")
def test_demo_articles_unrelated_question_finds_nothing(llm: LocalLLM) -> None:
    resp = llm.generate("Who won the football world cup in 1998?", sources=demo_sources(DEMO_TITLES))
    assert resp.text == NOTHING_FOUND
