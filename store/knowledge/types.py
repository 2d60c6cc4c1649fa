"""Value types and protocols of the knowledge index (no backend code here)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np

RRF_K = 60
MAX_DOC_ID_CHARS = 256
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,31}$")
# Bump when chunking changes so content hashes change and re-ingest re-chunks everything.
CHUNKER_VERSION = "2"


class KnowledgeError(RuntimeError):
    """The knowledge index could not be read or written."""


class InvalidQueryError(ValueError):
    """A search or write was called with invalid arguments (missing tenant, bad filter, ...)."""


def validate_tenant(tenant: object) -> str:
    if not isinstance(tenant, str) or not tenant:
        raise InvalidQueryError("tenant is required (a non-empty string); no query may cross tenants")
    if not _TENANT_RE.match(tenant):
        raise InvalidQueryError(f"invalid tenant {tenant!r}: use letters, digits, '_', '-', '.' (max 128)")
    return tenant


AUDIENCE_EVERYONE = "everyone"
AUDIENCE_AGENTS = "agents"
_AUDIENCE_RE = re.compile(r"^(everyone|agents|(group|user|segment):[A-Za-z0-9_.@\-]{1,128})$")


def validate_audience(keys: object) -> tuple[str, ...]:
    """Sorted, de-duplicated audience keys; at least one (a document nobody may see is a bug)."""
    if isinstance(keys, str) or not isinstance(keys, tuple | list | set | frozenset):
        raise InvalidQueryError("audience must be a sequence of keys, not a string")
    out = tuple(sorted({str(k) for k in keys}))
    if not out:
        raise InvalidQueryError("audience needs at least one key")
    bad = [k for k in out if not _AUDIENCE_RE.match(k)]
    if bad:
        raise InvalidQueryError(
            f"invalid audience key(s) {bad[:3]}: everyone, agents, group:/user:/segment:<id>"
        )
    return out


def validate_kind(kind: object) -> str:
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise InvalidQueryError(f"invalid document kind {kind!r}: lower-case identifier, max 32 chars")
    return kind


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from an embedding model. Rows must be L2-normalised float32."""

    dimensions: int

    def embed(self, texts: list[str], *, task_type: str) -> np.ndarray: ...


@dataclass(frozen=True)
class Document:
    """One searchable source document. `id` is ``"{kind}:{external_id}"`` (e.g. ``article:360001234``)."""

    tenant: str
    kind: str
    external_id: str
    title: str
    body: str
    source: str
    url: str = ""
    locale: str = "en-us"
    tags: tuple[str, ...] = ()
    updated_at: str = ""
    # "html" bodies are converted to text before chunking; "markdown" is rendered first.
    body_format: str = "text"
    # Internal-only content (an article restricted to a user segment, a solved ticket's internal
    # notes, an agent-only macro): never to be sent to a customer without the agent confirming.
    internal: bool = False
    # Who may be shown it at all: audience keys (AUDIENCE_EVERYONE, "agents", "group:<id>",
    # "user:<id>", "segment:<id>"); a search only returns documents sharing a key with the viewer.
    audience: tuple[str, ...] = (AUDIENCE_EVERYONE,)

    def __post_init__(self) -> None:
        validate_tenant(self.tenant)
        validate_kind(self.kind)
        if not self.external_id or not isinstance(self.external_id, str):
            raise InvalidQueryError("document external_id is required")
        if len(self.id) > MAX_DOC_ID_CHARS:
            raise InvalidQueryError(f"document id longer than {MAX_DOC_ID_CHARS} chars")
        if self.body_format not in {"text", "html", "markdown"}:
            raise InvalidQueryError(f"unknown body_format {self.body_format!r}")
        if not self.source:
            raise InvalidQueryError("document source is required (help-center, tickets, ...)")
        object.__setattr__(self, "locale", (self.locale or "").lower())
        object.__setattr__(self, "tags", tuple(sorted({str(t) for t in self.tags})))
        object.__setattr__(self, "internal", bool(self.internal))
        object.__setattr__(self, "audience", validate_audience(self.audience))

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.external_id}"

    @property
    def content_hash(self) -> str:
        """Stable over everything that is indexed, so unchanged documents can be skipped."""
        payload = asdict(self)
        payload.pop("updated_at")  # a touched-but-identical article need not be re-embedded
        # Visibility joined the hash later: left out at its default, so public documents keep the
        # hash they were indexed with (no re-embedding), and any restriction forces a rewrite.
        if not payload["internal"]:
            payload.pop("internal")
        if tuple(payload["audience"]) == (AUDIENCE_EVERYONE,):
            payload.pop("audience")
        payload["chunker"] = CHUNKER_VERSION
        raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """The support agent a search is for. `group_ids` None: unknown (not in the verified token),
    so content restricted to groups stays hidden; () means known to be in no group."""

    user_id: str = ""
    group_ids: tuple[str, ...] | None = None

    def audience(self) -> tuple[str, ...]:
        """Audience keys this agent may see. Help Center user segments
        (https://developer.zendesk.com/api-reference/help_center/help-center-api/user_segments/):
        `user_type` "signed_in_users" and "staff" both include agents; `group_ids` need a shared
        group; organizations are ignored for agents; tag-restricted segments stay hidden because an
        agent's tags are not known here (see records.segment_audience)."""
        keys = [AUDIENCE_EVERYONE, AUDIENCE_AGENTS]
        if self.user_id:
            keys.append(f"user:{self.user_id}")
        keys.extend(f"group:{g}" for g in self.group_ids or ())
        return tuple(keys)


