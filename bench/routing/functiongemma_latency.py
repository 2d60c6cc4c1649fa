"""Latency of the FunctionGemma router on this machine: prefix length, next-token latency with
and without the cached declarations prefix, full routing latency, optional int8.

    .venv/bin/python -m bench.routing.functiongemma_latency [--n 20] [--int8]

Writes bench/results/functiongemma-latency.{json,md} (machine noted, ratios in the same run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from testkit.machine import machine

QUERIES = (
    "where is my order BO-100234?",
    "has the parcel for order BO-100871 shipped yet",
    "what is the return policy for opened headphones",
    "do you have the trail runner shoes in size 44",
    "is there a macro for refund approved",
    "have other customers reported the app crashing on login",
    "thanks, that's all",
    "hi there",
    "can i change the delivery address on my order",
    "how long does a refund take to reach my card",
    "what's the warranty on the espresso machine",
    "customer says the discount code doesn't work at checkout",
    "which canned reply do we use for late deliveries",
    "any similar tickets about damaged packaging",
    "is the blue backpack back in stock",
    "help",
    "the customer wants to cancel BO-100555 and get a refund",
    "what colours does the rain jacket come in",
    "how do i reset a customer's password",
    "did we already answer a ticket like this one",
)


def p50(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 1)


def measure(n: int = 20, int8: bool = False) -> dict[str, Any]:
    import torch

    from agents.registry import AgentRegistry
    from orchestrator.routing.base import RoutingContext
    from orchestrator.routing.functiongemma.model import get_base
    from orchestrator.routing.functiongemma.router import FunctionGemmaConfig, FunctionGemmaRouter

    manifests = AgentRegistry().manifests()
    loaded = get_base()
    queries = [QUERIES[i % len(QUERIES)] for i in range(n)]
    router = FunctionGemmaRouter(manifests, loaded=loaded)
    t = time.perf_counter()
    router.warm_up()
    prefix_s = time.perf_counter() - t
    engine = router.engine
    out: dict[str, Any] = {
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "model_source": loaded.source,
        "model_load_s": round(loaded.load_s, 2),
        "rss_mb_after_load": round(loaded.rss_mb),
        "prefix_tokens": len(engine.prefix_ids),
        "prefix_compute_s": round(prefix_s, 3),
        "n_queries": n,
        "query_tokens_p50": statistics.median(len(engine.encode_query(q)) for q in queries),
    }
    engine.next_logits(queries[0])  # warm kernels
    for cached in (False, True):
        lat = []
        for q in queries:
            t = time.perf_counter()
            engine.next_logits(q, cached=cached)
            lat.append(time.perf_counter() - t)
        out[f"next_token_ms_p50_{'cached' if cached else 'uncached'}"] = p50(lat)
    variants = {
        "route_cached_full_vocab": FunctionGemmaRouter(
            manifests, FunctionGemmaConfig(full_vocab=True), loaded=loaded
        ),
        "route_cached": router,
        "route_uncached": FunctionGemmaRouter(
            manifests, FunctionGemmaConfig(cached_prefix=False), loaded=loaded
        ),
    }
    if int8:
        variants["route_cached_int8"] = FunctionGemmaRouter(
            manifests, FunctionGemmaConfig(quantize_int8=True), loaded=loaded
        )
    for label, r in variants.items():
        r.warm_up()
        lat, passes = [], []
        for q in queries:
            t = time.perf_counter()
            d = r.route(RoutingContext(query=q, ticket={}, manifests=manifests))
            lat.append(time.perf_counter() - t)
            passes.append(d.meta["forward_passes"])
        out[f"{label}_ms_p50"] = p50(lat)
        out[f"{label}_forward_passes_p50"] = statistics.median(passes)
    out["speedup_next_token_cached_vs_uncached"] = round(
        out["next_token_ms_p50_uncached"] / out["next_token_ms_p50_cached"], 2
    )
    out["rss_mb_peak"] = round(
        __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss / 1024
    )
    return out


def write(result: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "functiongemma-latency.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# FunctionGemma router latency (untrained offline base)", ""]
    m = result["machine"]
    lines.append(
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, {m['ram_gib']} GiB RAM; torch threads {result['torch_threads']}."
    )
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result.items() if k != "machine"]
    (out_dir / "functiongemma-latency.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--out", "--out-dir", dest="out", default="bench/results")
    ap.add_argument("--smoke", action="store_true", help="toy scale: 2 queries")
    args = ap.parse_args(argv)
    result = measure(2 if args.smoke else args.n, args.int8)
    write(result, Path(args.out))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
