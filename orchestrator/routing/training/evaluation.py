"""Router evaluation on any labelled data: accuracy, macro-F1, per-route accuracy, confusion
matrix, latency, an optional out-of-scope label with a threshold sweep, and per-example
(confidence, correct) pairs with the coverage/accuracy sweep that cascade thresholds are chosen
from (orchestrator/routing/training/thresholds.py).

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
from orchestrator.routing.base import Router, RoutingContext, RoutingError
from orchestrator.routing.decisions import OUT_OF_SCOPE, expected_action
from orchestrator.routing.training.thresholds import coverage_report, plot_coverage


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
    # One row per example, out-of-scope ones included: {confidence, correct, gold, pred, action}.
    # An out-of-scope example is correct when the router did not route it.
    per_example: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)  # thresholds.coverage_report
    router_failures: dict[str, Any] = field(default_factory=dict)  # {count, first} RoutingErrors
    router_stats: dict[str, Any] = field(default_factory=dict)  # e.g. a cascade's turns per path
    # Every example, whole decision: `exact` = the same agent SET (multi labels "a+b" need both,
    # single labels exactly one) or the pseudo-label's action; `first_route` = top route in the
    # gold set. Overall and per kind (single, multi, respond_directly, ask_clarifying_question, …).
    decisions: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def pairs(self) -> list[tuple[float, bool]]:
        return acceptance_pairs(self.per_example)


def acceptance_pairs(per_example: Sequence[dict[str, Any]]) -> list[tuple[float, bool]]:
    """(confidence, correct) as a cascade sees them: a clarifying question (or a failure) is
    never accepted from the local router whatever its confidence, so it counts as confidence 0."""
    return [
        (0.0 if r.get("action") in ("clarify", "error") else r["confidence"], r["correct"])
        for r in per_example
    ]


def evaluate(
    router: Router,
    examples: Sequence[Example],
    manifests: Sequence[AgentManifest],
    *,
    dataset: str,
    label_of: dict[str, str] | None = None,
    out_of_scope_label: str | Sequence[str] | None = None,
    thresholds: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
) -> EvalReport:
    """Route every example; compare the top route (as a label) with the gold label.

    `out_of_scope_label`: one label or several (e.g. respond_directly and ask_clarifying_question)
    whose examples should NOT be routed to an agent. A gold label joining agents with `+`
    (a multi-agent question) counts as correct when the top route is any of them.
    """
    from sklearn.metrics import confusion_matrix, f1_score

    label_of = label_of or {m.name: m.name for m in manifests}
    oos_labels = (
        {out_of_scope_label} if isinstance(out_of_scope_label, str) else set(out_of_scope_label or ())
    )
    multi_ok = not any("+" in v for v in label_of.values())  # "+" only splits when no label has one

    def gold_for(label: str, predicted: str) -> str:
        parts = label.split("+") if multi_ok and "+" in label else [label]
        return predicted if predicted in parts else parts[0]

    gold, pred, conf, lat, actions = [], [], [], [], []
    routed: list[tuple[str, ...]] = []
    failures: list[str] = []
    for ex in examples:
        t0 = time.perf_counter()
        try:
            d = router.route(RoutingContext(query=ex.text, ticket={}, manifests=manifests))
        except RoutingError as exc:
            # A router that cannot decide (model down, bad output) scores as "not routed";
            # the count says how often, the first messages say why.
            lat.append(time.perf_counter() - t0)
            failures.append(f"{ex.text[:80]}: {str(exc)[:200]}")
            gold.append(gold_for(ex.label, OUT_OF_SCOPE))
            pred.append(OUT_OF_SCOPE)
            conf.append(0.0)
            actions.append("error")
            routed.append(())
            continue
        lat.append(time.perf_counter() - t0)
        top = d.agents[0] if d.action == "route" and d.agents else OUT_OF_SCOPE
        pred.append(label_of.get(top, OUT_OF_SCOPE))
        gold.append(gold_for(ex.label, pred[-1]))
        conf.append(d.confidence)
        actions.append(d.action)
        routed.append(tuple(label_of.get(a, OUT_OF_SCOPE) for a in d.agents) if d.action == "route" else ())
    in_scope = [i for i, g in enumerate(gold) if g not in oos_labels]
    g_in = [gold[i] for i in in_scope]
    p_in = [pred[i] for i in in_scope]
    labels = sorted(set(g_in))
    per_route = {}
    for lab in labels:
        idx = [i for i, g in enumerate(g_in) if g == lab]
        per_route[lab] = {"n": len(idx), "accuracy": round(sum(p_in[i] == lab for i in idx) / len(idx), 4)}
    cm = confusion_matrix(g_in, p_in, labels=[*labels, OUT_OF_SCOPE])[: len(labels)].tolist()
    oos: dict[str, Any] = {}
    if oos_labels:
        # In-scope accuracy vs out-of-scope recall as the confidence threshold rises.
        sweep = []
        for th in thresholds:
            ok_in = sum(1 for i in in_scope if conf[i] >= th and pred[i] == gold[i]) / max(1, len(in_scope))
            oos_idx = [i for i, g in enumerate(gold) if g in oos_labels]
            rec = sum(1 for i in oos_idx if conf[i] < th or pred[i] == OUT_OF_SCOPE) / max(1, len(oos_idx))
            sweep.append(
                {"threshold": th, "in_scope_accuracy": round(ok_in, 4), "out_of_scope_recall": round(rec, 4)}
            )
        oos = {
            "label": out_of_scope_label if isinstance(out_of_scope_label, str) else sorted(oos_labels),
            "sweep": sweep,
        }
    ms = sorted(x * 1000 for x in lat)
    pct = {
        f"p{p}": round(ms[min(len(ms) - 1, max(0, int(np.ceil(p / 100 * len(ms))) - 1))], 3)
        for p in (50, 95, 99)
    }
    errors = [
        {"text": examples[i].text, "gold": gold[i], "pred": pred[i]} for i in in_scope if pred[i] != gold[i]
    ][:50]
    per_example = [
        {
            "confidence": round(float(c), 6),
            "correct": (p == OUT_OF_SCOPE) if g in oos_labels else (p == g),
            "gold": g,
            "pred": p,
            "action": a,
        }
        for c, g, p, a in zip(conf, gold, pred, actions, strict=True)
    ]
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
        per_example=per_example,
        coverage=coverage_report(acceptance_pairs(per_example)),
        router_failures={"count": len(failures), "first": failures[:5]} if failures else {},
        router_stats=router.stats() if callable(getattr(router, "stats", None)) else {},  # type: ignore[attr-defined]
        decisions=decision_scores(
            [ex.label for ex in examples], actions, routed, oos_labels=oos_labels, multi=multi_ok
        ),
    )


def decision_scores(
    gold: Sequence[str],
    actions: Sequence[str],
    routed: Sequence[Sequence[str]],
    *,
    oos_labels: set[str] | frozenset[str] = frozenset(),
    multi: bool = True,
) -> dict[str, Any]:
    """Exact-decision and first-route accuracy over ALL examples, overall and per kind."""
    rows: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for label, action, agents in zip(gold, actions, routed, strict=True):
        # Gold pseudo labels in either spelling (the eval sets' or an export's respond / clarify).
        if expected_action(label) is not None:
            kind = label
            exact = first = action == expected_action(label)
        elif label in oos_labels:
            kind = "out_of_scope"
            exact = first = action != "route"
        else:
            parts = label.split("+") if multi and "+" in label else [label]
            kind = "multi" if len(parts) > 1 else "single"
            exact = action == "route" and set(agents) == set(parts) and len(agents) == len(set(agents))
            first = action == "route" and bool(agents) and agents[0] in parts
        rows[kind].append((exact, first))

    def score(items: list[tuple[bool, bool]]) -> dict[str, Any]:
        n = len(items)
        return {
            "n": n,
            "exact_accuracy": round(sum(e for e, _ in items) / max(1, n), 4),
            "first_route_accuracy": round(sum(f for _, f in items) / max(1, n), 4),
        }

    return {
        **score([r for items in rows.values() for r in items]),
        "by_kind": {k: score(v) for k, v in sorted(rows.items())},
    }


def write_eval_report(
    report: EvalReport, out_dir: str | Path, name: str, machine: dict[str, Any] | None = None
) -> dict[str, Path]:
    """JSON + Markdown + confusion-matrix PNG + coverage PNG (accuracy on accepted / escalated
    share against the confidence threshold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / f"{name}.json",
        "md": out / f"{name}.md",
        "png": out / f"{name}_confusion.png",
        "coverage_png": out / f"{name}_coverage.png",
    }
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
        *(_decision_lines(report.decisions) if report.decisions else []),
        *(
            [
                f"**{report.router_failures['count']} examples the router could not decide** "
                f"(RoutingError, scored as not routed), e.g. `{report.router_failures['first'][0]}`",
                "",
            ]
            if report.router_failures
            else []
        ),
        *([f"Machine: {json.dumps(machine)}", ""] if machine else []),
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
    if report.coverage:
        cov = report.coverage
        plot_coverage(
            cov, paths["coverage_png"], f"{report.router} on {report.dataset}: accept when confidence ≥ t"
        )
        lines += [
            "",
            "## Confidence thresholds",
            "",
            "Accept the router's decision only when its confidence ≥ t, escalate the rest "
            "(e.g. to the remote router of a cascade); a clarifying question is never accepted. "
            "Out-of-scope examples are correct when not routed.",
            "",
            f"![coverage]({paths['coverage_png'].name})",
            "",
            "| threshold | accepted | accuracy on accepted | escalated |",
            "| --- | --- | --- | --- |",
            *[
                f"| {p['threshold']:.2f} | {p['accepted']:.1%} | "
                f"{'–' if p['accuracy_on_accepted'] is None else format(p['accuracy_on_accepted'], '.1%')} | "
                f"{p['escalated']:.1%} |"
                for p in cov["table"]
            ],
            "",
            f"Chosen thresholds ({cov['rule']}):",
            "",
            "| target accuracy | threshold | accepted | escalated |",
            "| --- | --- | --- | --- |",
            *[
                f"| {r['target_accuracy']:.0%} | "
                f"{'none' if r['threshold'] is None else format(r['threshold'], '.2f')} | "
                f"{r['accepted']:.1%} | {r['escalated']:.1%} |"
                for r in cov["recommended"]
            ],
        ]
    else:
        paths.pop("coverage_png")
    paths["md"].write_text("\n".join(lines) + "\n")
    return paths


def _decision_lines(dec: dict[str, Any]) -> list[str]:
    return [
        f"Whole decision on all {dec['n']} examples: exact (same agent set, or respond / clarify) "
        f"**{dec['exact_accuracy']:.1%}** · first route in the gold set **{dec['first_route_accuracy']:.1%}**",
        "",
        "| kind | n | exact | first route |",
        "| --- | --- | --- | --- |",
        *[
            f"| {k} | {v['n']} | {v['exact_accuracy']:.1%} | {v['first_route_accuracy']:.1%} |"
            for k, v in dec["by_kind"].items()
        ],
        "",
    ]
