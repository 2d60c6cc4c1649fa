"""Build the configured backends. The backend calls these with plain values from Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from store.knowledge.chunking import ChunkerConfig
from store.knowledge.sqlite_index import SqliteKnowledgeIndex
from store.knowledge.types import Embedder, KnowledgeIndex
from store.sessions import SessionArchive, SqliteSessionArchive
from store.spanner.connection import SpannerConfig

Backend = Literal["sqlite", "spanner"]
KNOWLEDGE_FILENAME = "knowledge.sqlite3"


def _require_spanner(spanner: SpannerConfig | None) -> SpannerConfig:
    if spanner is None:
        raise ValueError("backend 'spanner' needs a SpannerConfig (project, instance, database)")
    return spanner


def open_session_archive(
    backend: Backend, *, sqlite_path: str | Path | None = None, spanner: SpannerConfig | None = None
) -> SessionArchive:
    if backend == "sqlite":
        if sqlite_path is None:
            raise ValueError("backend 'sqlite' needs sqlite_path")
        return SqliteSessionArchive(sqlite_path)
    if backend == "spanner":
        from store.spanner.sessions import SpannerSessionArchive

        return SpannerSessionArchive(_require_spanner(spanner))
    raise ValueError(f"unknown archive backend {backend!r} (expected 'sqlite' or 'spanner')")


def open_knowledge_index(
    backend: Backend,
    *,
    embedder: Embedder,
    sqlite_path: str | Path | None = None,
    spanner: SpannerConfig | None = None,
    chunker: ChunkerConfig | None = None,
) -> KnowledgeIndex:
    """`sqlite_path` is the knowledge file itself (conventionally DATA_DIR/knowledge.sqlite3)."""
    if backend == "sqlite":
        if sqlite_path is None:
            raise ValueError("backend 'sqlite' needs sqlite_path")
        return SqliteKnowledgeIndex(sqlite_path, embedder, chunker=chunker)
    if backend == "spanner":
        from store.spanner.knowledge import SpannerKnowledgeIndex

        index = SpannerKnowledgeIndex(_require_spanner(spanner), embedder, chunker=chunker)
        # Fail at start, not on the first write or query, when the live column's width differs.
        index.verify_schema()
        return index
    raise ValueError(f"unknown knowledge backend {backend!r} (expected 'sqlite' or 'spanner')")
