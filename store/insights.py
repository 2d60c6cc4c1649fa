"""Insights for team leads: one row per answered question, kept in the session archive itself.

The archive's session documents already hold everything (questions, routing, timings, cost,
feedback, inserts), but reading them means parsing whole sessions — tickets of up to 64 kB
included — for every chart. So every archive write also rewrites that session's rows in
`SessionTurns`, a narrow table in the SAME store (same SQLite file, same Spanner database,
same write, same transaction), and the insights page runs a handful of GROUP BY queries on it
(bench/insights_bench.py measures both ways at 100k turns).

What a row may hold is deliberately small: ids, the question the agent typed, numbers and
flags. Never the answer text, never ticket text (customer content stays in the session document).

The same SQL runs on both backends: SQLite accepts `@name` parameters and case-insensitive
identifiers, and everything used (CASE, COUNT(DISTINCT), BETWEEN on ISO dates) is common to both.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from store.errors import ArchiveError

TURNS_TABLE = "SessionTurns"
TURNS_INDEX = "SessionTurnsByTenantDay"
MAX_QUESTION_CHARS = 500  # what an agent typed, clipped: enough to read, never a pasted ticket
MAX_GAP_ROWS = 2000  # newest declined/flagged questions a report clusters


@dataclass(frozen=True)
class TurnRow:
    """One question an agent asked and what became of it. Column names are the Spanner ones."""

    SessionId: str
    MessageId: str
    Tenant: str
    UserId: str
    UserName: str
    TicketId: str
    AskedAt: float
    Day: str  # UTC date, YYYY-MM-DD: the page's unit
    Question: str
    Status: str  # complete | error | interrupted | streaming
    Action: str  # route | respond | clarify | "" (no answer yet)
    Agents: str  # agents that ran, '+'-joined in the router's order
    LatencyS: float | None
    CostUsd: float
    InputTokens: int
    OutputTokens: int
    Rating: str | None  # up | down | None
    WrongSources: bool
    Declined: bool
    Draft: bool
    Inserted: bool


TURN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TurnRow))


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def turn_rows(
    *, session_id: str, tenant: str, user_id: str, ticket_id: str, data: Mapping[str, Any]
) -> list[TurnRow]:
    """The turn rows of one archived session document (backend.sessions.Session, as JSON).

    Pure and tolerant: a document of an older shape yields what it has, never an error."""
    thread = [m for m in data.get("thread") or [] if isinstance(m, Mapping)]
    replies = {m.get("reply_to"): m for m in thread if m.get("role") == "assistant" and m.get("reply_to")}
    feedback = {str(f.get("message_id")): f for f in data.get("feedback") or [] if isinstance(f, Mapping)}
    user_name = str(data.get("user_name") or "")[:256]
    rows: list[TurnRow] = []
    for msg in thread:
        if msg.get("role") != "user" or not msg.get("id"):
            continue
        reply = replies.get(msg["id"]) or {}
        meta = reply.get("meta") if isinstance(reply.get("meta"), Mapping) else {}
        routing = meta.get("routing") if isinstance(meta.get("routing"), Mapping) else {}
        decision_meta = routing.get("meta") if isinstance(routing.get("meta"), Mapping) else {}
        timings = meta.get("timings") if isinstance(meta.get("timings"), Mapping) else {}
        cost = meta.get("cost") if isinstance(meta.get("cost"), Mapping) else {}
        routes = routing.get("routes")
        if not isinstance(routes, list):
            routes = [
                r.get("agent") for s in routing.get("stages") or [] for r in s if isinstance(r, Mapping)
            ]
        fb = feedback.get(str(reply.get("id"))) or {}
        rating = fb.get("rating") if fb.get("rating") in ("up", "down") else None
        latency = timings.get("total_s")
        asked = _num(msg.get("created_at"), _num(data.get("created_at")))
        rows.append(
            TurnRow(
                SessionId=session_id,
                MessageId=str(msg["id"])[:64],
                Tenant=tenant,
                UserId=user_id,
                UserName=user_name,
                TicketId=ticket_id,
                AskedAt=asked,
                Day=day_of(asked),
                Question=str(msg.get("text") or "")[:MAX_QUESTION_CHARS],
                Status=str(reply.get("status") or "streaming")[:16],
                Action=str(routing.get("action") or "")[:16],
                Agents="+".join(str(a) for a in routes if a)[:512],
                LatencyS=_num(latency) if isinstance(latency, int | float) else None,
                CostUsd=_num(cost.get("cost_usd")),
                InputTokens=int(_num(cost.get("input_tokens"))),
                OutputTokens=int(_num(cost.get("output_tokens"))),
                Rating=rating,
                WrongSources="wrong_sources" in (fb.get("reasons") or []),
                Declined=bool(decision_meta.get("declined") or meta.get("declined")),
                Draft=bool(decision_meta.get("draft") or meta.get("draft")),
                Inserted=bool(meta.get("inserted")),
            )
        )
    return rows


def rebuild_turns(archive: Any, *, tenant: str | None = None) -> int:
    """Rewrite every session's rows from its document (a Spanner archive written before the
    table existed; SQLite backfills itself on open). Saving a record again at its own version is
    allowed by both backends' version guard and replaces its rows. Returns the sessions written."""
    written = 0
    for record in archive.iter_sessions(tenant=tenant, page_size=200):
        archive.save(record)
        written += 1
    return written


