"""The routing learning loop, end to end on the demo tenant: flag → export → shadow report → eval.

A real server (the orchestrator with the demo agents and index, offline LLM) runs with
ROUTER=keyword and SHADOW_ROUTER=semantic. A scripted support agent asks every question of
store/demo_data/eval/routing_queries.jsonl through the Socket.IO protocol and, whenever the live
routing differs from the question's gold label, flags the reply "wrong sources" and picks the
sources it should have used — what a person does in the sidebar. Then the real commands run:
`export-routing-feedback`, `shadow-report`, and `eval-router` on the exported file for both
routers. Training with `--include-feedback` is the lead's FunctionGemma job (not run here).

    .venv/bin/python -m bench.learning_loop [--limit N]

Report: bench/results/learning_loop.{json,md} (+ shadow_report.{json,md}).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from click.testing import CliRunner

from backend import protocol
from bench.common import RESULTS, add_report_args, write_report
from bench.suite_common import prepare_demo_data, work_dir
from orchestrator.routing.decisions import label_to_wire
from testkit.servers import LiveServer

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "store" / "demo_data" / "eval" / "routing_queries.jsonl"
PER_TICKET = 20  # questions per sidebar session


def gold(label: str) -> list[str]:
    # The eval set names the pseudo-functions; the sidebar's picker says respond / clarify.
    return [label_to_wire(p) for p in label.split("+")]


def settled(client, mid: str, start: int, timeout: float = 900.0) -> tuple[str, dict]:
    """The turn's chat:done or chat:error (a loaded machine can make turns slow, or time out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, data in list(client.events[start:]):
            if name in (protocol.DONE, protocol.ERROR) and (data or {}).get("id") == mid:
                return name, data
        time.sleep(0.05)
    raise TimeoutError(f"turn {mid} did not settle within {timeout:g}s")


def live_label(routing: dict) -> list[str]:
    return [routing["action"]] if routing.get("action") in ("respond", "clarify") else list(routing["routes"])