@dataclass(frozen=True)
class SearchFilters:
    """Restricts a search. `tenant` is mandatory; `kinds`/`tags` match any of the given values.

    `audience`: only documents sharing one of these keys (a Viewer's `audience()`); None applies no
    visibility filter (ingest, benchmarks) — everything a support agent asks passes one."""

    tenant: str
    kinds: tuple[str, ...] = ()
    locale: str | None = None
    tags: tuple[str, ...] = ()
    audience: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        validate_tenant(self.tenant)
        if isinstance(self.kinds, str) or isinstance(self.tags, str) or isinstance(self.audience, str):
            raise InvalidQueryError("kinds, tags and audience must be sequences of strings, not a string")
        object.__setattr__(self, "kinds", tuple(validate_kind(k) for k in self.kinds))
        object.__setattr__(self, "tags", tuple(str(t) for t in self.tags))
        if self.audience is not None:
            if not self.audience:
                raise InvalidQueryError("an audience filter needs at least one key (None: no filter)")
            object.__setattr__(self, "audience", validate_audience(self.audience))
        if self.locale is not None:
            if not isinstance(self.locale, str) or not self.locale:
                raise InvalidQueryError("locale filter must be a non-empty string or None")
            object.__setattr__(self, "locale", self.locale.lower())


@dataclass(frozen=True)
class ChunkRef:
    id: str
    text: str
    position: int


@dataclass(frozen=True)
class DocumentRef:
    id: str
    title: str
    url: str
    kind: str
    locale: str
    tags: tuple[str, ...] = ()
    internal: bool = False


@dataclass(frozen=True)
class Hit:
    """One fused result. Ranks are 1-based; None when the chunk was absent from that list."""

    chunk: ChunkRef
    document: DocumentRef
    text_rank: int | None
    vector_rank: int | None
    score: float


@dataclass
class UpsertStats:
    added: int = 0
    updated: int = 0
    skipped: int = 0
    chunks_written: int = 0

    def merge(self, other: UpsertStats) -> None:
        self.added += other.added
        self.updated += other.updated
        self.skipped += other.skipped
        self.chunks_written += other.chunks_written


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int


