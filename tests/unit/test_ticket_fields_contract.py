"""Every ticket field the sidebar could send reaches a server reader that uses it.

The payload is built the way zendesk_app/src/ticket.js builds it (parsed out of ticket.js by
tests/unit/test_ticket_payload_contract.py) from the ZAF ticket object the dev harness serves.
ZAF's `ticket.requester` is a user object with `id`, `name`, `email` and `locale`
(https://developer.zendesk.com/api-reference/apps/apps-support-api/all_locations/#user-object);
a REST ticket names its requester by `requester_id`
(https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#json-format).

The server reads, besides what render_ticket renders:
- `locale` (agents/knowledge_base: the requester's language picks the Help Center locale first);
- `requester_id` (agents/order_lookup `find_customer_key` when the requester has no e-mail,
  agents/macros `placeholder_values`, agents/ticket `_is_customer`);
- `custom_fields` values (orchestrator/routing/queries `ticket_text`, which enriches order
  lookups with the ticket's order number).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.base import AgentContext
from agents.knowledge_base.agent import KnowledgeBaseAgent
from agents.order_lookup.agent import find_customer_key
from backend.sidebar import _demo_field_titles, _demo_users, _zaf_ticket
from orchestrator.routing.queries import ticket_text
from store.demo import DEMO_DATA_DIR
from tests.unit.test_ticket_payload_contract import sidebar_payload


@pytest.fixture(scope="module")
def demo() -> tuple[list[dict[str, Any]], dict[Any, dict[str, Any]], dict[str, str]]:
    path = DEMO_DATA_DIR / "tickets" / "tickets.json"
    raw = json.loads(path.read_text(encoding="utf-8"))["tickets"]
    return raw, _demo_users(path.parent.parent / "users.json"), _demo_field_titles()


def _payload_for(demo, pick) -> tuple[dict[str, Any], dict[str, Any]]:
    raw, users, fields = demo
    ticket = next(t for t in raw if pick(t, users))
    zaf = _zaf_ticket(ticket, users, fields)
    return zaf, sidebar_payload(zaf)


def test_the_requesters_locale_is_sent_and_the_questions_language_picks_articles(demo):
    zaf, payload = _payload_for(
        demo, lambda t, users: users.get(t.get("requester_id"), {}).get("locale") == "de"
    )
    assert zaf["requester"]["locale"] == "de"
    assert payload.get("locale") == "de", "ticket.js does not send the requester's locale"
    ctx = AgentContext(tenant="demo", ticket=payload, knowledge=None, llm=None)
    agent = object.__new__(KnowledgeBaseAgent)  # offline_tool_call reads only the context
    # The support agent's question picks the articles' language: a German question on this
    # ticket reads the German articles; an English one every language (English first by rank).
    # The requester's locale is what a reply to the customer would be written in.
    call = agent.offline_tool_call("Kann man einen geöffneten Wasserkocher zurückgeben?", ctx, 1)
    assert call is not None and call.arguments.get("locale") == "de"
    call = agent.offline_tool_call("Can I return an opened kettle?", ctx, 1)
    assert call is not None and call.arguments.get("locale") is None


def test_the_requester_id_reaches_the_order_lookup(demo):
    zaf, payload = _payload_for(demo, lambda t, users: t.get("requester_id") is not None)
    requester_id = zaf["requester"]["id"]
    assert str(payload.get("requester_id")) == str(requester_id), "ticket.js does not send requester_id"
    # Without an e-mail on the requester (phone, social), the id is how the customer is found.
    no_email = {**payload, "requester": {**payload["requester"], "email": ""}}
    assert find_customer_key("where is my order?", no_email) == str(requester_id)


def test_custom_field_values_reach_routing_queries(demo):
    """ticket.js sends custom fields as {label: value}; the routing query reads their values.

    It failed while orchestrator/routing/queries.ticket_text iterated the mapping (which yields
    labels) and kept only list items of the REST shape {id, value}."""
    _zaf, payload = _payload_for(
        demo, lambda t, users: any(f.get("value") for f in t.get("custom_fields") or [])
    )
    assert isinstance(payload["custom_fields"], dict) and payload["custom_fields"]
    text = ticket_text(payload)
    for value in payload["custom_fields"].values():
        assert value in text, f"custom field value {value!r} missing from the routing text"
