"""Sidebar feedback as FunctionGemma training data: loading, label mapping, folding, the CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agents.registry import AgentRegistry
from orchestrator.routing.decisions import CLARIFY, RESPOND
from orchestrator.routing.functiongemma.data import (
    RouterExample,
    feedback_examples,
    fold_feedback,
    load_feedback,
    normalise,
)


@pytest.fixture(scope="module")
def manifests():
    return AgentRegistry().manifests()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"text": "where is order BO-100234", "label": "order_lookup", "routed": "knowledge_base"},
    {"text": "thanks, that's all", "label": "respond", "routed": "macros"},
    {"text": "can you check", "label": "clarify", "routed": "knowledge_base"},
    {"text": "refund for the broken bench", "label": "order_lookup+knowledge_base+order_lookup"},
    {"text": "old agent please", "label": "legacy_agent", "routed": "macros"},
    {"text": "ambiguous combo", "label": "respond+macros"},
    {"text": "nobody labelled this", "label": "", "routed": "macros"},
    {"text": "", "label": "macros"},
]


def test_feedback_labels_map_to_functions_and_unknown_ones_are_reported(tmp_path, manifests, caplog):
    path = write_jsonl(tmp_path / "feedback.jsonl", ROWS)
    with caplog.at_level(logging.WARNING):
        examples = feedback_examples(path, manifests)
    assert [(e.text, e.calls) for e in examples] == [
        ("where is order BO-100234", ("order_lookup",)),
        ("thanks, that's all", (RESPOND,)),
        ("can you check", (CLARIFY,)),
        ("refund for the broken bench", ("order_lookup", "knowledge_base")),  # de-duplicated
    ]
    assert all(e.kind == "feedback" and e.source == e.text for e in examples)
    assert "unknown label 'legacy_agent'" in caplog.text and "unlabelled" in caplog.text
    _, skipped = load_feedback(path, manifests)
    assert skipped == {
        "unknown label 'legacy_agent'": 1,
        "label 'respond+macros' not usable": 1,
        "unlabelled": 1,
        "no text": 1,
    }


def test_without_pseudo_functions_respond_and_clarify_are_skipped(tmp_path, manifests):
    path = write_jsonl(tmp_path / "f.jsonl", ROWS[:3])
    examples, skipped = load_feedback(path, manifests, pseudo=False)
    assert [e.calls for e in examples] == [("order_lookup",)]
    assert sum(skipped.values()) == 2


def test_csv_exports_load_too_and_disabled_agents_are_unknown(tmp_path, manifests):
    path = tmp_path / "f.csv"
    path.write_text("text,label,routed\nwhere is my parcel,order_lookup,macros\nhi,respond,\n")
    assert [e.calls for e in feedback_examples(path, manifests)] == [("order_lookup",), (RESPOND,)]
    only_macros = [m for m in manifests if m.name == "macros"]
    examples, skipped = load_feedback(path, only_macros)
    assert [e.calls for e in examples] == [(RESPOND,)] and skipped == {"unknown label 'order_lookup'": 1}


def test_bad_files_fail_clearly(tmp_path, manifests):
    with pytest.raises(FileNotFoundError, match="no such feedback file"):
        feedback_examples(tmp_path / "missing.jsonl", manifests)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": "macros"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON line"):
        feedback_examples(bad, manifests)


def test_fold_feedback_weights_train_and_keeps_its_texts_out_of_val_and_test():
    gen = {
        "train": [
            RouterExample("Where is order BO-1", ("knowledge_base",), "s", "base"),
            RouterExample("hello", (RESPOND,), "hello", "respond"),
        ],
        "val": [RouterExample("where is order bo-1?", ("knowledge_base",), "s", "polite")],
        "test": [RouterExample("something else", ("macros",), "x", "base")],
    }
    fb = [RouterExample("where is order BO-1", ("order_lookup",), "where is order BO-1", "feedback")]
    folded = fold_feedback(gen, fb + fb, weight=3)  # the same example in two files counts once
    train_texts = [normalise(e.text) for e in folded["train"]]
    assert train_texts.count("where is order bo1") == 3
    assert {e.calls for e in folded["train"] if normalise(e.text) == "where is order bo1"} == {
        ("order_lookup",)
    }
    assert folded["val"] == [] and len(folded["test"]) == 1  # the person's label wins everywhere
    assert len(gen["train"]) == 2  # input untouched
    with pytest.raises(ValueError):
        fold_feedback(gen, fb, weight=0)


def test_train_cli_parses_feedback_options(tmp_path):
    from orchestrator.routing.functiongemma.train import TrainConfig, config_from_args

    a = write_jsonl(tmp_path / "a.jsonl", ROWS[:1])
    b = write_jsonl(tmp_path / "b.jsonl", ROWS[1:2])
    cfg = config_from_args(
        [
            "--output-dir",
            str(tmp_path / "out"),
            "--include-feedback",
            str(a),
            "--include-feedback",
            str(b),
            "--feedback-weight",
            "5",
        ]
    )
    assert cfg.feedback_files == (str(a), str(b)) and cfg.feedback_weight == 5
    assert TrainConfig.model_validate_json(cfg.model_dump_json()) == cfg  # saved beside the adapter
    plain = config_from_args(["--output-dir", str(tmp_path / "out")])
    assert plain.feedback_files == () and plain.feedback_weight == 3
    for argv in (["--include-feedback", str(tmp_path / "nope.jsonl")], ["--feedback-weight", "0"]):
        with pytest.raises(SystemExit) as exc:
            config_from_args(["--output-dir", str(tmp_path / "out"), *argv])
        assert exc.value.code == 2
