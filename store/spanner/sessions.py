"""SessionArchive on Spanner (table `Sessions`, see store/spanner/ddl.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from store.insights import TURN_COLUMNS, turn_rows
from store.sessions import ArchiveError, SessionRecord
from store.spanner.connection import SpannerConfig, SpannerConnectionHandler
from store.spanner.ddl import SESSIONS_TABLE, TURNS_TABLE

_COLUMNS = ("SessionId", "Tenant", "UserId", "TicketId", "Version", "UpdatedAt", "Data", "CommittedAt")
_SELECT = f"SELECT SessionId, Tenant, UserId, TicketId, Version, UpdatedAt, Data FROM {SESSIONS_TABLE}"


class SpannerSessionArchive:
    """Implements store.sessions.SessionArchive. Thread-safe (no state beyond the shared client)."""

    def __init__(self, config: SpannerConfig, *, handler: SpannerConnectionHandler | None = None) -> None:
        self.config = config
        self._handler = handler or SpannerConnectionHandler.for_config(config)
        self._db = self._handler.get_database(config.database)

    def save(self, record: SessionRecord) -> None:
        from google.cloud.spanner_v1 import COMMIT_TIMESTAMP, JsonObject, KeyRange, KeySet
        from google.cloud.spanner_v1 import param_types as pt

        row = (
            record.session_id,
            record.tenant,
            record.user_id,
            record.ticket_id,
            record.version,
            float(record.updated_at),
            JsonObject(record.data),
            COMMIT_TIMESTAMP,
        )
        turns = [
            tuple(getattr(t, c) for c in TURN_COLUMNS)
            for t in turn_rows(
                session_id=record.session_id,
                tenant=record.tenant,
                user_id=record.user_id,
                ticket_id=record.ticket_id,
                data=record.data,
            )
        ]

        def write(txn: Any) -> None:
            # Read-then-write in one transaction: an older version never overwrites a newer one.
            current = list(
                txn.execute_sql(
                    f"SELECT Version FROM {SESSIONS_TABLE} WHERE SessionId = @id",
                    params={"id": record.session_id},
                    param_types={"id": pt.STRING},
                )
            )
            if current and int(current[0][0]) > record.version:
                return
            txn.insert_or_update(SESSIONS_TABLE, _COLUMNS, [row])
            # The session's insights rows (store/insights.py), replaced in the same commit.
            own = KeyRange(start_closed=[record.session_id], end_closed=[record.session_id])
            txn.delete(TURNS_TABLE, KeySet(ranges=[own]))
            if turns:
                txn.insert_or_update(TURNS_TABLE, TURN_COLUMNS, turns)

        try:
            self._db.run_in_transaction(write)
        except Exception as exc:
            raise ArchiveError(f"spanner archive write failed: {exc}") from exc

    def load(self, session_id: str) -> SessionRecord | None:
        from google.cloud.spanner_v1 import param_types as pt

        rows = self._read(f"{_SELECT} WHERE SessionId = @id", {"id": session_id}, {"id": pt.STRING})
        return _row_to_record(rows[0]) if rows else None

    def delete(self, session_id: str) -> bool:
        from google.cloud.spanner_v1 import param_types as pt

        def remove(txn: Any) -> int:
            return txn.execute_update(
                f"DELETE FROM {SESSIONS_TABLE} WHERE SessionId = @id",
                params={"id": session_id},
                param_types={"id": pt.STRING},
            )

        try:
            return bool(self._db.run_in_transaction(remove))
        except Exception as exc:
            raise ArchiveError(f"spanner archive delete failed: {exc}") from exc

    def list_by_ticket(self, tenant: str, ticket_id: str) -> list[SessionRecord]:
        from google.cloud.spanner_v1 import param_types as pt

        rows = self._read(
            f"{_SELECT} WHERE Tenant = @tenant AND TicketId = @ticket ORDER BY UpdatedAt DESC",
            {"tenant": tenant, "ticket": ticket_id},
            {"tenant": pt.STRING, "ticket": pt.STRING},
        )
        return [_row_to_record(r) for r in rows]

    def iter_sessions(
        self, *, tenant: str | None = None, since: float | None = None, page_size: int = 200
    ) -> Iterator[SessionRecord]:
        from google.cloud.spanner_v1 import param_types as pt

        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        where, params, types = ["SessionId > @after"], {"after": ""}, {"after": pt.STRING}
        if tenant is not None:
            where.append("Tenant = @tenant")
            params["tenant"], types["tenant"] = tenant, pt.STRING
        if since is not None:
            where.append("UpdatedAt >= @since")
            params["since"], types["since"] = float(since), pt.FLOAT64
        # Primary-key order: each page is a range read, with no sort over the whole table.
        sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY SessionId LIMIT {int(page_size)}"
        while True:
            rows = self._read(sql, params, types)
            for row in rows:
                yield _row_to_record(row)
            if len(rows) < page_size:
                return
            params["after"] = rows[-1][0]

    def ping(self) -> None:
        self._read("SELECT 1", {}, {})

    def close(self) -> None:
        """The client is process-wide (SpannerConnectionHandler); nothing to release here."""

    def _read(self, sql: str, params: dict[str, Any], types: dict[str, Any]) -> list[list[Any]]:
        try:
            with self._db.snapshot() as snap:
                return [list(r) for r in snap.execute_sql(sql, params=params, param_types=types)]
        except Exception as exc:
            raise ArchiveError(f"spanner archive read failed: {exc}") from exc


def _row_to_record(row: list[Any]) -> SessionRecord:
    session_id, tenant, user_id, ticket_id, version, updated_at, data = row
    if isinstance(data, str):  # older client versions return JSON columns as text
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ArchiveError(f"session {session_id} has a corrupt archive row") from exc
    return SessionRecord(session_id, tenant, user_id, ticket_id, int(version), dict(data), float(updated_at))
