"""The brief with Gemini: the real google-genai client against the fake Vertex server. One
controlled-generation call per ticket version (`responseMimeType: application/json` with a
`responseSchema`, as documented in "Controlled generation JSON output with predefined schema",
https://cloud.google.com/vertex-ai/generative-ai/docs/samples/generativeaionvertexai-gemini-controlled-generation-response-schema-2),
its token counts billed to the brief, and the extractive brief kept when Gemini fails."""

from __future__ import annotations

import json

import pytest

from agents.commerce import LocalCommerceAPI
from bench.answers.payload import sidebar_ticket
from orchestrator.brief import BriefDone, BriefRequest, build_brief
from testkit.fake_vertex import (
    FakeVertex,
    RecordedRequest,
    json_reply,
    server_error,
    vertex_llm_for,
)

pytestmark = pytest.mark.integration

GEMINI = {
    "problem": "Part of order BO-100693 (the Lumo Garden Light Starter Kit) has not arrived.",
    "ask": "Send the missing light kit.",
    "done": "Support explained the order ships in two parcels.",
    "next_step": "Wait for the second parcel; it should arrive within a day or two.",
    "language": "en",
    "urgency": "normal",
    "urgency_reason": "",
    "sentiment": "neutral",
}


@pytest.fixture
def fake():
    with FakeVertex() as server:
        yield server


@pytest.fixture
def llm(fake):
    return vertex_llm_for(fake)


def text_of(req: RecordedRequest) -> str:
    body = req.body or {}
    parts = [p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", [])]
    system = " ".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
    return system + "\n" + "\n".join(parts)


def brief(llm, ticket) -> dict:
    request = BriefRequest("s-1", "demo", "Dana", ticket)
    events = list(build_brief(request, llm=llm, services={"commerce": LocalCommerceAPI()}))
    assert isinstance(events[-1], BriefDone)
    return events[-1].brief


def test_one_controlled_generation_call_with_the_ticket_as_data(fake, llm):
    fake.respond_with(lambda req: json_reply(GEMINI, prompt_tokens=412, output_tokens=96))
    ticket = sidebar_ticket(41308)
    ticket["comments"].append(
        {
            "author": "Amira",
            "role": "agent",
            "public": False,
            "text": "Warehouse says the kit was never packed.",
        }
    )
    b = brief(llm, ticket)
    calls = fake.calls("generateContent")
    assert len(calls) == 1 and fake.calls("streamGenerateContent") == []
    cfg = calls[0].body["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    schema = json.dumps(cfg["responseSchema"])
    for key in ("problem", "ask", "next_step", "urgency", "sentiment", "language"):
        assert key in schema
    assert "high" in schema and "negative" in schema  # the enums of urgency and sentiment
    sent = text_of(calls[0])
    assert "Customer asks: Please send it." in sent and "quoted data" in sent
    assert "never packed" not in sent  # internal notes are not sent unless the admin enables them
    assert b["mode"] == "gemini"
    assert b["recap"]["ask"] == "Send the missing light kit."
    assert b["signals"]["language"]["from"] == "Gemini"
    # The state lines still come from the records, never from the model.
    assert b["entities"][0]["state"] == "BO-100693 · delivered 2026-11-15 · 2 items"
    assert b["cost"]["calls"] == 1
    assert b["cost"]["input_tokens"] == 412 and b["cost"]["output_tokens"] == 96
    assert b["cost"]["cost_usd"] > 0


def test_gemini_failing_keeps_the_extractive_brief(fake, llm):
    fake.respond_with(lambda req: server_error(503))
    b = brief(llm, sidebar_ticket(41308))
    assert b["mode"] == "extractive (Gemini unavailable)"
    assert b["recap"]["ask"] == "Please send it."
    assert b["entities"][0]["id"] == "order:BO-100693"
