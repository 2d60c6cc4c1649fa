"""Router evaluation on any labelled data: accuracy, macro-F1, per-route accuracy, confusion
matrix, latency, and an optional out-of-scope label with a threshold sweep.

Routes come either from the agent registry (labels are agent names) or from a training file
(one route per label, built from up to N examples each), so public intent data sets such as
BANKING77 evaluate the same routers the product uses.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import AgentManifest
from orchestrator.routing.base import Router, RoutingContext

OUT_OF_SCOPE = "__out_of_scope__"


@dataclass(frozen=True)
class Example:
    text: str
    label: str


def load_labelled(path: str | Path) -> list[Example]:
    """CSV with `text,label` (or `text,category`) columns, JSON list of {text, label}, or JSONL."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_text(encoding="utf-8")
    rows: list[dict[str, Any]]
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(raw.splitlines()))
    elif path.suffix.lower() == ".jsonl":
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    else:
        data = json.loads(raw)
        rows = data["examples"] if isinstance(data, dict) else data
    out = []
    for i, row in enumerate(rows, 1):
        text = row.get("text") or row.get("query")
        label = row.get("label") or row.get("category") or row.get("agent")
        if not isinstance(text, str) or not text.strip() or not isinstance(label, str) or not label:
            raise ValueError(f"{path}: record {i} needs non-empty 'text' and 'label' (or 'category')")
        out.append(Example(text.strip(), label.strip()))
    if not out:
        raise ValueError(f"{path}: no examples")
    return out


def route_name(label: str) -> str:
    """A label as a valid agent name (BANKING77 labels contain digits, dashes, capitals)."""
    name = re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_")
    name = name if name and name[0].isalpha() else f"r_{name}"
    return name[:40].ljust(2, "_")


def manifests_from_examples(
    train: Sequence[Example], per_route: int | None = None, *, seed: int = 0
) -> tuple[list[AgentManifest], dict[str, str]]:
    """One benchmark route per label with up to `per_route` of its examples (all when None).

    Built with `model_construct`: benchmark routes may have fewer than the ten examples a real
    agent manifest must declare (few-shot curves start at 5).
    """
    by_label: dict[str, list[str]] = defaultdict(list)
    for ex in train:
        by_label[ex.label].append(ex.text)
    rng = np.random.default_rng(seed)
    manifests, names = [], {}
    for label, texts in sorted(by_label.items()):
        chosen = list(texts)
        if per_route is not None and len(chosen) > per_route:
            chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), per_route, replace=False))]
        name = route_name(label)
        names[name] = label
        manifests.append(
            AgentManifest.model_construct(
                name=name,
                display_name=label,
                description=label.replace("_", " "),
                kind="retrieval",
                when_to_use=list(dict.fromkeys(chosen)),
                counter_examples=[],
                tools=[],
                timeout_s=5.0,
                enabled=True,
                config={},
                intents=[],
                rules=[],
            )
        )
    return manifests, names


