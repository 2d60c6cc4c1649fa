"""The extractive responder keeps structure: table rows, list lead-ins, neighbours, value types,
agents' facts first, internal notes marked, off-subject questions declined."""

from __future__ import annotations

import pytest

from vertex_interface import LLMConfig, Source, create_llm
from vertex_interface.extractive import (
    INTERNAL_MARK,
    NOTHING_FOUND,
    OFFLINE_LABEL,
    asked_value_types,
    content_terms,
    fold_synonyms,
    split_sentences,
    value_types,
)
from vertex_interface.local import LocalLLM


@pytest.fixture(scope="module")
def llm(embedder) -> LocalLLM:
    instance = create_llm(LLMConfig(), embedder=embedder)
    assert isinstance(instance, LocalLLM)
    return instance


REFUNDS = Source(
    1,
    "When will I get my refund?",
    "Returns take 3–7 business days to reach our Returns Centre. We check them within 3 business days "
    "of arrival and then issue the refund.\n"
    "Paid with: PayPal — Money back after we issue the refund: Within 1 business day.\n"
    "Paid with: iDEAL, Bancontact — Money back after we issue the refund: 5–7 business days to your bank account.\n"
    "Paid with: Gift card — Money back after we issue the refund: Instantly, as gift card credit.",
)


def test_a_table_row_is_quoted_whole_and_never_runs_into_its_neighbours(llm: LocalLLM) -> None:
    resp = llm.generate(
        "customer paid with iDEAL, how long until the refund reaches the bank?", sources=[REFUNDS]
    )
    assert (
        "Paid with: iDEAL, Bancontact — Money back after we issue the refund: 5–7 business days" in resp.text
    )
    assert "Bancontact5" not in resp.text


RETURNS = Source(
    2,
    "Items that can't be returned",
    "Most things can be returned within 30 days.\n"
    "Which items can't be returned, unless they are faulty?\n"
    "- Gift cards and Oak Club membership after 14 days.\n"
    "- Opened bedding, such as duvet covers and pillowcases.\n"
    "- Opened socks and underwear.\n"
    "- Gas cartridges, for safety reasons.\n"
    "- Engraved or personalised items.\n"
    "Everything else follows the normal return policy.",
)


def test_a_list_item_picked_alone_carries_its_lead_in(llm: LocalLLM) -> None:
    spans = split_sentences(RETURNS)
    item = next(s for s in spans if s.text.startswith("Opened bedding"))
    lead = "Which items can't be returned, unless they are faulty?"
    assert item.item and item.lead is not None and item.lead.text == lead
    resp = llm.generate("can a customer send back an opened duvet cover?", sources=[RETURNS])
    assert f"{lead}\n- Opened bedding, such as duvet covers and pillowcases." in resp.text
    # The lead-in is quoted once, before its item, never as an answer of its own.
    assert resp.text.count(lead) == 1


PASSWORD = Source(
    3,
    "My account is locked",
    "We lock an account after 5 failed sign-in attempts. It stays locked for 30 minutes. "
    "Resetting your password unlocks it straight away.\n"
    "Reset links are valid for 60 minutes.",
)


def test_a_sentence_that_leans_on_the_previous_one_brings_it(llm: LocalLLM) -> None:
    resp = llm.generate("how long is the account locked for?", sources=[PASSWORD])
    # "It stays locked…" alone does not say what "it" is.
    assert "We lock an account after 5 failed sign-in attempts. It stays locked for 30 minutes." in resp.text


def test_value_types_of_questions_and_sentences() -> None:
    assert asked_value_types("how long does a refund take") >= {"duration"}
    assert "money" in asked_value_types("what does express to the UK cost?")
    assert "money" in asked_value_types("wie viel kostet der Versand in die Schweiz")
    assert "duration" in asked_value_types("wie lange dauert die Erstattung")
    assert "time" in asked_value_types("wann geht das Paket raus")
    assert "count" in asked_value_types("how many devices can one hub take?")
    assert asked_value_types("what happens when a parcel is lost") == frozenset()
    assert asked_value_types("can I return a gift card?") == frozenset()
    assert "duration" in value_types("Refunds take 3–5 business days.")
    assert "duration" in value_types("innerhalb von 1 Werktag")
    assert "money" in value_types("Express costs €14.95.")
    assert "time" in value_types("Orders paid before 14:00 CET ship the same day.")
    assert "duration" not in value_types("Refunds go back to the original payment method.")


SHIPPING = Source(
    4,
    "Express delivery",
    "Express delivery is our fastest option for urgent orders and is available in most countries. "
    "It costs €14.95 per order.\n"
    "Express orders placed after the cut-off leave the next day.",
)


