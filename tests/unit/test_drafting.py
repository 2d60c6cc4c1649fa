"""Draft replies: recognising the request, and composing a reply from given facts only."""

from __future__ import annotations

import pytest

from orchestrator.drafting import compose_draft, is_draft_request, ticket_language

FELIX = {
    "id": "41308",
    "description": "Received BO-100693, but something's missing: I ordered the kit too. Please send it.",
    "requester": {"name": "Felix Wagner", "email": "felix@example.net"},
    "comments": [{"author": "Felix Wagner", "role": "end-user", "public": True, "text": "Please send it."}],
}
GERMAN = {
    "id": "9",
    "description": "Hallo, ich habe meine Bestellung noch nicht bekommen. Bitte prüfen Sie, wo das Paket ist.",
    "requester": {"name": "Jonas Weber"},
}


@pytest.mark.parametrize(
    "text",
    [
        "what should I tell the customer?",
        "What do I say to her",
        "draft a reply for this customer",
        "write a response I can send",
        "can you suggest an answer?",
        "reply suggestion pls",
        "how should I respond to this?",
        "Was soll ich dem Kunden schreiben?",
        "Schreib mir bitte eine Antwort an die Kundin",
        "Antwortentwurf?",
    ],
)
def test_draft_requests_are_recognised(text):
    assert is_draft_request(text)


@pytest.mark.parametrize(
    "text",
    [
        "what did we tell the customer?",
        "what did the customer say last?",
        "summarise the ticket",
        "how long do refunds take",
        "give me the answer about the warranty",
        "Was haben wir dem Kunden geschrieben?",
        "",
    ],
)
def test_other_questions_are_not_draft_requests(text):
    assert not is_draft_request(text)


def _body(draft: str) -> list[str]:
    """The paragraphs between the greeting and the sign-off."""
    paragraphs = draft.split("\n\n")
    return paragraphs[1:-1]


def test_greeting_facts_next_step_and_sign_off():
    draft = compose_draft(
        FELIX,
        "Amira Haddad",
        [
            "The kit ships separately with tracking JJD002222136683247776 [1].",
            "It should arrive within a day or two. [2]",
            "Extra parcels are always free [2].",
        ],
    )
    assert draft.startswith("Hi Felix,\n\n")
    assert draft.endswith("\n\nKind regards,\nAmira")
    # The promise is the next step: moved to the end, the other facts keep their order.
    assert _body(draft) == [
        "The kit ships separately with tracking JJD002222136683247776.",
        "Extra parcels are always free.",
        "It should arrive within a day or two.",
    ]


def test_no_next_step_is_added_when_no_fact_states_one():
    facts = ["The order was delivered on 12 November.", "Extra parcels are always free."]
    draft = compose_draft(FELIX, "Amira", facts)
    assert _body(draft) == facts


def test_every_body_paragraph_is_one_of_the_given_facts():
    facts = ["Refunds reach your account within 5–7 business days.", "Returns are free within 30 days."]
    draft = compose_draft(FELIX, "Lukas Becker", facts)
    assert sorted(_body(draft)) == sorted(facts)
    words = set(draft.replace(",", " ").replace(".", " ").split())
    given = set(" ".join(facts).replace(",", " ").replace(".", " ").split())
    assert words - given <= {"Hi", "Felix", "Kind", "regards", "Lukas"}


def test_citation_marks_offline_label_and_ticket_lines_are_removed():
    draft = compose_draft(
        FELIX,
        "Lukas",
        [
            "Offline mode: quoted from the sources below, no AI-written text.",
            "Customer asks: Please send it. [1]",
            "Status: shipped [2]",
            "- The parcel left our warehouse on 3 November [2][3].",
        ],
    )
    assert "[" not in draft and "Offline mode" not in draft
    assert "Customer asks" not in draft and "Please send it" not in draft
    assert _body(draft) == ["Status: shipped", "The parcel left our warehouse on 3 November."]


@pytest.mark.parametrize(
    "requester",
    [{}, {"name": ""}, {"name": "Requester"}, {"name": "felix@example.net"}, None],
)
def test_unknown_customer_gets_a_neutral_greeting(requester):
    ticket = {**FELIX, "requester": requester}
    assert compose_draft(ticket, "Amira", ["Extra parcels are always free."]).startswith("Hi there,\n\n")


def test_german_ticket_gets_a_german_greeting_and_sign_off():
    assert ticket_language(GERMAN) == "de"
    draft = compose_draft(GERMAN, "Lukas Becker", ["Die Rücksendung ist 30 Tage lang kostenlos."])
    assert draft == "Hallo Jonas,\n\nDie Rücksendung ist 30 Tage lang kostenlos.\n\nViele Grüße,\nLukas"


def test_a_hallo_in_an_english_message_is_not_german():
    ticket = {
        "description": "Hallo, I think there is a mistake. In the box is the wrong item. What I must do?"
    }
    assert ticket_language(ticket) == "en"


def test_the_agents_internal_notes_do_not_decide_the_language():
    ticket = {
        **FELIX,
        "comments": [
            *FELIX["comments"],
            {
                "author": "Lukas",
                "role": "agent",
                "public": False,
                "text": "Ich habe das mit dem Lager geprüft, bitte nicht erstatten.",
            },
        ],
    }
    assert ticket_language(ticket) == "en"


def test_no_sign_off_name_when_the_agent_is_unknown():
    assert compose_draft(FELIX, None, ["Extra parcels are always free."]).endswith("\n\nKind regards,")


def test_nothing_to_say_gives_no_draft():
    assert compose_draft(FELIX, "Amira", []) == ""
    assert compose_draft(FELIX, "Amira", ["[1]", "Offline mode: quoted from the sources below."]) == ""


def test_repeated_facts_are_stated_once():
    draft = compose_draft(
        FELIX, "Amira", ["Extra parcels are always free [1].", "Extra parcels are always free. [2]"]
    )
    assert draft.count("Extra parcels are always free.") == 1
