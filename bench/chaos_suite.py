"""Chaos suite (issue 8): break one thing at a time while sidebars are mid-turn, and record what
the user saw, what was lost (acknowledged messages missing afterwards; goal: nothing) and how
long until a turn completes again.

Scenarios:
1. ``sigkill``  SIGKILL an instance mid-turn; its sidebars reconnect to the other one, resume and
   retry the interrupted reply (two real gunicorn instances).
2. ``redis``    restart Redis empty on the same URL while sidebars are connected and mid-turn.
3. ``archive``  the archive becomes unavailable (its connection closed) and comes back.
4. ``vertex``   Gemini on Vertex (the fake server) answers 5xx, then times out, then heals.
5. ``agent``    an agent folder (AGENT_PATHS) whose tool hangs.

Scenarios 1-2 run real gunicorn instances with the echo turn handler slowed down (a turn
long enough to be caught mid-way); 3-5 run the app in process, because they reach inside it
(the archive connection, an LLM pointed at the fake Vertex, an extra agent folder).

Run: `python -m bench.chaos_suite [--only sigkill,redis,...] [--sessions 10]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from backend.settings import Settings
from bench.common import add_report_args, write_report
from bench.suite_common import (
    ECHO,
    ROOT,
    SECRET,
    Sidebar,
    audit,
    cluster,
    demo_questions,
    kill_instance,
    prepare_demo_data,
    sidebars,
    work_dir,
)
from testkit.servers import LiveServer, stop_redis

LONG = "please explain the whole refund and return policy for damaged garden furniture in detail"
SIDEBAR_RECONNECT_S = (0.25, 0.75)  # zendesk_app/src/main.js: reconnectionDelay 500 ms, ±50 %


def _ms(s: float | None) -> float | None:
    return None if s is None else round(s * 1000, 1)


def _summary(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "p50_s": round(statistics.median(vals), 2),
        "max_s": round(max(vals), 2),
    }


def _seen(c: Sidebar, since: float = 0.0) -> list[str]:
    """The user's view, compressed: event names in order with repeats counted."""
    out: list[str] = []
    for t, name, data in c.events:
        if t < since:
            continue
        label = name
        if name == "session:state":
            statuses = Counter(m["status"] for m in data["thread"] if m["role"] == "assistant")
            flags = [k for k in ("resumed", "hydrated") if data.get(k)]
            label = f"state({','.join(flags) or 'new'}; replies {dict(statuses)})"
        elif name == "chat:error":
            label = f"error({data.get('code')}, retryable={data.get('retryable')})"
        if out and out[-1].split(" ×")[0] == label:
            n = int(out[-1].split(" ×")[1]) + 1 if " ×" in out[-1] else 2
            out[-1] = f"{label} ×{n}"
        else:
            out.append(label)
    return out


def _common_view(clients: list[Sidebar], since: float) -> dict[str, int]:
    return dict(Counter(" → ".join(_seen(c, since)) for c in clients).most_common(4))


async def _wait_all_streaming(clients: list[Sidebar], mid: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.turns[mid].first_delta is not None for c in clients):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"not every sidebar was streaming {mid} within {timeout}s")


# --- 1. SIGKILL an instance mid-turn -----------------------------------------------------------


