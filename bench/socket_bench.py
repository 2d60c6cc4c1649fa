"""Concurrent sidebar sessions on one instance (issue: foundation benchmark).

Ramps python-socketio clients to N connected, joined sessions on instance A, then measures:
- connect success;
- round trip of a chat message through the Redis manager (emit → chat:ack, which the server
  emits to the session room via Redis pub/sub) and to chat:done (an instant echo turn);
- memory per session: RSS of A's worker and Redis used_memory, before/after;
- resume latency on a second instance B: the same users reconnect to B and re-join.

Baselines measured in the same run: Redis PING round trip, and the message round trip with a
single idle client (ratios reported). Run: `python -m bench.socket_bench [--sessions 1000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

import psutil
import redis
import socketio

from backend.auth import DevTokenAuthenticator
from backend.launcher import Instance, instance_env, wait_ready
from backend.redis_embedded import EmbeddedRedis
from backend.settings import Settings
from bench.common import add_report_args, percentiles, write_report
from testkit.servers import free_port

SECRET = "socket-bench-secret-not-for-production"
ROOT = Path(__file__).resolve().parents[1]


class Client:
    """One sidebar: an AsyncClient plus futures for the events the bench waits on."""

    def __init__(self, token: str, ticket: str) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.token, self.ticket = token, ticket
        self.waiters: dict[tuple[str, str], asyncio.Future] = {}
        for event in ("session:state", "chat:ack", "chat:done", "chat:error"):
            self.sio.on(event, self._handler(event))

    def _handler(self, event: str):
        async def handle(data):
            key = (event, data.get("id", "") if event != "session:state" else "")
            fut = self.waiters.pop(key, None)
            if fut and not fut.done():
                fut.set_result((time.perf_counter(), data))

        return handle

    def expect(self, event: str, id_: str = "") -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiters[(event, id_)] = fut
        return fut

    async def connect_and_join(self, url: str) -> float:
        await self.sio.connect(url, auth={"token": self.token}, transports=["websocket"], wait_timeout=30)
        fut = self.expect("session:state")
        t0 = time.perf_counter()
        await self.sio.emit(
            "session:join", {"ticket": {"id": self.ticket, "subject": f"bench {self.ticket}"}}
        )
        t1, _ = await asyncio.wait_for(fut, 30)
        return t1 - t0

    async def round_trip(self, mid: str) -> tuple[float, float]:
        ack, done = self.expect("chat:ack", mid), self.expect("chat:done", mid)
        t0 = time.perf_counter()
        await self.sio.emit("chat:message", {"id": mid, "text": "where is my order"})
        t_ack, _ = await asyncio.wait_for(ack, 30)
        t_done, _ = await asyncio.wait_for(done, 30)
        return t_ack - t0, t_done - t0


def worker_rss(inst: Instance) -> int:
    proc = psutil.Process(inst.process.pid)
    return sum(p.memory_info().rss for p in proc.children(recursive=True)) or proc.memory_info().rss


async def bench(sessions: int, messages: int, resumes: int, rate: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="socket-bench-"))
    embedded = EmbeddedRedis(tmp, persist=False)
    r = redis.Redis.from_url(embedded.url)
    settings = Settings(
        _env_file=None, data_dir=tmp, redis_url=embedded.url, threads=sessions + 200, log_level="WARNING"
    )
    extra = {
        "SECRET_KEY": SECRET,
        "TURN_HANDLER": "testkit.handlers:EchoHandler",
        "PYTHONPATH": str(ROOT),
        # The per-user turn limit (20/min, burst 8) would refuse the solo client's 120 turns: this
        # measures the transport and the session store, not the limiter.
        "RATE_LIMIT_PER_MINUTE": "0",
    }
    a, b = (
        Instance(p, instance_env(settings, p, redis_url=embedded.url, extra=extra))
        for p in (free_port(), free_port())
    )
    for inst in (a, b):
        inst.start()
    for inst in (a, b):
        wait_ready(inst.url, alive=inst.alive)
    auth = DevTokenAuthenticator(SECRET, 3600)
    try:
        # Baselines: Redis PING, and one idle client's message round trip.
        pings = []
        for _ in range(200):
            t0 = time.perf_counter()
            r.ping()
            pings.append(time.perf_counter() - t0)
        solo = Client(auth.mint("bench", "solo"), "solo")
        await solo.connect_and_join(a.url)
        for i in range(20):  # warm-up: first-call costs (imports, pydantic, pub/sub) are not latency
            await solo.round_trip(f"warm-{i}")
        solo_rt = [await solo.round_trip(f"solo-{i}") for i in range(100)]
        await solo.sio.disconnect()

        rss0, mem0 = worker_rss(a), int(r.info("memory")["used_memory"])
        clients = [Client(auth.mint("bench", f"agent-{i}"), f"T{i}") for i in range(sessions)]
        ok, failures, join_times = 0, [], []
        t_ramp = time.perf_counter()
        for start in range(0, sessions, 50):  # ramp in waves of 50
            batch = clients[start : start + 50]
            results = await asyncio.gather(
                *(c.connect_and_join(a.url) for c in batch), return_exceptions=True
            )
            for res in results:
                if isinstance(res, BaseException):
                    failures.append(repr(res)[:200])
                else:
                    ok += 1
                    join_times.append(res)
        ramp_s = time.perf_counter() - t_ramp
        await asyncio.sleep(1)
        rss1, mem1 = worker_rss(a), int(r.info("memory")["used_memory"])
        connected = [c for c in clients if c.sio.connected]

        # Message round trips at a steady rate spread over random connected sessions.
        acks, dones, lost = [], [], 0

        async def one(i: int) -> None:
            nonlocal lost
            c = random.choice(connected)
            try:
                ack, done = await c.round_trip(f"m{i}")
                acks.append(ack)
                dones.append(done)
            except TimeoutError:
                lost += 1

        tasks = []
        t_msgs = time.perf_counter()
        for i in range(messages):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
        msgs_s = time.perf_counter() - t_msgs

        # Resume on instance B: the first `resumes` users drop A and re-join on B.
        resume_times, resume_connect = [], []
        for c in connected[:resumes]:
            await c.sio.disconnect()
            again = Client(c.token, c.ticket)
            t0 = time.perf_counter()
            join = await again.connect_and_join(b.url)
            resume_connect.append(time.perf_counter() - t0)
            resume_times.append(join)
            await again.sio.disconnect()
        still = sum(1 for c in connected[resumes:] if c.sio.connected)
        for c in connected[resumes:]:
            await c.sio.disconnect()
    finally:
        for inst in (a, b):
            inst.stop()
        embedded.shutdown()

    ack_p, done_p, solo_p = percentiles(acks), percentiles(dones), percentiles([x for x, _ in solo_rt])
    return {
        "parameters": {
            "sessions": sessions,
            "messages": messages,
            "message_rate_per_s": rate,
            "resumes": resumes,
        },
        "connect": {
            "ok": ok,
            "failed": len(failures),
            "failures_sample": failures[:5],
            "ramp_s": round(ramp_s, 2),
            "join_ms": percentiles(join_times),
            "still_connected_at_end": still + resumes,
        },
        "message_round_trip_ms": {
            "ack": ack_p,
            "done": done_p,
            "lost": lost,
            "throughput_per_s": round(len(acks) / msgs_s, 1),
        },
        "memory": {
            "worker_rss_mib_before": round(rss0 / 2**20, 1),
            "worker_rss_mib_after": round(rss1 / 2**20, 1),
            "worker_kib_per_session": round((rss1 - rss0) / max(ok, 1) / 1024, 1),
            "redis_bytes_per_session": round((mem1 - mem0) / max(ok, 1)),
        },
        "resume_on_second_instance_ms": {
            "join": percentiles(resume_times),
            "connect_and_join": percentiles(resume_connect),
        },
        "baselines_ms": {"redis_ping": percentiles(pings), "idle_client_ack": solo_p},
        "ratios": {
            "ack_p95_over_idle_ack_p50": round(ack_p["p95"] / solo_p["p50"], 2) if solo_p["p50"] else None,
            "ack_p50_over_redis_ping_p50": round(ack_p["p50"] / max(percentiles(pings)["p50"], 1e-3), 1),
        },
        "targets": {
            "sessions_none_lost": ok == sessions and lost == 0,
            "event_p95_le_100ms": ack_p["p95"] <= 100,
            "resume_p95_le_50ms": percentiles(resume_times)["p95"] <= 50,
        },
    }


def markdown(d: dict) -> str:
    c, m, mem, res, base, t = (
        d["connect"],
        d["message_round_trip_ms"],
        d["memory"],
        d["resume_on_second_instance_ms"],
        d["baselines_ms"],
        d["targets"],
    )
    yes = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    return f"""# Concurrent sessions on one instance