@runtime_checkable
class KnowledgeIndex(Protocol):
    """Chunked, embedded documents of many tenants with hybrid (full-text + vector) search.

    Two implementations share this contract and one behavioural suite
    (tests/integration/test_store_backends.py): :class:`store.knowledge.sqlite_index.SqliteKnowledgeIndex`
    (SQLite FTS5 + numpy, the local twin) and :class:`store.spanner.knowledge.SpannerKnowledgeIndex`
    (Spanner full-text search + vector distance). Pick one with ``store.factory.open_knowledge_index``.

    Every method takes its tenant explicitly (a :class:`SearchFilters` or an argument) and never
    reads or writes another tenant's rows. Implementations must be thread-safe: the orchestrator's
    agents search one index from several threads at once while ingest may be writing.

    Errors: a backend that cannot be reached or returns a corrupt row raises :class:`KnowledgeError`;
    invalid arguments (missing or malformed tenant, bad filter) raise :class:`InvalidQueryError`
    before any I/O.
    """

    #: Embeds documents at upsert and queries in :meth:`search`; its dimension is the index's.
    embedder: Embedder

    def upsert(self, tenant: str, documents: list[Document]) -> UpsertStats:
        """Chunk, embed and store `documents` for `tenant`.

        Unchanged documents (same content hash) are skipped without embedding. Each changed
        document's chunks replace its old ones in one transaction, so a reader sees either the
        old or the new version, never a mix. Returns how many were added, updated and skipped."""

    def delete(self, tenant: str, doc_ids: list[str]) -> int:
        """Remove documents and their chunks; returns how many of `doc_ids` existed."""

    def document_hashes(self, tenant: str, *, source: str | None = None) -> dict[str, str]:
        """doc id -> content hash of the tenant's documents (of one `source`), for incremental re-ingest."""

    def hybrid_search(
        self, text: str, vector: np.ndarray | None, k: int, filters: SearchFilters, *, candidates: int = 50
    ) -> list[Hit]:
        """Full-text top-`candidates` and vector top-`candidates`, fused with RRF (k=60); at most `k` hits.

        Empty `text` means vector-only; `vector=None` means full-text only. Only chunks passing
        `filters` (tenant always; kinds, locale, tags, audience when given) are candidates, so a
        restricted article never reaches a viewer outside its audience. Results are best first and
        deterministic for equal scores (see :func:`fuse`)."""

    def search(self, text: str, k: int, filters: SearchFilters, *, candidates: int = 50) -> list[Hit]:
        """Embed `text` (task RETRIEVAL_QUERY) with :attr:`embedder`, then :meth:`hybrid_search`.

        The convenience every agent uses; raises what the embedder or hybrid_search raises."""

    def stats(self, tenant: str) -> IndexStats:
        """How many documents and chunks the tenant has (readiness pages, benchmarks)."""

    def ping(self) -> None:
        """Raise :class:`KnowledgeError` when the index is unreachable (used by ``/readyz``)."""

    def close(self) -> None:
        """Release connections; the index is unusable afterwards."""


def chunk_id(doc_id: str, position: int) -> str:
    return f"{doc_id}#{position}"


def rrf_score(*ranks: int | None, k: int = RRF_K) -> float:
    return sum(1.0 / (k + r) for r in ranks if r is not None)


def fuse(
    text_ranked: list[str], vector_ranked: list[str], limit: int, k: int = RRF_K
) -> list[tuple[str, int | None, int | None, float]]:
    """RRF of two ranked key lists -> (key, text_rank, vector_rank, score), best first.

    Ties break on the better single rank, then the key, so results are deterministic."""
    text_rank = {key: i + 1 for i, key in enumerate(text_ranked)}
    vector_rank = {key: i + 1 for i, key in enumerate(vector_ranked)}
    rows = []
    for key in dict.fromkeys([*text_ranked, *vector_ranked]):
        t, v = text_rank.get(key), vector_rank.get(key)
        rows.append((key, t, v, rrf_score(t, v, k=k)))
    rows.sort(key=lambda r: (-r[3], min(x for x in (r[1], r[2]) if x is not None), r[0]))
    return rows[:limit]


_TOKEN_RE = re.compile(r"\w+", re.UNICODE)
# Very common words only: they match nearly every chunk, cost time and add no ranking signal.
_STOPWORDS_TEXT = """a about after again all also am an and any are as at be because been before being both but by
    can could did do does doing down during each few for from further get got had has have he her here
    hers him his how i if in into is it its just me more most much my myself no nor not now of off on
    once only or other our ours out over own same she should so some such than that the their them
    then there these they this those through to too under until up us very was we were what when where
    which while who whom why will with would you your yours"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def query_terms(text: str, limit: int = 32) -> list[str]:
    """Lower-cased word tokens of a user query, stop words and duplicates removed, order kept."""
    seen: dict[str, None] = {}
    for tok in _TOKEN_RE.findall(text.lower()):
        if tok not in STOPWORDS and tok not in seen:
            seen[tok] = None
        if len(seen) >= limit:
            break
    return list(seen)
