"""Routers by name (factory), their settings, the app wiring, warm-up/readiness and the
eval-router CLI's router choices."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from pydantic import ValidationError

from agents.registry import AgentRegistry
from backend.assistant import build_routers, router_config
from backend.cli import cli
from backend.settings import CASCADE_LOCAL_THRESHOLD, CASCADE_THRESHOLD_REPORT, PROJECT_ROOT, Settings
from orchestrator.routing.base import RoutingContext
from orchestrator.routing.cascade import CascadeRouter
from orchestrator.routing.factory import (
    ROUTER_NAMES,
    RouterConfig,
    RouterUnavailable,
    RouterWarmup,
    build_router,
    needs_fallback,
)
from orchestrator.routing.gemini import GeminiController
from orchestrator.routing.keyword import KeywordRouter
from orchestrator.routing.semantic import SemanticRouter

ADAPTER = PROJECT_ROOT / "orchestrator/routing/functiongemma/adapters/demo"


@pytest.fixture(scope="module")
def manifests():
    return AgentRegistry().manifests()


@pytest.fixture(scope="module")
def embed(embedder):
    return lambda texts: embedder.embed(texts, task_type="SEMANTIC_SIMILARITY")


def fake_adapter(tmp_path: Path) -> Path:
    """A directory shaped like a peft adapter: enough for the settings check, never loaded."""
    d = tmp_path / "adapter"
    d.mkdir()
    (d / "adapter_config.json").write_text("{}")
    return d


def route(router, manifests, query: str):
    return router.route(RoutingContext(query=query, ticket={}, manifests=manifests))


# --- factory ----------------------------------------------------------------------------------
def test_every_offline_name_builds_a_router_that_routes(manifests, embed, local_llm):
    built = {
        n: build_router(n, manifests, embed=embed, llm=local_llm) for n in ("keyword", "semantic", "gemini")
    }
    assert isinstance(built["keyword"], KeywordRouter) and isinstance(built["semantic"], SemanticRouter)
    assert isinstance(built["gemini"], GeminiController)
    for name in ("keyword", "semantic"):
        assert route(built[name], manifests, "where is order BO-104512?").agents == ["order_lookup"]
    cascade = build_router(
        "cascade", manifests, embed=embed, llm=local_llm, config=RouterConfig(cascade_local="keyword")
    )
    assert isinstance(cascade, CascadeRouter) and cascade.name == "cascade"
    assert isinstance(cascade.local, KeywordRouter) and isinstance(cascade.remote, GeminiController)
    d = route(cascade, manifests, "where is order BO-104512?")
    # Offline the controller has no controlled generation: unsure turns keep the local decision.
    assert d.agents == ["order_lookup"] and d.meta["cascade"]["path"] in ("local", "local_fallback")


def test_semantic_head_is_built_when_available_else_refused_clearly(manifests, embed):
    try:
        from orchestrator.routing.head import SemanticHeadRouter
    except ImportError:
        with pytest.raises(RouterUnavailable, match="semantic-head"):
            build_router("semantic-head", manifests, embed=embed)
    else:
        router = build_router("semantic-head", manifests, embed=embed)  # the head is fitted lazily
        assert isinstance(router, SemanticHeadRouter) and router.name == "semantic-head"
        assert callable(router.warm_up) and needs_fallback("semantic-head")


@pytest.mark.slow
def test_semantic_head_router_routes_and_serves_as_cascade_local(manifests, embed, local_llm):
    if not hasattr(pytest.importorskip("orchestrator.routing.head"), "SemanticHeadRouter"):
        pytest.skip("no semantic-head router in this build")
    cascade = build_router(
        "cascade", manifests, embed=embed, llm=local_llm, config=RouterConfig(cascade_local="semantic-head")
    )
    assert RouterWarmup(cascade).start().wait(600)  # fits the head
    d = route(cascade, manifests, "where is order BO-104512, has it shipped?")
    assert d.agents == ["order_lookup"] and d.meta["cascade"]["local"]["router"] == "semantic-head"


def test_missing_pieces_are_refused_with_the_reason(manifests, embed, tmp_path):
    assert set(ROUTER_NAMES) == {"keyword", "semantic", "semantic-head", "functiongemma", "gemini", "cascade"}
    with pytest.raises(RouterUnavailable, match="unknown router"):
        build_router("nope", manifests)
    with pytest.raises(RouterUnavailable, match="embedding"):
        build_router("semantic", manifests)
    for name in ("gemini", "cascade"):
        with pytest.raises(RouterUnavailable, match="LLM"):
            build_router(name, manifests, embed=embed)
    from orchestrator.routing.functiongemma.router import FunctionGemmaConfig

    missing = RouterConfig(functiongemma=FunctionGemmaConfig(adapter_path=str(tmp_path / "none")))
    with pytest.raises(RouterUnavailable, match="does not exist"):
        build_router("functiongemma", manifests, config=missing)
    (tmp_path / "empty").mkdir()
    empty = RouterConfig(functiongemma=FunctionGemmaConfig(adapter_path=str(tmp_path / "empty")))
    with pytest.raises(RouterUnavailable, match=r"adapter_config\.json"):
        build_router("functiongemma", manifests, config=empty)


def test_which_routers_get_a_fallback():
    assert needs_fallback("gemini") and needs_fallback("functiongemma")
    assert not needs_fallback("semantic") and not needs_fallback("keyword")
    assert not needs_fallback("cascade", RouterConfig(cascade_local="semantic"))
    assert needs_fallback("cascade", RouterConfig(cascade_local="functiongemma"))


@pytest.mark.slow
def test_functiongemma_router_from_settings_routes_with_the_committed_adapter(manifests, local_llm):
    if not (ADAPTER / "adapter_config.json").is_file():
        pytest.skip(f"no trained adapter at {ADAPTER}")
    pytest.importorskip("peft")
    settings = Settings(_env_file=None, router="functiongemma")
    router, fallback = build_routers(settings, local_llm, manifests)
    assert router.name == "functiongemma" and isinstance(fallback, SemanticRouter)
    warm = RouterWarmup(router).start()
    assert warm.wait(600), warm.status()
    d = route(router, manifests, "where is order BO-104512, has it shipped?")
    assert d.action == "route" and "order_lookup" in d.agents and 0 < d.confidence <= 1


# --- settings -----------------------------------------------------------------------------------
def test_settings_validate_router_combinations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default adapter path is then resolved against the project root
    s = Settings(_env_file=None)
    assert s.router == "semantic-head" and s.cascade_local_threshold == CASCADE_LOCAL_THRESHOLD
    assert s.functiongemma_adapter_dir == ADAPTER
    if not ADAPTER.is_dir():
        with pytest.raises(ValidationError, match="FUNCTIONGEMMA_ADAPTER"):
            Settings(_env_file=None, router="functiongemma")
        with pytest.raises(ValidationError, match="CASCADE_LOCAL=functiongemma"):
            Settings(_env_file=None, router="cascade", cascade_local="functiongemma")
    with pytest.raises(ValidationError, match="does not exist"):
        Settings(_env_file=None, router="functiongemma", functiongemma_adapter=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match=r"no adapter_config\.json"):
        Settings(_env_file=None, router="functiongemma", functiongemma_adapter=Path("empty"))
    # Only checked when the functiongemma router is actually used.
    assert Settings(
        _env_file=None, router="cascade", cascade_local="semantic", functiongemma_adapter=tmp_path
    )
    adapter = fake_adapter(tmp_path)
    ok = Settings(
        _env_file=None, router="cascade", cascade_local="functiongemma", functiongemma_adapter=adapter
    )
    assert ok.uses_functiongemma and ok.functiongemma_adapter_dir == adapter
    with pytest.raises(ValidationError, match="FUNCTIONGEMMA_BASE_PATH"):
        Settings(_env_file=None, functiongemma_base_path=tmp_path / "nope")
    for bad in ({"cascade_local_threshold": 1.2}, {"cascade_remote_threshold": -0.5}, {"router": "magic"}):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **bad)
    with pytest.raises(ValidationError):
        Settings(_env_file=None, cascade_local="gemini")  # the local router must be a local one


def test_settings_reach_the_router_configs(tmp_path):
    adapter = fake_adapter(tmp_path)
    s = Settings(
        _env_file=None,
        router="cascade",
        cascade_local="functiongemma",
        cascade_local_threshold=0.7,
        cascade_remote_threshold=0.6,
        functiongemma_adapter=adapter,
        functiongemma_int8=True,
        functiongemma_base_path=tmp_path,
    )
    config = router_config(s)
    assert (config.cascade.local_threshold, config.cascade.remote_threshold) == (0.7, 0.6)
    assert config.cascade.source == CASCADE_THRESHOLD_REPORT and config.cascade_local == "functiongemma"
    fg = config.functiongemma
    assert fg.adapter_path == str(adapter) and fg.quantize_int8
    assert fg.base.source == "functiongemma" and fg.base.functiongemma_path == str(tmp_path)
    assert router_config(Settings(_env_file=None)).functiongemma is None  # no torch import needed
    dumped = json.loads(config.model_dump_json())
    assert (
        dumped["functiongemma"]["adapter_path"] == str(adapter)
        and dumped["cascade"]["local_threshold"] == 0.7
    )
    assert (PROJECT_ROOT / CASCADE_THRESHOLD_REPORT).is_file()


def test_build_routers_follows_the_setting(manifests, local_llm):
    for name, router_type, has_fallback in (
        ("semantic", SemanticRouter, False),
        ("keyword", KeywordRouter, False),
        ("gemini", GeminiController, True),
        ("cascade", CascadeRouter, False),
    ):
        router, fallback = build_routers(Settings(_env_file=None, router=name), local_llm, manifests)
        assert isinstance(router, router_type) and (fallback is not None) == has_fallback, name
    router, _ = build_routers(
        Settings(_env_file=None, router="cascade", cascade_local="keyword"), local_llm, manifests
    )
    assert router.config.local_threshold == CASCADE_LOCAL_THRESHOLD and isinstance(
        router.local, KeywordRouter
    )


# --- warm-up and readiness ----------------------------------------------------------------------
class SlowToWarm:
    """Stands in for FunctionGemma's model load: warm_up blocks until released (or fails)."""

    name = "slow"

    def __init__(self, error: Exception | None = None) -> None:
        self.release, self.error = threading.Event(), error

    def warm_up(self) -> None:
        self.release.wait(10)
        if self.error:
            raise self.error

    def route(self, ctx):  # pragma: no cover - never routed here
        raise NotImplementedError


