"""Insights queries at 100k archived turns: the SessionTurns table vs. querying the session JSON.

An archive of ~20k sessions holding 100k questions (three tenants, 60 days, 40 agents each,
session documents shaped like backend.sessions.Session with a ticket and model history) is
written through the archive's own `save` (so the turn rows come from the real write path), then:

- **report**: what the page asks for — `SqliteInsights.fetch` (six aggregate queries) plus
  `build_report` (percentiles, gap topics) — for the demo tenant over 7, 30 and 60 days;
- **JSON, SQL**: the daily totals alone, computed by SQLite's json_each over the session documents
  (what "query the JSON" would mean without a table), same tenant and ranges;
- **JSON, scan**: the full report from the session documents in Python (iter_sessions +
  turn_rows, what backend/learning.py does for its export);
- **write cost**: `save` p50/p95 with the turn rows vs. without (the sessions table alone);
- **Spanner emulator** (when SPANNER_EMULATOR_HOST is set): the same report queries on
  `SessionTurns` through its index. The emulator is an in-memory functional twin, so its times
  say nothing about production Spanner; they show the queries run at this size.

`python -m bench.insights_bench [--turns 100000] [--smoke]` → bench/results/insights.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from backend.insights import build_report
from bench.common import add_report_args, percentiles, write_report
from store.insights import SqliteInsights, day_of, turn_rows
from store.sessions import SessionRecord, SqliteSessionArchive

DAY_S = 86400
TENANTS = (("demo", 0.7), ("acme", 0.2), ("globex", 0.1))
QUESTIONS = [
    "where is order BO-{n}",
    "can the customer return a sofa after {d} days",
    "what is the refund window for damaged items",
    "draft a reply about the delayed parcel",
    "do we offer gift wrap for order BO-{n}",
    "warranty on lamp {n}",
    "how do I reset the customer's password",
    "can we add engraving to a kettle",
    "is express shipping available to Austria",
    "wie lange dauert die Rückerstattung",
    "why was the customer charged twice for BO-{n}",
    "can we split the delivery of order BO-{n}",
]
TICKET_TEXT = (
    "Hello, I ordered a walnut side table and a set of linen napkins three weeks ago. The tracking "
    "page has not moved for ten days and the courier says the parcel was handed back to the depot. "
) * 8


def session_doc(
    rng: random.Random, tenant: str, user: str, ticket: str, start: float, turns: int
) -> dict[str, Any]:
    thread, feedback, history = [], [], []
    for n in range(turns):
        at = start + n * rng.uniform(20, 300)
        q = rng.choice(QUESTIONS).format(n=rng.randint(100000, 999999), d=rng.randint(10, 90))
        mid = f"m{n}-{uuid.uuid4().hex[:8]}"
        declined = rng.random() < 0.08
        draft = q.startswith("draft")
        routes = (
            []
            if rng.random() < 0.05
            else rng.choice(
                [["knowledge_base"], ["order_lookup"], ["knowledge_base", "macros"], ["similar_tickets"]]
            )
        )
        answer = "Refunds reach the card within 5 to 7 business days after the return arrives [1]. " * 6
        meta = {
            "routing": {"action": "route" if routes else "respond", "routes": routes, "router": "semantic-head",
                        "confidence": 0.8, "meta": {k: True for k, on in (("declined", declined), ("draft", draft)) if on}},
            "timings": {"route_s": 0.01, "agents_s": 0.2, "total_s": round(rng.lognormvariate(-1.2, 0.5), 4)},
            "cost": {"calls": 1, "input_tokens": rng.randint(500, 3000), "output_tokens": rng.randint(50, 400),
                     "cost_usd": round(rng.uniform(0.0002, 0.003), 6)},
        }  # fmt: skip
        if rng.random() < 0.25:
            meta["inserted"] = {"count": 1, "first_at": at + 30, "user_id": user}
        thread.append({"id": mid, "role": "user", "text": q, "status": "complete", "created_at": at})
        thread.append(
            {
                "id": f"{mid}.reply",
                "role": "assistant",
                "text": answer,
                "status": "complete",
                "created_at": at + 1,
                "reply_to": mid,
                "citations": [],
                "meta": meta,
            }
        )
        history += [{"role": "user", "text": q}, {"role": "assistant", "text": answer}]
        r = rng.random()
        if r < 0.26:
            reasons = ["wrong_sources"] if r < 0.03 else []
            feedback.append(
                {
                    "message_id": f"{mid}.reply",
                    "rating": "down" if r < 0.06 else "up",
                    "reasons": reasons,
                    "user_id": user,
                    "at": at + 60,
                }
            )
    return {
        "tenant": tenant, "user_id": user, "user_name": user.title(), "ticket_id": ticket,
        "ticket": {"id": ticket, "subject": "Parcel stuck at the depot", "description": TICKET_TEXT,
                   "comments": [{"author": {"role": "end-user"}, "value": TICKET_TEXT}]},
        "thread": thread, "model_history": history[-20:], "routing_history": [], "feedback": feedback,
        "usage": {}, "version": 1, "created_at": start, "updated_at": start + turns * 300,
    }  # fmt: skip


def generate(total_turns: int, days: int, seed: int = 7):
    """(record, turns) pairs until `total_turns` questions exist; `now` is the newest day's end."""
    rng = random.Random(seed)
    now = time.time()
    made = 0
    while made < total_turns:
        tenant = rng.choices([t for t, _ in TENANTS], [w for _, w in TENANTS])[0]
        user = f"agent-{rng.randint(1, 40)}"
        ticket = str(rng.randint(40000, 99999))
        turns = min(rng.randint(1, 9), total_turns - made)
        start = now - rng.uniform(0, days * DAY_S)
        sid = uuid.uuid4().hex
        data = session_doc(rng, tenant, user, ticket, start, turns)
        data["id"] = sid
        made += turns
        yield SessionRecord(sid, tenant, user, ticket, 1, data, data["updated_at"]), turns


