"""Router benchmark (`make bench`): every router on every suite, one table, one run.

Suites
- product: the built-in agents on `store/demo_data/eval/routing_queries.jsonl` (176 hand-written
  sidebar queries incl. respond / clarify / two-agent ones), plus the share of turns the cascade
  sends to Gemini (its local threshold chosen on the generated test split, never on this set).
- seed: the reference experiment's 7 e-commerce routes (`bench/routing/seed_ecommerce`):
  templated test split and 154 human-phrased queries written independently of the templates.
- banking77: 77 routes, real customer queries (Casanueva et al. 2020, PolyAI, CC BY 4.0).

FunctionGemma adapters come from `bench.router_functiongemma` (trained once, cached); the
product suite uses the committed adapter. The Gemini controller needs Vertex AI, which this
offline benchmark does not call: its row says so instead of inventing a number.

    .venv/bin/python -m bench.router_bench [--suites product seed banking77] [--no-train]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import add_report_args, machine, write_report
from bench.router_functiongemma import (
    PRODUCT_ADAPTER,
    RESULTS,
    ROOT,
    adapter_for,
    evaluate_adapter,
)
from orchestrator.routing.decisions import CLARIFY, RESPOND
from orchestrator.routing.training.evaluation import (
    EvalReport,
    Example,
    evaluate,
    load_labelled,
    write_eval_report,
)

PRODUCT_SET = ROOT / "store" / "demo_data" / "eval" / "routing_queries.jsonl"
PSEUDO = (RESPOND, CLARIFY)
CASCADE_TARGET = 0.95  # accuracy the local router must reach on the turns it keeps


def _embed() -> Callable[[list[str]], Any]:
    from vertex_interface.local_embedder import LocalEmbedder

    embedder = LocalEmbedder()
    return lambda texts: embedder.embed(texts, task_type="SEMANTIC_SIMILARITY")


def row(suite: str, dataset: str, report: EvalReport | None, **extra: Any) -> dict[str, Any]:
    if report is None:
        return {"suite": suite, "dataset": dataset, **extra}
    dec = report.decisions or {}
    return {
        "suite": suite,
        "dataset": dataset,
        "router": report.router,
        "n": report.n,
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "exact": dec.get("exact_accuracy"),
        "p50_ms": report.latency_ms.get("p50"),
        "p95_ms": report.latency_ms.get("p95"),
        **extra,
    }


def _eval(
    router: Any,
    data: Sequence[Example],
    manifests: Sequence[Any],
    dataset: str,
    *,
    out_dir: Path = RESULTS,
    **kw: Any,
) -> EvalReport:
    report = evaluate(router, data, manifests, dataset=dataset, **kw)
    write_eval_report(report, out_dir, f"router_{report.router}_{dataset}")
    return report


# The routers built from manifests alone; semantic-ft (the head with MiniLM's top layers
# fine-tuned) is a benchmark variant of semantic-head, not a ROUTER setting.
LOCAL_ROUTERS = ("keyword", "semantic", "semantic-head", "semantic-ft")


def _local_router(name: str, manifests: Sequence[Any], embed: Any) -> Any:
    from orchestrator.routing.factory import build_router

    if name != "semantic-ft":
        return build_router(name, manifests, embed=embed)
    from orchestrator.routing.head import SemanticHeadRouter
    from orchestrator.routing.head_model import HeadConfig, SemanticHeadRouterConfig

    return SemanticHeadRouter(embed, manifests, SemanticHeadRouterConfig(head=HeadConfig(kind="finetune")))


# --- product -----------------------------------------------------------------------------------
def product_manifests() -> list[Any]:
    """The built-in agents' manifests; read from the YAML files when an agent's code cannot be
    loaded yet (routing needs only the manifests)."""
    import yaml

    from agents.base import AgentManifest
    from agents.registry import BUILTIN_DIR, AgentLoadError, AgentRegistry

    try:
        return AgentRegistry().manifests()
    except AgentLoadError as exc:
        print(f"agent registry: {exc}; routing on the manifests alone", file=sys.stderr)
        paths = sorted(BUILTIN_DIR.glob("*/manifest.yaml"))
        return [AgentManifest.model_validate(yaml.safe_load(p.read_text())) for p in paths]


def _head_note(router: Any, suffix: str = "", out_dir: Path = RESULTS) -> str:
    """The semantic-head row's note: the thresholds its calibration chose (and the full report
    beside the table)."""
    summary = router.calibration_summary()
    (out_dir / f"router_{router.name}{suffix}_calibration.json").write_text(
        json.dumps({"routes": sorted(router.manifests), **router.calibration}, indent=2)
    )
    t = router.thresholds
    return (
        f"thresholds {t.source} at fit ({router.train_s:.1f} s): clarify {t.clarify_threshold:.2f}, "
        f"margin {t.margin:.2f}, min p {t.min_probability:.2f}, part {t.clause_threshold}, "
        f"novelty {t.novelty_threshold}; folds: exact {summary.get('exact', '–')}, "
        f"precision on accepted {summary.get('precision_on_accepted', '–')}"
    )


def product(
    train_missing: bool,
    routers: Sequence[str] = LOCAL_ROUTERS,
    local_only: bool = False,
    out_dir: Path = RESULTS,
) -> list[dict[str, Any]]:
    from orchestrator.routing.cascade import CascadeConfig, CascadeRouter
    from orchestrator.routing.factory import build_router
    from orchestrator.routing.functiongemma.data import generate
    from orchestrator.routing.training.thresholds import choose_threshold
    from vertex_interface import LLMConfig, create_llm

    manifests = product_manifests()
    data = load_labelled(PRODUCT_SET)
    embed = _embed()
    rows = []
    for name in routers:
        router = _local_router(name, manifests, embed)
        if hasattr(router, "warm_up"):
            router.warm_up()  # fit (and calibrate) outside the timed routing calls
        r = _eval(router, data, manifests, "routing_queries", out_dir=out_dir, out_of_scope_label=PSEUDO)
        note = {"note": _head_note(router, out_dir=out_dir)} if name == "semantic-head" else {}
        rows.append(row("product", "routing_queries", r, **note))
    if "semantic-head" in routers and any(m.name == "ticket" for m in manifests):
        # The route set's effect: the same router without the ticket agent (no query is labelled
        # ticket, but its examples overlap the macros' "draft a reply" ones).
        without = [m for m in manifests if m.name != "ticket"]
        router = _local_router("semantic-head", without, embed)
        router.warm_up()
        r = evaluate(router, data, without, dataset="routing_queries", out_of_scope_label=PSEUDO)
        rows.append(
            row(
                "product",
                "routing_queries",
                r,
                router="semantic-head (no ticket agent)",
                note=_head_note(router, "_no_ticket", out_dir),
            )
        )
    if local_only:
        return rows
    if not (PRODUCT_ADAPTER / "adapter_config.json").is_file():
        rows.append(
            row("product", "routing_queries", None, router="functiongemma", note="no committed adapter")
        )
        return rows
    fg = {}
    for int8 in (False, True):
        r = evaluate_adapter(
            PRODUCT_ADAPTER,
            manifests,
            data,
            dataset="routing_queries",
            pseudo_functions=True,
            int8=int8,
            out_dir=out_dir,
            out_of_scope_label=PSEUDO,
        )
        fg[int8] = r
        rows.append(row("product", "routing_queries", r))
    # Cascade threshold from a held-out split the adapter never saw (generated test split).
    from orchestrator.routing.functiongemma.router import FunctionGemmaConfig, FunctionGemmaRouter

    local = FunctionGemmaRouter(manifests, FunctionGemmaConfig(adapter_path=str(PRODUCT_ADAPTER)))
    test = [Example(e.text, e.label) for e in generate(manifests)["test"]]
    calib = evaluate(local, test, manifests, dataset="generated_test", out_of_scope_label=PSEUDO)
    write_eval_report(calib, out_dir, "router_functiongemma_generated_test")
    pairs = [(p["confidence"], p["correct"]) for p in calib.per_example]
    threshold = choose_threshold(pairs, CASCADE_TARGET) or 1.0
    llm = create_llm(LLMConfig(backend="local"))
    remote = build_router("gemini", manifests, llm=llm)
    cascade = CascadeRouter(local, remote, CascadeConfig(local_threshold=threshold))
    r = _eval(cascade, data, manifests, "routing_queries", out_dir=out_dir, out_of_scope_label=PSEUDO)
    stats = getattr(cascade, "stats", lambda: {})()
    total = max(1, sum(stats.values())) if stats else 1
    to_gemini = sum(v for k, v in stats.items() if k != "local") / total if stats else None
    rows.append(
        row(
            "product",
            "routing_queries",
            r,
            local_threshold=threshold,
            threshold_from=f"generated test split, target {CASCADE_TARGET:.0%} on accepted turns",
            share_to_gemini=round(to_gemini, 4) if to_gemini is not None else None,
            paths=stats,
            note="offline: Gemini unavailable, escalated turns fall back to the local decision",
        )
    )
    rows.append(
        row("product", "routing_queries", None, router="gemini", note="needs Vertex AI (not called offline)")
    )
    return rows


# --- seed replication ----------------------------------------------------------------------------
def seed(train_missing: bool, epochs: int = 2, out_dir: Path = RESULTS) -> list[dict[str, Any]]:
    from bench.routing.seed_ecommerce import (
        HUMAN,
        load_suite,
        templated_path,
        train_split_manifests,
        training_examples,
    )

    manifests, train = load_suite(), training_examples()
    sets = {"seed_templated_test": load_labelled(templated_path("test")), "seed_human": load_labelled(HUMAN)}
    embed = _embed()
    rows = []
    seen = train_split_manifests(manifests, train)  # every router learns from the train split only
    for name in LOCAL_ROUTERS:
        router = _local_router(name, seen, embed)
        for ds, data in sets.items():
            rows.append(row("seed", ds, _eval(router, data, manifests, ds, out_dir=out_dir)))
    adapter, metrics = adapter_for(
        "seed", manifests, train, epochs=epochs, pseudo_functions=False, train=train_missing
    )
    if adapter is None:
        rows.append(row("seed", "-", None, router="functiongemma", note="adapter not trained (--no-train)"))
        return rows
    for ds, data in sets.items():
        # Single-label task, as in the reference: one call, no "another call?" decision.
        r = evaluate_adapter(
            adapter, manifests, data, dataset=ds, pseudo_functions=False, max_calls=1, out_dir=out_dir
        )
        rows.append(row("seed", ds, r, train_s=metrics.get("train_seconds"), train_examples=len(train)))
    return rows


# --- BANKING77 -----------------------------------------------------------------------------------
def banking77(train_missing: bool, per_route: Sequence[int], out_dir: Path = RESULTS) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        from bench.router_banking77 import DEFAULT
        from bench.router_banking77 import run as run_b77

        for r in run_b77(DEFAULT, out_dir):
            per = r.get("train_examples_per_route")
            rows.append(
                {
                    "suite": "banking77",
                    "dataset": "banking77_test",
                    **r,
                    "examples_per_route": per if per != "all" else "all",
                    "n": r.get("n_test"),
                }
            )
    except ImportError as exc:
        print(f"banking77 (non-FunctionGemma routers) skipped: {exc}", file=sys.stderr)
    from bench.router_functiongemma import banking77 as fg_b77

    for r in fg_b77(per_route, train_missing=train_missing, out_dir=out_dir):
        rows.append({"dataset": f"banking77_test{r.get('test_n', '')}", **r})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    def pct(x: Any) -> str:
        return f"{x:.1%}" if isinstance(x, float) else "–"

    def ms(x: Any) -> str:
        if not isinstance(x, (int, float)):
            return "–"
        return f"{x:.2f}" if x < 1 else f"{x:.0f}"

    lines = [
        "# Router benchmark: every router, every suite",
        "",
        "{machine}",
        "- **accuracy**: top route vs gold on agent-labelled examples (a two-agent label counts when the "
        "top route is either agent); **exact**: every example, the whole decision (the routed agent set, "
        "or respond / clarify for those labels); latencies per routing call on this CPU.",
        "- BANKING77: Casanueva et al. (2020), *Efficient Intent Detection with Dual Sentence Encoders*, "
        "PolyAI, CC BY 4.0; FunctionGemma on a stratified subset of the official test split "
        "(10 per intent) at 5/10 examples per route; the other routers on the whole test split.",
        "",
        "| suite | data | router | train/route | n | accuracy | macro-F1 | exact | p50 ms | p95 ms | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        note = r.get("note", "")
        if "share_to_gemini" in r and r["share_to_gemini"] is not None:
            note = (
                f"threshold {r['local_threshold']:.2f} ({r['threshold_from']}); "
                f"{r['share_to_gemini']:.1%} of turns sent to Gemini; {note}"
            )
        lines.append(
            f"| {r['suite']} | {r.get('dataset', '')} | {r.get('router', '')} | "
            f"{r.get('examples_per_route', '') or ''} | {r.get('n', r.get('test_n', ''))} | {pct(r.get('accuracy'))} | "
            f"{r.get('macro_f1', '–') if r.get('macro_f1') is not None else '–'} | {pct(r.get('exact'))} | "
            f"{ms(r.get('p50_ms'))} | {ms(r.get('p95_ms'))} | {note} |"
        )
    return "\n".join(lines) + "\n"


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The old table with rerun rows replaced in place; new rows without an old one follow the
    last row of their suite. Rows not rerun keep their own numbers (and say so in no note: the
    Markdown header's run date is the new run's, the JSON keeps each row as it was)."""

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r.get("suite"), r.get("dataset"), r.get("router"), r.get("examples_per_route"))

    fresh = {key(r): r for r in new}
    out = [fresh.pop(key(r), r) for r in old]
    for r in new:
        if key(r) in fresh:
            last = max(
                (i for i, o in enumerate(out) if o.get("suite") == r.get("suite")), default=len(out) - 1
            )
            out.insert(last + 1, r)
            fresh.pop(key(r))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Router benchmark: all routers, all suites, one table.")
    ap.add_argument(
        "--suites",
        nargs="+",
        choices=["product", "seed", "banking77"],
        default=["product", "seed", "banking77"],
    )
    ap.add_argument("--no-train", action="store_true", help="use cached FunctionGemma adapters only")
    ap.add_argument(
        "--per-route", type=int, nargs="+", default=[5, 10], help="BANKING77 FunctionGemma points"
    )
    ap.add_argument(
        "--product-routers",
        nargs="+",
        choices=LOCAL_ROUTERS,
        default=None,
        help="product suite: only these local routers (no FunctionGemma / cascade rows)",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the other rows of bench/results/routers.json, replacing only the rows rerun",
    )
    add_report_args(ap)
    args = ap.parse_args(argv)
    if args.smoke:  # the keyword router on the product suite: no model, no training
        args.suites, args.product_routers, args.no_train = ["product"], ["keyword"], True
    out = args.out_dir
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for suite in args.suites:
        print(f"--- {suite}", flush=True)
        if suite == "product" and args.product_routers:
            rows += product(not args.no_train, args.product_routers, local_only=True, out_dir=out)
        elif suite == "product":
            rows += product(not args.no_train, out_dir=out)
        elif suite == "seed":
            rows += seed(not args.no_train, out_dir=out)
        else:
            rows += banking77(not args.no_train, args.per_route, out)
    if args.merge and (out / "routers.json").is_file():
        rows = _merge(json.loads((out / "routers.json").read_text()).get("rows", []), rows)
    write_report(
        "routers",
        {"rows": rows, "seconds": round(time.perf_counter() - started, 1), "machine_detail": machine()},
        markdown(rows),
        out,
    )
    print(markdown(rows).replace("{machine}", ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
