"""KnowledgeIndex on Spanner: documents + interleaved chunks, hybrid search in one GoogleSQL query."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from store.knowledge.chunking import ChunkerConfig, chunk_document
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
    SearchFilters,
    UpsertStats,
    chunk_id,
    query_terms,
    validate_tenant,
)
from store.spanner.connection import SpannerConfig, SpannerConnectionHandler
from store.spanner.ddl import CHUNKS_TABLE, DOCUMENTS_TABLE, VECTOR_INDEX

_DOC_COLUMNS = (
    "Tenant",
    "DocId",
    "Kind",
    "Source",
    "Title",
    "Url",
    "Locale",
    "Tags",
    "UpdatedAt",
    "ContentHash",
    "IndexedAt",
)
_CHUNK_COLUMNS = ("Tenant", "DocId", "Position", "Title", "Text", "Kind", "Locale", "Tags", "Embedding")
_HIT_COLUMNS = (
    "DocId",
    "Position",
    "Text",
    "Title",
    "Url",
    "Kind",
    "Locale",
    "Tags",
    "TextRank",
    "VectorRank",
    "Score",
)


@dataclass(frozen=True)
class HybridQuery:
    sql: str
    params: dict[str, Any]
    param_types: dict[str, Any]


def spanner_search_query(text: str) -> str:
    """User text -> Spanner rquery: sanitized terms OR-ed (rquery ANDs bare words by default)."""
    return " OR ".join(query_terms(text))


def _filter_clauses(filters: SearchFilters) -> list[str]:
    clauses = ["Tenant = @tenant"]
    if filters.kinds:
        clauses.append("Kind IN UNNEST(@kinds)")
    if filters.locale:
        clauses.append("Locale = @locale")
    if filters.tags:
        clauses.append("ARRAY_INCLUDES_ANY(Tags, @tags)")
    return clauses


def build_hybrid_query(
    text: str,
    vector: np.ndarray | None,
    k: int,
    filters: SearchFilters,
    *,
    candidates: int = 50,
    vector_search: str = "approx",
    num_leaves_to_search: int = 10,
    rrf_k: int = RRF_K,
) -> HybridQuery | None:
    """The single fused query (Spanner's documented RRF pattern), or None if both lists are empty.

    Each branch ranks its own top-`candidates` via UNNEST(ARRAY(...)) WITH OFFSET; the outer query
    groups by chunk key, keeps each branch's 1-based rank and sums 1/(rrf_k + rank)."""
    from google.cloud.spanner_v1 import param_types as pt

    where = " AND ".join(_filter_clauses(filters))
    params: dict[str, Any] = {
        "tenant": filters.tenant,
        "k": k,
        "candidates": candidates,
        "rrf_k": float(rrf_k),
    }
    types: dict[str, Any] = {"tenant": pt.STRING, "k": pt.INT64, "candidates": pt.INT64, "rrf_k": pt.FLOAT64}
    if filters.kinds:
        params["kinds"], types["kinds"] = list(filters.kinds), pt.Array(pt.STRING)
    if filters.locale:
        params["locale"], types["locale"] = filters.locale, pt.STRING
    if filters.tags:
        params["tags"], types["tags"] = list(filters.tags), pt.Array(pt.STRING)

    branches: list[str] = []
    if vector is not None:
        params["vector"] = [float(x) for x in np.asarray(vector, dtype=np.float32).reshape(-1)]
        types["vector"] = pt.Array(pt.FLOAT32)
        if vector_search == "approx":
            options = json.dumps({"num_leaves_to_search": int(num_leaves_to_search)})
            source = f"{CHUNKS_TABLE}@{{FORCE_INDEX={VECTOR_INDEX}}}"
            # Spanner: the approximate distance must be the ORDER BY's only key, followed by a
            # LIMIT (no tie-breakers); a literal LIMIT is the documented best practice.
            order_limit = (
                f"ORDER BY APPROX_COSINE_DISTANCE(Embedding, @vector, options => JSON '{options}') "
                f"LIMIT {int(candidates)}"
            )
        else:
            source = CHUNKS_TABLE
            order_limit = "ORDER BY COSINE_DISTANCE(Embedding, @vector), DocId, Position LIMIT @candidates"
        branches.append(
            "SELECT 'vector' AS Src, off + 1 AS Rnk, c.DocId, c.Position FROM UNNEST(ARRAY(\n"
            f"    SELECT AS STRUCT DocId, Position FROM {source}\n"
            f"    WHERE {where} AND Embedding IS NOT NULL\n"
            f"    {order_limit})) AS c WITH OFFSET AS off"
        )
    rquery = spanner_search_query(text or "")
    if rquery:
        params["query"], types["query"] = rquery, pt.STRING
        branches.append(
            "SELECT 'text' AS Src, off + 1 AS Rnk, c.DocId, c.Position FROM UNNEST(ARRAY(\n"
            f"    SELECT AS STRUCT DocId, Position FROM {CHUNKS_TABLE}\n"
            f"    WHERE {where} AND (SEARCH(Text_Tokens, @query) OR SEARCH(Title_Tokens, @query))\n"
            "    ORDER BY SCORE(Text_Tokens, @query) + 2 * SCORE(Title_Tokens, @query) DESC, DocId, Position\n"
            "    LIMIT @candidates)) AS c WITH OFFSET AS off"
        )
    if not branches:
        return None
    union = "\n  UNION ALL\n  ".join(branches)
    sql = f"""WITH Ranked AS (
  {union}
), Fused AS (
  SELECT DocId, Position,
    MIN(IF(Src = 'text', Rnk, NULL)) AS TextRank,
    MIN(IF(Src = 'vector', Rnk, NULL)) AS VectorRank,
    SUM(1.0 / (@rrf_k + Rnk)) AS Score
  FROM Ranked
  GROUP BY DocId, Position
)
SELECT f.DocId, f.Position, ch.Text, d.Title, d.Url, d.Kind, d.Locale, d.Tags, f.TextRank, f.VectorRank, f.Score
FROM Fused AS f
JOIN {CHUNKS_TABLE} AS ch ON ch.Tenant = @tenant AND ch.DocId = f.DocId AND ch.Position = f.Position
JOIN {DOCUMENTS_TABLE} AS d ON d.Tenant = @tenant AND d.DocId = f.DocId
ORDER BY f.Score DESC, LEAST(IFNULL(f.TextRank, 1000000), IFNULL(f.VectorRank, 1000000)), f.DocId, f.Position
LIMIT @k"""
    return HybridQuery(sql, params, types)


def row_to_hit(row: list[Any] | tuple[Any, ...]) -> Hit:
    """Map one result row (columns as in _HIT_COLUMNS) to a Hit."""
    doc_id, position, text, title, url, kind, locale, tags, text_rank, vector_rank, score = row
    return Hit(
        chunk=ChunkRef(chunk_id(doc_id, int(position)), text, int(position)),
        document=DocumentRef(doc_id, title, url, kind, locale, tuple(tags or ())),
        text_rank=None if text_rank is None else int(text_rank),
        vector_rank=None if vector_rank is None else int(vector_rank),
        score=float(score),
    )


class SpannerKnowledgeIndex:
    """KnowledgeIndex on Spanner (schema in store/spanner/ddl.py). Thread-safe: the client's
    session pool is; this object holds no mutable state after construction."""

    def __init__(
        self,
        config: SpannerConfig,
        embedder: Embedder,
        *,
        chunker: ChunkerConfig | None = None,
        handler: SpannerConnectionHandler | None = None,
        rrf_k: int = RRF_K,
    ) -> None:
        if int(embedder.dimensions) != config.dimensions:
            raise KnowledgeError(
                f"embedder has {embedder.dimensions} dimensions but the Spanner schema has {config.dimensions}"
            )
        self.config = config
        self.embedder = embedder
        self.chunker = chunker or ChunkerConfig()
        self.rrf_k = rrf_k
        self._handler = handler or SpannerConnectionHandler.for_config(config)
        self._db = self._handler.get_database(config.database)

    # --- writes ---------------------------------------------------------------------------------

    def upsert(self, tenant: str, documents: list[Document]) -> UpsertStats:
        from google.cloud.spanner_v1 import COMMIT_TIMESTAMP, KeySet

        validate_tenant(tenant)
        stats = UpsertStats()
        for doc in documents:
            if doc.tenant != tenant:
                raise InvalidQueryError(f"document {doc.id} belongs to tenant {doc.tenant!r}, not {tenant!r}")
        by_id = {doc.id: doc for doc in documents}
        if not by_id:
            return stats
        existing = self._hashes_for(tenant, list(by_id))
        todo = [d for d in by_id.values() if existing.get(d.id) != d.content_hash]
        stats.skipped = len(by_id) - len(todo)
        if not todo:
            return stats
        chunked = [(d, chunk_document(d.title, d.body, d.body_format, self.chunker)) for d in todo]
        texts = [f"{d.title}\n{c}" for d, chunks in chunked for c in chunks]
        vectors = np.asarray(self.embedder.embed(texts, task_type="RETRIEVAL_DOCUMENT"), dtype=np.float32)
        if vectors.shape != (len(texts), self.config.dimensions):
            raise KnowledgeError(f"embedder returned shape {vectors.shape}")
        offset = 0
        # One commit per document keeps each mutation set small (Spanner caps mutations per
        # commit) while still writing a document and all of its chunks atomically.
        for doc, chunks in chunked:
            doc_vectors = vectors[offset : offset + len(chunks)]
            offset += len(chunks)
            try:
                with self._db.batch() as batch:
                    # Deleting the parent cascades to the old chunks; the rows below re-create it.
                    batch.delete(DOCUMENTS_TABLE, KeySet(keys=[[tenant, doc.id]]))
                    batch.insert(
                        DOCUMENTS_TABLE,
                        _DOC_COLUMNS,
                        [
                            (
                                tenant,
                                doc.id,
                                doc.kind,
                                doc.source,
                                doc.title,
                                doc.url,
                                doc.locale,
                                list(doc.tags),
                                doc.updated_at,
                                doc.content_hash,
                                COMMIT_TIMESTAMP,
                            )
                        ],
                    )
                    batch.insert(
                        CHUNKS_TABLE,
                        _CHUNK_COLUMNS,
                        [
                            (
                                tenant,
                                doc.id,
                                pos,
                                doc.title,
                                text,
                                doc.kind,
                                doc.locale,
                                list(doc.tags),
                                [float(x) for x in vec],
                            )
                            for pos, (text, vec) in enumerate(zip(chunks, doc_vectors, strict=True))
                        ],
                    )
            except Exception as exc:
                raise KnowledgeError(f"spanner upsert of {doc.id} failed: {exc}") from exc
            stats.chunks_written += len(chunks)
            if doc.id in existing:
                stats.updated += 1
            else:
                stats.added += 1
        return stats

    def delete(self, tenant: str, doc_ids: list[str]) -> int:
        from google.cloud.spanner_v1 import KeySet

        validate_tenant(tenant)
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return 0
        present = self._hashes_for(tenant, ids)
        if present:
            with self._db.batch() as batch:
                batch.delete(DOCUMENTS_TABLE, KeySet(keys=[[tenant, d] for d in present]))
        return len(present)

    # --- reads ----------------------------------------------------------------------------------

    def _query(self, sql: str, params: dict[str, Any], types: dict[str, Any]) -> list[list[Any]]:
        try:
            with self._db.snapshot() as snap:
                return [list(r) for r in snap.execute_sql(sql, params=params, param_types=types)]
        except Exception as exc:
            raise KnowledgeError(f"spanner query failed: {exc}") from exc

    def _hashes_for(self, tenant: str, doc_ids: list[str]) -> dict[str, str]:
        from google.cloud.spanner_v1 import param_types as pt

        rows = self._query(
            f"SELECT DocId, ContentHash FROM {DOCUMENTS_TABLE} WHERE Tenant = @tenant AND DocId IN UNNEST(@ids)",
            {"tenant": tenant, "ids": doc_ids},
            {"tenant": pt.STRING, "ids": pt.Array(pt.STRING)},
        )
        return {r[0]: r[1] for r in rows}

    def document_hashes(self, tenant: str, *, source: str | None = None) -> dict[str, str]:
        from google.cloud.spanner_v1 import param_types as pt

        validate_tenant(tenant)
        sql = f"SELECT DocId, ContentHash FROM {DOCUMENTS_TABLE} WHERE Tenant = @tenant"
        params: dict[str, Any] = {"tenant": tenant}
        types: dict[str, Any] = {"tenant": pt.STRING}
        if source is not None:
            sql += " AND Source = @source"
            params["source"], types["source"] = source, pt.STRING
        return {r[0]: r[1] for r in self._query(sql, params, types)}

    def stats(self, tenant: str) -> IndexStats:
        from google.cloud.spanner_v1 import param_types as pt

        validate_tenant(tenant)
        rows = self._query(
            f"SELECT (SELECT COUNT(*) FROM {DOCUMENTS_TABLE} WHERE Tenant = @tenant), "
            f"(SELECT COUNT(*) FROM {CHUNKS_TABLE} WHERE Tenant = @tenant)",
            {"tenant": tenant},
            {"tenant": pt.STRING},
        )
        return IndexStats(int(rows[0][0]), int(rows[0][1]))

    def hybrid_search(
        self, text: str, vector: np.ndarray | None, k: int, filters: SearchFilters, *, candidates: int = 50
    ) -> list[Hit]:
        if not isinstance(filters, SearchFilters):
            raise InvalidQueryError("filters must be a SearchFilters with a tenant")
        if not 1 <= k <= 200:
            raise InvalidQueryError("k must be within 1..200")
        if vector is not None and np.asarray(vector).reshape(-1).shape[0] != self.config.dimensions:
            raise InvalidQueryError(f"query vector must have {self.config.dimensions} dimensions")
        query = build_hybrid_query(
            text,
            vector,
            k,
            filters,
            candidates=max(candidates, k),
            vector_search=self.config.vector_search,
            num_leaves_to_search=self.config.num_leaves_to_search,
            rrf_k=self.rrf_k,
        )
        if query is None:
            return []
        return [row_to_hit(r) for r in self._query(query.sql, query.params, query.param_types)]

    def search(self, text: str, k: int, filters: SearchFilters, *, candidates: int = 50) -> list[Hit]:
        vector = self.embedder.embed([text], task_type="RETRIEVAL_QUERY")[0] if text.strip() else None
        return self.hybrid_search(text, vector, k, filters, candidates=candidates)

    def ping(self) -> None:
        self._query("SELECT 1", {}, {})

    def close(self) -> None:
        """Nothing to release: the client belongs to SpannerConnectionHandler for the process."""
