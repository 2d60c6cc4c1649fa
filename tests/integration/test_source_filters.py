"""Source filters over Socket.IO (issue 15, item 4): a real server, the real orchestrator with
scripted agents in the four source groups. The chat:message `sources` field (docs/protocol.md)
decides which agents run; an unknown group is refused with a clear error and stores nothing; a
retry asks with the same filter."""

from __future__ import annotations

import pytest

from backend import protocol
from orchestrator.orchestrator import Assistant
from orchestrator.routing import Route, RoutingContext, RoutingDecision
from testkit.agents import ScriptedAgent, ev, manifest
from testkit.client import SidebarClient

pytestmark = pytest.mark.integration

TICKET = {"id": 2001, "subject": "Return question", "description": "Can I still send the bench back?"}


class FixedRouter:
    """Always picks the Help Center and the order system: the filter must override it."""

    name = "fixed"

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        stage = [Route(agent=a, enhanced_query=ctx.query) for a in ("hc", "orders")]
        return RoutingDecision(action="route", stages=[stage], confidence=0.9)


def _agent(name: str, group: str, evidence) -> ScriptedAgent:
    m = manifest(name, f"{name} agent for tests", [f"{name} question"]).model_copy(
        update={"source_group": group}
    )
    return ScriptedAgent(m, evidence=[evidence])


@pytest.fixture
def assistant(local_llm):
    agents = [
        _agent(
            "hc", "help_center", ev("article:1", "Returns", "You can return unused items within 30 days.")
        ),
        _agent(
            "similar", "tickets", ev("ticket:5", "Bench return", "We sent a return label.", kind="ticket")
        ),
        _agent(
            "canned",
            "macros",
            ev("macro:7", "Returns::Label", "Start the return in the portal.", kind="macro"),
        ),
        _agent(
            "orders",
            "store",
            ev("order:BO-1", "Order BO-1", "Order BO-1 was delivered on 3 March.", kind="order"),
        ),
    ]
    a = Assistant(agents, FixedRouter(), local_llm, None)
    local_llm.embed(
        ["warm up"], task_type="SEMANTIC_SIMILARITY"
    )  # loads MiniLM before the first turn's timer
    yield a
    a.close()


@pytest.fixture
def client(live_app, assistant, tokens):
    server = live_app(handler=assistant)
    c = SidebarClient()
    c.connect(server.url, tokens.mint("acme", "alice", "Alice"))
    c.server = server
    yield c
    c.disconnect()


def _ran(done: dict) -> set[str]:
    return set(done["message"]["meta"]["routing"]["agents"])


def test_the_message_filter_decides_which_agents_run(client):
    client.join(TICKET)
    done = client.ask("m1", "how many days to return unused items?")
    assert _ran(done) == {"hc", "orders"}

    client.emit(
        protocol.MESSAGE,
        {"id": "m2", "text": "how many days to return unused items?", "sources": ["tickets"]},
    )
    done = client.wait_for(protocol.DONE, lambda d: d["id"] == "m2", timeout=30)
    assert _ran(done) == {"similar"}
    thinking = [t["text"] for t in client.of(protocol.THINKING) if t["id"] == "m2"]
    assert "Looking in: Similar (filter: Tickets)" in thinking
    # The user message keeps the filter it was asked with (what the thread shows after a reload).
    session = client.server.services.store.get(client.of(protocol.STATE)[0]["session_id"])
    assert session.message("m2").meta.model_extra["sources"] == ["tickets"]

    client.emit(
        protocol.MESSAGE,
        {"id": "m3", "text": "how many days to return unused items?", "sources": ["help_center", "macros"]},
    )
    done = client.wait_for(protocol.DONE, lambda d: d["id"] == "m3", timeout=30)
    # A filter restricts what the router picked (the Help Center); it adds no agent of its own.
    assert _ran(done) == {"hc"}


def test_an_unknown_source_is_refused_and_nothing_is_stored(client):
    state = client.join(TICKET)
    client.emit(protocol.MESSAGE, {"id": "bad1", "text": "anything", "sources": ["faq"]})
    err = client.wait_for(protocol.ERROR, lambda d: d.get("id") == "bad1")
    assert err["code"] == "invalid_payload" and "unknown source 'faq'" in err["message"]
    assert err["retryable"] is False
    assert client.server.services.store.get(state["session_id"]).message("bad1") is None
    # The connection is fine: the next question is answered.
    assert client.ask("ok1", "how many days to return unused items?")["message"]["status"] == "complete"


def test_a_retry_asks_with_the_same_filter(client):
    state = client.join(TICKET)
    client.emit(
        protocol.MESSAGE, {"id": "r1", "text": "how many days to return unused items?", "sources": ["store"]}
    )
    client.wait_for(protocol.DONE, lambda d: d["id"] == "r1", timeout=30)
    store = client.server.services.store
    # An interrupted reply (e.g. its instance died) is retried by the client with its id only.
    store.update(state["session_id"], lambda s: setattr(s.reply_to("r1"), "status", "interrupted"))
    client.emit(protocol.RETRY, {"id": "r1"})
    done = client.wait_for(
        protocol.DONE, lambda d: d["id"] == "r1" and d["message"]["meta"].get("attempt") == 2
    )
    assert _ran(done) == {"orders"}
