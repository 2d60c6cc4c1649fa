"""Shadow mode with real routers: keyword live, semantic as the candidate (and failing ones)."""

from __future__ import annotations

import threading

import pytest

from agents.base import ToolSpec
from agents.registry import AgentRegistry
from orchestrator.orchestrator import Assistant
from orchestrator.routing import RoutingContext, RoutingDecision, RoutingError, SemanticRouter
from orchestrator.routing.keyword import KeywordRouter
from orchestrator.routing.shadow import ShadowConfig, ShadowRouter, decision_key
from orchestrator.turn import Done, Principal, TurnRequest
from testkit.agents import ScriptedAgent, ev

QUESTIONS = [
    "where is order BO-100234",
    "thanks!",
    "what is the return policy for damaged items",
    "is there a macro for late delivery",
    "help",
]


@pytest.fixture(scope="module")
def manifests():
    return AgentRegistry().manifests()


@pytest.fixture(scope="module")
def routers(manifests, embedder):
    semantic = SemanticRouter(lambda t: embedder.embed(t, task_type="SEMANTIC_SIMILARITY"), manifests)
    return KeywordRouter(manifests), semantic


def ctx(text: str, manifests, turn: str | None = "t1") -> RoutingContext:
    return RoutingContext(query=text, ticket={}, manifests=manifests, turn_id=turn)


def test_live_decision_is_unchanged_and_candidate_agreement_is_recorded(routers, manifests):
    keyword, semantic = routers
    seen: list[dict] = []
    shadow = ShadowRouter(keyword, semantic, config=ShadowConfig(grace_s=5), on_result=seen.append)
    agreements = []
    for i, q in enumerate(QUESTIONS):
        got = shadow.route(ctx(q, manifests, f"t{i}"))
        alone = keyword.route(ctx(q, manifests))
        assert got.model_dump(exclude={"latency_s"}) == alone.model_dump(exclude={"latency_s"})
        record = shadow.collect(f"t{i}")
        cand = semantic.route(ctx(q, manifests))
        assert record["status"] == "ok" and record["router"] == "semantic"
        assert (record["action"], record["routes"]) == (cand.action, cand.agents)
        assert record["agrees"] == (decision_key(alone) == decision_key(cand))
        agreements.append(record["agrees"])
    # The two routers differ on small talk (keyword asks back, semantic answers): both outcomes occur.
    assert True in agreements and False in agreements
    assert shadow.counts["ok"] == len(QUESTIONS) == len(seen)
    assert shadow.counts["agree"] == sum(agreements)
    assert shadow.collect("t0") is None  # collected once
    assert shadow.name == "keyword"
    shadow.close()


def test_a_failing_candidate_never_breaks_the_turn(routers, manifests, caplog):
    keyword, _ = routers

    class Broken:
        name = "broken"

        def route(self, c):
            raise RoutingError("model down")

    shadow = ShadowRouter(keyword, Broken(), config=ShadowConfig(grace_s=5))
    decision = shadow.route(ctx("where is order BO-100234", manifests))
    assert decision.agents == ["order_lookup"]
    record = shadow.collect("t1")
    assert record["status"] == "error" and record["error"] == "RoutingError"
    assert shadow.counts["error"] == 1 and "shadow router broken failed" in caplog.text
    shadow.close()


def test_a_slow_candidate_is_pending_and_a_full_queue_skips(routers, manifests):
    keyword, _ = routers
    release = threading.Event()

    class Stuck:
        name = "stuck"

        def route(self, c):
            release.wait(10)
            return RoutingDecision(action="clarify", response="?")

    late: list[tuple] = []
    arrived = threading.Event()

    def on_late(*args):
        late.append(args)
        arrived.set()

    shadow = ShadowRouter(keyword, Stuck(), config=ShadowConfig(max_pending=1), on_late=on_late)
    # route() returned while the candidate is blocked: the turn did not wait for it.
    a = RoutingContext(
        query="where is order BO-100234", ticket={}, manifests=manifests, session_id="s", turn_id="a"
    )
    assert shadow.route(a).agents == ["order_lookup"]
    assert shadow.route(ctx("thanks!", manifests, "b")).action == "clarify"
    assert shadow.collect("a") == {"router": "stuck", "status": "pending", "turn": "a"}
    assert shadow.collect("b") == {"router": "stuck", "status": "skipped"}
    assert shadow.counts["skipped"] == 1
    release.set()
    # The decision that missed its turn is handed over late, for the session's owner to store.
    assert arrived.wait(10)
    ((session_id, turn_id, record),) = late
    assert (session_id, turn_id) == ("s", "a")
    assert (
        record["status"] == "ok"
        and record["action"] == "clarify"
        and record["late"]
        and record["turn"] == "a"
    )
    shadow.close()


def test_live_failures_propagate_for_the_fallback_and_the_candidate_is_not_run(routers, manifests):
    _, semantic = routers

    class Broken:
        name = "broken"

        def route(self, c):
            raise RoutingError("down")

    shadow = ShadowRouter(Broken(), semantic)
    with pytest.raises(RoutingError):
        shadow.route(ctx("hi", manifests))
    assert shadow.collect("t1") is None
    shadow.close()