async def scenario_sigkill(n: int, delay: float) -> dict[str, Any]:
    data_dir = work_dir("chaos-sigkill-")
    extra = {"TEST_TURN_DELAY": str(delay), "RATE_LIMIT_PER_MINUTE": "0"}
    with cluster(data_dir, threads=n * 2 + 64, handler=ECHO, extra=extra) as cl:
        a, b = cl.instances
        victims, bystanders = sidebars(n, "kill-a"), sidebars(n, "kill-b")
        for c in victims:
            await c.connect(a.url)
            await c.join()
        for c in bystanders:
            await c.connect(b.url)
            await c.join()
        await asyncio.gather(
            *(c.ask("warm", "hello before the crash", timeout=60) for c in victims + bystanders)
        )
        for c in victims + bystanders:
            await c.send("long", LONG)
        await _wait_all_streaming(victims, "long")
        t_kill = time.perf_counter()
        kill_instance(a)

        async def victim(c: Sidebar) -> dict[str, Any]:
            # The sidebar's policy: reconnect after its backoff (to the surviving instance,
            # as the load balancer would route it), join once, show what the state says.
            while c.connected:
                await asyncio.sleep(0.02)
            detected = time.perf_counter() - t_kill
            await asyncio.sleep(random.uniform(*SIDEBAR_RECONNECT_S))
            await c.connect(b.url)
            state = await c.join()
            rejoined = time.perf_counter() - t_kill
            status = next(m["status"] for m in state["thread"] if m["id"] == "long.reply")
            first_status, stuck_s, rejoins = status, None, 0
            if status == "streaming":
                # Nothing produces this reply any more. The sidebar would show "Thinking…" until
                # the user reloads; we wait a while for events, then re-join like a reload would.
                waited = time.perf_counter()
                await c.settle("long", 10)
                while not c.turns["long"].settled:
                    rejoins += 1
                    state = await c.join()
                    status = next(m["status"] for m in state["thread"] if m["id"] == "long.reply")
                    if status != "streaming":
                        break
                    await asyncio.sleep(1)
                stuck_s = time.perf_counter() - waited
            if not c.turns["long"].settled or c.turns["long"].done is None:
                await c.retry("long")
                await c.settle("long", 60)
            recovered = time.perf_counter() - t_kill if c.turns["long"].done is not None else None
            await c.ask("after", "a new question after the crash", timeout=60)
            return {
                "detected_s": detected,
                "rejoined_s": rejoined,
                "reply_status_at_rejoin": first_status,
                "stuck_streaming_s": stuck_s,
                "rejoins_needed": rejoins,
                "recovered_s": recovered,
            }

        results = await asyncio.wait_for(asyncio.gather(*(victim(c) for c in victims)), 180)
        # Bystanders on B: their in-flight turn must finish untouched.
        await asyncio.gather(*(c.settle("long", 60) for c in bystanders))
        for c in victims + bystanders:
            await c.close()
        lost = audit(victims + bystanders, redis_url=cl.redis_url, archive_path=cl.settings.sqlite_path)

    statuses = Counter(r["reply_status_at_rejoin"] for r in results)
    # Still 'streaming' at the re-join is expected while the dead instance's heartbeat has not
    # expired; what matters is whether the sidebar then hears of it by itself (chat:error
    # interrupted from a surviving instance's sweep) or needs another join.
    pushed = [r for r in results if r["stuck_streaming_s"] is not None and r["rejoins_needed"] == 0]
    stuck = [r for r in results if r["rejoins_needed"] > 0]
    bystanders_ok = sum(1 for c in bystanders if c.turns["long"].done is not None)
    recovered = [r["recovered_s"] for r in results]
    findings = []
    if stuck:
        findings.append(
            f"{len(stuck)}/{n} sidebars re-joined within the dead instance's heartbeat lifetime "
            "and got the reply still `streaming`, and no chat:error `interrupted` reached them "
            "within 10 s: they needed another join to see it (the heartbeat sweep should have "
            "told the room)."
        )
    return {
        "what": f"{n} sidebars mid-turn on instance A (SIGKILL), {n} bystanders mid-turn on B",
        "user_saw": {
            "victims": _common_view(victims, t_kill),
            "reply_status_at_rejoin": dict(statuses),
            "bystanders_completed": f"{bystanders_ok}/{n}",
        },
        "lost": lost,
        "recovery": {
            "disconnect_detected": _summary([r["detected_s"] for r in results]),
            "rejoined_on_b": _summary([r["rejoined_s"] for r in results]),
            "interrupted_reply_completed_after_retry": _summary(recovered),
            "interrupted_pushed_after_rejoin": _summary([r["stuck_streaming_s"] for r in pushed]),
            "stuck_streaming_needing_rejoin": _summary([r["stuck_streaming_s"] for r in stuck]),
        },
        "findings": findings,
        "passed": lost["lost"] == 0 and all(recovered) and bystanders_ok == n and not stuck,
    }


# --- 2. restart Redis -----------------------------------------------------------------------------


