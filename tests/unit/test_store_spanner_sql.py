"""Generated Spanner DDL/SQL and result mapping (no Spanner needed)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from store.knowledge.types import SearchFilters
from store.spanner import SpannerConfig, build_hybrid_query, knowledge_ddl, row_to_hit, session_ddl
from store.spanner.ddl import DEFAULT_DIMENSIONS, render_schema_sql, vector_index_ddl

REPO = Path(__file__).resolve().parents[2]


def test_schema_sql_file_is_generated_from_ddl_module() -> None:
    assert (REPO / "infra/spanner/schema.sql").read_text() == render_schema_sql(DEFAULT_DIMENSIONS)


def test_sessions_table_has_row_deletion_policy_and_ticket_index() -> None:
    table, index = session_ddl()
    assert "ROW DELETION POLICY (OLDER_THAN(ExpiresAt, INTERVAL 0 DAY))" in table
    assert "PRIMARY KEY (SessionId)" in table
    assert "Data JSON NOT NULL" in table
    assert index.startswith("CREATE INDEX SessionsByTicket ON Sessions (Tenant, TicketId")


def test_chunks_table_has_vector_tokens_and_indexes() -> None:
    ddl = "\n".join(knowledge_ddl(768))
    assert "Embedding ARRAY<FLOAT32>(vector_length=>768) NOT NULL" in ddl
    assert "Text_Tokens TOKENLIST AS (TOKENIZE_FULLTEXT(Text)) HIDDEN" in ddl
    assert "INTERLEAVE IN PARENT KnowledgeDocuments ON DELETE CASCADE" in ddl
    assert "CREATE SEARCH INDEX KnowledgeChunksText ON KnowledgeChunks (Text_Tokens, Title_Tokens)" in ddl
    assert "PARTITION BY Tenant" in ddl
    (vector,) = vector_index_ddl(5000)
    assert vector.startswith("CREATE VECTOR INDEX KnowledgeChunksEmbedding ON KnowledgeChunks (Embedding)")
    assert "distance_type = 'COSINE'" in vector and "WHERE Embedding IS NOT NULL" in vector


def test_hybrid_query_is_one_statement_fusing_both_lists_with_rrf() -> None:
    q = build_hybrid_query("refund for my order", np.ones(4, dtype=np.float32), 5, SearchFilters("acme"))
    assert q is not None
    sql = q.sql
    assert sql.count("UNION ALL") == 1 and sql.count("WITH OFFSET AS off") == 2
    assert (
        "APPROX_COSINE_DISTANCE(Embedding, @vector, options => JSON '{\"num_leaves_to_search\": 10}')" in sql
    )
    assert "@{FORCE_INDEX=KnowledgeChunksEmbedding}" in sql
    assert "SEARCH(Text_Tokens, @query)" in sql and "SCORE(Text_Tokens, @query)" in sql
    assert "SUM(1.0 / (@rrf_k + Rnk)) AS Score" in sql
    assert "MIN(IF(Src = 'text', Rnk, NULL)) AS TextRank" in sql
    # Every branch and both joins pin the tenant.
    assert sql.count("Tenant = @tenant") == 4
    assert q.params["tenant"] == "acme" and q.params["rrf_k"] == 60.0 and q.params["k"] == 5
    assert q.params["query"] == "refund OR order"
    assert q.params["vector"] == [1.0, 1.0, 1.0, 1.0]


ANN_DOC = "https://cloud.google.com/spanner/docs/find-approximate-nearest-neighbors#query-vector-embeddings"


def _ann_subquery(sql: str) -> str:
    """The SELECT ... LIMIT n inside UNNEST(ARRAY(...)) that uses the approximate distance."""
    match = re.search(
        r"SELECT AS STRUCT[^()]*?FROM [^\n]*\n.*?APPROX_COSINE_DISTANCE.*?LIMIT [^)]+", sql, re.S
    )
    assert match, sql
    return match.group(0)


@pytest.mark.parametrize(
    "filters",
    [SearchFilters("acme"), SearchFilters("acme", kinds=("article",), locale="de", tags=("vip",))],
)
def test_approximate_branch_orders_by_the_distance_alone_then_limits(filters: SearchFilters) -> None:
    """Spanner's documented restrictions on the approximate distance functions (ANN_DOC):

    "The approximate distance function must calculate the distance between an embedding column
    and a constant expression (for example, a parameter or a literal)." / "The approximate
    distance function output must be used in a ORDER BY clause as the sole sort key, and a LIMIT
    must be specified after the ORDER BY." / "The query must explicitly filter out rows that
    aren't indexed ... a WHERE <column_name> IS NOT NULL clause that matches the vector index
    definition". Breaking the second rule fails every call ("unsupported use of an approximate
    distance function"); the emulator has no ANN functions, so the generated SQL is checked here.
    Vector search best practices also recommend "a SQL literal instead of a parameter" for a
    fixed top-k LIMIT (https://cloud.google.com/spanner/docs/vector-search-best-practices)."""
    q = build_hybrid_query("refund", np.ones(4, dtype=np.float32), 5, filters, candidates=40)
    assert q is not None
    sub = _ann_subquery(q.sql)
    order_by = re.search(r"ORDER BY (.*) LIMIT (\S+)$", sub, re.S)
    assert order_by, sub
    keys, limit = order_by.group(1).strip(), order_by.group(2)
    # One sort key: the approximate distance of the Embedding column to the @vector parameter.
    assert re.fullmatch(r"APPROX_COSINE_DISTANCE\(Embedding, @vector, options => JSON '\{[^']*\}'\)", keys), (
        keys
    )
    assert limit == "40"
    assert "Embedding IS NOT NULL" in sub and "@{FORCE_INDEX=KnowledgeChunksEmbedding}" in sub
    assert (
        "FORCE_INDEX=KnowledgeChunksEmbedding" in q.sql
        and "WHERE Embedding IS NOT NULL" in vector_index_ddl(1)[0]
    )


def test_hybrid_query_exact_mode_filters_and_single_branches() -> None:
    f = SearchFilters("acme", kinds=("article", "macro"), locale="de", tags=("vip",))
    q = build_hybrid_query("x", np.zeros(3), 3, f, vector_search="exact")
    assert q is not None
    assert "COSINE_DISTANCE(Embedding, @vector)" in q.sql and "APPROX" not in q.sql
    assert "Kind IN UNNEST(@kinds)" in q.sql and "Locale = @locale" in q.sql
    assert "ARRAY_INCLUDES_ANY(Tags, @tags)" in q.sql
    assert (
        q.params["kinds"] == ["article", "macro"]
        and q.params["locale"] == "de"
        and q.params["tags"] == ["vip"]
    )
    text_only = build_hybrid_query("refund", None, 3, f)
    assert text_only is not None and "UNION ALL" not in text_only.sql and "@vector" not in text_only.sql
    vector_only = build_hybrid_query("the of", np.ones(3), 3, f)  # only stop words: no text branch
    assert vector_only is not None and "SEARCH(" not in vector_only.sql
    assert build_hybrid_query("", None, 3, f) is None


def test_user_text_cannot_inject_into_the_query() -> None:
    q = build_hybrid_query('x\' OR 1=1; -- "a" -b', None, 3, SearchFilters("acme"))
    assert q is not None
    assert "1=1" not in q.sql and "--" not in q.params["query"] and '"' not in q.params["query"]


def test_row_to_hit_maps_columns() -> None:
    hit = row_to_hit(
        ["article:1", 2, "text", "Title", "https://u", "article", "en-us", ["a"], True, None, 3, 0.0159]
    )
    assert hit.document.internal is True
    assert hit.chunk.id == "article:1#2" and hit.chunk.position == 2 and hit.chunk.text == "text"
    assert hit.document.id == "article:1" and hit.document.tags == ("a",) and hit.document.url == "https://u"
    assert hit.text_rank is None and hit.vector_rank == 3 and hit.score == pytest.approx(0.0159)


def test_spanner_config_validates() -> None:
    with pytest.raises(ValueError):
        SpannerConfig(project="", instance="inst")
    with pytest.raises(ValueError):
        SpannerConfig(project="p", instance="Bad Id")
    with pytest.raises(ValueError):
        SpannerConfig(project="p", instance="inst", vector_search="fast")  # type: ignore[arg-type]
    assert SpannerConfig(project="p", instance="inst").database == "sidebar"


def test_connection_handler_shares_one_client_per_instance_across_threads() -> None:
    import threading

    from store.spanner import SpannerConnectionHandler

    SpannerConnectionHandler.reset()
    config = SpannerConfig(project="p", instance="cache", database="sidebar", emulator_host="localhost:1")
    results: list = []

    def grab() -> None:
        handler = SpannerConnectionHandler.for_config(config)
        results.append((handler.client(), handler.get_database(), handler.get_database("other")))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clients = {id(c) for c, _, _ in results}
    defaults = {id(d) for _, d, _ in results}
    others = {id(o) for _, _, o in results}
    assert len(clients) == 1 and len(defaults) == 1 and len(others) == 1 and defaults != others
    _, db, other = results[0]
    assert db.name.endswith("/instances/cache/databases/sidebar") and other.name.endswith("/databases/other")
    SpannerConnectionHandler.reset()


def test_the_viewers_audience_filters_both_branches() -> None:
    """A restricted article (Articles API `user_segment_id`,
    https://developer.zendesk.com/api-reference/help_center/help-center-api/articles/) must not be
    found through either branch: ANN ("Spanner performs filtering at the index's leaf level" for a
    STORED column) or full-text. Audience is typed ARRAY<STRING> like Tags."""
    from google.cloud.spanner_v1 import param_types as pt

    filters = SearchFilters("acme", audience=("everyone", "agents", "group:900"))
    q = build_hybrid_query("refund", np.ones(4, dtype=np.float32), 5, filters)
    assert q.sql.count("ARRAY_INCLUDES_ANY(Audience, @audience)") == 2
    assert q.params["audience"] == ["agents", "everyone", "group:900"]
    assert q.param_types["audience"] == pt.Array(pt.STRING)
    assert "@audience" not in build_hybrid_query("refund", None, 5, SearchFilters("acme")).sql
