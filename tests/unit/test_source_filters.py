"""Source filters (issue 15, item 4): the message's `sources` field is validated, and the
orchestrator only runs agents whose manifest `source_group` the agent chose."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from agents.base import SOURCE_GROUPS, AgentManifest
from backend import protocol
from orchestrator.orchestrator import Assistant
from orchestrator.routing import Route, RoutingContext, RoutingDecision
from orchestrator.turn import Done, Principal, Thinking, TurnRequest
from testkit.agents import ScriptedAgent, ev, manifest

AGENTS_DIR = Path(__file__).resolve().parents[2] / "agents"
ARTICLE = ev("article:1", "Returns", "You can return unused items within 30 days of delivery.")
MACRO = ev("macro:7", "Returns::How to return", "Start the return in the returns portal.", kind="macro")
ORDER = ev("order:BO-1", "Order BO-1", "Order BO-1 was delivered on 3 March by PostNL.", kind="order")


# --- protocol ---------------------------------------------------------------------------------
def test_protocol_and_manifest_name_the_same_groups():
    assert protocol.SOURCE_GROUPS == SOURCE_GROUPS


@pytest.mark.parametrize(
    "sources", [None, [], ["help_center"], ["macros", "store", "tickets", "help_center"]]
)
def test_valid_filters_are_accepted(sources):
    payload = protocol.parse(protocol.MessagePayload, {"id": "m1", "text": "hi", "sources": sources})
    assert payload.sources == (sources or None)


def test_a_repeated_group_counts_once():
    payload = protocol.parse(
        protocol.MessagePayload, {"id": "m1", "text": "q", "sources": ["store", "store"]}
    )
    assert payload.sources == ["store"]


def test_an_unknown_source_is_refused_with_a_clear_error():
    with pytest.raises(protocol.ProtocolError) as exc:
        protocol.parse(protocol.MessagePayload, {"id": "m1", "text": "q", "sources": ["faq"]})
    assert exc.value.code == "invalid_payload"
    assert "unknown source 'faq'" in exc.value.message and "help_center" in exc.value.message


@pytest.mark.parametrize("sources", ["macros", [1], ["a", "b", "c", "d", "e"], {"macros": True}])
def test_malformed_filters_are_refused(sources):
    with pytest.raises(protocol.ProtocolError) as exc:
        protocol.parse(protocol.MessagePayload, {"id": "m1", "text": "q", "sources": sources})
    assert exc.value.code == "invalid_payload" and exc.value.message.startswith("sources")


# --- manifests --------------------------------------------------------------------------------
def test_every_shipped_agent_is_in_a_group_and_the_groups_are_covered():
    groups = {}
    for path in sorted(AGENTS_DIR.glob("*/manifest.yaml")):
        m = AgentManifest.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        groups[m.name] = m.source_group
    assert None not in groups.values(), groups
    assert set(groups.values()) == set(SOURCE_GROUPS)


def test_an_unknown_group_in_a_manifest_is_refused():
    m = manifest("aa", "agent for tests", ["q"]).model_dump()
    with pytest.raises(ValueError):
        AgentManifest.model_validate({**m, "source_group": "faq"})


# --- routing ----------------------------------------------------------------------------------
class FixedRouter:
    name = "fixed"

    def __init__(self, *agents: str) -> None:
        self.agents = agents

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        return RoutingDecision(
            action="route",
            stages=[[Route(agent=a, enhanced_query=ctx.query) for a in self.agents]],
            confidence=0.9,
        )


def agent(name: str, group: str | None, evidence) -> ScriptedAgent:
    m = manifest(name, f"{name} agent for tests", [f"{name} question"]).model_copy(
        update={"source_group": group}
    )
    return ScriptedAgent(m, evidence=[evidence])


@pytest.fixture
def agents():
    return [
        agent("hc", "help_center", ARTICLE),
        agent("canned", "macros", MACRO),
        agent("orders", "store", ORDER),
    ]


def ask(assistant: Assistant, text: str, sources: tuple[str, ...] = ()) -> tuple[list, Done]:
    req = TurnRequest(
        session_id="s1",
        principal=Principal("demo", "agent-1", "Agent"),
        message_id="m1",
        text=text,
        ticket={"id": "1001", "subject": "Return question"},
        thread=[],
        model_history=[],
        routing_history=[],
    )
    events = list(assistant.handle(replace(req, sources=sources)))
    assert isinstance(events[-1], Done)
    return events, events[-1]


def ran(done: Done) -> set[str]:
    return set(done.routing["agents"])


def test_without_a_filter_the_router_decides(local_llm, agents):
    assistant = Assistant(agents, FixedRouter("hc", "orders"), local_llm, None)
    _, done = ask(assistant, "how many days to return unused items?")
    assert ran(done) == {"hc", "orders"}


def test_only_the_chosen_groups_run(local_llm, agents):
    assistant = Assistant(agents, FixedRouter("hc", "orders"), local_llm, None)
    events, done = ask(assistant, "how many days to return unused items?", ("help_center",))
    assert ran(done) == {"hc"}
    assert {c["id"] for c in done.citations} == {"article:1"}
    assert done.routing["meta"]["source_filter"] == ["help_center"]
    looking = [e.text for e in events if isinstance(e, Thinking) and e.text.startswith("Looking in:")]
    assert looking == ["Looking in: Hc (filter: Help Center)"]


def test_a_filter_that_excludes_every_routed_agent_runs_its_own_agents(local_llm, agents):
    assistant = Assistant(agents, FixedRouter("hc", "orders"), local_llm, None)
    events, done = ask(assistant, "how do we word the return reply?", ("macros",))
    assert ran(done) == {"canned"}
    assert done.routing["meta"].get("source_filter_widened") is True
    assert any(e.text == "Looking in: Canned (filter: Macros)" for e in events if isinstance(e, Thinking))


def test_several_groups(local_llm, agents):
    assistant = Assistant(agents, FixedRouter("hc", "canned", "orders"), local_llm, None)
    _, done = ask(assistant, "return window and the order?", ("store", "macros"))
    assert ran(done) == {"canned", "orders"}


def test_a_filter_no_enabled_agent_serves_says_so(local_llm):
    assistant = Assistant([agent("hc", "help_center", ARTICLE)], FixedRouter("hc"), local_llm, None)
    _, done = ask(assistant, "anything on this?", ("store",))
    assert not ran(done)
    assert done.text == "None of the chosen sources is available here: Store systems."


def test_an_agent_in_no_group_never_runs_under_a_filter(local_llm, agents):
    loner = agent("loner", None, ev("article:9", "Other", "Something else entirely, about gift wrap."))
    assistant = Assistant([*agents, loner], FixedRouter("loner", "hc"), local_llm, None)
    _, done = ask(assistant, "how many days to return unused items?", ("help_center",))
    assert ran(done) == {"hc"}
