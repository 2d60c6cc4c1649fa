"""GoogleSQL DDL for the Spanner backend. infra/spanner/schema.sql is generated from this module
(`python store/spanner/ddl.py > infra/spanner/schema.sql`; a unit test keeps them identical).

Only the standard library: infra/deploy.sh runs this file by path, without the app's
dependencies, to render the schema for its EMBEDDING_DIMENSIONS.

The vector index is not part of the schema: Spanner recommends creating it "after most of the
rows with embeddings are written" (https://cloud.google.com/spanner/docs/vector-indexes), so it
is created after the first load (`vector_index_ddl(rows)`, store/spanner/provision.py)."""

from __future__ import annotations

import math
import sys

SESSIONS_TABLE = "Sessions"
TURNS_TABLE = "SessionTurns"
TURNS_INDEX = "SessionTurnsByTenantDay"
DOCUMENTS_TABLE = "KnowledgeDocuments"
CHUNKS_TABLE = "KnowledgeChunks"
SEARCH_INDEX = "KnowledgeChunksText"
VECTOR_INDEX = "KnowledgeChunksEmbedding"
# EMBEDDING_DIMENSIONS' default: text-embedding-005's width, and what schema.sql is rendered at.
DEFAULT_DIMENSIONS = 768
# Vector index sizing, from https://cloud.google.com/spanner/docs/vector-index-best-practices:
# "We recommend targeting 200-1000 rows per leaf"; tree_depth 2 below 10 million rows, else 3.
ROWS_PER_LEAF = 500
TREE_DEPTH_3_ROWS = 10_000_000


def session_ddl() -> list[str]:
    # Sessions are kept forever unless ExpiresAt is set (e.g. a tenant's retention policy or an
    # erasure request): the row deletion policy only removes rows whose ExpiresAt has passed.
    return [
        f"""CREATE TABLE {SESSIONS_TABLE} (
  SessionId STRING(128) NOT NULL,
  Tenant STRING(128) NOT NULL,
  UserId STRING(256) NOT NULL,
  TicketId STRING(128) NOT NULL,
  Version INT64 NOT NULL,
  UpdatedAt FLOAT64 NOT NULL,
  Data JSON NOT NULL,
  ExpiresAt TIMESTAMP,
  CommittedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (SessionId),
  ROW DELETION POLICY (OLDER_THAN(ExpiresAt, INTERVAL 0 DAY))""",
        f"CREATE INDEX SessionsByTicket ON {SESSIONS_TABLE} (Tenant, TicketId, UpdatedAt DESC)",
    ]


def knowledge_ddl(dimensions: int = DEFAULT_DIMENSIONS) -> list[str]:
    return [
        f"""CREATE TABLE {DOCUMENTS_TABLE} (
  Tenant STRING(128) NOT NULL,
  DocId STRING(256) NOT NULL,
  Kind STRING(32) NOT NULL,
  Source STRING(32) NOT NULL,
  Title STRING(MAX) NOT NULL,
  Url STRING(MAX) NOT NULL,
  Locale STRING(32) NOT NULL,
  Tags ARRAY<STRING(MAX)> NOT NULL,
  UpdatedAt STRING(64) NOT NULL,
  ContentHash STRING(64) NOT NULL,
  IndexedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (Tenant, DocId)""",
        f"CREATE INDEX KnowledgeDocumentsBySource ON {DOCUMENTS_TABLE} (Tenant, Source) STORING (ContentHash)",
        # Kind/Locale/Tags are copied onto chunks so both search branches filter without a join.
        f"""CREATE TABLE {CHUNKS_TABLE} (
  Tenant STRING(128) NOT NULL,
  DocId STRING(256) NOT NULL,
  Position INT64 NOT NULL,
  Title STRING(MAX) NOT NULL,
  Text STRING(MAX) NOT NULL,
  Kind STRING(32) NOT NULL,
  Locale STRING(32) NOT NULL,
  Tags ARRAY<STRING(MAX)> NOT NULL,
  Embedding ARRAY<FLOAT32>(vector_length=>{int(dimensions)}) NOT NULL,
  Text_Tokens TOKENLIST AS (TOKENIZE_FULLTEXT(Text)) HIDDEN,
  Title_Tokens TOKENLIST AS (TOKENIZE_FULLTEXT(Title)) HIDDEN,
) PRIMARY KEY (Tenant, DocId, Position),
  INTERLEAVE IN PARENT {DOCUMENTS_TABLE} ON DELETE CASCADE""",
        # PARTITION BY Tenant: every full-text query must pin one tenant, and only reads its part.
        f"""CREATE SEARCH INDEX {SEARCH_INDEX} ON {CHUNKS_TABLE} (Text_Tokens, Title_Tokens)
  STORING (Kind, Locale, Tags)
  PARTITION BY Tenant""",
    ]


