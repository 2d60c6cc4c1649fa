"""Embedding width and vector index lifecycle on Spanner, against a recorded stand-in for the
database (the emulator has neither vector indexes nor vector_length in its schema views).

Issue 14, items 2 and 4. Every rule here is Spanner's documented behaviour, quoted per test.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from store.knowledge.types import KnowledgeError, SearchFilters
from store.spanner import SpannerConfig
from store.spanner.ddl import (
    ROWS_PER_LEAF,
    all_ddl,
    render_schema_sql,
    vector_index_ddl,
    vector_index_options,
)
from store.spanner.knowledge import SpannerKnowledgeIndex, embedding_column_problem, leaves_to_search
from store.spanner.provision import ensure_vector_index

VECTOR_INDEXES_DOC = "https://cloud.google.com/spanner/docs/vector-indexes"
BEST_PRACTICES_DOC = "https://cloud.google.com/spanner/docs/vector-index-best-practices"


class FakeDatabase:
    """Answers execute_sql by the first matching SQL fragment; records DDL."""

    def __init__(self, answers: list[tuple[str, list[list[Any]]]], ddl: list[str] | None = None) -> None:
        self.answers = answers
        self.ddl_statements = ddl or []
        self.sql: list[str] = []
        self.updated: list[list[str]] = []

    def snapshot(self) -> FakeDatabase:
        return self

    def __enter__(self) -> FakeDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute_sql(self, sql: str, params: Any = None, param_types: Any = None) -> list[list[Any]]:
        self.sql.append(sql)
        for fragment, rows in self.answers:
            if fragment in sql:
                return rows
        raise AssertionError(f"unexpected SQL: {sql}")

    def reload(self) -> None:
        return None

    def update_ddl(self, statements: list[str]) -> Any:
        self.updated.append(list(statements))
        return None


class Handler:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    def get_database(self, name: str) -> FakeDatabase:
        return self.db


class Embedder:
    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions

    def embed(self, texts: list[str], *, task_type: str) -> np.ndarray:
        return np.ones((len(texts), self.dimensions), dtype=np.float32)


def make_index(db: FakeDatabase, dimensions: int = 768, **config: Any) -> SpannerKnowledgeIndex:
    cfg = SpannerConfig(project="p", instance="inst", dimensions=dimensions, **config)
    return SpannerKnowledgeIndex(cfg, Embedder(dimensions), handler=Handler(db))  # type: ignore[arg-type]


# --- item 2: one width, checked against the live column ---------------------------------------


def test_schema_is_rendered_for_the_configured_width() -> None:
    """Spanner DDL: an embedding column is `ARRAY<FLOAT32>(vector_length=>N)`, "the vector_length
    annotation ... indicate[s] the dimension of the vectors" (VECTOR_INDEXES_DOC); writes of any
    other length are refused. The width is EMBEDDING_DIMENSIONS, not MiniLM's 384."""
    for dims in (768, 3072):
        assert f"Embedding ARRAY<FLOAT32>(vector_length=>{dims}) NOT NULL" in render_schema_sql(dims)
    assert "vector_length=>768" in render_schema_sql()


@pytest.mark.parametrize(
    ("spanner_type", "stored", "problem"),
    [
        ("ARRAY<FLOAT32>(vector_length=>768)", None, None),
        ("ARRAY<FLOAT32>(vector_length=>768)", 768, None),
        ("ARRAY<FLOAT32>(vector_length=>384)", None, "vector_length=>384"),
        ("ARRAY<FLOAT32>", 3072, "3072-dimensional"),  # the emulator omits vector_length
        ("ARRAY<FLOAT32>", None, None),
        ("ARRAY<FLOAT64>(vector_length=>768)", None, "not ARRAY<FLOAT32>"),
        (None, None, "does not exist"),
    ],
)
def test_start_up_check_compares_the_live_column(
    spanner_type: str | None, stored: int | None, problem: str | None
) -> None:
    db = FakeDatabase(
        [
            ("INFORMATION_SCHEMA.COLUMNS", [[spanner_type]] if spanner_type else []),
            ("ARRAY_LENGTH(Embedding)", [[stored]] if stored else []),
        ]
    )
    index = make_index(db, 768)
    if problem is None:
        index.verify_schema()
    else:
        with pytest.raises(KnowledgeError, match=re.escape(problem)):
            index.verify_schema()
    assert embedding_column_problem(spanner_type, stored, 768) == (
        None if problem is None else embedding_column_problem(spanner_type, stored, 768)
    )


