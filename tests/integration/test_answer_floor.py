"""The answer benchmark's fixed CI subset (cases marked `ci: true`, all dev) through the same
runner as `make bench-answers`: the real app, Socket.IO, the sidebar's join payload. A regression
in answer quality fails here. Floors are set from measured runs (bench/results/answers.md)."""

from __future__ import annotations

import time

import pytest

from backend.assistant import build_assistant
from bench.answers import score
from bench.answers.cases import load_cases
from bench.answers.run import category_table, run_cases

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Measured 2026-12-05 on the 37 CI cases: fact accuracy 30/35 = 85.7 % (17.1 % before this
# work, at 1d038f2), decline recall 2/4, no wrong fact. The floors leave two turns of slack.
FLOOR = 0.80  # fact accuracy of the CI subset
DECLINE_FLOOR = 0.5  # decline recall of the CI subset
MAX_WRONG_FACT_TURNS = 0
MIN_CI_CASES = 30


def test_ci_answer_cases_meet_the_floors(live_app, settings, tokens, demo_index, local_llm):
    cases = [c for c in load_cases() if c.ci]
    assert len(cases) >= MIN_CI_CASES, f"only {len(cases)} cases are marked ci: true"
    assert all(c.split == "dev" for c in cases), "the CI subset is tuned against: dev cases only"

    overrides = {"turn_handler": "orchestrator", "rate_limit_per_minute": 0, "turn_timeout_seconds": 60}
    handler = build_assistant(settings.model_copy(update=overrides), llm=local_llm, index=demo_index)
    server = live_app(handler=handler, settings=overrides)
    t0 = time.monotonic()
    results = run_cases(cases, server.url, lambda user: tokens.mint("demo", user), progress=False, timeout=60)
    m = score.metrics(results)
    table = category_table(results)
    print(f"{len(cases)} CI cases in {time.monotonic() - t0:.0f} s\n{table}")

    assert m["decline_turns"], f"the CI subset has no turn that must be declined\n{table}"
    assert m["fact_accuracy"] >= FLOOR, f"fact accuracy {m['fact_accuracy']} < {FLOOR}\n{table}"
    assert m["wrong_fact_turns"] <= MAX_WRONG_FACT_TURNS, f"{m['wrong_fact_turns']} wrong-fact turns\n{table}"
    assert m["decline_recall"] >= DECLINE_FLOOR, (
        f"decline recall {m['decline_recall']} < {DECLINE_FLOOR}\n{table}"
    )
