"""The router benchmark's machinery (bench/router_bench.py, bench/router_functiongemma.py): adapter
cache keys, stratified sampling, the one-table report. No model is trained here and no timing is
asserted: the numbers are the benchmark's business."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.registry import AgentRegistry
from bench import router_functiongemma as rfg
from bench.router_bench import markdown
from orchestrator.routing.functiongemma.data import RouterExample
from orchestrator.routing.training.evaluation import Example


@pytest.fixture
def manifests():
    return AgentRegistry().manifests()


def test_adapter_cache_key_changes_with_data_routes_and_config(manifests):
    train = [RouterExample("where is my order", ("order_lookup",), "where is my order", "base")]
    base = rfg._key(manifests, train, {"epochs": 2})
    assert rfg._key(manifests, train, {"epochs": 2}) == base
    assert rfg._key(manifests, train, {"epochs": 3}) != base
    assert rfg._key(manifests[:-1], train, {"epochs": 2}) != base
    other = [RouterExample("where is my order", ("knowledge_base",), "where is my order", "base")]
    assert rfg._key(manifests, other, {"epochs": 2}) != base


def test_missing_adapter_is_not_trained_when_training_is_off(manifests, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(rfg, "ADAPTER_CACHE", tmp_path)
    train = [RouterExample("hi", ("respond_directly",), "hi", "respond")]
    adapter, metrics = rfg.adapter_for("t", manifests, train, epochs=1, pseudo_functions=True, train=False)
    assert adapter is None and metrics == {}
    assert not any(tmp_path.iterdir())


def test_declaration_examples_change_the_cache_key_and_zero_keeps_the_old_one(
    manifests, tmp_path, monkeypatch
):
    monkeypatch.setattr(rfg, "ADAPTER_CACHE", tmp_path)
    train = [RouterExample("hi", ("respond_directly",), "hi", "respond")]
    cfg = {"epochs": 1, "batch_size": 4, "learning_rate": 3e-4, "pseudo_functions": True}
    cached = tmp_path / f"t-{rfg._key(manifests, train, cfg)}"  # an adapter cached before the option
    cached.mkdir()
    (cached / "metrics.json").write_text('{"train_seconds": 1.0}')
    found, metrics = rfg.adapter_for("t", manifests, train, epochs=1, pseudo_functions=True, train=False)
    assert found == cached and metrics == {"train_seconds": 1.0}
    other, _ = rfg.adapter_for(
        "t", manifests, train, epochs=1, pseudo_functions=True, description_examples=3, train=False
    )
    assert other is None


def test_seed_training_examples_are_the_templated_train_split():
    from bench.routing.seed_ecommerce import load_suite, templated_path, training_examples

    examples = training_examples()
    lines = [x for x in templated_path("train").read_text().splitlines() if x.strip()]
    assert len(examples) == len(lines) > 0
    names = {m.name for m in load_suite()}
    assert all(len(e.calls) == 1 and e.calls[0] in names for e in examples)
    assert {e.calls[0] for e in examples} == names


def test_banking77_curve_keeps_earlier_points_and_replaces_a_rerun_point(tmp_path):
    path = tmp_path / "curve.json"
    point = {"examples_per_route": 10, "test_n": 770, "epochs": 2, "accuracy": 0.6}
    rfg.write_curve(path, [point, {**point, "examples_per_route": 5, "accuracy": 0.5}])
    out = rfg.write_curve(
        path, [{**point, "examples_per_route": 20, "accuracy": 0.8}, {**point, "accuracy": 0.7}]
    )
    assert [(r["examples_per_route"], r["accuracy"]) for r in out] == [(5, 0.5), (10, 0.7), (20, 0.8)]
    assert json.loads(path.read_text()) == out


def test_seed_routers_learn_nothing_from_the_test_splits_base_examples():
    from bench.routing.seed_ecommerce import (
        load_suite,
        templated_path,
        train_split_manifests,
        training_examples,
    )

    full, train = load_suite(), training_examples()
    seen = train_split_manifests(full, train)
    test_sources = {
        json.loads(x)["source"] for x in templated_path("test").read_text().splitlines() if x.strip()
    }
    kept = {q for m in seen for q in (*m.when_to_use, *m.counter_examples)}
    assert kept and not kept & test_sources
    assert kept == {e.source for e in train}  # and everything the train split was made from
    assert [m.name for m in seen] == [m.name for m in full]


def test_stratified_takes_the_first_examples_of_each_label():
    data = [Example(f"q{i}", "a" if i % 3 else "b") for i in range(12)]
    picked = rfg.stratified(data, 2)
    assert [e.text for e in picked] == ["q0", "q1", "q2", "q3"]
    assert rfg.stratified(data, None) == data


def test_report_table_has_every_row_and_explains_missing_numbers():
    rows = [
        {
            "suite": "product",
            "dataset": "routing_queries",
            "router": "cascade",
            "n": 148,
            "accuracy": 0.797,
            "macro_f1": 0.79,
            "exact": 0.6,
            "p50_ms": 120.0,
            "p95_ms": 300.0,
            "local_threshold": 0.91,
            "threshold_from": "generated test split",
            "share_to_gemini": 0.443,
            "note": "offline",
        },
        {"suite": "product", "dataset": "routing_queries", "router": "gemini", "note": "needs Vertex AI"},
        {
            "suite": "banking77",
            "dataset": "b",
            "router": "functiongemma",
            "examples_per_route": 5,
            "test_n": 770,
        },
    ]
    md = markdown(rows)
    table = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(table) == 3
    assert "44.3% of turns sent to Gemini" in table[0] and "threshold 0.91" in table[0]
    assert "79.7%" in table[0]
    assert "needs Vertex AI" in table[1] and "–" in table[1]
    assert "| 5 | 770 |" in table[2]
    assert "CC BY 4.0" in md
