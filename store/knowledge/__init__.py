"""Knowledge index: chunked, embedded documents with hybrid (full-text + vector) search."""

from store.knowledge.chunking import ChunkerConfig, DocumentTooLargeError, chunk_document, html_to_text
from store.knowledge.sqlite_index import SqliteKnowledgeIndex
from store.knowledge.types import (
    RRF_K,
    ChunkRef,
    Document,
    DocumentRef,
    Embedder,
    Hit,
    IndexStats,
    InvalidQueryError,
    KnowledgeError,
    KnowledgeIndex,
    SearchFilters,
    UpsertStats,
    Viewer,
    fuse,
    query_terms,
)

__all__ = [
    "RRF_K",
    "ChunkRef",
    "ChunkerConfig",
    "Document",
    "DocumentRef",
    "DocumentTooLargeError",
    "Embedder",
    "Hit",
    "IndexStats",
    "InvalidQueryError",
    "KnowledgeError",
    "KnowledgeIndex",
    "SearchFilters",
    "SqliteKnowledgeIndex",
    "UpsertStats",
    "Viewer",
    "chunk_document",
    "fuse",
    "html_to_text",
    "query_terms",
]
