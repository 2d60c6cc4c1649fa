"""`make bench`: run every benchmark in turn; each writes its own report to bench/results/.

A failing benchmark is reported and the rest still run; the exit code says whether all passed.
`--smoke` runs each at toy scale into a temp dir instead (the committed reports stay as they are).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHMARKS: list[tuple[str, list[str]]] = [
    ("socket sessions (1000 concurrent)", ["-m", "bench.socket_bench"]),
    ("retrieval quality and scale", ["bench/retrieval_bench.py"]),
    ("orchestrator overhead and parallelism", ["-m", "bench.orchestrator_bench"]),
    ("A2A agent call overhead against in-process", ["-m", "bench.a2a_bench"]),
    ("insights queries at 100k archived turns", ["-m", "bench.insights_bench"]),
    ("ticket brief on open: time and Gemini cost per ticket", ["-m", "bench.brief_bench"]),
    ("answers: labelled agent questions end to end", ["-m", "bench.answers", "--split", "all"]),
    # Trains FunctionGemma adapters for the benchmark suites on first run (cached afterwards):
    # about 30 min on a 2-core CPU the first time, a few minutes of evaluation after that.
    ("routers: every router on product / seed / BANKING77", ["-m", "bench.router_bench"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="toy scale, reports into a temp dir")
    smoke = ap.parse_args(argv).smoke
    out = Path(tempfile.mkdtemp(prefix="bench-smoke-")) if smoke else ROOT / "bench" / "results"
    failed = []
    for name, args in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.monotonic()
        extra = ["--smoke", "--out-dir", str(out)] if smoke else []
        rc = subprocess.call([sys.executable, *args, *extra], cwd=ROOT)
        print(
            f"=== {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        if rc:
            failed.append(name)
    print(f"\nreports in {out}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