async def scenario_redis(n: int, delay: float) -> dict[str, Any]:
    data_dir = work_dir("chaos-redis-")
    extra = {"TEST_TURN_DELAY": str(delay), "RATE_LIMIT_PER_MINUTE": "0"}
    with cluster(data_dir, threads=n + 64, handler=ECHO, extra=extra) as cl:
        urls = [i.url for i in cl.instances]
        clients = sidebars(n, "redis")
        for i, c in enumerate(clients):
            await c.connect(urls[i % 2])
            await c.join()
        await asyncio.gather(*(c.ask("warm", "hello before the restart", timeout=60) for c in clients))
        for c in clients:
            await c.send("long", LONG)
        await _wait_all_streaming(clients, "long")
        t0 = time.perf_counter()
        sock = cl.stop_redis()
        # Every sidebar asks while Redis is down; what comes back?
        for c in clients:
            await c.send("during", "a question while Redis is down")
        await asyncio.sleep(2)
        cl.start_redis(sock)
        t_up = time.perf_counter()
        restart_s = t_up - t0
        readyz = [requests.get(f"{u}/readyz", timeout=5).status_code for u in urls]

        # While the in-flight turns play out, every sidebar also asks a new question, and asks
        # again when nothing comes back (a user pressing send again, with a new message).
        async def new_turn(c: Sidebar) -> float | None:
            for attempt in range(20):
                turn = await c.ask(f"after-{attempt}", "a question after the restart", timeout=8)
                if turn.done is not None:
                    return time.perf_counter() - t0
                await asyncio.sleep(1)
            return None

        recovered, _ = await asyncio.gather(
            asyncio.gather(*(new_turn(c) for c in clients)),
            asyncio.gather(*(c.settle("long", 30) for c in clients)),
        )
        inflight_done = sum(1 for c in clients if c.turns["long"].done is not None)
        inflight_err = Counter(
            str((c.turns["long"].error or {}).get("code")) for c in clients if c.turns["long"].error
        )
        # A re-join (a reload): the thread as stored, and whether the cut-off reply can be retried.
        fresh = sidebars(n, "redis")
        states = []
        for i, c in enumerate(fresh):
            await c.connect(urls[i % 2])
            states.append(await c.join())
        hydrated = sum(1 for s in states if s["hydrated"])
        long_status = Counter(
            next((m["status"] for m in s["thread"] if m["id"] == "long.reply"), "missing") for s in states
        )
        retry_answers: Counter[str] = Counter()
        for old, new in zip(clients, fresh, strict=True):
            new.turns = old.turns  # the same session: carry over what was acknowledged, for the audit
            if not old.turns["long"].done:
                turn = await new.retry("long")
                await new.settle("long", 30)
                retry_answers["done" if turn.done else str((turn.error or {}).get("code", "no answer"))] += 1
        for c in clients + fresh:
            await c.close()
        lost = audit(fresh, redis_url=cl.redis_url, archive_path=cl.settings.sqlite_path)
        subscriber_log = _count_in_logs(cl)

    ok_recovered = [r for r in recovered if r is not None]
    findings = []
    if inflight_done < n:
        findings.append(
            f"{n - inflight_done}/{n} sidebars mid-turn never got chat:done or chat:error for "
            "that turn (nothing tells the room the turn died; events published while the "
            "Socket.IO Redis manager's subscriber reconnects are dropped, at-most-once)."
        )
    if long_status.get("streaming"):
        findings.append(
            f"{long_status['streaming']}/{n} replies cut off by the outage stay `streaming` for good: "
            "the turn's final `store.update` hit the Redis outage (ConnectionError out of "
            "TurnRunner._finish/_fail, backend/turns.py), the session was later rehydrated from the "
            "archive with the placeholder still `streaming`, its instance is alive so "
            "`mark_orphaned_turns` never interrupts it, and `chat:retry` answers "
            f"{dict(retry_answers)} (only interrupted/error replies are retryable)."
        )
    return {
        "what": f"{n} sidebars on two instances mid-turn; redis-server stopped and restarted empty on the same socket",
        "user_saw": {
            "during_and_after": _common_view(clients, t0),
            "in_flight_replies_done": f"{inflight_done}/{n}",
            "in_flight_errors": dict(inflight_err),
            "question_during_outage_outcome": dict(
                Counter(
                    "done"
                    if c.turns["during"].done
                    else str((c.turns["during"].error or {}).get("code") or "nothing at all")
                    for c in clients
                )
            ),
            "question_during_outage_acked": sum(1 for c in clients if c.turns["during"].acked),
            "first_new_question_outcome": dict(
                Counter(
                    "done"
                    if c.turns["after-0"].done
                    else str((c.turns["after-0"].error or {}).get("code") or "no answer within 8 s")
                    for c in clients
                )
            ),
            "attempts_until_answered": dict(
                Counter(sum(1 for k in c.turns if k.startswith("after-")) for c in clients)
            ),
            "rejoin_hydrated_from_archive": f"{hydrated}/{n}",
            "cut_off_reply_status_at_rejoin": dict(long_status),
            "retry_of_cut_off_reply": dict(retry_answers),
            "readyz_right_after_restart": readyz,
        },
        "lost": lost,
        "recovery": {
            "redis_down_s": round(restart_s, 2),
            "first_new_turn_completed": _summary(ok_recovered),
            "sidebars_never_recovered": n - len(ok_recovered),
            "since_redis_back_s": round(time.perf_counter() - t_up, 1),
        },
        "server_log": subscriber_log,
        "findings": findings,
        "passed": lost["lost"] == 0 and len(ok_recovered) == n and not long_status.get("streaming"),
    }


def _count_in_logs(_cl: Any) -> dict[str, str]:
    # gunicorn logs go to the suite's stderr; the pattern to look for is documented instead.
    return {"expect": "socketio.server 'Cannot receive from redis... retrying in N secs' while Redis is down"}


# --- in-process scenarios ---------------------------------------------------------------------------


def _settings(data_dir: Path, **kw: Any) -> tuple[Settings, Any]:
    """Settings of an in-process app, with the embedded Redis it uses (stop it afterwards)."""
    from backend.redis_embedded import EmbeddedRedis

    embedded = EmbeddedRedis(data_dir, persist=False)
    s = Settings(
        _env_file=None,
        data_dir=data_dir,
        redis_url=embedded.url,
        secret_key=SECRET,
        log_level="WARNING",
        log_format="text",
        rate_limit_per_minute=0,
        **kw,
    )
    return s, embedded


# --- 3. archive unavailable ------------------------------------------------------------------------


