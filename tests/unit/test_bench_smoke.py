"""Every benchmark and suite in bench/ runs at toy scale (`--smoke`) through its report writer, into
a temp dir (`--out-dir`), so a change that breaks one fails `make test` instead of the next
`make bench` hours later (issue 16 item 9: retrieval_bench crashed in its report writer after
the whole 100k-chunk run). No timing assertions: toy numbers measure nothing.

A new benchmark module (bench/*.py or a bench/ package with __main__) must be added to SMOKE,
or to NOT_BENCHMARKS with the reason: test_every_benchmark_has_a_smoke_run checks it.
"""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

# module -> (report name, sections its Markdown report must have, extra CLI arguments)
SMOKE: dict[str, tuple[str, list[str], list[str]]] = {
    "bench.orchestrator_bench": (
        "orchestrator",
        ["# Orchestrator overhead and parallelism", "Overhead per turn", "agents phase"],
        [],
    ),
    "bench.a2a_bench": ("a2a", ["# A2A agent call overhead", "| Agent work |"], []),
    "bench.socket_bench": (
        "socket_sessions",
        ["# Concurrent sessions on one instance", "Sessions connected and joined", "Resume on instance B"],
        [],
    ),
    "bench.load_suite": (
        "load",
        ["# ", "## Sustainable rate", "## Results", "## Messages lost", "Lost: 0"],
        [],
    ),
    "bench.chaos_suite": (
        "chaos",
        ["# Chaos: one fault at a time, mid-turn", "## 3. Archive unavailable"],
        [],
    ),
    "bench.retrieval_bench": (
        "retrieval",
        ["# Retrieval benchmark", "## Quality (demo tenant", "## Scale (SQLite twin", "load average"],
        [],
    ),
    "bench.learning_loop": ("learning_loop", ["# Routing learning loop on the demo tenant"], []),
    "bench.answers": ("answers", ["# Answer benchmark", "## Headline", "## Per category"], []),
    "bench.router_bench": (
        "routers",
        ["# Router benchmark: every router, every suite", "| product | routing_queries | keyword |"],
        [],
    ),
    "bench.router_banking77": ("router_banking77", ["# Routers on BANKING77", "| keyword | all |"], []),
    "bench.router_head_tuning": (
        "router_head_tuning",
        ["# semantic-head decision thresholds", "| clarify threshold | margin |"],
        [],
    ),
    "bench.router_functiongemma": (
        "functiongemma-prefix-ablation",
        ["# FunctionGemma: cached-prefix vs full-sequence training", "| cached prefix (default) |"],
        [],
    ),
    "bench.routing.functiongemma_latency": (
        "functiongemma-latency",
        ["# FunctionGemma router latency", "| prefix_tokens |", "| route_cached_ms_p50 |"],
        [],
    ),
    "bench.brief_bench": ("brief", ["# Ticket brief benchmark"], []),
    "bench.insights_bench": ("insights", ["# Insights queries at scale", "| Range | Questions |"], []),
    "bench.security_suite": (
        "security",
        ["# Security suite", "| Group | Case |", "Fuzzing: 20 hypothesis cases"],
        [],
    ),
}


def _load_checks(data: dict[str, Any]) -> None:
    # Four echo sessions on two real gunicorn instances: all connect, turns complete, none lost.
    assert data["ramp"]["connected"] == 4
    assert data["load"]["turns_completed"] > 0
    assert data["messages"]["lost"] == 0 and data["messages"]["acknowledged"] > 0
    assert data["load"]["instances_alive_at_end"] == [True, True]


def _chaos_checks(data: dict[str, Any]) -> None:
    assert list(data["scenarios"]) == ["archive"] and data["scenarios"]["archive"]["lost"]["lost"] == 0


def _demo_index_copy(request: pytest.FixtureRequest, dst: Path) -> Path:
    """A copy of the run's demo index (built once per run, cached across runs): the benchmarks
    would otherwise embed the whole demo tenant (minutes) before their toy run."""
    index = request.getfixturevalue("demo_index")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(index.path) as s, sqlite3.connect(dst) as d:
        s.backup(d)
    return dst


def _retrieval_setup(request: pytest.FixtureRequest, tmp: Path) -> list[str]:
    _demo_index_copy(request, tmp / "work" / "demo.sqlite3")
    return ["--workdir", str(tmp / "work")]


def _needs_demo_index(request: pytest.FixtureRequest, tmp: Path) -> list[str]:
    # bench.suite_common.prepare_demo_data seeds from it; bench.answers.local_server opens it.
    request.getfixturevalue("demo_index")
    return []


