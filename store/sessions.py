"""Session archive: the durable copy of every chat session.

Redis holds live sessions; the archive keeps them after their Redis TTL expires and after
Redis itself is lost. Records are opaque JSON documents plus the few columns queries need,
so the archive never has to know the session schema the backend evolves.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from store.errors import ArchiveError
from store.insights import (
    SQLITE_TURNS_SCHEMA,
    TurnRow,
    sqlite_delete_turns,
    sqlite_turns_table_exists,
    sqlite_write_turns,
    turn_rows,
)
from store.sqlite_util import connect_wal


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    tenant: str
    user_id: str
    ticket_id: str
    version: int
    data: dict[str, Any]
    updated_at: float = field(default_factory=time.time)


@runtime_checkable
class SessionArchive(Protocol):
    """Durable session storage. Implementations must be thread-safe."""

    def save(self, record: SessionRecord) -> None:
        """Insert or replace; an older version never overwrites a newer one."""

    def load(self, session_id: str) -> SessionRecord | None: ...

    def delete(self, session_id: str) -> bool: ...

    def list_by_ticket(self, tenant: str, ticket_id: str) -> list[SessionRecord]: ...

    def iter_sessions(
        self, *, tenant: str | None = None, since: float | None = None, page_size: int = 200
    ) -> Iterator[SessionRecord]:
        """Every session (of one tenant, updated at or after `since`), in session-id order,
        fetched `page_size` at a time so offline jobs (feedback export) can walk a big archive."""
        ...

    def ping(self) -> None:
        """Raise ArchiveError when the archive is unreachable (used by /readyz)."""

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    ticket_id  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_ticket ON sessions (tenant, ticket_id);
"""


class SqliteSessionArchive:
    """One SQLite file; WAL so several server processes on one host can share it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = connect_wal(self.path)
        self._conn.executescript(_SCHEMA)
        # Insights' per-question rows live in this same file, written with each session (store/insights.py).
        new_table = not sqlite_turns_table_exists(self._conn)
        self._conn.executescript(SQLITE_TURNS_SCHEMA)
        if new_table:
            self._backfill_turns()

    def save(self, record: SessionRecord) -> None:
        payload = json.dumps(record.data, separators=(",", ":"), ensure_ascii=False)
        try:
            with self._lock:
                # One transaction: the session and its insights rows never disagree.
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    # The version guard keeps a slow write-behind from clobbering a newer snapshot.
                    cur = self._conn.execute(
                        """
                        INSERT INTO sessions (session_id, tenant, user_id, ticket_id, version, updated_at, data)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(session_id) DO UPDATE SET
                            version = excluded.version, updated_at = excluded.updated_at, data = excluded.data
                        WHERE excluded.version >= sessions.version
                        """,
                        (
                            record.session_id,
                            record.tenant,
                            record.user_id,
                            record.ticket_id,
                            record.version,
                            record.updated_at,
                            payload,
                        ),
                    )
                    if cur.rowcount > 0:
                        sqlite_write_turns(self._conn, record.session_id, _turns_of(record))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ArchiveError(f"sqlite archive write failed: {exc}") from exc

    def load(self, session_id: str) -> SessionRecord | None:
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT session_id, tenant, user_id, ticket_id, version, updated_at, data "
                    "FROM sessions WHERE session_id = ?",
                    (session_id,),
                ).fetchone()
        except sqlite3.Error as exc:
            raise ArchiveError(f"sqlite archive read failed: {exc}") from exc
        return _row_to_record(row) if row else None

    def delete(self, session_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            sqlite_delete_turns(self._conn, session_id)
        return cur.rowcount > 0

    def list_by_ticket(self, tenant: str, ticket_id: str) -> list[SessionRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT session_id, tenant, user_id, ticket_id, version, updated_at, data "
                "FROM sessions WHERE tenant = ? AND ticket_id = ? ORDER BY updated_at DESC",
                (tenant, ticket_id),
            ).fetchall()
        return [_row_to_record(r) for r in rows]

    def iter_sessions(
        self, *, tenant: str | None = None, since: float | None = None, page_size: int = 200
    ) -> Iterator[SessionRecord]:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        after = ""
        while True:
            # Keyset pagination on the primary key: each page is one short read, so live writers
            # are never blocked behind a long scan.
            try:
                with self._lock:
                    rows = self._conn.execute(
                        "SELECT session_id, tenant, user_id, ticket_id, version, updated_at, data "
                        "FROM sessions WHERE session_id > ? AND (? IS NULL OR tenant = ?) "
                        "AND (? IS NULL OR updated_at >= ?) ORDER BY session_id LIMIT ?",
                        (after, tenant, tenant, since, since, page_size),
                    ).fetchall()
            except sqlite3.Error as exc:
                raise ArchiveError(f"sqlite archive read failed: {exc}") from exc
            for row in rows:
                yield _row_to_record(row)
            if len(rows) < page_size:
                return
            after = rows[-1][0]

    def _backfill_turns(self) -> None:
        """An archive written before the insights rows existed gets them once, when the table is made."""
        for record in self.iter_sessions(page_size=500):
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                sqlite_write_turns(self._conn, record.session_id, _turns_of(record))
                self._conn.execute("COMMIT")

    def ping(self) -> None:
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise ArchiveError(f"sqlite archive unreachable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _row_to_record(row: tuple) -> SessionRecord:
    session_id, tenant, user_id, ticket_id, version, updated_at, data = row
    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ArchiveError(f"session {session_id} has a corrupt archive row") from exc
    return SessionRecord(session_id, tenant, user_id, ticket_id, int(version), parsed, float(updated_at))


def _turns_of(record: SessionRecord) -> list[TurnRow]:
    return turn_rows(
        session_id=record.session_id,
        tenant=record.tenant,
        user_id=record.user_id,
        ticket_id=record.ticket_id,
        data=record.data,
    )
