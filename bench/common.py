"""Shared bits of the benchmarks: percentiles and report writing (the machine description is
testkit.machine, which the tests use too)."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from testkit.machine import machine

RESULTS = Path(__file__).resolve().parent / "results"


def percentiles(values: list[float], ps: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles in milliseconds (values are seconds)."""
    if not values:
        return {f"p{p}": float("nan") for p in ps}
    ordered = sorted(values)
    out = {}
    for p in ps:
        idx = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
        out[f"p{p}"] = round(ordered[idx] * 1000, 2)
    return out


def add_report_args(ap: argparse.ArgumentParser) -> None:
    """`--out-dir` (where the reports go; tests point it at a temp dir so the committed reports
    stay as they are) and `--smoke` (toy scale: seconds, through the whole report writer)."""
    ap.add_argument("--out-dir", type=Path, default=RESULTS, help="report directory (default bench/results)")
    ap.add_argument(
        "--smoke", action="store_true", help="toy scale: checks the benchmark runs, measures nothing"
    )


def write_report(
    name: str, data: dict[str, Any], markdown: str, out_dir: Path | None = None
) -> tuple[Path, Path]:
    """{name}.json (data plus the machine and the time) and {name}.md (markdown with `{machine}`
    replaced by a line describing the machine) in `out_dir` (default bench/results)."""
    out = Path(out_dir) if out_dir is not None else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **data,
    }
    jp, mp = out / f"{name}.json", out / f"{name}.md"
    jp.write_text(json.dumps(data, indent=2))
    m = data["machine"]
    header = (
        f"_Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"load average at start {m['loadavg_at_start']}; run {data['when']}._\n\n"
    )
    mp.write_text(markdown.replace("{machine}", header))
    return jp, mp
