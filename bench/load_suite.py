"""Load suite (issue 8): N concurrent sidebar sessions across two instances, sending turns for
minutes on the embedded defaults, with nothing acknowledged lost.

Two real gunicorn instances (backend.launcher) share an embedded Redis and the SQLite archive;
TURN_HANDLER=orchestrator is the real offline assistant over the ingested demo tenant. Phases,
all in one run so the ratios compare like with like:

1. baseline: one session, turns back to back on an idle cluster (unloaded latency);
2. calibration: a closed loop of C sessions with no think time: the turns/s the machine carries;
3. ramp: N sessions connect and join, half on each instance;
4. steady load: every session asks a demo question, waits for the answer, thinks (exponential,
   mean sized so the offered rate is LOAD_FACTOR × the calibrated capacity), asks again, ...;
5. audit: every chat:ack'd message ended with chat:done or a retryable chat:error and is in its
   session's thread in Redis and in the archive.

Run: `python -m bench.load_suite [--sessions 1000 --duration 180 --handler orchestrator|echo]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from collections import Counter
from typing import Any

import psutil

from bench.common import add_report_args, percentiles, write_report
from bench.suite_common import (
    ECHO,
    ROOT,
    Sidebar,
    Turn,
    audit,
    cluster,
    demo_questions,
    jitter,
    prepare_demo_data,
    sidebars,
    work_dir,
)

HANDLERS = {"orchestrator": "orchestrator", "echo": ECHO}


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in (proc, *proc.children(recursive=True)):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _stats(turns: list[Turn], elapsed: float) -> dict[str, Any]:
    done = [t for t in turns if t.done is not None]
    ttft = [t.ttft() for t in done if t.first_delta is not None]
    codes = Counter(str((t.error or {}).get("code")) for t in turns if t.error is not None)
    return {
        "turns_sent": len(turns),
        "turns_completed": len(done),
        "throughput_turns_per_s": round(len(done) / elapsed, 2) if elapsed else None,
        "ttft_ms": percentiles(ttft),
        "done_ms": percentiles([t.total() for t in done]),
        "ack_ms": percentiles([t.acked - t.sent for t in turns if t.acked is not None]),
        "done_without_delta": len(done) - len(ttft),
        "errors_by_code": dict(codes),
        "unsettled": sum(1 for t in turns if not t.settled),
    }


async def _closed_loop(
    clients: list[Sidebar], questions: list[str], until: float, think: float, tag: str, timeout: float
) -> None:
    """Each session: ask, wait for the answer, think, ask again, until `until` (monotonic)."""

    async def one(c: Sidebar, k: int) -> None:
        if think:
            # Poisson arrivals are memoryless: the wait for a session's first question is one
            # more exponential think time (a uniform spread would front-load the run).
            await asyncio.sleep(min(jitter(think), max(0.0, until - time.monotonic())))
        n = 0
        while time.monotonic() < until and c.connected:
            n += 1
            await c.send(f"{tag}{k}-{n}", random.choice(questions))
            await c.settle(f"{tag}{k}-{n}", timeout)
            if think:
                await asyncio.sleep(min(jitter(think), max(0.0, until - time.monotonic())))

    await asyncio.gather(*(one(c, k) for k, c in enumerate(clients)))


async def _connect_all(
    clients: list[Sidebar], urls: list[str], wave: int = 50
) -> tuple[list[float], list[str]]:
    times, failures = [], []

    async def one(i: int, c: Sidebar) -> None:
        t0 = time.perf_counter()
        try:
            await c.connect(urls[i % len(urls)])
            await c.join()
            times.append(time.perf_counter() - t0)
        except Exception as exc:  # every failure is a result to report, not a crash
            failures.append(f"{type(exc).__name__}: {exc}"[:200])

    for start in range(0, len(clients), wave):
        await asyncio.gather(*(one(start + j, c) for j, c in enumerate(clients[start : start + wave])))
    return times, failures


async def run(
    sessions: int,
    duration: float,
    handler: str,
    *,
    calibrate_s: float,
    calibrate_sessions: int,
    load_factor: float,
    baseline_turns: int,
    think_s: float | None,
    turn_timeout: float = 120,
) -> dict[str, Any]:
    data_dir = work_dir("load-suite-")
    prep_s = prepare_demo_data(data_dir) if handler == "orchestrator" else 0.0
    questions = demo_questions()
    # One thread per open WebSocket plus headroom for turns and HTTP.
    threads = sessions // 2 + calibrate_sessions + 64
    # The per-user limiter (20 turns/min) would cap the closed-loop calibration, which measures the
    # server; the load phase asks once per think time, far below it, so it would never trigger.
    extra = {"RATE_LIMIT_PER_MINUTE": "0"}
    with cluster(
        data_dir, instances=2, threads=threads, handler=HANDLERS.get(handler, handler), extra=extra
    ) as cl:
        urls = [i.url for i in cl.instances]
        pids = [i.process.pid for i in cl.instances if i.process]

        # 1. baseline: one session on an idle cluster (after a warm-up that pays first-call costs).
        solo = sidebars(1, "solo")[0]
        await solo.connect(urls[0])
        await solo.join()
        for i in range(3):
            await solo.ask(f"warm-{i}", questions[i], timeout=turn_timeout)
        solo.turns.clear()
        t0 = time.monotonic()
        for i in range(baseline_turns):
            await solo.ask(f"base-{i}", random.choice(questions), timeout=turn_timeout)
        baseline = _stats(list(solo.turns.values()), time.monotonic() - t0)
        baseline_turns_list = list(solo.turns.values())

        # 2. calibration: closed loop, no think time → the rate the machine can carry.
        calib = sidebars(calibrate_sessions, "calib")
        await _connect_all(calib, urls)
        cpu0, t0 = _cpu_seconds(pids), time.monotonic()
        await _closed_loop(calib, questions, t0 + calibrate_s, 0.0, "c", turn_timeout)
        calib_elapsed = time.monotonic() - t0
        calib_stats = _stats([t for c in calib for t in c.turns.values()], calib_elapsed)
        cpu_per_turn = (_cpu_seconds(pids) - cpu0) / max(calib_stats["turns_completed"], 1)
        capacity = calib_stats["throughput_turns_per_s"] or 1.0
        target_rate = load_factor * capacity
        mean_turn = statistics.mean([t.total() for t in baseline_turns_list if t.total()] or [0.1])
        think = think_s if think_s is not None else max(0.0, sessions / target_rate - mean_turn)
        for c in calib:
            await c.close()

        # 3. ramp: N sessions, alternating instances (half on each).
        clients = sidebars(sessions, "load")
        t0 = time.monotonic()
        join_times, connect_failures = await _connect_all(clients, urls)
        ramp_s = time.monotonic() - t0
        rss = sum(
            p.memory_info().rss
            for pid in pids
            for p in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True))
        )

        # 4. steady load.
        connected = [c for c in clients if c.connected]
        cpu0, t0 = _cpu_seconds(pids), time.monotonic()
        load_avg0 = os.getloadavg()
        await _closed_loop(connected, questions, t0 + duration, think, "m", turn_timeout)
        load_elapsed = time.monotonic() - t0
        cpu_used = _cpu_seconds(pids) - cpu0
        turns = [t for c in clients for t in c.turns.values()]
        load_stats = _stats(turns, load_elapsed)
        dropped = sum(1 for c in connected if not c.connected)

        # 5. audit: disconnect (the archive is written on the last detach), then check every ack.
        await solo.close()
        await asyncio.gather(*(c.close() for c in clients))
        await asyncio.sleep(1)
        lost = audit(
            [solo, *clients], redis_url=cl.redis_url, archive_path=cl.settings.sqlite_path, wait_s=30
        )
        alive = [i.alive() for i in cl.instances]

    ratio = lambda a, b: round(a / b, 2) if a == a and b and b == b else None  # noqa: E731 (NaN-safe)
    return {
        "parameters": {
            "sessions": sessions,
            "instances": 2,
            "threads_per_instance": threads,
            "duration_s": duration,
            "handler": handler,
            "calibrate_s": calibrate_s,
            "calibrate_sessions": calibrate_sessions,
            "load_factor": load_factor,
            "questions": len(questions),
            "demo_prepare_s": round(prep_s, 1),
        },
        "baseline_one_session": baseline,
        "calibration": {
            **calib_stats,
            "capacity_turns_per_s": capacity,
            "server_cpu_s_per_turn": round(cpu_per_turn, 4),
        },
        "ramp": {
            "connected": len(join_times),
            "failed": len(connect_failures),
            "failures_sample": connect_failures[:5],
            "ramp_s": round(ramp_s, 1),
            "join_ms": percentiles(join_times),
            "server_rss_mib": round(rss / 2**20, 1),
        },
        "load": {
            **load_stats,
            "target_rate_turns_per_s": round(target_rate, 2),
            "mean_think_s": round(think, 2),
            "elapsed_s": round(load_elapsed, 1),
            "server_cpu_utilisation": round(cpu_used / load_elapsed / (os.cpu_count() or 1), 3),
            "loadavg_at_start": [round(x, 2) for x in load_avg0],
            "sessions_dropped": dropped,
            "instances_alive_at_end": alive,
        },
        "messages": lost,
        "ratios": {
            "ttft_p50_loaded_over_unloaded": ratio(load_stats["ttft_ms"]["p50"], baseline["ttft_ms"]["p50"]),
            "ttft_p95_loaded_over_unloaded": ratio(load_stats["ttft_ms"]["p95"], baseline["ttft_ms"]["p95"]),
            "done_p95_loaded_over_unloaded": ratio(load_stats["done_ms"]["p95"], baseline["done_ms"]["p95"]),
            "throughput_over_capacity": ratio(load_stats["throughput_turns_per_s"] or 0, capacity),
        },
        "goals": {
            "all_sessions_connected": len(join_times) == sessions,
            "zero_lost": lost["lost"] == 0,
            "no_errors": not load_stats["errors_by_code"] and load_stats["unsettled"] == 0,
        },
    }


def markdown(d: dict[str, Any]) -> str:
    p, b, c, r, ld, m, q, g = (
        d["parameters"],
        d["baseline_one_session"],
        d["calibration"],
        d["ramp"],
        d["load"],
        d["messages"],
        d["ratios"],
        d["goals"],
    )
    yes = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    trip = lambda x: f"{x['p50']} / {x['p95']} / {x['p99']}"  # noqa: E731
    errs = ", ".join(f"`{k}` {v}" for k, v in ld["errors_by_code"].items()) or "none"
    return f"""# Load: {p["sessions"]} concurrent sidebar sessions on two instances

