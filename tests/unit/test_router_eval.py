"""Router evaluation: metrics, reports and the CLI, on small labelled files."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from backend.cli import cli
from orchestrator.routing.keyword import KeywordRouter
from orchestrator.routing.training.evaluation import (
    evaluate,
    load_labelled,
    manifests_from_examples,
    route_name,
    write_eval_report,
)

TRAIN = [
    ("where is my parcel", "track_order"),
    ("parcel tracking number please", "track_order"),
    ("my parcel has not arrived", "track_order"),
    ("refund for my broken kettle", "refund"),
    ("when will the refund arrive", "refund"),
    ("refund not received yet", "refund"),
    ("reset my password", "account-access"),
    ("cannot log in, password wrong", "account-access"),
    ("locked out of my account password", "account-access"),
]
TEST = [
    ("parcel still not here", "track_order"),
    ("refund status?", "refund"),
    ("forgot password", "account-access"),
    ("what's the weather", "oos"),
]


def write_csv(path, rows, header=("text", "label")):
    path.write_text("\n".join([",".join(header), *[f'"{t}",{lab}' for t, lab in rows]]) + "\n")
    return path


def test_load_labelled_accepts_csv_category_json_and_jsonl(tmp_path):
    a = load_labelled(write_csv(tmp_path / "a.csv", TRAIN, ("text", "category")))
    (tmp_path / "b.json").write_text(json.dumps([{"text": t, "label": lab} for t, lab in TRAIN]))
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"query": t, "agent": lab}) for t, lab in TRAIN))
    assert a == load_labelled(tmp_path / "b.json") == load_labelled(tmp_path / "c.jsonl")
    (tmp_path / "bad.json").write_text(json.dumps([{"text": "", "label": "x"}]))
    with pytest.raises(ValueError, match="record 1"):
        load_labelled(tmp_path / "bad.json")


def test_keyword_router_metrics_confusion_and_out_of_scope_sweep(tmp_path):
    train = load_labelled(write_csv(tmp_path / "train.csv", TRAIN))
    test = load_labelled(write_csv(tmp_path / "test.csv", TEST))
    manifests, label_of = manifests_from_examples(train, per_route=2)
    assert {m.name for m in manifests} == {"track_order", "refund", "account_access"} and route_name(
        "Card-Arrival?"
    ) == "card_arrival"
    assert all(len(m.when_to_use) == 2 for m in manifests)
    report = evaluate(
        KeywordRouter(manifests), test, manifests, dataset="tiny", label_of=label_of, out_of_scope_label="oos"
    )
    assert report.n == 3 and report.accuracy == 1.0 and report.macro_f1 == 1.0
    assert report.confusion == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert report.out_of_scope["sweep"][0]["out_of_scope_recall"] == 1.0  # no trigger word → clarify
    paths = write_eval_report(report, tmp_path / "out", "tiny")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy **100.0%**" in paths["md"].read_text()
    assert json.loads(paths["json"].read_text())["accuracy"] == 1.0


def test_eval_router_cli_writes_reports_and_refuses_unknown_labels(tmp_path):
    runner = CliRunner()
    train, test = write_csv(tmp_path / "train.csv", TRAIN), write_csv(tmp_path / "test.csv", TEST[:3])
    out = tmp_path / "results"
    r = runner.invoke(
        cli,
        [
            "eval-router",
            "--router",
            "keyword",
            "--data",
            str(test),
            "--train",
            str(train),
            "--out",
            str(out),
            "--name",
            "cli",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (
        "accuracy 100.0%" in r.output and (out / "cli.md").exists() and (out / "cli_confusion.png").exists()
    )
    r = runner.invoke(cli, ["eval-router", "--router", "keyword", "--data", str(test), "--out", str(out)])
    assert r.exit_code != 0 and "not agents" in r.output
