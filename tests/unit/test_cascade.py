"""The cascade router over real routers: keyword/semantic locally, the Gemini controller over the
offline LLM (which has no controlled generation, so it always fails) and the semantic router as
remotes; plus the threshold sweep it is configured from."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from agents.registry import AgentRegistry
from orchestrator.routing.base import RoutingContext, RoutingDecision, RoutingError
from orchestrator.routing.cascade import CascadeConfig, CascadeRouter
from orchestrator.routing.decisions import RESPOND
from orchestrator.routing.gemini import GeminiController
from orchestrator.routing.keyword import KeywordRouter
from orchestrator.routing.semantic import SemanticRouter
from orchestrator.routing.training.thresholds import choose_threshold, coverage_report, grid, sweep

ORDER_Q = "where is order BO-104512, has it shipped yet?"
VAGUE_Q = "zigbee bridge pairing fails"  # neither router is sure about it


@pytest.fixture(scope="module")
def manifests():
    return AgentRegistry().manifests()


@pytest.fixture(scope="module")
def keyword(manifests):
    return KeywordRouter(manifests)


@pytest.fixture(scope="module")
def semantic(manifests, embedder):
    return SemanticRouter(lambda t: embedder.embed(t, task_type="SEMANTIC_SIMILARITY"), manifests)


def ctx(manifests, query: str) -> RoutingContext:
    return RoutingContext(query=query, ticket={"subject": "Order question"}, manifests=manifests)


class Failing:
    """A remote that cannot decide: what a breaker-open or crashing controller looks like."""

    name = "failing"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        raise self.exc


class Hanging:
    """A remote that answers only once released: stands in for a hung network call."""

    name = "hanging"

    def __init__(self, inner) -> None:
        self.inner, self.release = inner, threading.Event()

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        self.release.wait(10)
        return self.inner.route(ctx)


# --- paths ------------------------------------------------------------------------------------
def test_confident_local_decision_stands_without_asking_the_remote(manifests, keyword, semantic):
    local = keyword.route(ctx(manifests, ORDER_Q))
    assert local.action == "route" and 0 < local.confidence < 1
    remote = Failing(AssertionError("the remote must not be asked"))
    cascade = CascadeRouter(keyword, remote, CascadeConfig(local_threshold=local.confidence))
    d = cascade.route(ctx(manifests, ORDER_Q))
    meta = d.meta["cascade"]
    assert d.router == "cascade" and d.agents == ["order_lookup"] and d.confidence == local.confidence
    assert meta["path"] == "local" and meta["decided_by"] == "keyword" and "remote" not in meta
    assert meta["local"]["confidence"] == round(local.confidence, 4) and meta["local"]["latency_ms"] >= 0
    assert meta["thresholds"] == {"local": local.confidence, "remote": 0.5}
    # The enhanced query still carries the order number, and the keyword router's own meta survives.
    assert "BO-104512" in d.routes[0].enhanced_query and "scores" in d.meta


def test_unsure_local_escalates_and_a_confident_remote_decides(manifests, keyword, semantic):
    local = keyword.route(ctx(manifests, ORDER_Q))
    remote = semantic.route(ctx(manifests, ORDER_Q))
    assert remote.confidence > local.confidence
    config = CascadeConfig(
        local_threshold=min(1.0, local.confidence + 0.01), remote_threshold=remote.confidence
    )
    d = CascadeRouter(keyword, semantic, config).route(ctx(manifests, ORDER_Q))
    meta = d.meta["cascade"]
    assert meta["path"] == "remote" and meta["decided_by"] == "semantic" and d.agents == ["order_lookup"]
    assert meta["local"]["confidence"] == round(local.confidence, 4)
    assert meta["remote"]["confidence"] == round(remote.confidence, 4)
    assert meta["remote"]["latency_ms"] > 0 and meta["remote"]["action"] == "route"


class ConfidentClarify:
    """A local router sure that it cannot tell (how confident a real one is depends on the
    manifests in the folder, which other teams change)."""

    name = "confident-clarify"

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        return RoutingDecision(action="clarify", response="Which order?", confidence=0.9, router=self.name)


def test_local_clarify_is_escalated_even_when_confident(manifests, keyword):
    d = CascadeRouter(ConfidentClarify(), keyword, CascadeConfig(local_threshold=0.0)).route(
        ctx(manifests, "can you check that?")
    )
    assert d.meta["cascade"]["path"] != "local" and "remote" in d.meta["cascade"]


def test_both_unsure_asks_a_question_naming_the_top_candidates_of_both(manifests, keyword, semantic):
    local = semantic.route(ctx(manifests, VAGUE_Q))
    remote = keyword.route(ctx(manifests, VAGUE_Q))
    config = CascadeConfig(local_threshold=1.0, remote_threshold=1.0, clarify_candidates=2)
    assert local.confidence < 1.0 and remote.confidence < 1.0
    d = CascadeRouter(semantic, keyword, config).route(ctx(manifests, VAGUE_Q))
    assert d.action == "clarify" and d.stages == [] and d.meta["cascade"]["path"] == "clarify"
    scores = semantic.scores(VAGUE_Q)
    top = sorted((n for n in scores if n != RESPOND), key=lambda n: -scores[n])[:2]
    titles = {m.name: m.title.lower() for m in manifests}
    assert all(titles[n] in d.response for n in top), d.response
    assert d.confidence == min(local.confidence, remote.confidence)
    assert {"local", "remote"} <= set(d.meta["cascade"])


def test_remote_clarify_with_confidence_stands(manifests, keyword, semantic):
    remote = semantic.route(ctx(manifests, "hmm"))
    assert remote.action == "clarify"
    d = CascadeRouter(keyword, semantic, CascadeConfig(remote_threshold=remote.confidence)).route(
        ctx(manifests, "hmm")
    )
    assert d.meta["cascade"]["path"] == "remote" and d.response == remote.response


def test_without_a_remote_an_unsure_local_decision_becomes_a_question(manifests, keyword):
    d = CascadeRouter(keyword, None, CascadeConfig(local_threshold=1.0)).route(ctx(manifests, ORDER_Q))
    assert d.action == "clarify" and d.meta["cascade"]["path"] == "clarify"
    assert "order system" in d.response and "remote" not in d.meta["cascade"]


# --- remote failures ----------------------------------------------------------------------------
def test_gemini_controller_over_the_offline_llm_falls_back_to_the_local_decision(
    manifests, keyword, local_llm
):
    remote = GeminiController(local_llm, manifests)
    with pytest.raises(RoutingError):  # offline: no controlled generation
        remote.route(ctx(manifests, ORDER_Q))
    d = CascadeRouter(keyword, remote, CascadeConfig(local_threshold=1.0)).route(ctx(manifests, ORDER_Q))
    meta = d.meta["cascade"]
    assert meta["path"] == "local_fallback" and d.agents == ["order_lookup"]
    assert meta["remote"]["router"] == "gemini" and "RoutingError" in meta["remote"]["error"]
    assert "controller unavailable" in meta["remote"]["error"]


@pytest.mark.parametrize("exc", [RoutingError("breaker open"), ValueError("bad reply"), KeyError("x")])
def test_any_remote_exception_falls_back_to_the_local_decision(manifests, keyword, exc):
    d = CascadeRouter(keyword, Failing(exc), CascadeConfig(local_threshold=1.0)).route(
        ctx(manifests, ORDER_Q)
    )
    assert d.meta["cascade"]["path"] == "local_fallback" and d.agents == ["order_lookup"]
    assert type(exc).__name__ in d.meta["cascade"]["remote"]["error"]


def test_a_hung_remote_costs_at_most_the_timeout(manifests, keyword, semantic):
    hanging = Hanging(semantic)
    cascade = CascadeRouter(keyword, hanging, CascadeConfig(local_threshold=1.0, remote_timeout_s=0.2))
    try:
        d = cascade.route(ctx(manifests, ORDER_Q))
        # Returned while the remote is still blocked: the cascade did not wait for it.
        assert not hanging.release.is_set()
        assert d.meta["cascade"]["path"] == "local_fallback"
        assert "TimeoutError" in d.meta["cascade"]["remote"]["error"]
    finally:
        hanging.release.set()
        cascade.close()


def test_local_errors_are_not_swallowed(manifests, semantic):
    with pytest.raises(RoutingError, match="local down"):
        CascadeRouter(Failing(RoutingError("local down")), semantic).route(ctx(manifests, ORDER_Q))


# --- concurrency, config ------------------------------------------------------------------------
def test_concurrent_turns_get_the_same_decisions_and_are_all_counted(manifests, keyword, semantic):
    queries = [ORDER_Q, VAGUE_Q, "is there a macro for a late delivery apology", "thanks!", "hmm"] * 4
    config = CascadeConfig(local_threshold=0.75, remote_threshold=0.9)
    cascade = CascadeRouter(keyword, semantic, config)
    expected = [CascadeRouter(keyword, semantic, config).route(ctx(manifests, q)) for q in queries]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda q: cascade.route(ctx(manifests, q)), queries))
    assert [(d.meta["cascade"]["path"], d.agents, d.action) for d in got] == [
        (d.meta["cascade"]["path"], d.agents, d.action) for d in expected
    ]
    stats = cascade.stats()
    assert sum(stats.values()) == len(queries) and len({d.meta["cascade"]["path"] for d in got}) >= 2


def test_config_is_validated_frozen_and_serialisable():
    c = CascadeConfig(local_threshold=0.8, remote_threshold=0.6, source="bench/results/x.json, target 95%")
    assert CascadeConfig.model_validate_json(c.model_dump_json()) == c
    with pytest.raises(ValidationError):
        c.local_threshold = 0.1  # type: ignore[misc]
    for bad in ({"local_threshold": 1.5}, {"remote_threshold": -0.1}, {"remote_timeout_s": 0}, {"nope": 1}):
        with pytest.raises(ValidationError):
            CascadeConfig(**bad)


# --- thresholds -----------------------------------------------------------------------------------
PAIRS = [(0.95, True), (0.9, True), (0.85, True), (0.8, False), (0.7, True), (0.6, False), (0.3, False)]


def test_sweep_reports_coverage_accuracy_and_escalation():
    pts = {p.threshold: p for p in sweep(PAIRS, [0.0, 0.5, 0.8, 0.85, 0.99])}
    assert pts[0.0].accepted == 1.0 and pts[0.0].accuracy_on_accepted == round(4 / 7, 4)
    assert pts[0.5].n_accepted == 6 and pts[0.5].accuracy_on_accepted == round(4 / 6, 4)
    assert pts[0.8].accuracy_on_accepted == 0.75 and pts[0.8].escalated == round(3 / 7, 4)
    assert pts[0.85].accuracy_on_accepted == 1.0 and pts[0.85].accepted == round(3 / 7, 4)
    assert pts[0.99].n_accepted == 0 and pts[0.99].accuracy_on_accepted is None and pts[0.99].escalated == 1.0
    assert len(sweep(PAIRS)) == len(grid()) == 101


def test_choose_threshold_is_the_lowest_reaching_the_target():
    assert choose_threshold(PAIRS, 1.0) == 0.81  # 0.81–0.85 all accept exactly the three correct ones
    assert choose_threshold(PAIRS, 0.75) == 0.61  # 0.61: {0.95, 0.9, 0.85, 0.8, 0.7} → 4/5
    assert choose_threshold(PAIRS, 0.5) == 0.0
    # Not monotonic: 0.71 → 3/4 = 75%, 0.61 → 80% — the lowest qualifying one wins.
    assert choose_threshold(PAIRS, 0.8) == 0.61
    assert choose_threshold([(0.9, False), (0.5, False)], 0.5) is None
    assert choose_threshold(PAIRS, 1.0, min_accepted=4) is None
    for bad in ((PAIRS, 0.0), ([], 0.9), ([(1.2, True)], 0.9)):
        with pytest.raises(ValueError):
            choose_threshold(*bad)


def test_coverage_report_recommends_a_threshold_per_target():
    rep = coverage_report(PAIRS, targets=(0.75, 1.0))
    assert rep["n"] == 7 and rep["overall_accuracy"] == round(4 / 7, 4)
    assert [r["threshold"] for r in rep["recommended"]] == [0.61, 0.81]
    assert rep["recommended"][1]["escalated"] == round(4 / 7, 4) and "lowest threshold" in rep["rule"]
    assert [p["threshold"] for p in rep["table"]][:3] == [0.0, 0.05, 0.1]
