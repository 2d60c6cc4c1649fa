"""`make bench`: run every benchmark in turn; each writes its own report to bench/results/.

A failing benchmark is reported and the rest still run; the exit code says whether all passed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHMARKS: list[tuple[str, list[str]]] = [
    ("socket sessions (1000 concurrent)", ["-m", "bench.socket_bench"]),
    ("retrieval quality and scale", ["bench/retrieval_bench.py"]),
    ("orchestrator overhead and parallelism", ["-m", "bench.orchestrator_bench"]),
    ("A2A agent call overhead against in-process", ["-m", "bench.a2a_bench"]),
    ("insights queries at 100k archived turns", ["-m", "bench.insights_bench"]),
    ("answers: labelled agent questions end to end", ["-m", "bench.answers", "--split", "all"]),
    # Trains FunctionGemma adapters for the benchmark suites on first run (cached afterwards):
    # about 30 min on a 2-core CPU the first time, a few minutes of evaluation after that.
    ("routers: every router on product / seed / BANKING77", ["-m", "bench.router_bench"]),
]


def main() -> int:
    failed = []
    for name, args in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, *args], cwd=ROOT)
        print(
            f"=== {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        if rc:
            failed.append(name)
    print(f"\nreports in {ROOT / 'bench' / 'results'}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
