"""Create an instance/database with the schema — for the emulator and first-time setup — and,
after the first load, the vector index."""

from __future__ import annotations

import contextlib

from store.spanner.connection import SpannerConfig, SpannerConnectionHandler
from store.spanner.ddl import CHUNKS_TABLE, VECTOR_INDEX, all_ddl, vector_index_ddl


def ensure_database(config: SpannerConfig, *, timeout: float = 120.0) -> None:
    """Create the instance (emulator only) and the database with all DDL if they do not exist.

    The vector index is never part of it: it is built from the rows present when it is created,
    so it comes after the first load (ensure_vector_index)."""
    from google.api_core.exceptions import AlreadyExists

    handler = SpannerConnectionHandler.for_config(config)
    client = handler.client()
    instance = client.instance(config.instance)
    if config.emulator_host and not instance.exists():
        config_name = f"{client.project_name}/instanceConfigs/emulator-config"
        with contextlib.suppress(AlreadyExists):
            client.instance(config.instance, configuration_name=config_name, node_count=1).create().result(
                timeout
            )
    database = instance.database(config.database)
    if database.exists():
        return
    ddl = all_ddl(config.dimensions)
    with contextlib.suppress(AlreadyExists):
        instance.database(config.database, ddl_statements=ddl).create().result(timeout)


def drop_database(config: SpannerConfig) -> None:
    instance = SpannerConnectionHandler.for_config(config).client().instance(config.instance)
    database = instance.database(config.database)
    if database.exists():
        database.drop()


def vector_index_state(database: object) -> str | None:
    """INFORMATION_SCHEMA.INDEXES' INDEX_STATE of the vector index (READ_WRITE once usable;
    WRITE_ONLY while it backfills), or None when there is none."""
    from google.cloud.spanner_v1 import param_types as pt

    with database.snapshot() as snap:  # type: ignore[attr-defined]
        rows = list(
            snap.execute_sql(
                "SELECT INDEX_STATE FROM INFORMATION_SCHEMA.INDEXES "
                "WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @table AND INDEX_NAME = @index",
                params={"table": CHUNKS_TABLE, "index": VECTOR_INDEX},
                param_types={"table": pt.STRING, "index": pt.STRING},
            )
        )
    return str(rows[0][0]) if rows else None


def ensure_vector_index(
    config: SpannerConfig, *, database: object | None = None, timeout: float | None = None
) -> str:
    """Create the vector index once KnowledgeChunks has rows; run it after a load (ingest).

    Returns what happened: "exists", "empty" (nothing loaded yet: nothing to build the index
    from), "emulator" (no vector indexes there) or "created". `timeout` None: return as soon as
    Spanner accepted the DDL (the index backfills; searches stay exact until it is READ_WRITE)."""
    if config.emulator_host:
        return "emulator"
    db = database if database is not None else SpannerConnectionHandler.for_config(config).get_database()
    if vector_index_state(db) is not None:
        return "exists"
    with db.snapshot() as snap:  # type: ignore[attr-defined]
        (row,) = list(snap.execute_sql(f"SELECT COUNT(*) FROM {CHUNKS_TABLE}"))
    rows = int(row[0])
    if rows == 0:
        return "empty"
    operation = db.update_ddl(vector_index_ddl(rows))  # type: ignore[attr-defined]
    if timeout is not None:
        operation.result(timeout)
    return "created"