def test_the_orchestrator_hands_the_shadow_decision_beside_the_turns_routing(routers, manifests, local_llm):
    keyword, semantic = routers
    # The real manifests (what both routers read), answered by scripted agents' `lookup` tool.
    lookup = [ToolSpec(name="lookup", description="look something up", retrieval=True)]
    by_name = {m.name: m.model_copy(update={"tools": lookup}) for m in manifests}
    agents = [
        ScriptedAgent(
            by_name["order_lookup"], evidence=[ev("order:BO-100234", "Order", "Delivered.", "order")]
        ),
        ScriptedAgent(by_name["knowledge_base"], evidence=[ev("article:1", "Returns", "Return in 30 days.")]),
    ]
    shadow = ShadowRouter(keyword, semantic, config=ShadowConfig(grace_s=5))
    assistant = Assistant(agents, shadow, local_llm, None)
    for text in ("where is order BO-100234", "thanks!"):
        req = TurnRequest("s1", Principal("demo", "a", "A"), "m1", text, {"id": "1"}, [], [], [])
        done = list(assistant.handle(req))[-1]
        assert isinstance(done, Done)
        routing = done.routing
        assert routing["router"] == "keyword" and set(routing) >= {"action", "routes", "confidence"}
        # The candidate's decision travels beside the live routing (Done.shadow), never inside it.
        assert "shadow" not in routing
        assert done.shadow["router"] == "semantic" and done.shadow["status"] == "ok"
        cand = semantic.route(ctx(text, assistant.manifests))
        assert done.shadow["routes"] == cand.agents
    assistant.close()


def test_shadow_router_setting_wraps_the_live_router(manifests, local_llm):
    from pydantic import ValidationError

    from backend.assistant import build_routers
    from backend.settings import Settings

    router, fallback = build_routers(
        Settings(_env_file=None, router="keyword", shadow_router="semantic"), local_llm, manifests
    )
    assert isinstance(router, ShadowRouter) and fallback is None
    assert (router.name, router.live.name, router.candidate.name) == ("keyword", "keyword", "semantic")
    plain, _ = build_routers(Settings(_env_file=None, router="keyword"), local_llm, manifests)
    assert not isinstance(plain, ShadowRouter)
    with pytest.raises(ValidationError, match="already ROUTER"):
        Settings(_env_file=None, router="semantic", shadow_router="semantic")
    router.close()


def test_warm_up_waits_for_the_live_router_only(routers):
    keyword, _ = routers
    warmed = threading.Event()

    class Cold:
        name = "cold"

        def warm_up(self):
            warmed.set()
            raise OSError("model files missing")

        def route(self, c):
            raise AssertionError("not reached")

    shadow = ShadowRouter(keyword, Cold())
    shadow.warm_up()  # the candidate's failure is logged on its executor, never raised here
    assert warmed.wait(5)

    class LiveCold(Cold):
        def warm_up(self):
            raise OSError("live model missing")

    with pytest.raises(OSError, match="live model missing"):
        ShadowRouter(LiveCold(), keyword).warm_up()
    shadow.close()


def test_the_candidate_runs_under_its_own_turn_id_and_settle_adds_its_cost(routers, manifests, local_llm):
    from backend.assistant import shadow_usage
    from vertex_interface import CallTags

    keyword, _ = routers
    seen: list[str | None] = []

    class Billed:
        """A model-backed candidate: its call is recorded on the LLM's ledger under its context."""

        name = "billed"

        def route(self, c):
            seen.append(c.turn_id)
            local_llm.embed(["x"], task_type="SEMANTIC_SIMILARITY", tags=CallTags(c.session_id, c.turn_id))
            return RoutingDecision(action="clarify", response="?")

    shadow = ShadowRouter(
        keyword, Billed(), config=ShadowConfig(grace_s=5), settle=lambda c: shadow_usage(local_llm, c)
    )
    shadow.route(RoutingContext(query="hi", ticket={}, manifests=manifests, session_id="s9", turn_id="t9"))
    record = shadow.collect("t9")
    assert seen == ["t9:shadow"] and record["status"] == "ok" and "cost_usd" in record
    # Nothing of the candidate's is left on the ledger for the live turn (or forever).
    assert local_llm.ledger.records(lambda r: r.tags.session_id == "s9") == []
    shadow.close()


def test_a_retrained_functiongemma_adapter_shadows_the_live_one(manifests, local_llm, tmp_path):
    """The loop's last step: a candidate adapter (e.g. trained --include-feedback) watched beside
    the live adapter. Building the routers reads the adapter files only (no model load)."""
    import shutil

    from pydantic import ValidationError

    from backend.assistant import build_routers
    from backend.settings import Settings

    live = Settings(_env_file=None, router="functiongemma").functiongemma_adapter_dir
    candidate = tmp_path / "candidate"
    shutil.copytree(live, candidate)
    settings = Settings(
        _env_file=None,
        router="functiongemma",
        shadow_router="functiongemma",
        shadow_functiongemma_adapter=candidate,
    )
    router, fallback = build_routers(settings, local_llm, manifests)
    assert isinstance(router, ShadowRouter) and fallback is not None
    assert router.live.config.adapter_path == str(live)
    assert router.candidate.config.adapter_path == str(candidate)
    router.close()
    with pytest.raises(ValidationError, match="already ROUTER"):
        Settings(_env_file=None, router="functiongemma", shadow_router="functiongemma")
    with pytest.raises(ValidationError, match="not a trained adapter"):
        Settings(
            _env_file=None,
            router="functiongemma",
            shadow_router="functiongemma",
            shadow_functiongemma_adapter=tmp_path,
        )
    with pytest.raises(ValidationError, match="needs SHADOW_ROUTER=functiongemma"):
        Settings(
            _env_file=None, router="keyword", shadow_router="semantic", shadow_functiongemma_adapter=candidate
        )