{{machine}}Two gunicorn gthread instances ({p["threads_per_instance"]} threads each) started by `backend.launcher`,
one embedded redis-server, the SQLite archive; turn handler `{p["handler"]}`
({"the real offline assistant: MiniLM routing + retrieval over the demo tenant, extractive responder" if p["handler"] == "orchestrator" else "transport-only"}).
Clients: python-socketio AsyncClients over WebSocket in one process on the same machine (they share its CPU),
half of the sessions on each instance; questions drawn from the {p["questions"]} demo retrieval queries.

## Sustainable rate

A closed loop of {p["calibrate_sessions"]} sessions with no think time for {p["calibrate_s"]} s carried
**{c["capacity_turns_per_s"]} turns/s** ({c["server_cpu_s_per_turn"]} s of server CPU per turn; TTFT p50 {c["ttft_ms"]["p50"]} ms
when saturated). The load phase offers {p["load_factor"]} × that: mean think time {ld["mean_think_s"]} s per session
(exponential), target {ld["target_rate_turns_per_s"]} turns/s: each session asks about once every
{round((ld["mean_think_s"] + c["done_ms"]["p50"] / 1000) / 60, 1)} min, and {ld["turns_sent"]} questions were asked in {ld["elapsed_s"]} s by {p["sessions"]} open sessions.