def test_a_how_much_question_prefers_the_sentence_with_the_amount(llm: LocalLLM) -> None:
    resp = llm.generate("how much is express delivery?", sources=[SHIPPING])
    # The amount, with the sentence that says what "it" is.
    assert resp.text.split("\n\n")[1] == (
        "Express delivery is our fastest option for urgent orders and is available in most countries. "
        "It costs €14.95 per order. [4]"
    )


ORDER = Source(
    5,
    "Order BO-100693",
    "Order BO-100693 was placed on 12 November.\nStatus: shipped.\nCarrier: DHL, tracking JD0001.\n"
    "Delivered on 14 November.",
    kind="order",
    facts=("Status: shipped.", "Delivered on 14 November."),
)
POLICY = Source(
    6,
    "Our return policy",
    "You can return most items within 30 days of delivery. Socks are sold in packs of three.",
)
NOTE = Source(
    7,
    "Ticket #41308",
    "Agent note: customer was promised a refund of the shipping cost.",
    kind="ticket",
    internal=True,
    facts=("Agent note: customer was promised a refund of the shipping cost.",),
)


def test_facts_come_first_verbatim_then_only_relevant_sentences(llm: LocalLLM) -> None:
    resp = llm.generate("until when can she return this order?", sources=[POLICY, ORDER])
    paragraphs = resp.text.split("\n\n")
    assert paragraphs[0] == OFFLINE_LABEL
    # The agent's facts: first, verbatim, one paragraph, whatever their similarity to the question.
    assert paragraphs[1] == "Status: shipped. Delivered on 14 November. [5]"
    assert "within 30 days of delivery" in paragraphs[2] and paragraphs[2].endswith("[6]")
    assert "Socks" not in resp.text
    assert resp.citations == (5, 6)
    assert resp.finish_reason == "STOP"


def test_facts_are_never_dropped_and_internal_content_is_marked(llm: LocalLLM) -> None:
    resp = llm.generate("what is the weather in Paris?", sources=[NOTE, POLICY])
    assert resp.text.split("\n\n")[1] == (
        f"{INTERNAL_MARK} Agent note: customer was promised a refund of the shipping cost. [7]"
    )
    assert resp.citations == (7,)
    # Internal sentences picked by relevance are marked too.
    plain = Source(7, NOTE.title, NOTE.text, kind="ticket", internal=True)
    resp = llm.generate("was the customer promised a refund of the shipping cost?", sources=[plain])
    assert resp.text.split("\n\n")[1].startswith(f"{INTERNAL_MARK} Agent note:")


def test_a_question_about_something_no_source_mentions_is_declined(llm: LocalLLM) -> None:
    discounts = Source(
        8,
        "Using promo codes",
        "A discount is spread across all items in the order. One promo code per order. "
        "WELCOME10 gives 10% off a first order of €50 or more.",
    )
    assert (
        llm.generate("do we offer a student discount for teachers?", sources=[discounts]).text
        == NOTHING_FOUND
    )
    assert "WELCOME10" in llm.generate("what discount does the welcome code give?", sources=[discounts]).text


def test_agents_shorthand_is_folded_to_the_articles_words() -> None:
    assert fold_synonyms("min length for a new pw?") == "min length for a new password?"
    assert "return" in fold_synonyms("do they need to post it back")
    assert "warranty" in content_terms("basic guarantee on a floor lamp?")
    assert "united states" in fold_synonyms("free delivery to the states")
    # Words are folded whole: "pwned" and "hold" inside another word stay as they are.
    assert fold_synonyms("pwned") == "pwned"
    assert fold_synonyms("household items") == "household items"


def test_degree_and_attempt_words_are_not_the_subject() -> None:
    # "max time … pause" asks about pausing; "max" and "time" appear in no article, and counting
    # them as the subject made an answerable question look unanswerable.
    from vertex_interface.extractive import subject_terms

    assert subject_terms("going travelling, max time she can pause the subscription?") == {
        "travell",
        "pause",
        "subscription",
    }
    assert subject_terms("what should he try first? firmware stuck") == {"firmware", "stuck"}


def test_still_and_too_late_questions_ask_for_a_time_window() -> None:
    # "can he still…" is answered by the window (a duration), not by a sentence that only names the topic.
    assert "duration" in asked_value_types("can he still send it back?")
    assert "duration" in asked_value_types("is it too late to fix the house number?")
    assert "duration" in asked_value_types("what's the last day the tent can come back?")
    assert not asked_value_types("the parcel is still missing, what now?")
