"""Orchestrator overhead of one A2A agent call against an in-process agent doing the same work.

The same scripted agent (three evidence items, one thinking line, optional fixed work time) runs
(a) in process, and (b) in a separate `serve-agents`-style process (backend.a2a_server: the
a2a-sdk server classes, bearer API key, tenant from the key), called from a `kind: a2a`
`RemoteA2AAgent` over loopback HTTP with streaming. Both go through a full orchestrator turn
(fixed routing decision, instant LLM), interleaved turn by turn in the same run, so the
difference is what A2A adds: JSON-RPC + SSE over HTTP, protobuf mapping, the client's event loop
hand-off, the server's task store and thread pool.

Run: `python -m bench.a2a_bench` (report: bench/results/a2a.{json,md}).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from agents.base import AgentManifest
from agents.remote_a2a import RemoteA2AAgent
from bench.common import add_report_args, percentiles, write_report
from bench.orchestrator_bench import Fixed, InstantLLM, request
from orchestrator.orchestrator import Assistant
from orchestrator.turn import Done
from testkit.agents import ScriptedAgent, ev, manifest

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-a2a-key-0123456789"
KEY_ENV = "BENCH_A2A_KEY"


def scripted(delay: float) -> ScriptedAgent:
    return ScriptedAgent(
        manifest("kb", "Help Center for the A2A benchmark.", [f"refund question {j}" for j in range(10)]),
        delay=delay,
        evidence=[
            ev(f"article:kb{j}", f"Refunds {j}", f"Refunds for case {j} take {j + 3} days.") for j in range(3)
        ],
    )


def serve(delay: float) -> None:
    """The remote end (child process): the scripted agent behind backend.a2a_server."""
    import uvicorn

    from backend.a2a_server import CallerAuth, build_app

    agent = scripted(delay)
    assistant = Assistant([agent], Fixed(["kb"]), InstantLLM(), None)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    auth = CallerAuth(None, {hashlib.sha256(KEY.encode()).hexdigest(): "demo"})
    app = build_app(assistant, [agent], url, auth)
    print(f"A2A_READY {url}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.a2a_bench", "--serve", "--delay", str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("A2A_READY "):
        proc.kill()
        raise RuntimeError(f"A2A bench server did not start: {line!r}")
    return proc, line.split()[1]


def remote_agent(url: str) -> RemoteA2AAgent:
    os.environ[KEY_ENV] = KEY
    m = AgentManifest.model_validate(
        {
            "name": "kb",
            "description": "Help Center for the A2A benchmark, served over A2A.",
            "kind": "a2a",
            "a2a": {
                "url": f"{url}/agents/kb/.well-known/agent-card.json",
                "auth": {"type": "bearer", "secret_env": KEY_ENV},
            },
            "when_to_use": [f"refund question {j}" for j in range(10)],
            "timeout_s": 10,
        }
    )
    agent = RemoteA2AAgent(m)
    deadline = time.monotonic() + 30
    while not agent.refresh_card() and time.monotonic() < deadline:  # the server may still be binding
        time.sleep(0.2)
    assert agent.unavailable_reason is None, agent.unavailable_reason
    return agent


def measure(delay: float, turns: int, warmup: int) -> dict:
    proc, url = start_server(delay)
    try:
        local = Assistant([scripted(delay)], Fixed(["kb"]), InstantLLM(), None)
        remote = Assistant([remote_agent(url)], Fixed(["kb"]), InstantLLM(), None)
        runs: dict[str, dict[str, list[float]]] = {
            k: {"turn": [], "agent": []} for k in ("in_process", "a2a")
        }
        for i in range(warmup + turns):
            # Interleaved, alternating which goes first: both see the same machine load.
            order = [("in_process", local), ("a2a", remote)]
            for name, assistant in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                done = list(assistant.handle(request(i)))[-1]
                elapsed = time.perf_counter() - t0
                assert isinstance(done, Done), done
                status = done.routing["agents"]["kb"]
                assert status["status"] == "ok" and status["results"] == 3, status
                if i >= warmup:
                    runs[name]["turn"].append(elapsed)
                    runs[name]["agent"].append(status["latency_ms"] / 1000)
        local.close()
        remote.close()
    finally:
        proc.terminate()
        proc.wait(10)
    out: dict = {"agent_work_ms": delay * 1000, "turns": turns}
    for name, r in runs.items():
        out[name] = {
            "turn_ms": percentiles(r["turn"]),
            "agent_call_ms": percentiles(r["agent"]),
            "turn_mean_ms": round(statistics.mean(r["turn"]) * 1000, 2),
        }
    out["a2a_overhead_ms"] = {
        p: round(out["a2a"]["turn_ms"][p] - out["in_process"]["turn_ms"][p], 2) for p in ("p50", "p95")
    }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_report_args(ap)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.delay)
        return
    turns, warmup = (10, 3) if args.smoke else (300, 30)
    configs = [measure(d, turns, warmup) for d in ((0.0,) if args.smoke else (0.0, 0.05))]
    data = {"configs": configs}
    rows = "\n".join(
        f"| {c['agent_work_ms']:.0f} ms | {c['in_process']['turn_ms']['p50']} / {c['in_process']['turn_ms']['p95']} ms "
        f"| {c['a2a']['turn_ms']['p50']} / {c['a2a']['turn_ms']['p95']} ms "
        f"| **{c['a2a_overhead_ms']['p50']} / {c['a2a_overhead_ms']['p95']} ms** "
        f"| {c['in_process']['agent_call_ms']['p50']} / {c['a2a']['agent_call_ms']['p50']} ms |"
        for c in configs
    )
    md = f"""# A2A agent call overhead

{{machine}}One orchestrator turn (fixed route to one agent, instant LLM) with the same scripted agent
(3 evidence items, one thinking line, a fixed work time) **in process** and **over A2A** (a
separate process serving it with backend.a2a_server — the a2a-sdk server classes behind a bearer
API key — called by a `kind: a2a` RemoteA2AAgent with the a2a-sdk client, streaming, over
loopback). {configs[0]["turns"]} turns each, interleaved in the same run after a warm-up; the
overhead row is the A2A turn minus the in-process turn at the same percentile.

| Agent work | In process: turn p50 / p95 | A2A: turn p50 / p95 | A2A overhead p50 / p95 | Agent call p50: in process / A2A |
| --- | --- | --- | --- | --- |
{rows}

What the overhead buys: the remote agent runs in another process (or service), with its own
deploy cycle and language; its status updates still reach the thinking lines. On this shared
2-core machine both processes compete for the same cores, so the figures are an upper bound for
two services on separate machines, less the network's round trip.
"""
    _, mp = write_report("a2a", data, md, args.out_dir)
    print(mp.read_text())


if __name__ == "__main__":
    main()
