"""Gemini path parity with the offline pipeline: the synthesis request carries the same structured
facts, the ticket's comments and the resolved follow-up that the offline responder works from.

Contract (Vertex AI `generateContent` / `streamGenerateContent`, REST reference:
https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent):
the request body holds `contents[]` of `{role, parts[{text}]}` and `systemInstruction`; everything
the model may use must therefore be in those parts. These tests read the request the real
google-genai client sent to the fake Vertex server and look for each piece there.
"""

from __future__ import annotations

import pytest

from orchestrator.turn import Principal, TurnRequest
from tests.integration.test_gemini_path import (  # noqa: F401  (fixtures)
    NUMBER,
    Script,
    assistant,
    fake,
    index,
    json_reply,
    text_of,
    vertex_llm,
)
from vertex_interface.prompting import INTERNAL_TAG, KEY_FACTS_HEADER

pytestmark = pytest.mark.integration

# The ticket exactly as the sidebar sends it (zendesk_app/src/ticket.js: comments carry `text`).
SIDEBAR_TICKET = {
    "id": "41308",
    "subject": f"Where is my order {NUMBER}?",
    "description": f"Hi, I ordered {NUMBER} last week and nothing has arrived.",
    "status": "open",
    "requester": {"name": "Felix Wagner", "email": "felix@example.net"},
    "comments": [
        {
            "author": "Felix Wagner",
            "role": "end-user",
            "public": True,
            "text": "Still nothing, please check.",
        },
        {"author": "Lukas", "role": "agent", "public": False, "text": "Carrier says the parcel is delayed."},
    ],
    "custom_fields": {"Order number": NUMBER},
}

ROUTE_ORDER = json_reply(
    {
        "action": "route",
        "routes": [{"agent": "order_lookup", "enhanced_query": f"status of order {NUMBER}", "stage": 1}],
        "confidence": 0.9,
        "reason": "order status",
    }
)


def ask(assistant, text: str, thread: list | None = None):  # noqa: F811
    req = TurnRequest(
        "s1", Principal("demo", "agent-1", "Dana"), "m1", text, SIDEBAR_TICKET, thread or [], [], []
    )
    return list(assistant.handle(req))[-1]


def synthesis_text(fake) -> str:  # noqa: F811
    return text_of(fake.calls("streamGenerateContent")[-1])


def test_synthesis_gets_the_order_facts_and_the_ticket_comments(fake, assistant):  # noqa: F811
    fake.respond_with(Script(ROUTE_ORDER))
    done = ask(assistant, "has it shipped yet?")
    sent = synthesis_text(fake)
    order = next(c for c in done.citations if c["id"] == f"order:{NUMBER}")
    assert KEY_FACTS_HEADER in sent
    facts_block = sent.split(KEY_FACTS_HEADER, 1)[1].split("Sources (", 1)[0]
    # The key facts are lines of the order's own text, cited with its number.
    fact_lines = [ln[2:].rsplit(" [", 1)[0] for ln in facts_block.strip().splitlines() if ln.startswith("- ")]
    assert fact_lines and all(f in order["text"] for f in fact_lines)
    assert f"[{order['n']}]" in facts_block
    # The sidebar's comments reach the model, the internal note marked as such.
    assert "Still nothing, please check." in sent
    assert "Carrier says the parcel is delayed." in sent
    internal_line = next(ln for ln in sent.splitlines() if "Carrier says" in ln)
    assert "internal" in internal_line.lower()


def test_synthesis_gets_the_resolved_follow_up(fake, assistant):  # noqa: F811
    fake.respond_with(Script(ROUTE_ORDER))
    previous = [
        {"role": "user", "text": f"what's in order {NUMBER}?"},
        {
            "role": "assistant",
            "status": "complete",
            "text": f"Order {NUMBER} ... [1]",
            "citations": [
                {"n": 1, "id": f"order:{NUMBER}", "kind": "order", "title": f"Order {NUMBER}", "cited": True}
            ],
            "meta": {"routing": {"facts": {"order_numbers": [NUMBER]}}},
        },
    ]
    done = ask(assistant, "and when did it ship?", thread=previous)
    sent = synthesis_text(fake)
    assert "Question: and when did it ship?" in sent
    assert f"(Resolved: and when did it ship? (about: Order {NUMBER}))" in sent
    assert done.routing["meta"]["reference"]["about"] == f"Order {NUMBER}"


def test_internal_sources_are_labelled_for_the_model():
    from vertex_interface import Source
    from vertex_interface.prompting import render_sources

    rendered = render_sources(
        [
            Source(
                1, "Order BO-1", "Status: shipped.\nTracking 123.", kind="order", facts=("Tracking 123.",)
            ),
            Source(2, "Ticket #1 (internal)", "Carrier delayed.", kind="ticket", internal=True),
        ]
    )
    assert rendered.startswith(KEY_FACTS_HEADER + "\n- Tracking 123. [1]")
    assert f"[2] Ticket #1 (internal) (ticket) [{INTERNAL_TAG}]" in rendered