def run(limit: int | None, stride: int = 1, out_dir: Path = RESULTS) -> dict:
    from backend.app import create_app
    from backend.auth import DevTokenAuthenticator
    from backend.cli import cli
    from backend.redis_embedded import EmbeddedRedis
    from backend.settings import Settings
    from testkit.client import SidebarClient

    rows = [json.loads(line) for line in QUERIES.read_text().splitlines() if line.strip()][::stride][:limit]
    data_dir = work_dir("learning-loop-")
    prepare_demo_data(data_dir)
    redis = EmbeddedRedis(data_dir / "redis", persist=False)
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        redis_url=redis.url,
        secret_key="bench-secret-not-for-production",
        router="keyword",
        shadow_router="semantic",
        log_level="WARNING",
        rate_limit_per_minute=0,
        turn_timeout_seconds=300,
    )
    token = DevTokenAuthenticator("bench-secret-not-for-production", 3600).mint(
        "demo", "bench-agent", "Bench Agent"
    )
    flagged = asked = failed = 0
    started = time.monotonic()
    try:
        with LiveServer(create_app(settings)) as server:
            client = SidebarClient()
            client.connect(server.url, token)
            for i, row in enumerate(rows):
                if i % PER_TICKET == 0:
                    client.join({"id": 5000 + i // PER_TICKET, "subject": "Routing questions"})
                mid = f"q{i}"
                start = len(client.events)
                client.emit(protocol.MESSAGE, {"id": mid, "text": row["text"]})
                name, done = settled(client, mid, start)
                asked += 1
                if name == protocol.ERROR:  # a failed turn has no routing to judge
                    failed += 1
                    continue
                expected = gold(row["label"])
                if set(live_label(done["routing"])) != set(expected):
                    start = len(client.events)
                    client.emit(
                        protocol.FEEDBACK,
                        {
                            "message_id": f"{mid}.reply",
                            "rating": "down",
                            "reasons": ["wrong_sources"],
                            "expected_agents": expected,
                        },
                    )
                    client.wait_for(protocol.FEEDBACK_ACK, start=start)
                    flagged += 1
            client.disconnect()
    finally:
        redis.shutdown()
    turns_s = time.monotonic() - started

    env = {"DATA_DIR": str(data_dir), "ARCHIVE_BACKEND": "sqlite"}
    runner = CliRunner()
    export = data_dir / "routing_feedback.jsonl"
    out = runner.invoke(cli, ["export-routing-feedback", "--out", str(export)], env=env)
    assert out.exit_code == 0, out.output
    out_dir.mkdir(parents=True, exist_ok=True)
    out = runner.invoke(cli, ["shadow-report", "--out", str(out_dir)], env=env)
    assert out.exit_code == 0, out.output
    shadow = json.loads((out_dir / "shadow_report.json").read_text())
    evals = {}
    for router in ("keyword", "semantic"):
        out = runner.invoke(
            cli,
            [
                "eval-router",
                "--router",
                router,
                "--data",
                str(export),
                "--out",
                str(data_dir / "eval"),
                "--out-of-scope",
                "respond",
                "--out-of-scope",
                "clarify",
            ],
            env=env,
        )
        assert out.exit_code == 0, out.output
        report = json.loads((data_dir / "eval" / f"router_{router}_routing_feedback.json").read_text())
        evals[router] = {"n": report["decisions"]["n"], "exact": report["decisions"]["exact_accuracy"]}
    exported = sum(1 for _ in export.open())
    shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "questions": asked,
        "failed_turns": failed,
        "flagged": flagged,
        "exported": exported,
        "turns_seconds": round(turns_s, 1),
        "shadow": shadow["pairs"],
        "eval_on_feedback": evals,
    }


def markdown(data: dict) -> str:
    (pair,) = data["shadow"] or [None]
    lines = [
        "# Routing learning loop on the demo tenant",
        "",
        "{machine}",
        f"ROUTER=keyword, SHADOW_ROUTER=semantic. {data['questions']} questions "
        f"({data['failed_turns']} failed turns) of "
        "`store/demo_data/eval/routing_queries.jsonl` asked through the sidebar protocol; every reply "
        f"whose routing missed the gold label was flagged *wrong sources* with the gold sources picked: "
        f"**{data['flagged']} flagged**, {data['exported']} exported by `export-routing-feedback` "
        f"({data['turns_seconds']} s of turns).",
        "",
    ]
    if pair:
        f = pair["flagged"]
        lines += [
            "`shadow-report` (full report: [shadow_report.md](shadow_report.md)):",
            "",
            "| turns | candidate answered (after its turn) | still pending | agreement | flagged "
            "| live accuracy | candidate accuracy |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| {pair['turns']} | {pair['answered']} ({pair['late']}) | {pair['pending']} "
            f"| {pair['agreement']:.1%} | {f['n']} | {f['live_accuracy']:.1%} | {f['candidate_accuracy']:.1%} |",
            "",
            "Live accuracy on flagged turns is 0% by construction (a turn is flagged because the live "
            "router missed it); the candidate's accuracy there is the share of the live router's "
            "mistakes it would have fixed. The turn never waits for the candidate; one that answers "
            "after its turn ended is stored late (the number in brackets).",
            "",
        ]
    lines += [
        "`eval-router` on the exported file (the live router's mistakes, as a labelled set):",
        "",
        "| router | examples | exact decision (same agent set, or respond / clarify) |",
        "| --- | --- | --- |",
        *[f"| {r} | {e['n']} | {e['exact']:.1%} |" for r, e in data["eval_on_feedback"].items()],
        "",
        "Next step of the loop (not run here): `python -m orchestrator.routing.functiongemma.train "
        "--include-feedback routing_feedback.jsonl ...`, then SHADOW_ROUTER=functiongemma "
        "(docs/learning_loop.md).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="ask only the first N questions")
    ap.add_argument("--stride", type=int, default=1, help="ask every Nth question (all labels, fewer turns)")
    add_report_args(ap)
    args = ap.parse_args(argv)
    if args.smoke:  # three questions of different labels
        args.limit, args.stride = 3, 40
    data = run(args.limit, args.stride, args.out_dir)
    _, md = write_report("learning_loop", data, markdown(data), args.out_dir)
    print(md.read_text())


if __name__ == "__main__":
    main()
