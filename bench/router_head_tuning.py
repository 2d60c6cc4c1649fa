"""How the semantic-head router's decision thresholds were chosen (product agents).

The head is trained WITHOUT the seeds of `functiongemma.data.generate()`'s val and test splits,
then the clarify threshold / multi-agent margin / minimum probability are swept on those splits
(whole-decision accuracy: the exact agent set, or respond / clarify). The hand-written held-out
set (store/demo_data/eval/routing_queries.jsonl) is never used for choosing.

    python -m bench.router_head_tuning      # → bench/results/router_head_tuning.{json,md}
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

from bench.common import add_report_args, write_report

THRESHOLDS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
MARGINS = (0.1, 0.2, 0.3, 0.5)
MIN_PROBABILITIES = (0.05, 0.1, 0.2)


def sweep(smoke: bool = False) -> dict[str, Any]:
    """The grid over the generated val+test split; `smoke` (toy scale): 5 training examples per
    route, 6 held-out examples and one grid point, for tests."""
    from agents.registry import AgentRegistry
    from orchestrator.routing.decisions import CLARIFY, RESPOND
    from orchestrator.routing.functiongemma.data import DataConfig, generate
    from orchestrator.routing.head import SemanticHeadRouter
    from orchestrator.routing.head_model import SemanticHeadRouterConfig
    from orchestrator.routing.training.calibration import product_examples
    from orchestrator.routing.training.evaluation import Example, evaluate
    from vertex_interface.local_embedder import LocalEmbedder

    manifests = AgentRegistry().manifests()
    splits = generate(manifests, DataConfig())
    held = [e for s in ("val", "test") for e in splits[s]]
    exclude = [e.text for e in held] + [e.source for e in held if "|" not in e.source]
    pairs = product_examples(manifests, exclude=exclude, per_label=5 if smoke else 80)
    grid = list(itertools.product(THRESHOLDS, MARGINS, MIN_PROBABILITIES))
    if smoke:
        held, grid = held[:6], grid[:1]
    embedder = LocalEmbedder()

    def embed(texts: list[str]):
        return embedder.embed(texts, task_type="SEMANTIC_SIMILARITY")

    base = SemanticHeadRouter(embed, manifests, examples=pairs)
    base.warm_up()
    memo: dict[str, dict[str, float]] = {}

    def probabilities(query: str) -> dict[str, float]:
        if query not in memo:
            memo[query] = base.probabilities(query)
        return memo[query]

    examples = [Example(x.text, x.label) for x in held]
    rows = []
    for th, margin, floor in grid:
        config = SemanticHeadRouterConfig(clarify_threshold=th, margin=margin, min_probability=floor)
        router = SemanticHeadRouter(embed, manifests, config, examples=pairs)
        router._head = base._head  # same fitted head, other decision rule
        router.probabilities = probabilities  # type: ignore[method-assign]
        report = evaluate(
            router, examples, manifests, dataset="generated", out_of_scope_label=[RESPOND, CLARIFY]
        )
        rows.append(
            {
                "clarify_threshold": th,
                "margin": margin,
                "min_probability": floor,
                "exact": report.decisions["exact_accuracy"],
                "accuracy": report.accuracy,
                "by_kind": {k: v["exact_accuracy"] for k, v in report.decisions["by_kind"].items()},
            }
        )
    rows.sort(key=lambda r: (-r["exact"], -r["accuracy"]))
    return {"n": len(examples), "train_examples": len(pairs), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_report_args(ap)
    args = ap.parse_args(argv)
    data = sweep(args.smoke)
    lines = [
        "# semantic-head decision thresholds (generated val+test split)",
        "",
        "{machine}"
        f"{data['n']} examples; head trained on {data['train_examples']} examples without their seeds.",
        "",
        "| clarify threshold | margin | min probability | exact | accuracy | multi exact | single exact |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["rows"][:15]:
        k = r["by_kind"]
        lines.append(
            f"| {r['clarify_threshold']} | {r['margin']} | {r['min_probability']} | {r['exact']:.1%} | "
            f"{r['accuracy']:.1%} | {k.get('multi', 0):.1%} | {k.get('single', 0):.1%} |"
        )
    write_report("router_head_tuning", data, "\n".join(lines) + "\n", args.out_dir)
    print("\n".join(lines).replace("{machine}", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
