"""The ticket agent: the open ticket as a cited source, on demo tickets in the sidebar's payload."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from agents.base import AgentContext
from agents.registry import BUILTIN_DIR, AgentRegistry
from backend.sidebar import _demo_field_titles, _demo_users, _zaf_ticket
from store.demo import DEMO_DATA_DIR
from tests.unit.test_ticket_payload_contract import sidebar_payload

OPEN_TICKETS = [str(i) for i in range(41308, 41339)]
# The labels the agent puts before the ticket's own sentences.
LABEL = re.compile(
    r"^(?:Customer(?: \([^)]*\))? (?:wrote on open|also wrote|replied|asks)|Last comment, by [^:]*|"
    r"Reply by [^:]*|Done so far(?:: [^:]* replied)?|We promised|Open next step \([^)]*\)|"
    r"Internal note(?: by [^:]*)?): "
)


@pytest.fixture(scope="module")
def agent():
    # This folder alone, loaded the way the registry loads every folder.
    return AgentRegistry([BUILTIN_DIR / "ticket"], include_builtin=False).get("ticket")


@pytest.fixture(scope="module")
def module(agent):
    return sys.modules[type(agent).__module__]


@pytest.fixture(scope="module")
def payloads() -> dict[str, dict[str, Any]]:
    path = DEMO_DATA_DIR / "tickets" / "tickets.json"
    raw = json.loads(path.read_text(encoding="utf-8"))["tickets"]
    users = _demo_users(path.parent.parent / "users.json")
    fields = _demo_field_titles()
    return {
        str(t["id"]): sidebar_payload(_zaf_ticket(t, users, fields))
        for t in raw
        if str(t["id"]) in OPEN_TICKETS
    }


def ask(agent, ticket: dict[str, Any], question: str):
    ctx = AgentContext(tenant="demo", ticket=ticket, knowledge=None, llm=None)
    return agent.run(question, ctx)


def public(result):
    return next(e for e in result.evidence if not e.internal)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_registry_loads_the_folder_with_a_retrieval_tool():
    registry = AgentRegistry()
    assert "ticket" in registry.names
    spec = registry.entry("ticket").manifest.tool("read_ticket")
    assert spec is not None and spec.retrieval


def test_evidence_is_the_ticket(agent, payloads):
    result = ask(agent, payloads["41308"], "summarise the ticket")
    assert result.status == "ok"
    e = public(result)
    assert (e.id, e.kind, e.title) == ("ticket:41308", "ticket", "Ticket #41308: Item missing from my order")
    assert "Requester: Felix Wagner (felix.wagner54@example.net)" in e.text.splitlines()
    assert "Order number: BO-100693" in e.text.splitlines()


def test_what_the_customer_said_last_is_their_latest_public_comment(agent, payloads):
    # 41308: the customer opened it, an agent replied last.
    result = ask(agent, payloads["41308"], "what did the customer say last?")
    (fact,) = public(result).facts
    assert fact.startswith("Customer (Felix Wagner) wrote on open: ")
    assert "Please send it." in fact and "two parcels" not in fact


def test_the_last_comment_says_who_wrote_it(agent, payloads):
    result = ask(agent, payloads["41308"], "what was the latest reply on this one")
    (fact,) = public(result).facts
    assert fact.startswith("Last comment, by Amira Haddad (agent): ")
    assert "JJD002222136683247776" in fact and "Warm regards" not in fact and "Hi Felix" not in fact


def test_a_later_customer_reply_is_what_they_said_last(agent, payloads):
    ticket = dict(payloads["41308"])
    ticket["comments"] = [
        *ticket["comments"],
        {
            "author": "Felix Wagner",
            "role": "end-user",
            "public": True,
            "text": "Still nothing here. Can you check?",
        },
        {"author": "Amira Haddad", "role": "agent", "public": False, "text": "Carrier asked."},
    ]
    fact = public(ask(agent, ticket, "what did the customer say in their latest message")).facts[0]
    assert fact == "Last comment, by Felix Wagner (customer): Still nothing here. Can you check?"
    assert public(ask(agent, ticket, "what did they ask for?")).facts[0].endswith("Can you check?")


def test_summary_states_the_problem_the_ask_and_what_is_done(agent, payloads):
    facts = public(ask(agent, payloads["41308"], "tl;dr please")).facts
    joined = "\n".join(facts)
    assert facts[0].startswith(
        "Customer (Felix Wagner) wrote on open: Received BO-100693, but something's missing"
    )
    assert "Customer asks: Please send it." in facts
    assert "Done so far: Don't worry – your order was sent in two parcels." in facts
    assert "It should arrive within a day or two." in joined


def test_summary_of_a_ticket_waiting_for_our_reply(agent, payloads):
    facts = public(ask(agent, payloads["41310"], "can you summarise this ticket")).facts
    assert facts[-1] == "Open next step (our reply is due): Is this covered?"
    assert not any(f.startswith(("Done so far", "We promised")) for f in facts)


def test_summary_says_what_we_wait_for_from_the_customer(agent, payloads):
    facts = public(ask(agent, payloads["41336"], "recap")).facts
    assert facts[-1].startswith(
        "Open next step (waiting on the customer): If it still crashes, reply with the app version"
    )


def test_internal_notes_are_separate_and_marked(agent, payloads):
    result = ask(agent, payloads["41316"], "summarise")
    pub = public(result)
    assert "PSP shows two captures" not in pub.text
    internal = [e for e in result.evidence if e.internal]
    assert [e.id for e in internal] == ["ticket:41316:internal"]
    assert internal[0].facts == (
        "Internal note by Lukas Becker: PSP shows two captures for BO-100695 (retry after gateway timeout). "
        "Refund duplicate capture.",
    )


@pytest.mark.parametrize("question", ["what should I tell the customer?", "what did the customer say last?"])
def test_internal_notes_stay_out_of_other_answers(agent, payloads, question):
    result = ask(agent, payloads["41316"], question)
    assert not any(e.internal for e in result.evidence)
    assert all("PSP shows" not in e.text for e in result.evidence)


def test_what_we_promised(agent, payloads):
    facts = public(ask(agent, payloads["41338"], "what did we promise her?")).facts
    assert facts == (
        "Done so far: Your order was placed within 14 days of the price change, so I've refunded the "
        "difference of €22.00 to your PayPal account.",
        "We promised: It should be back in your PayPal account within 1 business day.",
    )


def test_nothing_promised_before_anyone_replied(agent, payloads):
    assert public(ask(agent, payloads["41310"], "has anyone replied to the customer yet?")).facts == (
        "Public replies from support: none yet",
    )
    reply = public(ask(agent, payloads["41308"], "has anyone replied to the customer yet?")).facts
    assert reply[0].startswith("Last comment, by Amira Haddad (agent): ")


def test_what_the_customer_wants(agent, payloads):
    assert public(ask(agent, payloads["41316"], "what does the customer actually want")).facts == (
        "Customer asks: I want one refunded.",
    )
    # "I don't want it anymore" is not the ask; "Refund please." is.
    assert public(ask(agent, payloads["41320"], "what does she want?")).facts == (
        "Customer asks: Refund please.",
    )


@pytest.mark.parametrize("ticket_id", OPEN_TICKETS)
def test_every_line_quotes_the_ticket_verbatim_without_greetings(agent, payloads, ticket_id):
    ticket = payloads[ticket_id]
    source = _flat(" ".join([ticket["description"], *(c["text"] for c in ticket["comments"])]))
    result = ask(agent, ticket, "summarise the ticket and what we promised")
    for e in result.evidence:
        for line in e.text.splitlines():
            m = LABEL.match(line)
            if not m:
                continue  # field lines ("Order number: …") come from the record's fields
            quoted = line[m.end() :]
            assert _flat(quoted) in source or all(
                _flat(s) in source for s in re.split(r"(?<=[.!?])\s+", quoted)
            ), line
            assert not re.match(r"(?i)(hi|hello|hey|dear|good morning)\b", quoted), line
            assert not re.search(r"(?i)\b(kind|warm|best) regards\b|sent from my", quoted), line


def test_german_asks_are_found(agent):
    ticket = {
        "id": "9",
        "subject": "Teil fehlt",
        "description": "Hallo,\n\nim Paket fehlt die Zeltstange. Bitte schicken Sie mir eine neue.\n\nViele Grüße\nJonas",
        "requester": {"name": "Jonas Weber"},
        "comments": [],
    }
    facts = public(ask(agent, ticket, "Was möchte der Kunde?")).facts
    assert facts == ("Customer asks: Bitte schicken Sie mir eine neue.",)


def test_rest_shaped_ticket(agent):
    ticket = {
        "id": 77,
        "subject": "Broken lamp",
        "description": "The lamp arrived broken. Please replace it.",
        "requester_id": 5,
        "custom_fields": [{"id": 360011112221, "value": "BO-100001"}],
        "comments": [
            {"author_id": 5, "body": "The lamp arrived broken. Please replace it.", "public": True},
            {"author_id": 9, "body": "Warehouse confirms damage.", "public": False},
            {
                "author_id": 9,
                "body": "Hi,\n\nI've sent a replacement today.\n\nBest regards,\nAnn",
                "public": True,
            },
        ],
    }
    result = ask(agent, ticket, "summarise")
    pub = public(result)
    assert pub.id == "ticket:77"
    assert "Customer asks: Please replace it." in pub.facts
    assert "Done so far: I've sent a replacement today." in pub.facts
    assert "Warehouse confirms damage." not in pub.text
    assert any(e.internal and "Warehouse confirms damage." in e.text for e in result.evidence)


def test_an_empty_ticket_is_empty(agent):
    assert ask(agent, {"id": "5", "subject": "", "description": ""}, "summarise").status == "empty"


def test_clean_message_drops_greeting_and_sign_off(module):
    text = "Hi Felix,\n\nYour refund is on its way. It takes 5 days.\n\nKind regards,\nLukas – Bramble & Oak"
    assert module.clean_message(text) == ["Your refund is on its way.", "It takes 5 days."]
    assert module.clean_message("Hi Callum! I looked into BO-100696.") == ["I looked into BO-100696."]
    assert module.clean_message("Refund please.\n\nThanks so much!!\nGeorge") == ["Refund please."]


def test_what_a_colleague_told_them_is_the_last_support_reply(agent, payloads):
    facts = public(ask(agent, payloads["41325"], "what did my colleague tell them last time")).facts
    assert facts[0].startswith("Last comment, by Amira Haddad (agent): ")
    assert not any(f.startswith("Customer (") for f in facts)
    assert len(facts) == len(set(facts))


def test_next_step_without_an_open_action_says_where_the_ticket_stands(agent, payloads):
    facts = public(ask(agent, payloads["41325"], "what's the next step?")).facts
    assert facts == (
        "Done so far: I've shipped L (43-46) by Express today (tracking 3SBRO992546120), and a free return "
        "label for the M (39-42) is in your inbox.",
    )