{{machine}}Clients: python-socketio AsyncClient over WebSocket, same machine; server: gunicorn gthread
(1 worker, {d["parameters"]["sessions"] + 200} threads), Flask-SocketIO threading mode, Redis manager on embedded redis-server.
Turns use an instant echo handler, so the numbers are the transport + session store cost.

| Measure | Result | Target |
| --- | --- | --- |
| Sessions connected and joined | {c["ok"]} / {d["parameters"]["sessions"]} (failed {c["failed"]}), ramp {c["ramp_s"]} s | all ({yes(t["sessions_none_lost"])}) |
| Join under ramp p50 / p95 / p99 | {c["join_ms"]["p50"]} / {c["join_ms"]["p95"]} / {c["join_ms"]["p99"]} ms | |
| Message → `chat:ack` via Redis manager p50 / p95 / p99 | {m["ack"]["p50"]} / {m["ack"]["p95"]} / {m["ack"]["p99"]} ms | p95 ≤ 100 ms ({yes(t["event_p95_le_100ms"])}) |
| Message → `chat:done` (echo turn) p50 / p95 / p99 | {m["done"]["p50"]} / {m["done"]["p95"]} / {m["done"]["p99"]} ms | |
| Messages lost | {m["lost"]} of {d["parameters"]["messages"]} at {d["parameters"]["message_rate_per_s"]}/s ({m["throughput_per_s"]}/s completed) | 0 |
| Worker RSS before → after | {mem["worker_rss_mib_before"]} → {mem["worker_rss_mib_after"]} MiB ({mem["worker_kib_per_session"]} KiB/session) | |
| Redis memory per session | {mem["redis_bytes_per_session"]} bytes | |
| Resume on instance B: join p50 / p95 | {res["join"]["p50"]} / {res["join"]["p95"]} ms | p95 ≤ 50 ms ({yes(t["resume_p95_le_50ms"])}) |
| Resume on instance B: connect + join p50 / p95 | {res["connect_and_join"]["p50"]} / {res["connect_and_join"]["p95"]} ms | |

Baselines in the same run: Redis PING p50 {base["redis_ping"]["p50"]} ms; one idle client's message → ack
p50 {base["idle_client_ack"]["p50"]} ms. Ratios: loaded ack p95 / idle ack p50 = {d["ratios"]["ack_p95_over_idle_ack_p50"]};
loaded ack p50 / Redis PING p50 = {d["ratios"]["ack_p50_over_redis_ping_p50"]}.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=50.0, help="messages per second")
    ap.add_argument("--resumes", type=int, default=200)
    add_report_args(ap)
    args = ap.parse_args(argv)
    if args.smoke:
        args.sessions, args.messages, args.resumes, args.rate = 4, 4, 2, 200.0
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    data = asyncio.run(bench(args.sessions, args.messages, args.resumes, args.rate))
    jp, mp = write_report("socket_sessions", data, markdown(data), args.out_dir)
    print(mp.read_text())
    print(f"reports: {jp} {mp}")


if __name__ == "__main__":
    main()