def timed(fn, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per run. The machine is shared: CPU time (this process, SQLite
    included: it runs in the calling thread) is what the work costs; wall time adds the wait."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def both(times: tuple[list[float], list[float]]) -> dict[str, dict[str, float]]:
    return {"wall": percentiles(times[0]), "cpu": percentiles(times[1])}


JSON_DAILY = """
SELECT date(json_extract(m.value, '$.created_at'), 'unixepoch') AS day, COUNT(*),
       COUNT(DISTINCT s.user_id), COUNT(DISTINCT s.ticket_id)
FROM sessions s, json_each(s.data, '$.thread') m
WHERE s.tenant = ? AND s.updated_at >= ? AND json_extract(m.value, '$.role') = 'user'
  AND day BETWEEN ? AND ?
GROUP BY day ORDER BY day"""


def json_scan_report(archive: SqliteSessionArchive, tenant: str, start: str, end: str, since: float) -> dict:
    """The full report without the table: every session document of the range, parsed."""
    from store.insights import AgentDayRow, DailyRow, GapRow, RawInsights

    rows = [
        r
        for rec in archive.iter_sessions(tenant=tenant, since=since, page_size=500)
        for r in turn_rows(
            session_id=rec.session_id,
            tenant=rec.tenant,
            user_id=rec.user_id,
            ticket_id=rec.ticket_id,
            data=rec.data,
        )
        if start <= r.Day <= end
    ]
    by_day: dict[str, list] = {}
    for r in rows:
        by_day.setdefault(r.Day, []).append(r)
    daily = [
        DailyRow(d, len(rs), len({r.UserId for r in rs}), len({r.TicketId for r in rs}),
                 sum(r.Rating == "up" for r in rs), sum(r.Rating == "down" for r in rs), sum(r.Inserted for r in rs),
                 sum(r.Draft for r in rs), sum(r.Draft and r.Inserted for r in rs), sum(r.Declined for r in rs),
                 sum(r.WrongSources for r in rs), sum(r.Status == "error" for r in rs), sum(r.CostUsd for r in rs),
                 sum(r.InputTokens for r in rs), sum(r.OutputTokens for r in rs))
        for d, rs in sorted(by_day.items())
    ]  # fmt: skip
    agents: dict[tuple[str, str], list] = {}
    for r in rows:
        agents.setdefault((r.UserId, r.Day), []).append(r)
    raw = RawInsights(
        daily=daily,
        agents=[
            AgentDayRow(
                u, rs[0].UserName, d, len(rs), len({r.TicketId for r in rs}), sum(r.Inserted for r in rs)
            )
            for (u, d), rs in sorted(agents.items())
        ],
        latency=[
            (r.Action, r.Agents, r.LatencyS)
            for r in rows
            if r.Status == "complete" and r.LatencyS is not None
        ],
        routes=[],
        gaps=sorted(
            (
                GapRow(r.MessageId, r.TicketId, r.UserId, r.AskedAt, r.Question, r.Declined, r.WrongSources)
                for r in rows
                if r.Declined or r.WrongSources
            ),
            key=lambda g: -g.asked_at,
        )[:2000],
        tickets=len({r.TicketId for r in rows}),
    )
    return build_report(raw, start, end)


def write_cost(records: list[SessionRecord], folder: Path) -> dict[str, dict[str, float]]:
    """save() latency with the turn rows and with the sessions table alone (same records)."""
    import store.sessions as sessions_module

    out = {}
    for label, rows_of in (("with turn rows", sessions_module._turns_of), ("sessions only", lambda r: [])):
        arc = SqliteSessionArchive(folder / f"write-{label.replace(' ', '-')}.sqlite3")
        original = sessions_module._turns_of
        sessions_module._turns_of = rows_of
        try:
            out[label] = percentiles(timed_each(arc, records))
        finally:
            sessions_module._turns_of = original
            arc.close()
    return out


def timed_each(arc: SqliteSessionArchive, records: list[SessionRecord]) -> list[float]:
    times = []
    for rec in records:
        t0 = time.perf_counter()
        arc.save(rec)
        times.append(time.perf_counter() - t0)
    return times


def spanner_run(
    records: list[SessionRecord], ranges: list[tuple[str, str, float]], repeat: int
) -> dict[str, Any]:
    """Load the same sessions and turn rows into a fresh emulator database with batched
    mutations, then time the report queries (emulator: functional, not a performance model)."""
    from store.insights import TURN_COLUMNS
    from store.spanner import SpannerConfig
    from store.spanner.ddl import SESSIONS_TABLE, TURNS_TABLE
    from store.spanner.insights import SpannerInsights
    from store.spanner.provision import drop_database, ensure_database

    config = SpannerConfig.from_env(database=f"ib{uuid.uuid4().hex[:10]}")
    ensure_database(config)
    try:
        from google.cloud.spanner_v1 import JsonObject

        queries = SpannerInsights(config)
        db = queries._db
        cols = ("SessionId", "Tenant", "UserId", "TicketId", "Version", "UpdatedAt", "Data", "CommittedAt")
        from google.cloud.spanner_v1 import COMMIT_TIMESTAMP

        t0 = time.perf_counter()
        for i in range(0, len(records), 200):
            chunk = records[i : i + 200]
            turns = [
                tuple(getattr(t, c) for c in TURN_COLUMNS)
                for r in chunk
                for t in turn_rows(
                    session_id=r.session_id,
                    tenant=r.tenant,
                    user_id=r.user_id,
                    ticket_id=r.ticket_id,
                    data=r.data,
                )
            ]
            with db.batch() as batch:
                batch.insert(
                    SESSIONS_TABLE,
                    cols,
                    [
                        (
                            r.session_id,
                            r.tenant,
                            r.user_id,
                            r.ticket_id,
                            r.version,
                            r.updated_at,
                            JsonObject(r.data),
                            COMMIT_TIMESTAMP,
                        )
                        for r in chunk
                    ],
                )
                batch.insert(TURNS_TABLE, TURN_COLUMNS, turns)
        load_s = time.perf_counter() - t0
        out: dict[str, Any] = {"load_s": round(load_s, 1)}
        for start, end, _ in ranges:
            times = timed(lambda s=start, e=end: build_report(queries.fetch("demo", s, e), s, e), repeat)
            out[f"{start}..{end}"] = percentiles(times[0])
        return out
    finally:
        drop_database(config)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=30)
    add_report_args(ap)
    args = ap.parse_args(argv)
    if args.smoke:
        args.turns, args.repeat = 600, 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "archive.sqlite3"
        archive = SqliteSessionArchive(path)
        print(f"writing {args.turns} turns through SqliteSessionArchive.save …", flush=True)
        records: list[SessionRecord] = []
        t0 = time.perf_counter()
        for rec, _ in generate(args.turns, args.days):
            archive.save(rec)
            records.append(rec)
        write_s = time.perf_counter() - t0
        with sqlite3.connect(path) as conn:
            counts = {
                "sessions": conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0],
                "turn_rows": conn.execute("SELECT COUNT(*) FROM SessionTurns").fetchone()[0],
                "demo_turn_rows": conn.execute(
                    "SELECT COUNT(*) FROM SessionTurns WHERE Tenant = 'demo'"
                ).fetchone()[0],
            }
        size_mib = round(os.path.getsize(path) / 2**20, 1)
        queries = SqliteInsights(path)
        today = time.time()
        ranges = [
            (day_of(today - (n - 1) * DAY_S), day_of(today), today - (n + 1) * DAY_S)
            for n in (7, 30, args.days)
        ]
        results: list[dict[str, Any]] = []
        build_report(queries.fetch("demo", *ranges[0][:2]), *ranges[0][:2])  # warm-up: imports, caches
        for start, end, since in ranges:
            n_days = (
                time.mktime(time.strptime(end, "%Y-%m-%d")) - time.mktime(time.strptime(start, "%Y-%m-%d"))
            ) / DAY_S + 1
            fetch = timed(lambda s=start, e=end: queries.fetch("demo", s, e), args.repeat)
            full = timed(lambda s=start, e=end: build_report(queries.fetch("demo", s, e), s, e), args.repeat)
            conn = sqlite3.connect(path)
            json_sql = timed(
                lambda c=conn, s=start, e=end, since=since: c.execute(
                    JSON_DAILY, ("demo", since, s, e)
                ).fetchall(),
                max(3, args.repeat // 6),
            )
            conn.close()
            scan = timed(
                lambda s=start, e=end, since=since: json_scan_report(archive, "demo", s, e, since),
                max(2, args.repeat // 10),
            )
            rows = sum(d.questions for d in queries.fetch("demo", start, end).daily)
            results.append(
                {
                    "range": f"{start}..{end}",
                    "days": round(n_days),
                    "demo_questions": rows,
                    "table_queries": both(fetch),
                    "table_report": both(full),
                    "json_sql_daily_only": both(json_sql),
                    "json_scan_report": both(scan),
                }
            )
            print(
                f"{start}..{end}: {rows} questions; report p95 {results[-1]['table_report']['wall']['p95']} ms "
                f"(CPU {results[-1]['table_report']['cpu']['p95']}), JSON daily-only p95 "
                f"{results[-1]['json_sql_daily_only']['wall']['p95']} ms, JSON scan p95 "
                f"{results[-1]['json_scan_report']['wall']['p95']} ms",
                flush=True,
            )
        sample = random.Random(1).sample(records, min(len(records), 300 if args.smoke else 2000))
        writes = write_cost(sample, folder)
        spanner = None
        if os.environ.get("SPANNER_EMULATOR_HOST"):
            print("loading the Spanner emulator …", flush=True)
            spanner = spanner_run(records, ranges, max(3, args.repeat // 3))
        queries.close()
        archive.close()
    data = {
        "turns": args.turns, "days": args.days, "repeat": args.repeat, "smoke": args.smoke,
        "archive": {**counts, "sqlite_mib": size_mib, "write_s": round(write_s, 1)},
        "ranges": results, "write_cost_ms": writes, "spanner_emulator": spanner,
    }  # fmt: skip
    write_report("insights", data, markdown(data), args.out_dir)
    return 0


def markdown(d: dict[str, Any]) -> str:
    a = d["archive"]
    lines = [
        "# Insights queries at scale",
        "",
        "{machine}"
        f"Archive: {a['sessions']:,} sessions, {a['turn_rows']:,} questions ({a['demo_turn_rows']:,} of the demo "
        f"tenant) over {d['days']} days, SQLite file {a['sqlite_mib']} MiB, written through "
        f"`SqliteSessionArchive.save` in {a['write_s']} s. Times in ms (p50 / p95), demo tenant, "
        f"{d['repeat']} runs per range (fewer for the JSON rows). Each cell: wall p50 / **p95**, then "
        "CPU p95 (this process, SQLite included): the machine is shared and oversubscribed (load average "
        "above), so wall time includes waiting for a core.",
        "",
        "| Range | Questions | SessionTurns: the 6 queries | SessionTurns: whole report (queries + topics) "
        "| JSON in SQL: daily totals only | JSON scan: whole report |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in d["ranges"]:
        cells = [
            f"{r[k]['wall']['p50']} / **{r[k]['wall']['p95']}** (CPU {r[k]['cpu']['p95']})"
            for k in ("table_queries", "table_report", "json_sql_daily_only", "json_scan_report")
        ]
        lines.append(f"| {r['days']} days | {r['demo_questions']:,} | " + " | ".join(cells) + " |")
    w = d["write_cost_ms"]
    lines += [
        "",
        "Write cost of the turn rows (`save`, same session documents, ms): "
        + ", ".join(f"{k} p50 {v['p50']} / p95 {v['p95']}" for k, v in w.items())
        + ".",
    ]
    if d.get("spanner_emulator"):
        s = d["spanner_emulator"]
        cells = ", ".join(f"{k}: {v['p50']} / **{v['p95']}**" for k, v in s.items() if k != "load_s")
        lines += [
            "",
            f"Spanner **emulator** (same rows, loaded in {s['load_s']} s by batched mutations), whole report, "
            f"p50 / p95 ms: {cells}. The emulator is an in-memory functional twin, not a performance "
            "model: this shows the queries and index run at this size, not production latency.",
        ]
    else:
        lines += ["", "Spanner: not measured (SPANNER_EMULATOR_HOST unset); the SQL's shape is unit-tested."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