async def scenario_archive(n: int, delay: float) -> dict[str, Any]:
    from backend.app import create_app
    from store.sessions import SqliteSessionArchive
    from testkit.handlers import EchoHandler

    data_dir = work_dir("chaos-archive-")
    settings, embedded = _settings(data_dir)
    app = create_app(settings, handler=EchoHandler(delay=delay / 4))
    out: dict[str, Any] = {}
    try:
        with LiveServer(app) as srv:
            svc = srv.services
            clients = sidebars(n, "arch")
            for c in clients:
                await c.connect(srv.url)
                await c.join()
            await asyncio.gather(*(c.ask("before", "hello before the outage", timeout=30) for c in clients))
            ready_before = requests.get(f"{srv.url}/readyz", timeout=5).status_code

            # Outage: the archive's connection is gone (a crashed Spanner session, a closed file).
            t0 = time.perf_counter()
            svc.archive.close()
            ready_during = requests.get(f"{srv.url}/readyz", timeout=5)
            during = await asyncio.gather(
                *(c.ask("during", "a question while the archive is down", timeout=30) for c in clients)
            )
            ok_during = sum(1 for t in during if t.done is not None)
            # A new sidebar can still join (sessions live in Redis) ...
            newcomer = sidebars(1, "arch-new")[0]
            await newcomer.connect(srv.url)
            try:
                newcomer_state: dict[str, Any] | None = await newcomer.join(timeout=10)
                await newcomer.ask("n1", "first question of a new session", timeout=30)
            except TimeoutError:
                newcomer_state = None
            archive = SqliteSessionArchive(settings.sqlite_path)
            in_archive_during = sum(
                1
                for c in clients
                if any(m["id"] == "during" for m in (archive.load(c.session_id).data["thread"]))
            )
            # ... but a double fault (Redis loses the session during the outage) cannot hydrate.
            victim = clients[0]
            svc.redis.delete(f"sa:session:{victim.session_id}")
            rejoin = sidebars(1, "arch")[0]  # same user/ticket as clients[0]
            await rejoin.connect(srv.url)
            try:
                await rejoin.join(timeout=10)
                double_fault_view = _seen(rejoin)
            except TimeoutError:
                double_fault_view = _seen(rejoin) or ["no session:state"]
            outage_s = time.perf_counter() - t0

            # Recovery: the archive comes back (a new connection to the same database).
            fresh = SqliteSessionArchive(settings.sqlite_path)
            svc.archive = svc.store.archive = fresh
            t_back = time.perf_counter()
            ready_after = requests.get(f"{srv.url}/readyz", timeout=5).status_code
            after = await asyncio.gather(
                *(c.ask("after", "a question after the outage", timeout=30) for c in clients[1:])
            )
            recovered_s = time.perf_counter() - t_back if all(t.done for t in after) else None
            for c in [*clients, newcomer, rejoin]:
                await c.close()
            await asyncio.sleep(0.5)
            lost = audit(clients[1:], redis_url=settings.redis_url, archive_path=settings.sqlite_path)
            # The double-fault victim: acknowledged "during" lives nowhere any more?
            record = archive.load(victim.session_id)
            victim_has = record is not None and any(m["id"] == "during" for m in record.data["thread"])
            archive.close()
            out = {
                "what": f"{n} sidebars; the archive connection closed for {outage_s:.1f} s, then reopened",
                "user_saw": {
                    "during_outage": _common_view(clients[1:], t0),
                    "turns_completed_during_outage": f"{ok_during}/{n}",
                    "new_session_during_outage": _seen(newcomer),
                    "readyz": {
                        "before": ready_before,
                        "during": ready_during.status_code,
                        "during_body": ready_during.json().get("checks"),
                        "after": ready_after,
                    },
                    "double_fault_rejoin": double_fault_view,
                    "new_session_joined": newcomer_state is not None,
                },
                "lost": lost,
                "double_fault": {
                    "acknowledged_during_outage_in_archive": f"{in_archive_during}/{n} (before recovery)",
                    "victim_message_survived": victim_has,
                },
                "recovery": {
                    "all_sidebars_completed_a_turn_after_s": None
                    if recovered_s is None
                    else round(recovered_s, 3)
                },
                "findings": [],
                "passed": lost["lost"] == 0
                and ok_during == n
                and ready_during.status_code == 503
                and recovered_s is not None,
            }
            newcomer_codes = [str(x) for x in _seen(newcomer) if "unavailable" in str(x)]
            if newcomer_state is None and newcomer_codes:
                # By design: without the archive the server cannot tell a new session from one that
                # expired from Redis, and starting an empty one would fork its history. The
                # sidebar gets a retryable `unavailable` and joins once the archive answers.
                out["user_saw"]["new_session_answer"] = "retryable unavailable (by design)"
            elif newcomer_state is None:
                out["passed"] = False
                out["findings"].append(
                    "a sidebar whose session is not in Redis (a new ticket, or one expired from Redis) "
                    "cannot join while the archive is down: `SessionStore.open` (backend/sessions.py) "
                    "calls `archive.load`, whose ArchiveError reaches `guarded` in "
                    "backend/socket_events.py as `internal_error` — not the retryable `unavailable` — "
                    "and no session:state arrives. A new session needs no archive read to start."
                )
            if in_archive_during < n:
                out["findings"].append(
                    "during an archive outage an acknowledged message is held by Redis alone (its "
                    "archive write is queued in Redis and replayed when the archive returns, as "
                    "docs/protocol.md says); a double fault — Redis losing the session inside that "
                    f"window — loses it (double fault here: message survived = {victim_has})."
                )
    finally:
        stop_redis(embedded)
    return out


# --- 4. Vertex 5xx / timeouts -------------------------------------------------------------------