# --- SQLite twin: the table lives in the session archive's own file --------------------------------

SQLITE_TURNS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TURNS_TABLE} (
    SessionId    TEXT NOT NULL,
    MessageId    TEXT NOT NULL,
    Tenant       TEXT NOT NULL,
    UserId       TEXT NOT NULL,
    UserName     TEXT NOT NULL,
    TicketId     TEXT NOT NULL,
    AskedAt      REAL NOT NULL,
    Day          TEXT NOT NULL,
    Question     TEXT NOT NULL,
    Status       TEXT NOT NULL,
    Action       TEXT NOT NULL,
    Agents       TEXT NOT NULL,
    LatencyS     REAL,
    CostUsd      REAL NOT NULL,
    InputTokens  INTEGER NOT NULL,
    OutputTokens INTEGER NOT NULL,
    Rating       TEXT,
    WrongSources INTEGER NOT NULL,
    Declined     INTEGER NOT NULL,
    Draft        INTEGER NOT NULL,
    Inserted     INTEGER NOT NULL,
    -- Clustered by tenant and day: a report's range is one contiguous scan of the table itself
    -- (no lookups from an index), bench/insights_bench.py.
    PRIMARY KEY (Tenant, Day, SessionId, MessageId)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS SessionTurnsBySession ON {TURNS_TABLE} (SessionId);
"""

_SQLITE_INSERT = (
    f"INSERT OR REPLACE INTO {TURNS_TABLE} ({', '.join(TURN_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in TURN_COLUMNS)})"
)


def sqlite_turns_table_exists(conn: sqlite3.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TURNS_TABLE,)
        ).fetchone()
    )


def sqlite_write_turns(conn: sqlite3.Connection, session_id: str, rows: Sequence[TurnRow]) -> None:
    """Replace one session's rows (inside the caller's transaction)."""
    conn.execute(f"DELETE FROM {TURNS_TABLE} WHERE SessionId = ?", (session_id,))
    if rows:
        conn.executemany(_SQLITE_INSERT, [astuple(r) for r in rows])


def sqlite_delete_turns(conn: sqlite3.Connection, session_id: str) -> None:
    conn.execute(f"DELETE FROM {TURNS_TABLE} WHERE SessionId = ?", (session_id,))


# --- the queries -------------------------------------------------------------------------------------

_RANGE = "Tenant = @tenant AND Day BETWEEN @start AND @end"
# `{TURNS}` is the table (Spanner adds its index hint). Every query pins one tenant.
QUERIES: dict[str, str] = {
    "daily": f"""SELECT Day, COUNT(*), COUNT(DISTINCT UserId), COUNT(DISTINCT TicketId),
  SUM(CASE WHEN Rating = 'up' THEN 1 ELSE 0 END), SUM(CASE WHEN Rating = 'down' THEN 1 ELSE 0 END),
  SUM(CASE WHEN Inserted THEN 1 ELSE 0 END), SUM(CASE WHEN Draft THEN 1 ELSE 0 END),
  SUM(CASE WHEN Draft AND Inserted THEN 1 ELSE 0 END), SUM(CASE WHEN Declined THEN 1 ELSE 0 END),
  SUM(CASE WHEN WrongSources THEN 1 ELSE 0 END), SUM(CASE WHEN Status = 'error' THEN 1 ELSE 0 END),
  SUM(CostUsd), SUM(InputTokens), SUM(OutputTokens)
FROM {{TURNS}} WHERE {_RANGE} GROUP BY Day ORDER BY Day""",
    "agents": f"""SELECT UserId, MAX(UserName), Day, COUNT(*), COUNT(DISTINCT TicketId),
  SUM(CASE WHEN Inserted THEN 1 ELSE 0 END)
FROM {{TURNS}} WHERE {_RANGE} GROUP BY UserId, Day ORDER BY UserId, Day""",
    "latency": f"""SELECT Action, Agents, LatencyS
