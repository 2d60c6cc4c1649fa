"""KnowledgeIndex on Spanner: documents + interleaved chunks, hybrid search in one GoogleSQL query."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

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
from store.spanner.ddl import CHUNKS_TABLE, DOCUMENTS_TABLE, ROWS_PER_LEAF, VECTOR_INDEX

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
    "Internal",
    "Audience",
)
_CHUNK_COLUMNS = (
    "Tenant",
    "DocId",
    "Position",
    "Title",
    "Text",
    "Kind",
    "Locale",
    "Tags",
    "Audience",
    "Embedding",
)
_HIT_COLUMNS = (
    "DocId",
    "Position",
    "Text",
    "Title",
    "Url",
    "Kind",
    "Locale",
    "Tags",
    "Internal",
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
    if filters.audience is not None:
        clauses.append("ARRAY_INCLUDES_ANY(Audience, @audience)")
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
    if filters.audience is not None:
        params["audience"], types["audience"] = list(filters.audience), pt.Array(pt.STRING)

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
SELECT f.DocId, f.Position, ch.Text, d.Title, d.Url, d.Kind, d.Locale, d.Tags, d.Internal, f.TextRank, f.VectorRank, f.Score
FROM Fused AS f
JOIN {CHUNKS_TABLE} AS ch ON ch.Tenant = @tenant AND ch.DocId = f.DocId AND ch.Position = f.Position
JOIN {DOCUMENTS_TABLE} AS d ON d.Tenant = @tenant AND d.DocId = f.DocId
ORDER BY f.Score DESC, LEAST(IFNULL(f.TextRank, 1000000), IFNULL(f.VectorRank, 1000000)), f.DocId, f.Position
LIMIT @k"""
    return HybridQuery(sql, params, types)


def leaves_to_search(num_leaves: int, tenant_rows: int) -> int:
    """num_leaves_to_search for one tenant's query, after
    https://cloud.google.com/spanner/docs/vector-index-best-practices: "We recommend using a number
    that is 1% the total number of leaves ... If you're using a filter clause, increase this value
    to widen the search."

    Every query filters on Tenant, applied inside the leaves searched: a tenant holding a share s
    of the table finds about s of the rows those leaves hold, so the 1% is divided by s (the
    table size estimated from ROWS_PER_LEAF, the sizing the index was created with). The result
    reaching num_leaves means the whole index would be searched: exact search over the tenant's
    key range is then cheaper and has full recall (the caller switches)."""
    num_leaves = max(int(num_leaves), 1)
    base = max(1, math.ceil(num_leaves / 100))
    if tenant_rows <= 0:
        return num_leaves
    return min(num_leaves, max(base, math.ceil(base * num_leaves * ROWS_PER_LEAF / tenant_rows)))


log = logging.getLogger(__name__)

_VECTOR_LENGTH = re.compile(r"vector_length\s*=>\s*(\d+)", re.I)
_NUM_LEAVES = re.compile(r"\bnum_leaves\s*=\s*(\d+)", re.I)


def embedding_column_problem(
    spanner_type: str | None, stored_width: int | None, dimensions: int
) -> str | None:
    """Why KnowledgeChunks.Embedding cannot take `dimensions`-wide vectors, or None if it can.

    `spanner_type` is INFORMATION_SCHEMA.COLUMNS.SPANNER_TYPE (e.g. `ARRAY<FLOAT32>(vector_length=>768)`;
    the emulator reports `ARRAY<FLOAT32>` alone); `stored_width` the length of one stored vector."""
    if spanner_type is None:
        return (
            f"{CHUNKS_TABLE}.Embedding does not exist: apply infra/spanner/schema.sql (infra/deploy.sh does)"
        )
    if not spanner_type.replace(" ", "").upper().startswith("ARRAY<FLOAT32>"):
        return f"{CHUNKS_TABLE}.Embedding is {spanner_type}, not ARRAY<FLOAT32>(vector_length=>{dimensions})"
    declared = _VECTOR_LENGTH.search(spanner_type)
    if declared and int(declared.group(1)) != dimensions:
        return (
            f"{CHUNKS_TABLE}.Embedding is declared with vector_length=>{declared.group(1)} but "
            f"EMBEDDING_DIMENSIONS={dimensions}: render and apply the DDL for {dimensions} "
            f"(infra/deploy.sh) or set EMBEDDING_DIMENSIONS={declared.group(1)}"
        )
    if stored_width is not None and stored_width != dimensions:
        return (
            f"{CHUNKS_TABLE}.Embedding holds {stored_width}-dimensional vectors but "
            f"EMBEDDING_DIMENSIONS={dimensions}: re-ingest with the new width or set EMBEDDING_DIMENSIONS={stored_width}"
        )
    return None