@dataclass
class EvalReport:
    router: str
    dataset: str
    n: int
    accuracy: float
    macro_f1: float
    per_route: dict[str, dict[str, float]]
    latency_ms: dict[str, float]
    labels: list[str]
    confusion: list[list[int]]
    out_of_scope: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def evaluate(
    router: Router,
    examples: Sequence[Example],
    manifests: Sequence[AgentManifest],
    *,
    dataset: str,
    label_of: dict[str, str] | None = None,
    out_of_scope_label: str | None = None,
    thresholds: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
) -> EvalReport:
    """Route every example; compare the top route (as a label) with the gold label."""
    from sklearn.metrics import confusion_matrix, f1_score

    label_of = label_of or {m.name: m.name for m in manifests}
    gold, pred, conf, lat = [], [], [], []
    for ex in examples:
        t0 = time.perf_counter()
        d = router.route(RoutingContext(query=ex.text, ticket={}, manifests=manifests))
        lat.append(time.perf_counter() - t0)
        top = d.agents[0] if d.action == "route" and d.agents else OUT_OF_SCOPE
        gold.append(ex.label)
        pred.append(label_of.get(top, OUT_OF_SCOPE))
        conf.append(d.confidence)
    in_scope = [i for i, g in enumerate(gold) if g != out_of_scope_label]
    g_in = [gold[i] for i in in_scope]
    p_in = [pred[i] for i in in_scope]
    labels = sorted(set(g_in))
    per_route = {}
    for lab in labels:
        idx = [i for i, g in enumerate(g_in) if g == lab]
        per_route[lab] = {"n": len(idx), "accuracy": round(sum(p_in[i] == lab for i in idx) / len(idx), 4)}
    cm = confusion_matrix(g_in, p_in, labels=[*labels, OUT_OF_SCOPE])[: len(labels)].tolist()
    oos: dict[str, Any] = {}
    if out_of_scope_label:
        # In-scope accuracy vs out-of-scope recall as the confidence threshold rises.
        sweep = []
        for th in thresholds:
            ok_in = sum(1 for i in in_scope if conf[i] >= th and pred[i] == gold[i]) / max(1, len(in_scope))
            oos_idx = [i for i, g in enumerate(gold) if g == out_of_scope_label]
            rec = sum(1 for i in oos_idx if conf[i] < th or pred[i] == OUT_OF_SCOPE) / max(1, len(oos_idx))
            sweep.append(
                {"threshold": th, "in_scope_accuracy": round(ok_in, 4), "out_of_scope_recall": round(rec, 4)}
            )
        oos = {"label": out_of_scope_label, "sweep": sweep}
    ms = sorted(x * 1000 for x in lat)
    pct = {
        f"p{p}": round(ms[min(len(ms) - 1, max(0, int(np.ceil(p / 100 * len(ms))) - 1))], 3)
        for p in (50, 95, 99)
    }
    errors = [
        {"text": examples[i].text, "gold": gold[i], "pred": pred[i]} for i in in_scope if pred[i] != gold[i]
    ][:50]
    return EvalReport(
        router=getattr(router, "name", type(router).__name__),
        dataset=dataset,
        n=len(in_scope),
        accuracy=round(float(np.mean([p == g for p, g in zip(p_in, g_in, strict=True)])), 4),
        macro_f1=round(float(f1_score(g_in, p_in, labels=labels, average="macro", zero_division=0)), 4),
        per_route=per_route,
        latency_ms=pct,
        labels=labels,
        confusion=cm,
        out_of_scope=oos,
        errors=errors,
    )


def write_eval_report(
    report: EvalReport, out_dir: str | Path, name: str, machine: dict[str, Any] | None = None
) -> dict[str, Path]:
    """JSON + Markdown + confusion-matrix PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json", "md": out / f"{name}.md", "png": out / f"{name}_confusion.png"}
    paths["json"].write_text(json.dumps({**report.as_dict(), "machine": machine or {}}, indent=2))
    cm = np.array(report.confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(6.0, min(24.0, 0.25 * len(report.labels) + 4))
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(report.labels))
    small = len(report.labels) > 20
    ax.set_xticks(
        [*ticks, len(report.labels)], [*report.labels, "(none)"], rotation=90, fontsize=5 if small else 8
    )
    ax.set_yticks(list(ticks), report.labels, fontsize=5 if small else 8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(
        f"{report.router} on {report.dataset}: accuracy {report.accuracy:.1%}, macro-F1 {report.macro_f1:.3f}"
    )
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=110)
    plt.close(fig)
    worst = sorted(report.per_route.items(), key=lambda kv: kv[1]["accuracy"])[:10]
    lines = [
        f"# Router evaluation: {report.router} on {report.dataset}",
        "",
        f"{report.n} examples · accuracy **{report.accuracy:.1%}** · macro-F1 **{report.macro_f1:.3f}** · "
        f"latency p50/p95/p99 {report.latency_ms['p50']}/{report.latency_ms['p95']}/{report.latency_ms['p99']} ms",
        "",
        f"![confusion matrix]({paths['png'].name})",
        "",
        "Weakest routes:",
        "",
        "| route | n | accuracy |",
        "| --- | --- | --- |",
        *[f"| {k} | {v['n']} | {v['accuracy']:.1%} |" for k, v in worst],
    ]
    if report.out_of_scope:
        lines += [
            "",
            "Out-of-scope threshold sweep:",
            "",
            "| threshold | in-scope accuracy | out-of-scope recall |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {s['threshold']} | {s['in_scope_accuracy']:.1%} | {s['out_of_scope_recall']:.1%} |"
            for s in report.out_of_scope["sweep"]
        ]
    paths["md"].write_text("\n".join(lines) + "\n")
    return paths
