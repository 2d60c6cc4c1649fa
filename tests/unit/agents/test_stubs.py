"""Stub agents: dumb acknowledges, deterministic follows rules, intelligent matches intents."""

from __future__ import annotations

import numpy as np
import pytest

from agents.base import AgentContext, AgentManifest
from agents.stubs import DeterministicAgent, DumbAgent, IntelligentAgent

EXAMPLES = [f"example {i}" for i in range(10)]


def manifest(**fields) -> AgentManifest:
    return AgentManifest(
        name=fields.pop("name", "stubby"),
        description="A stub agent for tests.",
        when_to_use=EXAMPLES,
        **fields,
    )


def ctx(llm=None) -> AgentContext:
    return AgentContext(tenant="demo", ticket={"id": "7"}, knowledge=None, llm=llm)


def test_dumb_agent_acknowledges():
    result = DumbAgent(manifest(name="billing", kind="dumb")).run("refund?", ctx())
    assert result.status == "ok"
    assert result.summary == "Billing is not connected yet."
    [note] = result.evidence
    assert note.kind == "note" and note.id == "note:billing:ack" and note.agent == "billing"


def test_dumb_agent_message_from_config():
    result = DumbAgent(manifest(kind="dumb", config={"message": "Coming in Q3."})).run("x", ctx())
    assert result.summary == "Coming in Q3."


RULES = [
    {"pattern": r"\bopening hours?\b", "response": "Chat is open Mon-Fri 08:00-20:00 CET."},
    {"pattern": r"\bphone\b", "response": "There is no phone line."},
    {"pattern": r"hours", "response": "never reached for 'opening hours'"},
]


def test_deterministic_first_matching_rule_answers():
    agent = DeterministicAgent(manifest(kind="deterministic", rules=RULES))
    result = agent.run("What are the OPENING HOURS?", ctx())
    assert result.status == "ok" and result.confidence == 1.0
    assert result.summary == "Chat is open Mon-Fri 08:00-20:00 CET."
    assert result.evidence[0].id == "note:stubby:rule0"
    assert agent.run("can I phone you", ctx()).summary == "There is no phone line."


def test_deterministic_nothing_matches_is_empty():
    result = DeterministicAgent(manifest(kind="deterministic", rules=RULES)).run("refund please", ctx())
    assert result.status == "empty" and result.evidence == []


INTENTS = [
    {
        "name": "gift_wrap",
        "examples": ["can you gift wrap my order", "do you offer gift wrapping", "add a gift message"],
        "response": "Gift wrapping costs 4.95 and can be added at checkout.",
    },
    {
        "name": "store_visit",
        "examples": ["do you have a physical shop", "can I visit your store", "where is your showroom"],
        "response": "We are online only; there is no showroom.",
    },
]


def test_intelligent_matches_the_nearest_intent(local_llm):
    agent = IntelligentAgent(manifest(kind="intelligent", intents=INTENTS))
    result = agent.run("Is it possible to have the present wrapped?", ctx(local_llm))
    assert result.status == "ok", result.data
    assert result.summary.startswith("Gift wrapping")
    assert result.evidence[0].id == "note:stubby:gift_wrap"
    assert agent.threshold <= result.confidence <= 1.0
    other = agent.run("can I come by your showroom", ctx(local_llm))
    assert other.data["intent"]["name"] == "store_visit" and other.status == "ok"


def test_intelligent_below_threshold_is_empty(local_llm):
    agent = IntelligentAgent(manifest(kind="intelligent", intents=INTENTS))
    result = agent.run("the robot mower stops in the middle of the lawn", ctx(local_llm))
    assert result.status == "empty"
    assert result.data["intent"]["similarity"] < agent.threshold


def test_intelligent_uses_semantic_similarity_embeddings_and_caches_examples():
    calls: list[tuple[int, str]] = []

    class CountingLLM:
        backend = "local"

        def embed(self, texts, *, task_type, tags=None):
            calls.append((len(texts), task_type))
            return np.eye(8, dtype=np.float32)[[hash(t) % 8 for t in texts]]

    agent = IntelligentAgent(manifest(kind="intelligent", intents=INTENTS))
    first, second = CountingLLM(), CountingLLM()
    agent.run("a", ctx(first))
    agent.run("b", ctx(second))  # another LLM object: examples are embedded again
    llm = CountingLLM()
    agent.run("c", ctx(llm))
    agent.run("d", ctx(llm))
    assert all(t == "SEMANTIC_SIMILARITY" for _, t in calls)
    assert [n for n, _ in calls].count(6) == 3  # the 6 examples: once per LLM object


def test_intelligent_without_a_model_is_unavailable():
    result = IntelligentAgent(manifest(kind="intelligent", intents=INTENTS)).run("x", ctx(None))
    assert result.status == "unavailable"


@pytest.mark.parametrize(
    "agent",
    [
        DumbAgent(manifest(kind="dumb")),
        DeterministicAgent(manifest(kind="deterministic", rules=RULES)),
        IntelligentAgent(manifest(kind="intelligent", intents=INTENTS)),
    ],
)
def test_stubs_honour_cancellation(agent):
    c = ctx()
    c.cancel.set()
    assert agent.run("opening hours", c).status == "cancelled"