FROM {{TURNS}} WHERE {_RANGE} AND Status = 'complete' AND LatencyS IS NOT NULL""",
    "routes": f"""SELECT Action, Agents, COUNT(*)
FROM {{TURNS}} WHERE {_RANGE} GROUP BY Action, Agents""",
    # Tickets touched, distinct over the whole range (a ticket two agents worked on, or one agent on
    # two days, is one).
    "reach": f"""SELECT COUNT(DISTINCT TicketId)
FROM {{TURNS}} WHERE {_RANGE}""",
    "gaps": f"""SELECT MessageId, TicketId, UserId, AskedAt, Question, Declined, WrongSources
FROM {{TURNS}} WHERE {_RANGE} AND (Declined OR WrongSources)
ORDER BY AskedAt DESC LIMIT @limit""",
}


@dataclass(frozen=True)
class DailyRow:
    day: str
    questions: int
    agents: int
    tickets: int
    thumbs_up: int
    thumbs_down: int
    inserted: int
    drafts: int
    drafts_inserted: int
    declined: int
    wrong_sources: int
    errors: int
    cost_usd: float
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class AgentDayRow:
    user_id: str
    user_name: str
    day: str
    questions: int
    tickets: int
    inserted: int


@dataclass(frozen=True)
class GapRow:
    message_id: str
    ticket_id: str
    user_id: str
    asked_at: float
    question: str
    declined: bool
    wrong_sources: bool


@dataclass(frozen=True)
class RawInsights:
    """What the queries return for one tenant and date range; backend/insights.py shapes it."""

    daily: list[DailyRow]
    agents: list[AgentDayRow]
    latency: list[tuple[str, str, float]]  # (action, agents, seconds)
    routes: list[tuple[str, str, int]]  # (action, agents, questions)
    gaps: list[GapRow]
    tickets: int = 0  # distinct tickets touched in the range


class InsightsQueries(Protocol):
    def fetch(self, tenant: str, start: str, end: str, *, gap_limit: int = MAX_GAP_ROWS) -> RawInsights: ...


def shape(rows_by_query: Mapping[str, list[Sequence[Any]]]) -> RawInsights:
    """Query results (as tuples, in the SELECT order above) → typed rows; NULL sums read as 0."""

    def i(v: Any) -> int:
        return int(v or 0)

    return RawInsights(
        daily=[
            DailyRow(str(r[0]), *(i(v) for v in r[1:12]), float(r[12] or 0.0), i(r[13]), i(r[14]))
            for r in rows_by_query["daily"]
        ],
        agents=[
            AgentDayRow(str(r[0]), str(r[1] or ""), str(r[2]), i(r[3]), i(r[4]), i(r[5]))
            for r in rows_by_query["agents"]
        ],
        latency=[(str(r[0]), str(r[1]), float(r[2])) for r in rows_by_query["latency"]],
        routes=[(str(r[0]), str(r[1]), i(r[2])) for r in rows_by_query["routes"]],
        gaps=[
            GapRow(str(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4]), bool(r[5]), bool(r[6]))
            for r in rows_by_query["gaps"]
        ],
        tickets=i(rows_by_query["reach"][0][0]) if rows_by_query["reach"] else 0,
    )


def check_range(tenant: str, start: str, end: str) -> None:
    if not tenant:
        raise ValueError("a tenant is required: insights never span tenants")
    for value in (start, end):
        datetime.strptime(value, "%Y-%m-%d")  # ValueError on anything but an ISO date
    if start > end:
        raise ValueError("start is after end")


class SqliteInsights:
    """Insights queries on the SQLite archive file, on a read connection of their own (WAL: the
    page's reads never wait behind the write-behind path's lock)."""

    def __init__(self, path: str | Path) -> None:
        from store.sqlite_util import connect_wal

        # The archive (store/sessions.py) creates the table; this connection only reads.
        self._conn = connect_wal(path)
        self._lock = threading.Lock()

    def fetch(self, tenant: str, start: str, end: str, *, gap_limit: int = MAX_GAP_ROWS) -> RawInsights:
        check_range(tenant, start, end)
        params = {"tenant": tenant, "start": start, "end": end, "limit": int(gap_limit)}
        out: dict[str, list[Sequence[Any]]] = {}
        try:
            with self._lock:
                # One read transaction: every chart sees the same snapshot.
                self._conn.execute("BEGIN")
                try:
                    for name, sql in QUERIES.items():
                        out[name] = self._conn.execute(sql.replace("{TURNS}", TURNS_TABLE), params).fetchall()
                finally:
                    self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ArchiveError(f"sqlite insights read failed: {exc}") from exc
        return shape(out)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
