"""Insights queries on Spanner: the same SQL as the SQLite twin (store/insights.py), read from
`SessionTurns` through its (Tenant, Day) index, in one read-only snapshot."""

from __future__ import annotations

from typing import Any

from store.errors import ArchiveError
from store.insights import MAX_GAP_ROWS, QUERIES, RawInsights, check_range, shape
from store.spanner.connection import SpannerConfig, SpannerConnectionHandler
from store.spanner.ddl import TURNS_INDEX, TURNS_TABLE

# The index covers every column read (STORING), so forcing it makes each query one range scan
# over (Tenant, Day) instead of a full scan of the interleaved table.
TURNS_FROM = f"{TURNS_TABLE}@{{FORCE_INDEX={TURNS_INDEX}}}"


def spanner_queries() -> dict[str, str]:
    return {name: sql.replace("{TURNS}", TURNS_FROM) for name, sql in QUERIES.items()}


class SpannerInsights:
    """Implements store.insights.InsightsQueries on the session archive's Spanner database."""

    def __init__(self, config: SpannerConfig, *, handler: SpannerConnectionHandler | None = None) -> None:
        self._handler = handler or SpannerConnectionHandler.for_config(config)
        self._db = self._handler.get_database(config.database)
        self._queries = spanner_queries()

    def fetch(self, tenant: str, start: str, end: str, *, gap_limit: int = MAX_GAP_ROWS) -> RawInsights:
        from google.cloud.spanner_v1 import param_types as pt

        check_range(tenant, start, end)
        params: dict[str, Any] = {"tenant": tenant, "start": start, "end": end, "limit": int(gap_limit)}
        types = {"tenant": pt.STRING, "start": pt.STRING, "end": pt.STRING, "limit": pt.INT64}
        out: dict[str, list[Any]] = {}
        try:
            # multi_use: every query of one report reads the same timestamp.
            with self._db.snapshot(multi_use=True) as snap:
                for name, sql in self._queries.items():
                    used = {k: v for k, v in params.items() if f"@{k}" in sql}
                    out[name] = [
                        list(r)
                        for r in snap.execute_sql(sql, params=used, param_types={k: types[k] for k in used})
                    ]
        except Exception as exc:
            raise ArchiveError(f"spanner insights read failed: {exc}") from exc
        return shape(out)

    def close(self) -> None:
        """The client is process-wide (SpannerConnectionHandler); nothing to release here."""