def _answers_setup(request: pytest.FixtureRequest, tmp: Path) -> list[str]:
    _demo_index_copy(request, tmp / "index" / "knowledge.sqlite3")
    return ["--index-dir", str(tmp / "index")]


def _banking77_setup(request: pytest.FixtureRequest, tmp: Path) -> list[str]:
    # Three intents in BANKING77's CSV shape (text,category): the dataset itself is not bundled.
    rows = {
        "card_arrival": ["my card has not arrived", "when will my new card come", "card still not here"],
        "top_up_failed": ["my top up failed", "top-up did not go through", "could not top up my account"],
        "lost_or_stolen_card": ["I lost my card", "my card was stolen", "someone took my card"],
    }
    data = tmp / "banking77"
    data.mkdir()
    train = [f"{t},{label}" for label, texts in rows.items() for t in texts[:2]]
    test = [f"{texts[2]},{label}" for label, texts in rows.items()]
    (data / "train.csv").write_text("text,category\n" + "\n".join(train) + "\n")
    (data / "test.csv").write_text("text,category\n" + "\n".join(test) + "\n")
    return ["--data-dir", str(data)]


# Extra arguments a module's toy run needs from the test run (a built demo index).
SETUP = {
    "bench.retrieval_bench": _retrieval_setup,
    "bench.learning_loop": _needs_demo_index,
    "bench.brief_bench": _needs_demo_index,
    "bench.answers": _answers_setup,
    "bench.router_banking77": _banking77_setup,
}

# What a toy run must still get right beyond writing its report (correctness, never timing).
CHECKS = {"bench.load_suite": _load_checks, "bench.chaos_suite": _chaos_checks}

# Runnable modules in bench/ that are not benchmarks.
NOT_BENCHMARKS = {
    "bench.run_all": "runs the benchmarks in turn (make bench)",
    "bench.routing.seed_ecommerce.generate": "writes the seed suite's evaluation data",
}


def bench_entry_points() -> set[str]:
    """Every module under bench/ that runs as a program (`if __name__ == "__main__"`, or a
    package's __main__.py)."""
    found = set()
    for path in BENCH.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        if path.name == "__main__.py":
            found.add(".".join(rel.parts[:-1]))
        elif '__name__ == "__main__"' in path.read_text(encoding="utf-8"):
            found.add(".".join(rel.parts))
    return found


def test_every_benchmark_has_a_smoke_run():
    missing = bench_entry_points() - set(SMOKE) - set(NOT_BENCHMARKS)
    assert not missing, f"add a smoke entry (or a NOT_BENCHMARKS reason) for {sorted(missing)}"


def test_make_bench_runs_only_benchmarks_with_a_smoke_run():
    from bench.run_all import BENCHMARKS

    modules = {
        args[1] if args[0] == "-m" else ".".join(Path(args[0]).with_suffix("").parts)
        for _, args in BENCHMARKS
    }
    assert modules and modules <= set(SMOKE), sorted(modules - set(SMOKE))


def run_main(module: str, argv: list[str]) -> Any:
    # A package's main is where its __main__ takes it from.
    main = importlib.import_module({"bench.answers": "bench.answers.run"}.get(module, module)).main
    try:
        return main(argv)
    except SystemExit as exc:  # some mains sys.exit(code)
        return exc.code


# Toy runs that still cost minutes of CPU: loading Gemma 3 270M and (ablation) two LoRA trainings.
SLOW = {"bench.router_functiongemma", "bench.routing.functiongemma_latency"}


@pytest.mark.parametrize(
    "module", [pytest.param(m, marks=[pytest.mark.slow] if m in SLOW else []) for m in sorted(SMOKE)]
)
def test_benchmark_runs_at_toy_scale_through_its_report_writer(
    module: str, tmp_path: Path, request: pytest.FixtureRequest
):
    name, sections, extra = SMOKE[module]
    out = tmp_path / "results"
    if module in SETUP:
        extra = [*extra, *SETUP[module](request, tmp_path)]
    os.environ.setdefault("PYTHONPATH", str(ROOT))  # the gunicorn instances import testkit
    rc = run_main(module, ["--smoke", "--out-dir", str(out), *extra])
    md = (out / f"{name}.md").read_text()
    data = json.loads((out / f"{name}.json").read_text())
    assert rc in (None, 0), f"{module} exited {rc}:\n{md}"
    for section in sections:
        assert section in md, f"{section!r} missing from {name}.md:\n{md}"
    assert "{machine}" not in md and data["machine"]["nproc"]
    if module in CHECKS:
        CHECKS[module](data)