def test_factory_runs_the_start_up_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from store import factory
    from store.spanner import knowledge

    db = FakeDatabase(
        [("INFORMATION_SCHEMA.COLUMNS", [["ARRAY<FLOAT32>(vector_length=>384)"]]), ("ARRAY_LENGTH", [])]
    )
    monkeypatch.setattr(
        knowledge.SpannerConnectionHandler, "for_config", classmethod(lambda cls, c: Handler(db))
    )
    with pytest.raises(KnowledgeError, match="EMBEDDING_DIMENSIONS=768"):
        factory.open_knowledge_index(
            "spanner",
            embedder=Embedder(768),
            spanner=SpannerConfig(project="p", instance="inst", dimensions=768),
        )


# --- item 4: the index after the first load, sized and searched as documented -----------------


def test_new_databases_get_no_vector_index_and_it_is_sized_from_the_loaded_rows() -> None:
    """VECTOR_INDEXES_DOC: "Create your vector index after most of the rows with embeddings are
    written to your database." BEST_PRACTICES_DOC: "tree_depth ... fewer than 10 million rows, use
    a tree_depth of 2. Otherwise, a tree_depth of 3"; "num_leaves: We recommend targeting 200-1000
    rows per leaf"."""
    assert not any("VECTOR INDEX" in stmt for stmt in all_ddl(768))
    assert "VECTOR INDEX" not in render_schema_sql(768).split("--")[-1].split("\n", 1)[1]
    for rows in (1, 999, 250_000, 9_999_999, 40_000_000):
        opts = vector_index_options(rows)
        assert opts["tree_depth"] == (2 if rows < 10_000_000 else 3)
        per_leaf = rows / opts["num_leaves"]
        assert per_leaf <= 1000 and (per_leaf >= 200 or opts["num_leaves"] == 1)
    (ddl,) = vector_index_ddl(250_000)
    assert f"num_leaves = {250_000 // ROWS_PER_LEAF}" in ddl and "tree_depth = 2" in ddl
    # The filter columns are stored: "Spanner performs filtering at the index's leaf level".
    assert "STORING (Kind, Locale, Tags, Audience)" in ddl


def test_vector_index_is_created_only_once_rows_exist() -> None:
    cfg = SpannerConfig(project="p", instance="inst", dimensions=768)
    empty = FakeDatabase([("INFORMATION_SCHEMA.INDEXES", []), ("COUNT(*)", [[0]])])
    assert ensure_vector_index(cfg, database=empty) == "empty" and empty.updated == []
    loaded = FakeDatabase([("INFORMATION_SCHEMA.INDEXES", []), ("COUNT(*)", [[120_000]])])
    assert ensure_vector_index(cfg, database=loaded) == "created"
    (statements,) = loaded.updated
    assert statements == vector_index_ddl(120_000)
    present = FakeDatabase([("INFORMATION_SCHEMA.INDEXES", [["READ_WRITE"]])])
    assert ensure_vector_index(cfg, database=present) == "exists" and present.updated == []


def test_leaves_to_search_is_one_percent_widened_for_the_tenant_filter() -> None:
    """BEST_PRACTICES_DOC: "We recommend using a number that is 1% the total number of leaves
    defined in the CREATE VECTOR INDEX statement as the value for num_leaves_to_search. If you're
    using a filter clause, increase this value to widen the search." Every query filters on Tenant."""
    leaves = 2000  # a 1,000,000-row table at ROWS_PER_LEAF
    assert leaves_to_search(leaves, tenant_rows=1_000_000) == 20  # the only tenant: plain 1%
    assert leaves_to_search(leaves, tenant_rows=250_000) == 80  # a quarter: four times as many
    assert leaves_to_search(leaves, tenant_rows=5_000) == leaves  # tiny tenant: all of them
    assert leaves_to_search(leaves, tenant_rows=0) == leaves


