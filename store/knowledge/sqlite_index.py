"""Embedded knowledge index: one SQLite file, FTS5 bm25 + exact cosine KNN over a numpy mirror.

Vectors live in SQLite as float32 blobs (the source of truth) and, per tenant, in an in-memory
matrix that is loaded lazily and kept in step on upsert/delete. A per-tenant generation counter
in the file lets other processes sharing the file notice writes and reload their mirror.
Only stdlib sqlite3 + FTS5 are needed: no extension loading.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

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
    fuse,
    query_terms,
    validate_tenant,
)
from store.sqlite_util import connect_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    tenant       TEXT NOT NULL,
    doc_id       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    source       TEXT NOT NULL,
    title        TEXT NOT NULL,
    url          TEXT NOT NULL,
    locale       TEXT NOT NULL,
    tags         TEXT NOT NULL,   -- JSON array
    updated_at   TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    internal     INTEGER NOT NULL DEFAULT 0,
    audience     TEXT NOT NULL DEFAULT '["everyone"]',   -- JSON array of audience keys
    PRIMARY KEY (tenant, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_by_source ON documents (tenant, source);
CREATE TABLE IF NOT EXISTS chunks (
    id        INTEGER PRIMARY KEY,
    tenant    TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    position  INTEGER NOT NULL,
    title     TEXT NOT NULL,
    text      TEXT NOT NULL,
    embedding BLOB NOT NULL,
    UNIQUE (tenant, doc_id, position)
);
-- One row per tenant; its rowid names the tenant's own FTS5 table (fts_<rowid>), so a
-- full-text query never even reads another tenant's postings and needs no join to filter.
CREATE TABLE IF NOT EXISTS tenant_state (
    tenant     TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    dimensions INTEGER NOT NULL
);
"""
SCHEMA_VERSION = 2

# External-content FTS over chunks (no second copy of the text); title is its own column so bm25
# can weight it. Rows are removed with FTS5's 'delete' command, which needs the old values.
_FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5("
    "title, text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
)

# bm25 column weights (title, text). Boosting titles (2x-6x) lowered MRR on the labelled demo
# queries (bench/retrieval_bench.py): chunk text already starts with its heading path.
_BM25_WEIGHTS = "1.0, 1.0"
# Query terms found in more than this share of a tenant's chunks are dropped (their idf is tiny,
# yet scoring their postings dominates latency on large corpora); see _fts_query.
_MAX_TERM_SHARE = 0.25
# Below this many postings in total, scoring everything is cheap (~1 µs each): no pruning.
_SCORE_BUDGET = 8000


@dataclass
class _Mirror:
    """Per-tenant vectors + the per-row metadata vector filters need."""

    generation: int
    dims: int
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    # Per row, an integer code of its document (filters become one vectorised np.isin).
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    doc_code: dict[str, int] = field(default_factory=dict)
    row_of: dict[int, int] = field(default_factory=dict)
    size: int = 0
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        if self.matrix.shape[1] != self.dims:
            self.matrix = np.zeros((0, self.dims), dtype=np.float32)

    def append(self, ids: list[int], doc_ids: list[str], vectors: np.ndarray) -> None:
        n = len(ids)
        need = self.size + n
        if need > self.matrix.shape[0]:
            # Amortised growth: copying the whole matrix per upsert would be quadratic.
            cap = max(need, int(self.matrix.shape[0] * 1.5) + 64)
            matrix = np.zeros((cap, self.dims), dtype=np.float32)
            matrix[: self.size] = self.matrix[: self.size]
            self.matrix = matrix
            new_ids = np.zeros(cap, dtype=np.int64)
            new_ids[: self.size] = self.ids[: self.size]
            self.ids = new_ids
            alive = np.zeros(cap, dtype=bool)
            alive[: self.size] = self.alive[: self.size]
            self.alive = alive
            codes = np.zeros(cap, dtype=np.int32)
            codes[: self.size] = self.codes[: self.size]
            self.codes = codes
        self.matrix[self.size : need] = vectors
        self.ids[self.size : need] = ids
        self.alive[self.size : need] = True
        for offset, (cid, doc_id) in enumerate(zip(ids, doc_ids, strict=True)):
            self.row_of[cid] = self.size + offset
            self.codes[self.size + offset] = self.doc_code.setdefault(doc_id, len(self.doc_code))
        self.size = need

    def mask_for(self, allowed: set[str]) -> np.ndarray:
        wanted = np.fromiter((self.doc_code[d] for d in allowed if d in self.doc_code), dtype=np.int32)
        return np.isin(self.codes[: self.size], wanted)

    def remove(self, ids: list[int]) -> None:
        for cid in ids:
            row = self.row_of.pop(cid, None)
            if row is not None:
                self.alive[row] = False
                self.matrix[row] = 0.0
        dead = self.size - len(self.row_of)
        if dead > 1024 and dead > self.size // 4:
            self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self.alive[: self.size])
        self.matrix = self.matrix[keep].copy()
        self.ids = self.ids[keep].copy()
        self.alive = np.ones(len(keep), dtype=bool)
        self.codes = self.codes[keep].copy()
        self.row_of = {int(cid): row for row, cid in enumerate(self.ids)}
        self.size = len(keep)