def visibility_ddl() -> list[str]:
    """Document visibility (internal content, who may see it), appended after the tables rather
    than written into them: Terraform's google_spanner_database applies DDL appended to its list
    to an existing database, while editing an earlier statement would replace the database. New
    and existing databases get the same columns; rows written before them read the defaults
    (public, everyone) until the next ingest rewrites the restricted ones (their hashes differ).
    Audience is copied onto chunks, so both search branches filter it without a join."""
    return [
        f"ALTER TABLE {DOCUMENTS_TABLE} ADD COLUMN Internal BOOL NOT NULL DEFAULT (FALSE)",
        f"ALTER TABLE {DOCUMENTS_TABLE} ADD COLUMN Audience ARRAY<STRING(MAX)> NOT NULL DEFAULT (['everyone'])",
        f"ALTER TABLE {CHUNKS_TABLE} ADD COLUMN Audience ARRAY<STRING(MAX)> NOT NULL DEFAULT (['everyone'])",
    ]


def insights_ddl() -> list[str]:
    """One row per question for the insights page (store/insights.py), written in the session's
    own transaction. Interleaved in Sessions: a session's rows sit with it and go with it (the
    row deletion policy's cascade included). The index pins tenant and day and stores every
    column the queries read, so a report is one index range scan per query."""
    return [
        f"""CREATE TABLE {TURNS_TABLE} (
  SessionId STRING(128) NOT NULL,
  MessageId STRING(64) NOT NULL,
  Tenant STRING(128) NOT NULL,
  UserId STRING(256) NOT NULL,
  UserName STRING(256) NOT NULL,
  TicketId STRING(128) NOT NULL,
  AskedAt FLOAT64 NOT NULL,
  Day STRING(10) NOT NULL,
  Question STRING(MAX) NOT NULL,
  Status STRING(16) NOT NULL,
  Action STRING(16) NOT NULL,
  Agents STRING(512) NOT NULL,
  LatencyS FLOAT64,
  CostUsd FLOAT64 NOT NULL,
  InputTokens INT64 NOT NULL,
  OutputTokens INT64 NOT NULL,
  Rating STRING(8),
  WrongSources BOOL NOT NULL,
  Declined BOOL NOT NULL,
  Draft BOOL NOT NULL,
  Inserted BOOL NOT NULL,
) PRIMARY KEY (SessionId, MessageId),
  INTERLEAVE IN PARENT {SESSIONS_TABLE} ON DELETE CASCADE""",
        f"""CREATE INDEX {TURNS_INDEX} ON {TURNS_TABLE} (Tenant, Day)
  STORING (UserId, UserName, TicketId, AskedAt, Question, Status, Action, Agents, LatencyS, CostUsd,
    InputTokens, OutputTokens, Rating, WrongSources, Declined, Draft, Inserted)""",
    ]


def vector_index_options(rows: int) -> dict[str, int]:
    """tree_depth and num_leaves for a table of `rows` embeddings (the documented guidance)."""
    rows = max(int(rows), 1)
    options = {
        "tree_depth": 2 if rows < TREE_DEPTH_3_ROWS else 3,
        "num_leaves": max(1, math.ceil(rows / ROWS_PER_LEAF)),
    }
    return options


def vector_index_ddl(rows: int) -> list[str]:
    """CREATE VECTOR INDEX sized for `rows` chunks. Kind/Locale/Tags/Audience are STORED: "If a column
    value is stored in the vector index, then Spanner performs filtering at the index's leaf
    level" (https://cloud.google.com/spanner/docs/vector-indexes). The emulator rejects it."""
    options = ", ".join(f"{k} = {v}" for k, v in vector_index_options(rows).items())
    return [
        f"""CREATE VECTOR INDEX {VECTOR_INDEX} ON {CHUNKS_TABLE} (Embedding)
  STORING (Kind, Locale, Tags, Audience)
  WHERE Embedding IS NOT NULL
  OPTIONS (distance_type = 'COSINE', {options})"""
    ]


def all_ddl(dimensions: int = DEFAULT_DIMENSIONS) -> list[str]:
    """Everything a new database gets; the vector index comes after the first load. Later
    additions are appended (never edited into earlier statements): see visibility_ddl."""
    return session_ddl() + knowledge_ddl(dimensions) + visibility_ddl() + insights_ddl()


def render_schema_sql(dimensions: int = DEFAULT_DIMENSIONS) -> str:
    header = (
        "-- Generated by `python store/spanner/ddl.py > infra/spanner/schema.sql`; edit store/spanner/ddl.py.\n"
        f"-- Embeddings: {int(dimensions)} dimensions (EMBEDDING_DIMENSIONS; infra/deploy.sh renders its own).\n"
        "-- Apply: gcloud spanner databases ddl update DB --instance=INSTANCE --ddl-file=schema.sql\n"
        "-- The vector index is created after the first load: `python store/spanner/ddl.py --vector-index ROWS`.\n"
    )
    return header + "".join(f"\n{stmt};\n" for stmt in all_ddl(dimensions))


def main(argv: list[str]) -> int:
    """`ddl.py [DIMENSIONS]`: the schema; `ddl.py --vector-index ROWS`: the vector index DDL."""
    if argv[:1] == ["--vector-index"] and len(argv) == 2 and argv[1].isdigit():
        sys.stdout.write(vector_index_ddl(int(argv[1]))[0] + "\n")
        return 0
    if len(argv) > 1 or (argv and not argv[0].isdigit()) or (argv and not 1 <= int(argv[0]) <= 3072):
        sys.stderr.write("usage: ddl.py [DIMENSIONS (1-3072)] | ddl.py --vector-index ROWS\n")
        return 2
    sys.stdout.write(render_schema_sql(int(argv[0]) if argv else DEFAULT_DIMENSIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
