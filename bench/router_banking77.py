"""Routers on BANKING77 (official train/test split): accuracy, macro-F1, latency, training time.

BANKING77: Casanueva, Temčinas, Gerz, Henderson, Vulić (2020), "Efficient Intent Detection with
Dual Sentence Encoders" (PolyAI), CC BY 4.0. 13,083 online-banking customer queries, 77 intents;
10,003 train / 3,080 test. Read from ../shared/data/banking77 (or BANKING77_DIR), not bundled.

Each router is built from the training split the way `eval-router --train` builds it (one route
per intent, from N examples each or all of them) and routes every test query alone, so the
latency is one turn's. Router specs: `keyword`, `semantic`, `semantic-head`, `semantic-ft`,
optionally `@N` for N training examples per route (`semantic-head@10`).

    python -m bench.router_banking77                         # the default set
    python -m bench.router_banking77 semantic-head@5 semantic-ft

Fine-tuned heads are cached under data/cache/router_heads (same data and config → same head);
a cached head reports the training time measured when it was trained (and that run's load
average, in the JSON). `--fresh` trains it again.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import RESULTS, add_report_args, machine, percentiles, write_report

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BANKING77_DIR", ROOT.parent / "shared" / "data" / "banking77"))
CACHE = ROOT / "data" / "cache" / "router_heads"
DEFAULT = (
    "keyword",
    "semantic@20",
    "semantic",
    "semantic-head@5",
    "semantic-head@10",
    "semantic-head@20",
    "semantic-head",
    "semantic-ft",
)
KINDS = ("keyword", "semantic", "semantic-head", "semantic-ft")
ATTRIBUTION = (
    "BANKING77 (Casanueva et al. 2020, “Efficient Intent Detection with Dual Sentence Encoders”, "
    "CC BY 4.0), official test split."
)


def parse(spec: str) -> tuple[str, int | None]:
    name, _, n = spec.partition("@")
    if name not in KINDS:
        raise ValueError(f"unknown router {name!r}: choose from {', '.join(KINDS)} (optionally @N)")
    if n and (not n.isdigit() or not 1 <= int(n) <= 10_000):
        raise ValueError(f"{spec}: examples per route must be a whole number 1..10000")
    return name, int(n) if n else None


class MemoEmbed:
    """Embeds each distinct text once across all routers (the machine is shared and slow; the
    10,003 training texts would otherwise be embedded by every router built from them).

    `charged_s` is what the memo saved, at the measured mean cost per text, so training times
    still include embedding the router's own examples as if it had done so itself. Latency is
    measured separately, without the memo (`latency_pass`)."""

    def __init__(self, embed) -> None:
        self.embed = embed
        self.vectors: dict[str, Any] = {}
        self.embedded = 0
        self.spent_s = 0.0
        self.charged_s = 0.0

    def __call__(self, texts: list[str]):
        import numpy as np

        new = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        hits = len(texts) - len(new)
        if new:
            t0 = time.perf_counter()
            for t, v in zip(new, self.embed(new), strict=True):
                self.vectors[t] = v
            self.spent_s += time.perf_counter() - t0
            self.embedded += len(new)
        if hits and self.embedded:
            self.charged_s += hits * self.spent_s / self.embedded
        return np.stack([self.vectors[t] for t in texts])


def latency_pass(router, test, manifests, n: int, seed: int = 0) -> dict[str, float]:
    """Per-turn latency on `n` test queries, each routed alone with a fresh embedding."""
    import random

    from orchestrator.routing.base import RoutingContext

    sample = random.Random(seed).sample(list(test), min(n, len(test)))
    times = []
    for ex in sample:
        t0 = time.perf_counter()
        router.route(RoutingContext(query=ex.text, ticket={}, manifests=manifests))
        times.append(time.perf_counter() - t0)
    return percentiles(times)


def _unmemoise(router, embed) -> None:
    router.embed = embed
    head = getattr(router, "_head", None)
    if head is not None and hasattr(head, "embed"):  # a linear head embeds the query itself
        head.embed = embed


def _threads() -> int | None:
    """On a machine busier than its cores, one torch thread trains ~2.5× faster than two
    (measured here: spinning OpenMP threads fight the other jobs)."""
    import torch

    if os.getloadavg()[0] >= (os.cpu_count() or 1):
        torch.set_num_threads(1)
    return torch.get_num_threads()


def build(name: str, per_route: int | None, train, embed, *, cache: Path | None):
    """(router, manifests, label_of, train_s, extra) for one spec."""
    from orchestrator.routing.training.evaluation import manifests_from_examples

    manifests, label_of = manifests_from_examples(train, per_route)
    extra: dict[str, Any] = {}
    started = time.perf_counter()
    if name == "keyword":
        from orchestrator.routing.keyword import KeywordRouter

        router: Any = KeywordRouter(manifests)
    elif name == "semantic":
        from orchestrator.routing.semantic import SemanticRouter

        router = SemanticRouter(embed, manifests)
    else:
        from orchestrator.routing.head import SemanticHeadRouter
        from orchestrator.routing.head_model import HeadConfig, SemanticHeadRouterConfig

        config = SemanticHeadRouterConfig(
            head=HeadConfig(kind="finetune" if name == "semantic-ft" else "linear"),
            clarify_threshold=0.0,  # closed set: always a route (as eval-router --train)
            cache_dir=cache,
        )
        examples = [(t, m.name) for m in manifests for t in m.when_to_use]
        router = SemanticHeadRouter(embed, manifests, config, examples=examples)
        extra["threads"] = _threads() if name == "semantic-ft" else None
        router.warm_up()
        meta = dict(getattr(router.head, "meta", {}))
        extra["head"] = {k: v for k, v in meta.items() if k != "cached"} | {
            "config": config.head.model_dump()
        }
        if meta.get("cached"):
            # The fit happened earlier: report that run's time, not the load from disk.
            extra["cached"] = True
            extra["train_s_this_run"] = round(time.perf_counter() - started, 2)
            return router, manifests, label_of, float(meta.get("train_s", 0.0)), extra
    return router, manifests, label_of, time.perf_counter() - started, extra


def run(
    routers: Sequence[str] = DEFAULT,
    out_dir: str | Path = RESULTS,
    *,
    data_dir: str | Path = DATA,
    use_cache: bool = True,
    latency_n: int = 300,
) -> list[dict[str, Any]]:
    """Evaluate each router spec on the official split; one row per router, and for each an
    eval-router style report (router_<spec>_banking77.{json,md,png}) in `out_dir`."""
    from orchestrator.routing.training.evaluation import evaluate, load_labelled, write_eval_report
    from vertex_interface.local_embedder import LocalEmbedder

    specs = [(s, *parse(s)) for s in routers]
    data = Path(data_dir)
    train, test = load_labelled(data / "train.csv"), load_labelled(data / "test.csv")
    embedder = LocalEmbedder()

    def embed(texts: list[str]):
        return embedder.embed(texts, task_type="SEMANTIC_SIMILARITY")

    if any(name != "keyword" for _, name, _ in specs):
        embed(["warm up"])  # model load is not anyone's training time (the keyword router needs none)
    memo = MemoEmbed(embed)
    rows = []
    for spec, name, per_route in specs:
        load_before = [round(x, 2) for x in os.getloadavg()]
        print(f"[banking77] {spec}: building…", file=sys.stderr, flush=True)
        charged = memo.charged_s
        # Only fine-tuned heads are cached: a linear head fits in seconds once its examples are
        # embedded, and a cached one could not say what embedding them cost.
        cache = CACHE if use_cache and name == "semantic-ft" else None
        router, manifests, label_of, train_s, extra = build(name, per_route, train, memo, cache=cache)
        if not extra.get("cached"):
            train_s += memo.charged_s - charged  # embeddings it got from the memo, at their cost
        print(f"[banking77] {spec}: routing {len(test)} test queries…", file=sys.stderr, flush=True)
        report = evaluate(router, test, manifests, dataset="banking77", label_of=label_of)
        report.router = spec
        if name != "keyword":
            # evaluate() timed memoised embeddings: re-time a sample with real ones.
            _unmemoise(router, embed)
            report.latency_ms = latency_pass(router, test, manifests, latency_n)
        mach = machine() | {
            "loadavg_before": load_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }
        slug = spec.replace("@", "-")
        paths = write_eval_report(report, out_dir, f"router_{slug}_banking77", machine=mach | extra)
        row = {
            "router": spec,
            "train_examples_per_route": per_route or "all",
            "train_examples": sum(len(m.when_to_use) for m in manifests),
            "n_test": report.n,
            "accuracy": report.accuracy,
            "macro_f1": report.macro_f1,
            "p50_ms": report.latency_ms["p50"],
            "p95_ms": report.latency_ms["p95"],
            "train_s": round(train_s, 2),
            "loadavg": mach["loadavg_after"],
            "report": str(paths["md"].relative_to(ROOT))
            if paths["md"].is_relative_to(ROOT)
            else str(paths["md"]),
            **({"cached_head": True} if extra.get("cached") else {}),
            **({"torch_threads": extra["threads"]} if extra.get("threads") else {}),
        }
        print(
            f"[banking77] {spec}: accuracy {row['accuracy']:.1%}  macro-F1 {row['macro_f1']:.3f}  "
            f"p50 {row['p50_ms']} ms  train {row['train_s']} s",
            file=sys.stderr,
            flush=True,
        )
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Routers on BANKING77",
        "",
        "{machine}" + ATTRIBUTION,
        "",
        "| router | train examples / route | accuracy | macro-F1 | p50 ms | p95 ms | training s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        cached = " (cached)" if r.get("cached_head") else ""
        lines.append(
            f"| {r['router']} | {r['train_examples_per_route']} | {r['accuracy']:.1%} | {r['macro_f1']:.3f} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['train_s']}{cached} |"
        )
    lines += [
        "",
        "Latency: 300 test queries (the same sample for every router), each routed alone, embedding "
        "included. Training: building the router from "
        "the training split (embedding its examples, fitting the head); a cached head shows the time "
        "measured when it was trained. The machine is shared (see the load averages in the JSON): "
        "absolute times are pessimistic.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", help=f"router specs (default: {' '.join(DEFAULT)})")
    ap.add_argument("--fresh", action="store_true", help="retrain cached semantic-ft heads")
    ap.add_argument("--data-dir", type=Path, default=DATA, help="train.csv and test.csv (BANKING77_DIR)")
    add_report_args(ap)
    args = ap.parse_args(argv)
    specs = args.specs or (["keyword"] if args.smoke else list(DEFAULT))
    try:
        for s in specs:
            parse(s)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (args.data_dir / "train.csv").is_file():
        print(f"error: BANKING77 not found in {args.data_dir} (set BANKING77_DIR)", file=sys.stderr)
        return 2
    rows = run(
        specs,
        args.out_dir,
        data_dir=args.data_dir,
        use_cache=not args.fresh,
        latency_n=5 if args.smoke else 300,
    )
    write_report("router_banking77", {"dataset": ATTRIBUTION, "rows": rows}, markdown(rows), args.out_dir)
    print(markdown(rows).replace("{machine}", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