class SqliteKnowledgeIndex:
    """KnowledgeIndex on one SQLite file (see module docstring). Thread-safe via one lock."""

    def __init__(
        self,
        path: str | Path,
        embedder: Embedder,
        *,
        chunker: ChunkerConfig | None = None,
        rrf_k: int = RRF_K,
    ) -> None:
        self.path = Path(path)
        self.embedder = embedder
        self.chunker = chunker or ChunkerConfig()
        self.rrf_k = rrf_k
        self.dimensions = int(embedder.dimensions)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = connect_wal(path)
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            legacy = self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts'").fetchone()
            if version == 0 and not legacy:
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION or legacy:
                raise KnowledgeError(
                    f"{path} has an older knowledge index layout; delete it and run the ingest again"
                )
            self._add_visibility_columns()
        except sqlite3.Error as exc:
            raise KnowledgeError(f"cannot open knowledge index {path}: {exc}") from exc
        self._mirrors: dict[str, _Mirror] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._fts_names: dict[str, str] = {}
        # (tenant) -> (generation, chunk count, {term: document frequency}); reset on writes.
        self._df_cache: dict[str, tuple[int, int, dict[str, int]]] = {}

    def _add_visibility_columns(self) -> None:
        """Files written before documents carried visibility get the columns, at their defaults
        (public, everyone); restricted documents hash differently, so the next ingest rewrites them."""
        for name, ddl in (
            ("internal", "internal INTEGER NOT NULL DEFAULT 0"),
            ("audience", "audience TEXT NOT NULL DEFAULT '[\"everyone\"]'"),
        ):
            have = {row[1] for row in self._conn.execute("PRAGMA table_info(documents)")}
            if name not in have:
                try:
                    self._conn.execute(f"ALTER TABLE documents ADD COLUMN {ddl}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise

    # --- writes ---------------------------------------------------------------------------------

    def upsert(self, tenant: str, documents: list[Document]) -> UpsertStats:
        validate_tenant(tenant)
        stats = UpsertStats()
        if not documents:
            return stats
        for doc in documents:
            if doc.tenant != tenant:
                raise InvalidQueryError(f"document {doc.id} belongs to tenant {doc.tenant!r}, not {tenant!r}")
        by_id = {doc.id: doc for doc in documents}  # last one wins within a batch
        existing = self._hashes_for(tenant, list(by_id))
        todo = [d for d in by_id.values() if existing.get(d.id) != d.content_hash]
        stats.skipped = len(by_id) - len(todo)
        if not todo:
            return stats
        # Chunk and embed outside the lock: it is the slow part and touches no shared state.
        chunked = [(doc, chunk_document(doc.title, doc.body, doc.body_format, self.chunker)) for doc in todo]
        texts = [_embed_text(doc.title, text) for doc, chunks in chunked for text in chunks]
        vectors = self._embed(texts)
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                fts = self._ensure_tenant(tenant)
                offset = 0
                added_rows: list[tuple[list[int], list[str], np.ndarray]] = []
                removed: list[int] = []
                for doc, chunks in chunked:
                    removed.extend(self._delete_doc_rows(tenant, doc.id, fts))
                    self._conn.execute(
                        "INSERT OR REPLACE INTO documents (tenant, doc_id, kind, source, title, url, locale, "
                        "tags, updated_at, content_hash, internal, audience) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            tenant,
                            doc.id,
                            doc.kind,
                            doc.source,
                            doc.title,
                            doc.url,
                            doc.locale,
                            json.dumps(list(doc.tags), ensure_ascii=False),
                            doc.updated_at,
                            doc.content_hash,
                            int(doc.internal),
                            json.dumps(list(doc.audience)),
                        ),
                    )
                    ids: list[int] = []
                    doc_vectors = vectors[offset : offset + len(chunks)]
                    for position, (text, vec) in enumerate(zip(chunks, doc_vectors, strict=True)):
                        cur = self._conn.execute(
                            "INSERT INTO chunks (tenant, doc_id, position, title, text, embedding) "
                            "VALUES (?,?,?,?,?,?)",
                            (tenant, doc.id, position, doc.title, text, vec.astype(np.float32).tobytes()),
                        )
                        rowid = int(cur.lastrowid)
                        self._conn.execute(
                            f"INSERT INTO {fts} (rowid, title, text) VALUES (?,?,?)",
                            (rowid, doc.title, text),
                        )
                        ids.append(rowid)
                    added_rows.append((ids, [doc.id] * len(ids), doc_vectors))
                    offset += len(chunks)
                    stats.chunks_written += len(chunks)
                    if doc.id in existing:
                        stats.updated += 1
                    else:
                        stats.added += 1
                generation = self._bump_generation(tenant)
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise KnowledgeError(f"knowledge upsert failed: {exc}") from exc
                raise
            self._apply_to_mirror(tenant, generation, removed, added_rows)
        return stats

    def delete(self, tenant: str, doc_ids: list[str]) -> int:
        validate_tenant(tenant)
        if not doc_ids:
            return 0
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                fts = self._fts_name(tenant)
                removed: list[int] = []
                count = 0
                for doc_id in dict.fromkeys(doc_ids if fts else []):
                    removed.extend(self._delete_doc_rows(tenant, doc_id, fts))
                    cur = self._conn.execute(
                        "DELETE FROM documents WHERE tenant = ? AND doc_id = ?", (tenant, doc_id)
                    )
                    count += cur.rowcount
                generation = self._bump_generation(tenant) if count else None
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise KnowledgeError(f"knowledge delete failed: {exc}") from exc
                raise
            if generation is not None:
                self._apply_to_mirror(tenant, generation, removed, [])
        return count

    def _fts_name(self, tenant: str) -> str | None:
        name = self._fts_names.get(tenant)
        if name is None:
            row = self._conn.execute("SELECT rowid FROM tenant_state WHERE tenant = ?", (tenant,)).fetchone()
            if row is None:
                return None
            name = self._fts_names[tenant] = f"fts_{int(row[0])}"
        return name

    def _ensure_tenant(self, tenant: str) -> str:
        """Inside a write transaction: the tenant's state row and FTS table exist afterwards."""
        self._conn.execute(
            "INSERT OR IGNORE INTO tenant_state (tenant, generation, dimensions) VALUES (?, 0, ?)",
            (tenant, self.dimensions),
        )
        name = self._fts_name(tenant)
        assert name is not None
        self._conn.execute(_FTS_DDL.format(name=name))
        return name

    def _delete_doc_rows(self, tenant: str, doc_id: str, fts: str) -> list[int]:
        rows = self._conn.execute(
            "SELECT id, title, text FROM chunks WHERE tenant = ? AND doc_id = ?", (tenant, doc_id)
        ).fetchall()
        ids = [r[0] for r in rows]
        if ids:
            self._conn.executemany(
                f"INSERT INTO {fts} ({fts}, rowid, title, text) VALUES ('delete', ?, ?, ?)", rows
            )
            self._conn.execute("DELETE FROM chunks WHERE tenant = ? AND doc_id = ?", (tenant, doc_id))
        return ids

    def _bump_generation(self, tenant: str) -> int:
        self._conn.execute("UPDATE tenant_state SET generation = generation + 1 WHERE tenant = ?", (tenant,))
        return int(
            self._conn.execute("SELECT generation FROM tenant_state WHERE tenant = ?", (tenant,)).fetchone()[
                0
            ]
        )

    def _apply_to_mirror(
        self,
        tenant: str,
        generation: int,
        removed: list[int],
        added: list[tuple[list[int], list[str], np.ndarray]],
    ) -> None:
        mirror = self._mirrors.get(tenant)
        if mirror is None:
            return  # loaded lazily on the first search
        if mirror.generation != generation - 1:
            # Another process wrote in between: our mirror is stale, rebuild on next search.
            del self._mirrors[tenant]
            return
        mirror.remove(removed)
        for ids, doc_ids, vectors in added:
            if ids:
                mirror.append(ids, doc_ids, vectors)
        mirror.generation = generation

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.embedder.embed(texts, task_type="RETRIEVAL_DOCUMENT"), dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise KnowledgeError(
                f"embedder returned shape {vectors.shape}, expected ({len(texts)}, {self.dimensions})"
            )
        return _normalise(vectors)

    # --- reads ----------------------------------------------------------------------------------

    def document_hashes(self, tenant: str, *, source: str | None = None) -> dict[str, str]:
        validate_tenant(tenant)
        sql = "SELECT doc_id, content_hash FROM documents WHERE tenant = ?"
        args: tuple = (tenant,)
        if source is not None:
            sql += " AND source = ?"
            args = (tenant, source)
        with self._lock:
            return dict(self._conn.execute(sql, args).fetchall())

    def _hashes_for(self, tenant: str, doc_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(doc_ids), 500):
                part = doc_ids[i : i + 500]
                marks = ",".join("?" * len(part))
                out.update(
                    self._conn.execute(
                        f"SELECT doc_id, content_hash FROM documents WHERE tenant = ? AND doc_id IN ({marks})",
                        (tenant, *part),
                    ).fetchall()
                )
        return out

    def stats(self, tenant: str) -> IndexStats:
        validate_tenant(tenant)
        with self._lock:
            docs = self._conn.execute(
                "SELECT COUNT(*) FROM documents WHERE tenant = ?", (tenant,)
            ).fetchone()[0]
            chunks = self._conn.execute("SELECT COUNT(*) FROM chunks WHERE tenant = ?", (tenant,)).fetchone()[
                0
            ]
        return IndexStats(int(docs), int(chunks))

    def hybrid_search(
        self, text: str, vector: np.ndarray | None, k: int, filters: SearchFilters, *, candidates: int = 50
    ) -> list[Hit]:
        if not isinstance(filters, SearchFilters):
            raise InvalidQueryError("filters must be a SearchFilters with a tenant")
        if not 1 <= k <= 200:
            raise InvalidQueryError("k must be within 1..200")
        candidates = max(candidates, k)
        tenant = filters.tenant
        query = self._query_vector(vector) if vector is not None else None
        with self._lock:
            allowed = self._allowed_docs(filters)
            vector_ids: list[int] = []
            pending: Future[list[int]] | None = None
            if query is not None:
                mirror = self._mirror(tenant)
                if text:
                    # numpy and SQLite both release the GIL: the KNN scan runs on the helper
                    # thread while this one runs FTS5. The mirror cannot change meanwhile: we
                    # hold the index lock, which every writer needs.
                    pending = self._executor().submit(_vector_top, mirror, query, allowed, candidates)
                else:
                    vector_ids = _vector_top(mirror, query, allowed, candidates)
            text_ids = self._text_candidates(text, filters, candidates) if text else []
            if pending is not None:
                vector_ids = pending.result()
            fused = fuse([str(i) for i in text_ids], [str(i) for i in vector_ids], k, self.rrf_k)
            if not fused:
                return []
            return self._hits(tenant, fused)

    def search(self, text: str, k: int, filters: SearchFilters, *, candidates: int = 50) -> list[Hit]:
        """Embed `text` with the index's embedder and run hybrid_search."""
        vector = self.embedder.embed([text], task_type="RETRIEVAL_QUERY")[0] if text.strip() else None
        return self.hybrid_search(text, vector, k, filters, candidates=candidates)

    def _allowed_docs(self, filters: SearchFilters) -> set[str] | None:
        """Doc ids passing the kind/locale/tag/audience filters, or None when there are none."""
        if not _filtered(filters):
            return None
        sql, args = _filter_sql(filters, "d")
        rows = self._conn.execute(f"SELECT d.doc_id FROM documents d WHERE {sql}", args).fetchall()
        return {r[0] for r in rows}

    def _text_candidates(self, text: str, filters: SearchFilters, n: int) -> list[int]:
        fts = self._fts_name(filters.tenant)
        if fts is None:
            return []
        queries = self._fts_queries(fts, filters.tenant, query_terms(text))
        if _filtered(filters):
            where, args = _filter_sql(filters, "d")
            sql = (
                f"SELECT {fts}.rowid FROM {fts} JOIN chunks c ON c.id = {fts}.rowid "
                f"JOIN documents d ON d.tenant = c.tenant AND d.doc_id = c.doc_id "
                f"WHERE {fts} MATCH ? AND {where} ORDER BY bm25({fts}, {_BM25_WEIGHTS}), {fts}.rowid LIMIT ?"
            )
        else:
            # The FTS table holds this tenant only: no join needed on the hot path.
            args = []
            sql = f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY bm25({fts}, {_BM25_WEIGHTS}), rowid LIMIT ?"
        found: dict[int, None] = {}
        try:
            # Tiered: the strict query first; the broad one only tops up a short list.
            for match in queries:
                for (rowid,) in self._conn.execute(sql, (match, *args, n)).fetchall():
                    found.setdefault(int(rowid))
                if len(found) >= n:
                    break
        except sqlite3.Error as exc:
            raise KnowledgeError(f"full-text search failed: {exc}") from exc
        return list(found)[:n]

    def _fts_queries(self, fts: str, tenant: str, terms: list[str]) -> list[str]:
        """FTS5 MATCH expressions for the query terms, strictest first.

        bm25 scores every row a query matches (~1 µs each), so the cost is the number of postings.
        When the terms' postings fit _SCORE_BUDGET, all terms are OR-ed and scored exhaustively.
        Otherwise: tier 1 requires two of the rarest terms together (minimum-should-match 2;
        terms in more than _MAX_TERM_SHARE of the chunks are left out, their idf is tiny), and
        tier 2 tops up with the rarest terms whose postings still fit the budget."""
        if not terms:
            return []
        dfs = self._document_frequencies(fts, tenant, terms)
        ranked = sorted((t for t in terms if dfs[t] > 0), key=lambda t: dfs[t])
        if not ranked:
            return []
        quoted = {t: '"' + t.replace('"', "") + '"' for t in ranked}
        if sum(dfs[t] for t in ranked) <= _SCORE_BUDGET:
            return [" OR ".join(quoted[t] for t in ranked)]
        total = self._df_cache[tenant][1]
        informative = [t for t in ranked if dfs[t] <= _MAX_TERM_SHARE * total][:6]
        if len(informative) < 2:
            informative = ranked[:2]
        tiers: list[str] = []
        if len(informative) >= 2:
            # Cheapest pairs first, by their expected overlap under independence, within budget.
            pairs = sorted(
                (
                    (dfs[a] * dfs[b] / total, a, b)
                    for i, a in enumerate(informative)
                    for b in informative[i + 1 :]
                ),
                key=lambda p: p[0],
            )
            chosen, expected = [], 0.0
            for cost, a, b in pairs:
                if chosen and expected + cost > _SCORE_BUDGET:
                    break
                chosen.append(f"({quoted[a]} AND {quoted[b]})")
                expected += cost
            tiers.append(" OR ".join(chosen))
        cheap: list[str] = []
        spent = 0
        for t in ranked:
            if spent + dfs[t] > _SCORE_BUDGET:
                break
            cheap.append(t)
            spent += dfs[t]
        if cheap:
            tiers.append(" OR ".join(quoted[t] for t in cheap))
        return tiers or [quoted[ranked[0]]]

    def _document_frequencies(self, fts: str, tenant: str, terms: list[str]) -> dict[str, int]:
        generation_row = self._conn.execute(
            "SELECT generation FROM tenant_state WHERE tenant = ?", (tenant,)
        ).fetchone()
        generation = int(generation_row[0]) if generation_row else 0
        cached = self._df_cache.get(tenant)
        if cached is None or cached[0] != generation:
            total = self._conn.execute("SELECT COUNT(*) FROM chunks WHERE tenant = ?", (tenant,)).fetchone()[
                0
            ]
            cached = self._df_cache[tenant] = (generation, int(total), {})
        dfs = cached[2]
        for term in terms:
            if term not in dfs:
                if len(dfs) > 50_000:
                    dfs.clear()
                dfs[term] = self._conn.execute(
                    f"SELECT COUNT(*) FROM {fts} WHERE {fts} MATCH ?", ('"' + term.replace('"', "") + '"',)
                ).fetchone()[0]
        return {t: dfs[t] for t in terms}

    def _query_vector(self, vector: np.ndarray) -> np.ndarray | None:
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dimensions:
            raise InvalidQueryError(f"query vector has {q.shape[0]} dimensions, index uses {self.dimensions}")
        norm = float(np.linalg.norm(q))
        return q / norm if norm > 0.0 and np.isfinite(norm) else None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="knn")
        return self._pool

    def _mirror(self, tenant: str) -> _Mirror:
        row = self._conn.execute(
            "SELECT generation, dimensions FROM tenant_state WHERE tenant = ?", (tenant,)
        ).fetchone()
        generation = int(row[0]) if row else 0
        if row and int(row[1]) != self.dimensions:
            raise KnowledgeError(
                f"tenant {tenant!r} was indexed with {row[1]}-dim embeddings; this embedder has {self.dimensions}"
            )
        mirror = self._mirrors.get(tenant)
        if mirror is not None and mirror.generation == generation:
            return mirror
        mirror = _Mirror(generation=generation, dims=self.dimensions)
        rows = self._conn.execute(
            "SELECT id, doc_id, embedding FROM chunks WHERE tenant = ? ORDER BY id", (tenant,)
        ).fetchall()
        if rows:
            matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            mirror.append([r[0] for r in rows], [r[1] for r in rows], matrix)
        self._mirrors[tenant] = mirror
        return mirror

    def _hits(self, tenant: str, fused: list[tuple[str, int | None, int | None, float]]) -> list[Hit]:
        ids = [int(key) for key, *_ in fused]
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT c.id, c.doc_id, c.position, c.text, d.title, d.url, d.kind, d.locale, d.tags, d.internal "
            f"FROM chunks c JOIN documents d ON d.tenant = c.tenant AND d.doc_id = c.doc_id "
            # "+c.tenant": filter, do not drive the lookup through the (tenant, ...) index, which
            # would scan the whole tenant instead of fetching a few rows by id.
            f"WHERE c.id IN ({marks}) AND +c.tenant = ?",
            (*ids, tenant),
        ).fetchall()
        by_id = {r[0]: r for r in rows}
        hits = []
        for key, text_rank, vector_rank, score in fused:
            r = by_id.get(int(key))
            if r is None:
                continue
            _, doc_id, position, text, title, url, kind, locale, tags, internal = r
            hits.append(
                Hit(
                    chunk=ChunkRef(chunk_id(doc_id, position), text, int(position)),
                    document=DocumentRef(
                        doc_id, title, url, kind, locale, tuple(json.loads(tags)), internal=bool(internal)
                    ),
                    text_rank=text_rank,
                    vector_rank=vector_rank,
                    score=score,
                )
            )
        return hits

    def ping(self) -> None:
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise KnowledgeError(f"knowledge index unreachable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            self._mirrors.clear()
            self._conn.close()


_BLAS_LOCK = threading.Lock()
_blas: ThreadpoolController | None = None


def _matvec(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """matrix @ query on one BLAS thread. The product is memory-bound: OpenBLAS's threads only add
    hand-off and spinning (measured ~5x the CPU time on this 2-core machine at 10k rows). The limit
    is process-wide in OpenBLAS, hence the lock around setting and restoring it."""
    global _blas
    with _BLAS_LOCK:
        if _blas is None:
            _blas = ThreadpoolController().select(user_api="blas")
        with _blas.limit(limits=1):
            return matrix @ query


def _vector_top(mirror: _Mirror, query: np.ndarray, allowed: set[str] | None, n: int) -> list[int]:
    """Exact cosine top-n chunk ids (rows are normalised, so a dot product is the cosine)."""
    if mirror.size == 0:
        return []
    scores = _matvec(mirror.matrix[: mirror.size], query)
    valid: np.ndarray | None = None
    if len(mirror.row_of) != mirror.size:  # dead rows awaiting compaction
        valid = mirror.alive[: mirror.size]
    if allowed is not None:
        mask = mirror.mask_for(allowed)
        valid = mask if valid is None else valid & mask
    live = mirror.size
    if valid is not None:
        scores[~valid] = -np.inf
        live = int(valid.sum())
    n = min(n, live)
    if n <= 0:
        return []
    top = (
        np.argpartition(scores, mirror.size - n)[mirror.size - n :]
        if n < mirror.size
        else np.arange(mirror.size)
    )
    top = top[np.lexsort((mirror.ids[top], -scores[top]))]
    return [int(mirror.ids[i]) for i in top if np.isfinite(scores[i])]


def _filtered(filters: SearchFilters) -> bool:
    return bool(filters.kinds or filters.locale or filters.tags or filters.audience is not None)


def _filter_sql(filters: SearchFilters, alias: str) -> tuple[str, list]:
    clauses = [f"{alias}.tenant = ?"]
    args: list = [filters.tenant]
    if filters.kinds:
        clauses.append(f"{alias}.kind IN ({','.join('?' * len(filters.kinds))})")
        args.extend(filters.kinds)
    if filters.locale:
        clauses.append(f"{alias}.locale = ?")
        args.append(filters.locale)
    if filters.tags:
        clauses.append(
            f"EXISTS (SELECT 1 FROM json_each({alias}.tags) WHERE value IN ({','.join('?' * len(filters.tags))}))"
        )
        args.extend(filters.tags)
    if filters.audience is not None:
        # Like tags: the document is visible when one of its audience keys is the viewer's.
        clauses.append(
            f"EXISTS (SELECT 1 FROM json_each({alias}.audience) "
            f"WHERE value IN ({','.join('?' * len(filters.audience))}))"
        )
        args.extend(filters.audience)
    return " AND ".join(clauses), args


def _embed_text(title: str, chunk: str) -> str:
    # The title gives a chunk its topic; MiniLM sees both (FTS weights the title column instead).
    return f"{title}\n{chunk}" if title and not chunk.startswith(title) else chunk


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32)