## Results

| Measure | Under load ({p["sessions"]} sessions, {ld["elapsed_s"]} s) | Baseline: 1 session, idle | Ratio |
| --- | --- | --- | --- |
| Throughput (turns completed / s) | {ld["throughput_turns_per_s"]} ({ld["turns_completed"]} of {ld["turns_sent"]} sent) | {b["throughput_turns_per_s"]} (back to back) | {q["throughput_over_capacity"]} of capacity |
| Time to first token p50 / p95 / p99 (ms) | {trip(ld["ttft_ms"])} | {trip(b["ttft_ms"])} | p50 ×{q["ttft_p50_loaded_over_unloaded"]}, p95 ×{q["ttft_p95_loaded_over_unloaded"]} |
| Time to `chat:done` p50 / p95 / p99 (ms) | {trip(ld["done_ms"])} | {trip(b["done_ms"])} | p95 ×{q["done_p95_loaded_over_unloaded"]} |
| Message → `chat:ack` p50 / p95 / p99 (ms) | {trip(ld["ack_ms"])} | {trip(b["ack_ms"])} | |
| Errors by code | {errs}; unsettled {ld["unsettled"]} | {", ".join(f"`{k}` {v}" for k, v in b["errors_by_code"].items()) or "none"} | |
| Sessions connected / dropped | {r["connected"]} / {p["sessions"]} (failed {r["failed"]}, ramp {r["ramp_s"]} s, join p95 {r["join_ms"]["p95"]} ms); dropped {ld["sessions_dropped"]} | | |
| Server CPU utilisation (both instances, of {{nproc}} cores) | {ld["server_cpu_utilisation"]} | | |
| Server RSS after ramp (both instances) | {r["server_rss_mib"]} MiB | | |