def _vertex_script(mode: Callable[[], str], embed: Callable[[list[str]], Any]):
    from testkit.fake_vertex import Reply, json_reply, server_error, slow, stream_reply

    def text_of(req: Any) -> str:
        body = req.body or {}
        parts = [p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", [])]
        system = " ".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
        return system + "\n" + "\n".join(parts)

    healthy_route = json_reply(
        {
            "action": "route",
            "routes": [
                {"agent": "knowledge_base", "enhanced_query": "return window for unused items", "stage": 1}
            ],
            "confidence": 0.9,
            "reason": "policy question",
        }
    )

    def respond(req: Any):
        m = mode()
        if req.action == "predict":
            # Embeddings stay healthy (the scenario is about generation) and mean something:
            # MiniLM vectors, so the semantic fallback router routes as it would offline.
            texts = [i.get("content", "") for i in (req.body or {}).get("instances", [])]
            vectors = embed(texts)
            return Reply(
                body={
                    "predictions": [
                        {"embeddings": {"values": [float(x) for x in v], "statistics": {"token_count": 8}}}
                        for v in vectors
                    ],
                    "metadata": {"billableCharacterCount": 10},
                }
            )
        controller = req.action == "generateContent" and "You are the controller" in text_of(req)
        if m == "5xx" or (m == "controller-5xx" and controller):
            return server_error(503)
        if m == "timeout":
            return slow(server_error(503), 60)  # never answers within the client's timeout
        if req.action == "streamGenerateContent":
            return stream_reply(["Customers have ", "30 days to return ", "unused items [1]."])
        if controller:
            return healthy_route
        return json_reply(
            {"tool": "search_articles", "arguments": {"query": "return window"}, "reason": "policy"}
        )

    return respond


async def scenario_vertex(n: int, _delay: float) -> dict[str, Any]:
    from backend.app import create_app
    from backend.assistant import build_assistant, open_index
    from testkit.fake_vertex import FakeVertex, offline_credentials
    from vertex_interface import LLMConfig, RetryPolicy, create_llm
    from vertex_interface.local_embedder import LocalEmbedder

    data_dir = work_dir("chaos-vertex-")
    prepare_demo_data(data_dir)
    settings, embedded = _settings(
        data_dir, router="gemini", llm_backend="vertex", google_cloud_project="chaos-project"
    )
    mode = {"now": "healthy"}
    phases: dict[str, Any] = {}
    # Production retry policy, shorter per-attempt timeout so the timeout phase ends in seconds.
    retry = RetryPolicy(
        max_attempts=3, initial_backoff_s=0.2, max_backoff_s=1, jitter_s=0.1, total_deadline_s=20
    )
    try:
        with FakeVertex() as fake:
            embedder = LocalEmbedder()
            cache: dict[str, Any] = {}

            def embed(texts: list[str]) -> list[Any]:
                todo = [t for t in dict.fromkeys(texts) if t not in cache]
                if todo:
                    cache.update(
                        zip(todo, embedder.embed(todo, task_type="SEMANTIC_SIMILARITY"), strict=True)
                    )
                return [cache[t] for t in texts]

            fake.respond_with(_vertex_script(lambda: mode["now"], embed))

            def vertex_llm(timeout_s: float) -> Any:
                config = LLMConfig(
                    backend="vertex",
                    project="chaos-project",
                    location="europe-west4",
                    api_endpoint=fake.base_url,
                    timeout_s=timeout_s,
                    retry=retry,
                )
                return create_llm(config, credentials=offline_credentials())

            index = open_index(settings, embedder)  # MiniLM vectors, as ingested
            # The router embeds every agent's examples at start-up: a first build with a patient
            # client fills the fake's embedding cache, so the 3 s per-attempt timeout below is
            # about generation, not about MiniLM on a busy CPU.
            build_assistant(settings, llm=vertex_llm(120), index=index).close()
            llm = vertex_llm(3)
            assistant = build_assistant(settings, llm=llm, index=index)
            app = create_app(settings, handler=assistant)
            with LiveServer(app) as srv:
                clients = sidebars(n, "vtx")
                for c in clients:
                    await c.connect(srv.url)
                    await c.join()
                question = "can the customer still return unused items?"

                async def phase(name: str, who: list[Sidebar]) -> None:
                    mode["now"] = name
                    t0 = time.perf_counter()
                    turns = await asyncio.gather(*(c.ask(name, question, timeout=120) for c in who))
                    phases[name] = {
                        "sidebars": len(who),
                        "seen": _common_view(who, t0),
                        "done": sum(1 for t in turns if t.done is not None),
                        "errors": dict(
                            Counter(
                                f"{t.error['code']} (retryable={t.error.get('retryable')})"
                                for t in turns
                                if t.error
                            )
                        ),
                        "router": dict(
                            Counter(
                                f"{(t.routing or {}).get('router')}"
                                f" (fallback_from={((t.routing or {}).get('meta') or {}).get('fallback_from')})"
                                for t in turns
                                if t.done
                            )
                        ),
                        "time_to_outcome": _summary([(t.done or t.error_at or t0) - t.sent for t in turns]),
                    }

                async def heal(after: str) -> None:
                    """Vertex is back; each user presses retry until the answer comes."""
                    mode["now"] = "healthy"
                    fake.release_slow_replies()  # hung requests end now, as when a backend recovers
                    t_heal = time.perf_counter()

                    async def one(c: Sidebar) -> float | None:
                        while time.perf_counter() - t_heal < 120:
                            if c.turns[after].done is not None:
                                return c.turns[after].done - t_heal
                            await c.retry(after)
                            await c.settle(after, 60)
                            if c.turns[after].done is None:
                                await asyncio.sleep(2)
                        return None

                    times = await asyncio.gather(*(one(c) for c in clients if after in c.turns))
                    recovery[f"after_{after}"] = {
                        **_summary([t for t in times if t is not None]),
                        "never": sum(1 for t in times if t is None),
                    }

                recovery: dict[str, Any] = {}
                await phase("healthy", clients)
                # One user: the controller's 3 failed attempts stay under the breaker threshold (5),
                # so the turn shows the semantic fallback and a Gemini synthesis.
                await phase("controller-5xx", clients[:1])
                # Timeouts before 5xx: the fake's slow replies stay released once released.
                await phase("timeout", clients)
                await heal("timeout")
                await phase("5xx", clients)
                await heal("5xx")
                for c in clients:
                    await c.close()
                await asyncio.sleep(0.5)
                lost = audit(clients, redis_url=settings.redis_url, archive_path=settings.sqlite_path)
            assistant.close()
            index.close()
    finally:
        stop_redis(embedded)
    fallback_ok = phases["controller-5xx"]["done"] == 1 and "semantic (fallback_from=gemini)" in str(
        phases["controller-5xx"]["router"]
    )
    fault_errors = {e for p in ("5xx", "timeout") for e in phases[p]["errors"]}
    # During the faults every turn must end either answered (a request that slipped between
    # scripted faults) or with a retryable llm_unavailable — never hang or fail for good.
    errors_ok = fault_errors <= {"llm_unavailable (retryable=True)"} and all(
        phases[p]["done"] + sum(phases[p]["errors"].values()) == phases[p]["sidebars"]
        for p in ("5xx", "timeout")
    )
    recovered = all(r.get("never") == 0 and r.get("n") for r in recovery.values())
    findings = []
    if "llm_unavailable (retryable=False)" in fault_errors:
        findings.append(
            "a Vertex outage (5xx or timeouts after retries, then the open circuit) reaches the user "
            "as `llm_unavailable` with retryable=false although the message says 'please retry' and "
            "a retry does succeed once Vertex is back: orchestrator/orchestrator.py `_synthesise` "
            "passes `retryable=exc.retryable`, and vertex_interface/errors.py `Unavailable` "
            "(5xx, connection failure, circuit open) defaults to retryable=False."
        )
    if not fallback_ok:
        findings.append(
            f"controller failure did not fall back to the semantic router: {phases['controller-5xx']}"
        )
    return {
        "what": f"{n} sidebars, Gemini router + synthesis on the fake Vertex server (real google-genai client); "
        f"per-attempt timeout 3 s, {retry.max_attempts} attempts; circuit breaker at its defaults "
        "(opens after 5 consecutive failures, probes after 30 s)",
        "user_saw": phases,
        "lost": lost,
        "recovery": recovery,
        "findings": findings,
        "passed": lost["lost"] == 0 and fallback_ok and errors_ok and recovered,
    }


# --- 5. a hanging agent ---------------------------------------------------------------------------

HANGING_AGENT = '''"""A policy mirror whose backend never answers (chaos suite)."""

from __future__ import annotations

import time
from typing import Any

from agents.base import AgentContext, BaseAgent, Evidence, ToolCall


class PolicyMirrorAgent(BaseAgent):
    def tools(self) -> dict[str, Any]:
        return {"search_policy_mirror": self.search}

    def search(self, ctx: AgentContext, query: str) -> list[Evidence]:
        if COOPERATIVE:
            ctx.cancel.wait(HANG_S)  # a dead upstream, but the tool stops when told to
        else:
            time.sleep(HANG_S)  # a dead upstream with no client timeout: ignores ctx.cancel
        return []

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        return ToolCall("search_policy_mirror", {"query": query}, "search") if attempt == 1 else None
'''


def _hanging_agent_folder(root: Path, hang_s: float, timeout_s: float, cooperative: bool) -> Path:
    import yaml

    from agents.registry import BUILTIN_DIR
    from agents.scaffold import scaffold_agent

    folder = scaffold_agent("policy_mirror", "retrieval", root)
    kb = yaml.safe_load((BUILTIN_DIR / "knowledge_base" / "manifest.yaml").read_text())
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    # Same examples as the Help Center agent, so policy questions route to both.
    manifest.update(
        description="A mirror of the store's policies (returns, refunds, shipping, warranty): "
        + kb["description"],
        when_to_use=kb["when_to_use"],
        counter_examples=kb.get("counter_examples", []),
        timeout_s=timeout_s,
        tools=[{**manifest["tools"][0], "name": "search_policy_mirror"}],
    )
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    code = HANGING_AGENT.replace("HANG_S", repr(hang_s)).replace("COOPERATIVE", repr(cooperative))
    (folder / "agent.py").write_text(code)
    return folder


async def scenario_agent(
    n: int,
    _delay: float,
    *,
    hang_s: float = 90,
    timeout_s: float = 2,
    total_turns: int = 60,
    cooperative: bool = False,
) -> dict[str, Any]:
    from backend.app import create_app

    data_dir = work_dir("chaos-agent-")
    prepare_demo_data(data_dir)
    agents_root = data_dir / "agents"
    _hanging_agent_folder(agents_root, hang_s, timeout_s, cooperative)
    settings, embedded = _settings(data_dir, agent_paths=str(agents_root))
    app = create_app(settings)  # the real offline assistant, with the extra agent folder
    questions = [q for q in demo_questions() if any(w in q.lower() for w in ("return", "refund", "ship"))]
    try:
        with LiveServer(app) as srv:
            clients = sidebars(n, "agent")
            for c in clients:
                await c.connect(srv.url)
                await c.join()
            # Every sidebar asks policy questions back to back: hung calls pile up in the pool.
            t0 = time.perf_counter()
            rounds = []
            for r in range(max(1, total_turns // n)):
                turns = await asyncio.gather(
                    *(
                        c.ask(f"q{r}", questions[(r * n + i) % len(questions)], timeout=120)
                        for i, c in enumerate(clients)
                    )
                )
                rounds.extend(turns)
            elapsed = time.perf_counter() - t0
            agents_status = Counter()
            noted = 0
            for t in rounds:
                for name, a in ((t.routing or {}).get("agents") or {}).items():
                    agents_status[f"{name}:{a.get('status')}"] += 1
                # The answer names the missing source: timed out, or refused while its earlier
                # calls are still stuck ("is unavailable").
                if "timed out" in t.reply_text or "is unavailable" in t.reply_text:
                    noted += 1
            for c in clients:
                await c.close()
            await asyncio.sleep(0.5)
            lost = audit(clients, redis_url=settings.redis_url, archive_path=settings.sqlite_path)
    finally:
        stop_redis(embedded)
    done = [t for t in rounds if t.done is not None]
    routed = sum(1 for t in done if "policy_mirror" in ((t.routing or {}).get("agents") or {}))
    kb_ok = agents_status.get("knowledge_base:ok", 0)
    healthy_timeouts = sum(
        v for k, v in agents_status.items() if k.endswith(":timeout") and not k.startswith("policy_mirror:")
    )
    # How many hung calls had piled up when a healthy agent first timed out.
    hung_before, first_degraded = 0, None
    for i, t in enumerate(rounds):
        statuses = {k: a.get("status") for k, a in ((t.routing or {}).get("agents") or {}).items()}
        if any(v == "timeout" for k, v in statuses.items() if k != "policy_mirror"):
            first_degraded = {"turn": i + 1, "hung_calls_before": hung_before}
            break
        hung_before += statuses.get("policy_mirror") == "timeout"
    findings = []
    if healthy_timeouts:
        findings.append(
            f"healthy agents timed out {healthy_timeouts} times once hung calls piled up "
            f"(first at {first_degraded}): a tool that ignores cancellation keeps its worker thread "
            f"for {hang_s:g} s, and every agent of every turn shares the Assistant's one pool "
            "(orchestrator/orchestrator.py `Assistant.__post_init__`: ThreadPoolExecutor("
            "max_workers=OrchestratorConfig.max_workers=32)); once it is full, healthy agents queue "
            "behind the hung calls and time out too, so one bad agent degrades every answer of the "
            "instance. Suggested: a bounded pool (or semaphore) per agent, so a hung agent can only "
            "exhaust its own share."
        )
    return {
        "what": f"{n} sidebars; agent folder `policy_mirror` (AGENT_PATHS) whose tool hangs {hang_s:g} s "
        + ("but returns when the orchestrator cancels it; " if cooperative else "ignoring cancellation; ")
        + f"manifest timeout_s {timeout_s:g}; {total_turns} policy questions",
        "user_saw": {
            "turns": f"{len(done)}/{len(rounds)} completed",
            "errors": dict(Counter(str(t.error.get("code")) for t in rounds if t.error)),
            "routed_to_hanging_agent": routed,
            "answers_noting_the_unavailable_source": noted,
            "agent_statuses": dict(agents_status),
            "sample_answer_tail": next(
                (t.reply_text[-160:] for t in done if "timed out" in t.reply_text), None
            ),
            "done_latency": _summary([t.total() for t in done]),
        },
        "lost": lost,
        "recovery": {
            "turn_latency_bounded_by_agent_timeout_s": timeout_s,
            "elapsed_s": round(elapsed, 1),
            "knowledge_base_ok": kb_ok,
            "healthy_agent_timeouts": healthy_timeouts,
            "first_degraded": first_degraded,
        },
        "findings": findings,
        "passed": lost["lost"] == 0
        and len(done) == len(rounds)
        and routed > 0
        and noted >= routed
        and not healthy_timeouts,
    }


async def scenario_agent_cooperative(n: int, delay: float) -> dict[str, Any]:
    return await scenario_agent(n, delay, cooperative=True)


SCENARIOS = {
    "sigkill": scenario_sigkill,
    "redis": scenario_redis,
    "archive": scenario_archive,
    "vertex": scenario_vertex,
    "agent": scenario_agent,
    "agent-cooperative": scenario_agent_cooperative,
}


async def run(only: list[str], sessions: int, delay: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in only:
        t0 = time.monotonic()
        print(f"--- chaos: {name}", file=sys.stderr, flush=True)
        try:
            results[name] = await SCENARIOS[name](sessions, delay)
        except Exception as exc:  # a scenario that cannot even run is a failed scenario
            import traceback

            traceback.print_exc()
            results[name] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        results[name]["scenario_s"] = round(time.monotonic() - t0, 1)
        print(
            f"--- chaos: {name}: {'passed' if results[name]['passed'] else 'FAILED'}",
            file=sys.stderr,
            flush=True,
        )
    return {"parameters": {"sessions": sessions, "turn_delay_s": delay}, "scenarios": results}


TITLES = {
    "sigkill": "1. SIGKILL an instance mid-turn",
    "redis": "2. Restart Redis (empty) mid-turn",
    "archive": "3. Archive unavailable",
    "vertex": "4. Vertex 5xx / timeouts (fake server)",
    "agent": "5. An agent hanging",
    "agent-cooperative": "5b. An agent hanging, cancellation-aware",
}


def _headline(name: str, r: dict[str, Any]) -> str:
    """The one recovery number per scenario for the summary table."""
    rec = r.get("recovery") or {}
    try:
        if name == "sigkill":
            x = rec["interrupted_reply_completed_after_retry"]
            return f"interrupted reply answered after retry: p50 {x['p50_s']} s, max {x['max_s']} s after the kill"
        if name == "redis":
            x = rec["first_new_turn_completed"]
            return f"new turn completes {x.get('p50_s')} s (p50) after Redis went down ({rec['redis_down_s']} s down)"
        if name == "archive":
            return f"turns never stopped; all sidebars answered {rec['all_sidebars_completed_a_turn_after_s']} s after it returned"
        if name == "vertex":
            parts = [f"{k.removeprefix('after_')}: {v.get('p50_s')} s" for k, v in rec.items()]
            return "retry answered after heal (p50) — " + ", ".join(parts)
        if name.startswith("agent"):
            return f"every turn bounded by the agent timeout ({rec['turn_latency_bounded_by_agent_timeout_s']} s); healthy-agent timeouts {rec['healthy_agent_timeouts']}"
    except (KeyError, TypeError, AttributeError):
        pass
    return str(r.get("error", "see below"))[:80]


def markdown(d: dict[str, Any]) -> str:

    lines = [
        "# Chaos: one fault at a time, mid-turn",
        "",
        "{machine}Each scenario: what the user saw (events, errors, states), what was lost "
        "(acknowledged messages missing from the thread in Redis and the archive afterwards, or never "
        "settled; goal 0), and the time to recover. Parameters: "
        f"{d['parameters']['sessions']} sidebars per scenario.",
        "",
        *(
            [f"Scenarios not re-run in this run come from the run of {d['merged_from']} (`--merge`).", ""]
            if d.get("merged_from")
            else []
        ),
        "| Scenario | Result | Lost | Recovery |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in d["scenarios"].items():
        lines.append(
            f"| {TITLES[name]} | {'passed' if r['passed'] else '**FAILED**'} | "
            f"{(r.get('lost') or {}).get('lost', 'n/a')} | {_headline(name, r)} |"
        )
    for name, r in d["scenarios"].items():
        lines += ["", f"## {TITLES[name]}", ""]
        if "error" in r:
            lines.append(f"The scenario could not run: `{r['error']}`")
            continue
        lines.append(f"Setup: {r['what']}.")
        lines += ["", "What the user saw:", "", "```json", json.dumps(r["user_saw"], indent=1), "```"]
        lost = r["lost"]
        lines.append(
            f"\nLost: **{lost['lost']}** of {lost['acknowledged']} acknowledged "
            f"(unsettled {lost['unsettled']}, non-retryable errors {lost['non_retryable_errors']}, "
            f"missing {lost['missing'] or 'none'})."
        )
        if "double_fault" in r:
            lines.append(f"Double fault (archive down, then Redis loses the session): {r['double_fault']}.")
        lines += ["", "Recovery:", "", "```json", json.dumps(r["recovery"], indent=1), "```"]
        for f in r.get("findings", []):
            lines.append(f"\n**Finding:** {f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {list(SCENARIOS)}"
    )
    ap.add_argument("--sessions", type=int, default=10, help="sidebars per scenario")
    ap.add_argument("--turn-delay", type=float, default=0.2, help="echo handler: seconds per streamed word")
    ap.add_argument("--name", default="chaos", help="report name in bench/results/")
    ap.add_argument(
        "--merge", action="store_true", help="keep the other scenarios of the existing report, replace these"
    )
    add_report_args(ap)
    args = ap.parse_args(argv)
    if args.smoke:  # one in-process scenario, two sidebars, short turns
        args.only, args.sessions, args.turn_delay = "archive", 2, 0.05
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown or args.sessions < 2:
        ap.error(f"unknown scenarios {unknown}" if unknown else "--sessions ≥ 2")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    data = asyncio.run(run(only, args.sessions, args.turn_delay))
    previous = args.out_dir / f"{args.name}.json"
    if args.merge and previous.exists():
        old = json.loads(previous.read_text())
        merged = {k: v for k, v in old.get("scenarios", {}).items() if k in SCENARIOS}
        merged.update(data["scenarios"])
        data["scenarios"] = {k: merged[k] for k in SCENARIOS if k in merged}
        data["merged_from"] = old.get("when")
    jp, mp = write_report(args.name, data, markdown(data), args.out_dir)
    print(mp.read_text())
    print(f"reports: {jp} {mp}", file=sys.stderr)
    return 0 if all(r["passed"] for r in data["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
