"""Insights rows written by the archive's own save, queried on both backends.

SQLite always runs; Spanner runs against the emulator when SPANNER_EMULATOR_HOST is set (the
same rule as test_store_backends.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from store.factory import open_session_archive
from store.insights import SqliteInsights, day_of, rebuild_turns
from store.sessions import SessionRecord

T0 = 1_790_000_000.0  # 2026-09-21 UTC
DAY = day_of(T0)


@pytest.fixture
def insights(backend: str, tmp_path: Path, spanner_config, archive):
    if backend == "sqlite":
        q = SqliteInsights(tmp_path / "a.sqlite3")
    else:
        from store.spanner.insights import SpannerInsights

        q = SpannerInsights(spanner_config)
    yield q
    q.close()


def session(
    tenant: str, user: str, ticket: str, turns: list[dict[str, Any]], *, version: int = 1
) -> SessionRecord:
    """A session document shaped like backend.sessions.Session.model_dump(mode='json')."""
    thread: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for n, t in enumerate(turns):
        mid = f"m{n}"
        thread.append({"id": mid, "role": "user", "text": t["q"], "created_at": t.get("at", T0 + n)})
        meta: dict[str, Any] = {
            "routing": {
                "action": t.get("action", "route"),
                "routes": t.get("routes", ["knowledge_base"]),
                "meta": {k: True for k in ("declined", "draft") if t.get(k)},
            },
            "timings": {"total_s": t.get("latency", 0.5)},
            "cost": {"cost_usd": t.get("cost", 0.001), "input_tokens": 100, "output_tokens": 20},
        }
        if t.get("inserted"):
            meta["inserted"] = {"at": T0 + n, "count": 1}
        thread.append(
            {
                "id": f"{mid}.reply",
                "role": "assistant",
                "text": "ANSWER TEXT " + t["q"],
                "status": t.get("status", "complete"),
                "reply_to": mid,
                "meta": meta,
            }
        )
        if t.get("rating"):
            feedback.append(
                {"message_id": f"{mid}.reply", "rating": t["rating"], "reasons": t.get("reasons", [])}
            )
    sid = f"{tenant}-{user}-{ticket}"
    data = {
        "id": sid,
        "tenant": tenant,
        "user_id": user,
        "user_name": user.title(),
        "ticket_id": ticket,
        "ticket": {"id": ticket, "description": "CUSTOMER TICKET TEXT"},
        "thread": thread,
        "feedback": feedback,
    }
    return SessionRecord(sid, tenant, user, ticket, version, data, T0)


def test_rows_follow_every_save_and_answer_the_queries(archive, insights) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    other = f"o-{uuid.uuid4().hex[:8]}"
    archive.save(
        session(
            tenant,
            "ann",
            "101",
            [
                {"q": "refund window for kettles?", "rating": "up", "inserted": True},
                {"q": "gift wrap for a sofa?", "declined": True, "routes": [], "action": "route"},
            ],
        )
    )
    archive.save(
        session(
            tenant,
            "bob",
            "102",
            [
                {"q": "write a reply about the delay", "draft": True, "inserted": True, "latency": 1.5},
                {
                    "q": "warranty on lamps?",
                    "rating": "down",
                    "reasons": ["wrong_sources"],
                    "routes": ["macros"],
                },
            ],
        )
    )
    archive.save(session(other, "eve", "900", [{"q": "other tenant secret question"}]))
    raw = insights.fetch(tenant, DAY, DAY)
    (daily,) = raw.daily
    assert (daily.questions, daily.agents, daily.tickets) == (4, 2, 2)
    assert (daily.thumbs_up, daily.thumbs_down, daily.inserted) == (1, 1, 2)
    assert (daily.drafts, daily.drafts_inserted, daily.declined, daily.wrong_sources) == (1, 1, 1, 1)
    assert daily.cost_usd == pytest.approx(0.004) and daily.input_tokens == 400
    assert sorted((a.user_id, a.questions, a.tickets, a.inserted) for a in raw.agents) == [
        ("ann", 2, 1, 1),
        ("bob", 2, 1, 1),
    ]
    assert sorted(raw.routes) == [("route", "", 1), ("route", "knowledge_base", 2), ("route", "macros", 1)]
    assert sorted(g.question for g in raw.gaps) == ["gift wrap for a sofa?", "warranty on lamps?"]
    assert all(g.ticket_id in ("101", "102") for g in raw.gaps)
    assert sorted(s for _, _, s in raw.latency) == [0.5, 0.5, 0.5, 1.5]
    # Tenant isolation is in the query: the other tenant's question never comes back.
    flat = repr(raw)
    assert "other tenant secret" not in flat
    # No answer text and no ticket text ever reach the rows.
    assert "ANSWER TEXT" not in flat and "CUSTOMER TICKET" not in flat

    # A newer version replaces the rows; an older one changes nothing.
    archive.save(session(tenant, "ann", "101", [{"q": "only question now"}], version=5))
    archive.save(session(tenant, "ann", "101", [{"q": "stale"}, {"q": "stale 2"}], version=3))
    assert insights.fetch(tenant, DAY, DAY).daily[0].questions == 3
    # Deleting a session deletes its rows.
    archive.delete(f"{tenant}-bob-102")
    assert insights.fetch(tenant, DAY, DAY).daily[0].questions == 1


def test_date_range_is_inclusive_and_validated(archive, insights) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    archive.save(
        session(tenant, "ann", "1", [{"q": "day one", "at": T0}, {"q": "day three", "at": T0 + 2 * 86400}])
    )
    assert [d.day for d in insights.fetch(tenant, DAY, day_of(T0 + 2 * 86400)).daily] == [
        DAY,
        day_of(T0 + 2 * 86400),
    ]
    assert [d.day for d in insights.fetch(tenant, day_of(T0 + 86400), day_of(T0 + 86400)).daily] == []
    for bad in (("", DAY, DAY), (tenant, "2026-13-01", DAY), (tenant, DAY, "yesterday")):
        with pytest.raises(ValueError):
            insights.fetch(*bad)
    with pytest.raises(ValueError):
        insights.fetch(tenant, day_of(T0 + 86400), DAY)


def test_sqlite_archive_written_before_insights_is_backfilled_on_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    arc = open_session_archive("sqlite", sqlite_path=path)
    arc.save(session("demo", "ann", "7", [{"q": "an old question"}]))
    arc.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE SessionTurns")  # as an archive from before this table existed
    conn.commit()
    conn.close()
    arc = open_session_archive("sqlite", sqlite_path=path)
    q = SqliteInsights(path)
    assert [g.question for g in q.fetch("demo", DAY, DAY).gaps] == []
    assert q.fetch("demo", DAY, DAY).daily[0].questions == 1
    q.close()
    arc.close()


def test_insights_benchmark_runs_at_toy_scale(tmp_path: Path) -> None:
    """bench/insights_bench.py end to end (write path, both query ways, report writer), in seconds."""
    import json

    from bench.insights_bench import main

    assert main(["--smoke", "--out-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "insights.json").read_text())
    assert data["archive"]["turn_rows"] == 600 and len(data["ranges"]) == 3
    assert "SessionTurns: whole report" in (tmp_path / "insights.md").read_text()


def test_rebuild_turns_rewrites_every_sessions_rows(archive, insights) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    archive.save(session(tenant, "ann", "1", [{"q": "one"}, {"q": "two"}]))
    archive.save(session(tenant, "bob", "2", [{"q": "three"}]))
    _drop_rows(insights, tenant)  # as sessions archived before the table existed
    assert insights.fetch(tenant, DAY, DAY).daily == []
    assert rebuild_turns(archive, tenant=tenant) == 2
    assert insights.fetch(tenant, DAY, DAY).daily[0].questions == 3


def _drop_rows(insights, tenant: str) -> None:
    if isinstance(insights, SqliteInsights):
        insights._conn.execute("DELETE FROM SessionTurns WHERE Tenant = ?", (tenant,))
        return
    from google.cloud.spanner_v1 import param_types as pt

    insights._db.run_in_transaction(
        lambda txn: txn.execute_update(
            "DELETE FROM SessionTurns WHERE Tenant = @t", params={"t": tenant}, param_types={"t": pt.STRING}
        )
    )


def test_sqlite_read_failure_is_an_archive_error(tmp_path: Path) -> None:
    from store.sessions import ArchiveError

    q = SqliteInsights(tmp_path / "not-an-archive.sqlite3")  # no SessionTurns table
    with pytest.raises(ArchiveError, match="insights read failed"):
        q.fetch("demo", DAY, DAY)
    q.close()
