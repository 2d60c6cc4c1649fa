"""Spanner backends: connection handling, DDL, knowledge index and session archive.

google-cloud-spanner is imported lazily inside methods, so SQLite-only deployments never load it."""

from store.spanner.connection import SpannerConfig, SpannerConnectionHandler
from store.spanner.ddl import all_ddl, knowledge_ddl, session_ddl, vector_index_ddl
from store.spanner.knowledge import SpannerKnowledgeIndex, build_hybrid_query, row_to_hit
from store.spanner.sessions import SpannerSessionArchive

__all__ = [
    "SpannerConfig",
    "SpannerConnectionHandler",
    "SpannerKnowledgeIndex",
    "SpannerSessionArchive",
    "all_ddl",
    "build_hybrid_query",
    "knowledge_ddl",
    "row_to_hit",
    "session_ddl",
    "vector_index_ddl",
]