def test_warmup_status_follows_the_router():
    assert RouterWarmup(KeywordRouter(AgentRegistry().manifests())).start().status() == "ok"
    slow = SlowToWarm()
    w = RouterWarmup(slow).start()
    assert w.status().startswith("warming up") and not w.ready
    slow.release.set()
    assert w.wait(5) and w.status() == "ok"
    broken = SlowToWarm(RuntimeError("no weights"))
    broken.release.set()
    w = RouterWarmup(broken).start()
    assert not w.wait(5) and w.status() == "failed: RuntimeError: no weights"
    # A cascade warms the routers under it.
    inner = SlowToWarm()
    inner.release.set()
    w = RouterWarmup(CascadeRouter(inner, None)).start()
    assert w.wait(5)


def test_readyz_is_unavailable_until_the_router_is_warm(live_app):
    server = live_app()
    slow = SlowToWarm()
    server.services.router_warmup = RouterWarmup(slow).start()
    r = requests.get(server.url + "/readyz", timeout=5)
    assert r.status_code == 503 and r.json()["checks"]["router"].startswith("warming up")
    slow.release.set()
    assert server.services.router_warmup.wait(5)
    r = requests.get(server.url + "/readyz", timeout=5)
    assert r.status_code == 200 and r.json()["checks"]["router"] == "ok"