def row_to_hit(row: list[Any] | tuple[Any, ...]) -> Hit:
    """Map one result row (columns as in _HIT_COLUMNS) to a Hit."""
    doc_id, position, text, title, url, kind, locale, tags, internal, text_rank, vector_rank, score = row
    return Hit(
        chunk=ChunkRef(chunk_id(doc_id, int(position)), text, int(position)),
        document=DocumentRef(doc_id, title, url, kind, locale, tuple(tags or ()), internal=bool(internal)),
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
        # Vector index state and tenant sizes, looked up at most every index_info_ttl_s.
        self._info_lock = threading.Lock()
        self._index_info: tuple[float, bool, int | None] | None = None
        self._tenant_rows: dict[str, tuple[float, int]] = {}

    def verify_schema(self) -> None:
        """Start-up check: the live Embedding column takes this embedder's vectors (a 768-wide
        column fed 3072-wide vectors would fail every write, and the reverse every query)."""
        from google.cloud.spanner_v1 import param_types as pt

        rows = self._query(
            "SELECT SPANNER_TYPE FROM INFORMATION_SCHEMA.COLUMNS "
            "WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @table AND COLUMN_NAME = 'Embedding'",
            {"table": CHUNKS_TABLE},
            {"table": pt.STRING},
        )
        spanner_type = str(rows[0][0]) if rows else None
        stored_width = None
        if spanner_type is not None:
            sample = self._query(f"SELECT ARRAY_LENGTH(Embedding) FROM {CHUNKS_TABLE} LIMIT 1", {}, {})
            stored_width = int(sample[0][0]) if sample and sample[0][0] is not None else None
        problem = embedding_column_problem(spanner_type, stored_width, self.config.dimensions)
        if problem:
            raise KnowledgeError(problem)

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
                                doc.internal,
                                list(doc.audience),
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
                                list(doc.audience),
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
        mode, leaves = self.vector_plan(filters.tenant) if vector is not None else ("exact", 0)
        query = build_hybrid_query(
            text,
            vector,
            k,
            filters,
            candidates=max(candidates, k),
            vector_search=mode,
            num_leaves_to_search=leaves,
            rrf_k=self.rrf_k,
        )
        if query is None:
            return []
        return [row_to_hit(r) for r in self._query(query.sql, query.params, query.param_types)]

    def vector_plan(self, tenant: str) -> tuple[Literal["approx", "exact"], int]:
        """How the vector branch searches this tenant: ("approx", num_leaves_to_search) through a
        usable vector index, else ("exact", 0). No index yet (before the first load), one still
        backfilling, or a tenant so small that the whole index would be searched: exact."""
        if self.config.vector_search == "exact":
            return "exact", 0
        ready, num_leaves = self._vector_index_info()
        if not ready:
            return "exact", 0
        if num_leaves is None:
            return "approx", self.config.num_leaves_to_search
        leaves = leaves_to_search(num_leaves, self._tenant_chunk_count(tenant))
        return ("exact", 0) if leaves >= num_leaves else ("approx", leaves)

    def _vector_index_info(self) -> tuple[bool, int | None]:
        now = time.monotonic()
        with self._info_lock:
            cached = self._index_info
        if cached is not None and now - cached[0] < self.config.index_info_ttl_s:
            return cached[1], cached[2]
        from google.cloud.spanner_v1 import param_types as pt

        rows = self._query(
            "SELECT INDEX_STATE FROM INFORMATION_SCHEMA.INDEXES "
            "WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @table AND INDEX_NAME = @index",
            {"table": CHUNKS_TABLE, "index": VECTOR_INDEX},
            {"table": pt.STRING, "index": pt.STRING},
        )
        # WRITE_ONLY while it backfills: FORCE_INDEX on it would fail.
        ready = bool(rows) and str(rows[0][0]) == "READ_WRITE"
        num_leaves = self._vector_index_leaves() if ready else None
        with self._info_lock:
            self._index_info = (now, ready, num_leaves)
        return ready, num_leaves

    def _vector_index_leaves(self) -> int | None:
        """num_leaves from the index's DDL (GetDatabaseDdl); None if it cannot be read."""
        try:
            self._db.reload()
            statements = list(self._db.ddl_statements)
        except Exception as exc:  # a missing permission (getDdl) must not stop searches
            log.warning(
                "cannot read the vector index's num_leaves (%s): using num_leaves_to_search=%d",
                type(exc).__name__,
                self.config.num_leaves_to_search,
            )
            return None
        for stmt in statements:
            if f"VECTOR INDEX {VECTOR_INDEX}" in stmt:
                found = _NUM_LEAVES.search(stmt)
                return int(found.group(1)) if found else None
        return None

    def _tenant_chunk_count(self, tenant: str) -> int:
        now = time.monotonic()
        with self._info_lock:
            cached = self._tenant_rows.get(tenant)
        if cached is not None and now - cached[0] < self.config.index_info_ttl_s:
            return cached[1]
        count = self.stats(tenant).chunks
        with self._info_lock:
            self._tenant_rows[tenant] = (now, count)
        return count

    def search(self, text: str, k: int, filters: SearchFilters, *, candidates: int = 50) -> list[Hit]:
        vector = self.embedder.embed([text], task_type="RETRIEVAL_QUERY")[0] if text.strip() else None
        return self.hybrid_search(text, vector, k, filters, candidates=candidates)

    def ping(self) -> None:
        self._query("SELECT 1", {}, {})

    def close(self) -> None:
        """Nothing to release: the client belongs to SpannerConnectionHandler for the process."""