def _num_leaves_json(sql: str) -> int:
    found = re.search(r'"num_leaves_to_search": (\d+)', sql)
    assert found, sql
    return int(found.group(1))


def test_search_is_exact_until_the_vector_index_is_usable_then_widened_per_tenant() -> None:
    """FORCE_INDEX on a missing or still-backfilling (WRITE_ONLY) index fails, so before the
    first load's index is READ_WRITE the vector branch searches exactly (COSINE_DISTANCE). Once
    it is, a large tenant gets the ANN query with its widened num_leaves_to_search, and a tenant
    so small that every leaf would be searched gets exact search over its own rows."""
    vector = np.ones(768, dtype=np.float32)
    hits = [("WITH Ranked AS", [])]
    db = FakeDatabase([("INFORMATION_SCHEMA.INDEXES", []), *hits])
    make_index(db).hybrid_search("refund", vector, 5, SearchFilters("acme"))
    assert "COSINE_DISTANCE(Embedding, @vector)" in db.sql[-1] and "APPROX" not in db.sql[-1]

    backfilling = FakeDatabase([("INFORMATION_SCHEMA.INDEXES", [["WRITE_ONLY"]]), *hits])
    make_index(backfilling).hybrid_search("refund", vector, 5, SearchFilters("acme"))
    assert "APPROX" not in backfilling.sql[-1]

    ddl = vector_index_ddl(1_000_000)
    counts = {"big": 250_000, "tiny": 2_000}
    for tenant, rows in counts.items():
        ready = FakeDatabase(
            [("INFORMATION_SCHEMA.INDEXES", [["READ_WRITE"]]), ("COUNT(*)", [[0, rows]]), *hits], ddl=ddl
        )
        make_index(ready).hybrid_search("refund", vector, 5, SearchFilters(tenant))
        sql = ready.sql[-1]
        if tenant == "big":
            assert "APPROX_COSINE_DISTANCE" in sql and _num_leaves_json(sql) == leaves_to_search(2000, rows)
        else:
            assert "APPROX" not in sql and "COSINE_DISTANCE(Embedding, @vector)" in sql


def test_index_state_is_looked_up_again_after_the_ttl() -> None:
    db = FakeDatabase([("INFORMATION_SCHEMA.INDEXES", []), ("WITH Ranked AS", [])])
    index = make_index(db, index_info_ttl_s=0.0)
    vector = np.ones(768, dtype=np.float32)
    index.hybrid_search("a", vector, 5, SearchFilters("acme"))
    index.hybrid_search("a", vector, 5, SearchFilters("acme"))
    assert sum("INFORMATION_SCHEMA.INDEXES" in q for q in db.sql) == 2
    cached = make_index(db)
    cached.hybrid_search("a", vector, 5, SearchFilters("acme"))
    cached.hybrid_search("a", vector, 5, SearchFilters("acme"))
    assert sum("INFORMATION_SCHEMA.INDEXES" in q for q in db.sql) == 3


def test_visibility_columns_are_appended_never_edited_into_the_tables() -> None:
    """An existing database is updated by statements appended to its DDL list (Spanner's updateDdl
    "Updates the schema of a Cloud Spanner database by creating/altering/dropping tables, columns",
    https://cloud.google.com/spanner/docs/reference/rest/v1/projects.instances.databases/updateDdl);
    rewriting an earlier CREATE TABLE cannot be applied to a live database. The visibility columns
    are ALTER TABLE … ADD COLUMN with defaults (public, everyone) at the end of the schema."""
    from store.spanner.ddl import knowledge_ddl, session_ddl, visibility_ddl

    statements, tables, visibility = all_ddl(768), session_ddl() + knowledge_ddl(768), visibility_ddl()
    # The original tables first, untouched; the visibility columns appended right after them (later
    # additions, such as the insights table, follow in their turn).
    assert statements[: len(tables)] == tables
    assert statements[len(tables) : len(tables) + len(visibility)] == visibility
    assert not any("Audience" in s or "Internal" in s for s in tables)
    assert all(s.startswith("ALTER TABLE") and "NOT NULL DEFAULT" in s for s in visibility_ddl())
