"""One module for the routers' pseudo labels and decisions; the runtime apart from training code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agents.registry import AgentRegistry
from backend.protocol import PSEUDO_LABELS as PROTOCOL_PSEUDO_LABELS
from orchestrator.routing.base import RoutingContext
from orchestrator.routing.decisions import (
    ACTION_OF,
    CLARIFY,
    OUT_OF_SCOPE,
    PSEUDO_LABELS,
    RESPOND,
    WIRE_LABELS,
    clarify_question,
    enabled_manifests,
    expected_action,
    label_from_wire,
    label_to_wire,
    respond_decision,
    route_decision,
)
from orchestrator.routing.functiongemma.format import PSEUDO_FUNCTIONS
from orchestrator.routing.keyword import KeywordRouter
from orchestrator.routing.semantic import SemanticRouter


@pytest.fixture(scope="module")
def manifests():
    return AgentRegistry().manifests()


def test_the_persisted_label_strings_do_not_change():
    # The FunctionGemma adapter was trained to call these functions and the routing eval sets
    # are labelled with them; the sidebar's feedback speaks the actions.
    assert (RESPOND, CLARIFY) == ("respond_directly", "ask_clarifying_question")
    assert PSEUDO_FUNCTIONS == (RESPOND, CLARIFY)
    assert PROTOCOL_PSEUDO_LABELS == WIRE_LABELS == ("respond", "clarify")
    assert set(ACTION_OF) | {OUT_OF_SCOPE} == set(PSEUDO_LABELS)


def test_the_wire_mapping_round_trips_and_leaves_agent_names_alone():
    for label in (RESPOND, CLARIFY):
        assert label_from_wire(label_to_wire(label)) == label
        assert expected_action(label) == expected_action(label_to_wire(label)) == label_to_wire(label)
    assert label_from_wire("order_lookup") == label_to_wire("order_lookup") == "order_lookup"
    assert expected_action("order_lookup") is None and expected_action(OUT_OF_SCOPE) is None


def test_an_agent_named_like_a_pseudo_label_is_refused_by_every_router(manifests):
    clash = manifests[0].model_copy(update={"name": RESPOND})
    with pytest.raises(ValueError, match="reserved"):
        enabled_manifests([clash, *manifests[1:]], "test")
    with pytest.raises(ValueError, match="reserved"):
        SemanticRouter(lambda texts: None, [clash])  # refused before anything is embedded
    with pytest.raises(ValueError, match="at least one enabled agent"):
        enabled_manifests([m.model_copy(update={"enabled": False}) for m in manifests], "test")


def test_decision_builders_give_every_router_the_same_texts(manifests):
    by_name = enabled_manifests(manifests, "test")
    ctx = RoutingContext(query="thanks, that's all", ticket={}, manifests=manifests)
    respond = respond_decision(ctx, by_name, confidence=0.9, router="r")
    assert respond.action == "respond" and respond.response.startswith("You're welcome")
    assert respond.reason == "conversational message" and not respond.stages
    first, second = list(by_name)[:2]
    question = clarify_question(by_name, ["not_an_agent", first, second, "another"])
    assert by_name[first].title.lower() in question and by_name[second].title.lower() in question
    assert clarify_question(by_name) == "Could you say a bit more about what you need?"
    keyword = KeywordRouter(manifests).route(RoutingContext(query="zzz qqq", ticket={}, manifests=manifests))
    assert keyword.action == "clarify" and keyword.response == clarify_question(by_name)
    routed = route_decision(ctx, by_name, [(first, 0.51234)], confidence=0.5, router="r")
    assert routed.action == "route" and routed.agents == [first] and routed.routes[0].score == 0.5123


def test_the_runtime_routers_import_without_training_code():
    """Routing a turn needs no training code: importing the routers (and the protocol) loads
    neither the head fitting, calibration, evaluation, nor FunctionGemma's data generator."""
    code = (
        "import sys\n"
        "import backend.protocol, orchestrator.routing.factory, orchestrator.routing.head\n"
        "import orchestrator.routing.semantic, orchestrator.routing.keyword, orchestrator.routing.cascade\n"
        "import orchestrator.routing.shadow, orchestrator.routing.functiongemma.router\n"
        "bad = sorted(m for m in sys.modules if m.startswith('orchestrator.routing.training')\n"
        "             or m in ('orchestrator.routing.functiongemma.data', 'orchestrator.routing.functiongemma.train',\n"
        "                      'sklearn'))\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