## Messages lost

{m["acknowledged"]} messages were acknowledged; afterwards {m["unsettled"]} had no `chat:done`/`chat:error`,
{m["non_retryable_errors"]} ended in a non-retryable error, and missing from the thread:
{m["missing"] or "none"}. **Lost: {m["lost"]}** (goal 0: {yes(g["zero_lost"])}).

Goals: all sessions connected ({yes(g["all_sessions_connected"])}), zero lost ({yes(g["zero_lost"])}),
no errors ({yes(g["no_errors"])}).
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=180, help="seconds of steady load")
    ap.add_argument(
        "--handler", default="orchestrator", help="orchestrator | echo | module:Name of a TurnHandler"
    )
    ap.add_argument("--calibrate", type=float, default=30, help="seconds of the saturation pass")
    ap.add_argument("--calibrate-sessions", type=int, default=16)
    ap.add_argument("--load-factor", type=float, default=0.7, help="offered rate / calibrated capacity")
    ap.add_argument("--baseline-turns", type=int, default=30)
    ap.add_argument("--think", type=float, default=None, help="fixed mean think time (skips sizing)")
    ap.add_argument("--name", default="load", help="report name in bench/results/")
    add_report_args(ap)
    args = ap.parse_args(argv)
    if args.smoke:  # two instances, four echo sessions, seconds of load
        args.sessions, args.duration, args.handler, args.think = 4, 2, "echo", 0.2
        args.calibrate, args.calibrate_sessions, args.baseline_turns = 1, 2, 2
    if args.sessions < 1 or args.duration <= 0 or not 0 < args.load_factor <= 2:
        ap.error("--sessions ≥ 1, --duration > 0 and 0 < --load-factor ≤ 2")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    data = asyncio.run(
        run(
            args.sessions,
            args.duration,
            args.handler,
            calibrate_s=args.calibrate,
            calibrate_sessions=min(args.calibrate_sessions, args.sessions),
            load_factor=args.load_factor,
            baseline_turns=args.baseline_turns,
            think_s=args.think,
        )
    )
    md = markdown(data).replace("{nproc}", str(os.cpu_count()))
    jp, mp = write_report(args.name, data, md, args.out_dir)
    print(mp.read_text())
    print(f"reports: {jp} {mp}", file=sys.stderr)
    return 0 if all(data["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