# --- eval-router CLI ------------------------------------------------------------------------------
TINY = [
    ("where is order BO-104512, has it shipped?", "order_lookup"),
    ("is the Lumo Hub compatible with zigbee bulbs", "product_catalog"),
    ("what's our return policy for opened items", "knowledge_base"),
    ("is there a macro for a late delivery apology", "macros"),
    ("where is my parcel and what is the policy on late ones", "order_lookup+knowledge_base"),
    ("thanks, that's all", "respond_directly"),
]


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.jsonl"
    p.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in TINY))
    return p


def test_eval_router_cli_cascade_and_semantic_on_a_tiny_file(tiny, tmp_path):
    runner = CliRunner()
    out = tmp_path / "results"
    args = ["eval-router", "--data", str(tiny), "--out", str(out), "--out-of-scope", "respond_directly"]
    r = runner.invoke(cli, [*args, "--router", "cascade", "--local", "keyword", "--local-threshold", "0.99"])
    assert r.exit_code == 0, r.output
    assert "paths:" in r.output and "accepting confidence" in r.output
    report = json.loads((out / "router_cascade_tiny.json").read_text())
    # Keyword is never that sure, and the offline controller cannot answer: local_fallback.
    assert report["router"] == "cascade" and report["router_stats"]["local_fallback"] >= 4
    assert report["n"] == 5 and len(report["per_example"]) == 6
    assert report["coverage"]["recommended"] and (out / "router_cascade_tiny_coverage.png").exists()
    r = runner.invoke(cli, [*args, "--router", "semantic", "--name", "sem"])
    assert r.exit_code == 0, r.output
    sem = json.loads((out / "sem.json").read_text())
    assert sem["accuracy"] >= 0.6 and sem["per_example"][-1]["gold"] == "respond_directly"
    assert "Confidence thresholds" in (out / "sem.md").read_text()


def test_eval_router_cli_refuses_bad_router_options(tiny, tmp_path):
    runner = CliRunner()
    base = ["eval-router", "--data", str(tiny), "--out", str(tmp_path), "--out-of-scope", "respond_directly"]
    (tmp_path / "empty").mkdir()
    r = runner.invoke(cli, [*base, "--router", "functiongemma", "--adapter", str(tmp_path / "empty")])
    assert r.exit_code != 0 and "adapter_config.json" in r.output
    r = runner.invoke(cli, [*base, "--router", "functiongemma", "--adapter", str(tmp_path / "missing")])
    assert r.exit_code != 0 and "does not exist" in r.output
    r = runner.invoke(cli, [*base, "--router", "cascade", "--local-threshold", "1.5"])
    assert r.exit_code != 0 and "1.5" in r.output
    r = runner.invoke(cli, [*base, "--router", "cascade", "--local", "gemini"])
    assert r.exit_code != 0
