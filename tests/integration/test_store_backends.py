"""One behavioural suite for every backend: KnowledgeIndex and SessionArchive.

SQLite always runs. Spanner runs against the emulator when SPANNER_EMULATOR_HOST is set
(e.g. `gcloud emulators spanner start`, or /usr/lib/google-cloud-sdk/bin/cloud_spanner_emulator/
gateway_main --hostname localhost --grpc_port 9010 --http_port 9020); otherwise it is skipped
with that reason. The emulator has no VECTOR INDEX, so Spanner runs in exact-KNN mode there.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from store.factory import open_knowledge_index
from store.knowledge import Document, InvalidQueryError, KnowledgeError, KnowledgeIndex, SearchFilters, Viewer
from store.knowledge.types import rrf_score
from store.sessions import SessionArchive, SessionRecord
from vertex_interface.local_embedder import LocalEmbedder


@functools.cache
def shared_embedder() -> LocalEmbedder:
    """One MiniLM for the whole test run (loading it costs seconds of scarce CPU)."""
    return LocalEmbedder()


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    return shared_embedder()


@pytest.fixture
def index(backend: str, tmp_path: Path, embedder: LocalEmbedder, spanner_config) -> Iterator[KnowledgeIndex]:
    idx = open_knowledge_index(
        backend, embedder=embedder, sqlite_path=tmp_path / "k.sqlite3", spanner=spanner_config
    )
    yield idx
    idx.close()


@pytest.fixture
def tenant() -> str:
    # Unique per test: the Spanner database is shared by the module's tests.
    return f"t-{uuid.uuid4().hex[:10]}"


def doc(tenant: str, kind: str, ext: str, title: str, body: str, **kw) -> Document:
    return Document(
        tenant=tenant,
        kind=kind,
        external_id=ext,
        title=title,
        body=body,
        source=kw.pop("source", "test"),
        **kw,
    )


def corpus(tenant: str) -> list[Document]:
    return [
        doc(
            tenant,
            "article",
            "1",
            "Refund timing",
            "<p>Refunds reach your card within 5 to 7 business days after we receive the return.</p>",
            body_format="html",
            tags=("refunds",),
        ),
        doc(
            tenant,
            "article",
            "2",
            "Shipping times",
            "<p>Standard delivery takes 3 business days; express arrives next day.</p>",
            body_format="html",
            tags=("shipping",),
        ),
        doc(
            tenant,
            "article",
            "3",
            "Reset your password",
            "<p>Use the forgot password link on the sign-in page to get a reset email.</p>",
            body_format="html",
            tags=("account",),
        ),
        doc(
            tenant,
            "article",
            "4",
            "Leather boot care",
            "<p>Clean with a soft brush and apply conditioner every month.</p>",
            body_format="html",
            locale="de",
            tags=("care",),
        ),
        doc(
            tenant,
            "macro",
            "9",
            "Refund issued",
            "Your refund was issued today and should arrive within a week.",
            tags=("refunds",),
        ),
        doc(
            tenant,
            "ticket",
            "77",
            "Parcel never arrived",
            "Customer reported a lost parcel; we reshipped with express delivery.",
            tags=("shipping",),
        ),
    ]


def search(
    index: KnowledgeIndex,
    text: str,
    filters: SearchFilters,
    k: int = 5,
    *,
    use_text: bool = True,
    use_vector: bool = True,
):
    vector = index.embedder.embed([text], task_type="RETRIEVAL_QUERY")[0] if use_vector else None
    return index.hybrid_search(text if use_text else "", vector, k, filters)


# --- KnowledgeIndex -------------------------------------------------------------------------------


def test_hybrid_search_finds_relevant_chunks_with_ranks_and_rrf_scores(
    index: KnowledgeIndex, tenant: str
) -> None:
    stats = index.upsert(tenant, corpus(tenant))
    assert (stats.added, stats.updated, stats.skipped) == (6, 0, 0) and stats.chunks_written >= 6
    hits = search(index, "when will my refund arrive", SearchFilters(tenant))
    assert hits[0].document.id in {"article:1", "macro:9"}
    assert {h.document.id for h in hits[:2]} == {"article:1", "macro:9"}
    for h in hits:
        assert h.score == pytest.approx(rrf_score(h.text_rank, h.vector_rank))
        assert h.chunk.id == f"{h.document.id}#{h.chunk.position}"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = hits[0]
    assert top.document.title in {"Refund timing", "Refund issued"} and top.document.kind in {
        "article",
        "macro",
    }


def test_text_only_and_vector_only_modes(index: KnowledgeIndex, tenant: str) -> None:
    index.upsert(tenant, corpus(tenant))
    text_hits = search(index, "password reset email", SearchFilters(tenant), use_vector=False)
    assert text_hits and all(h.vector_rank is None and h.text_rank is not None for h in text_hits)
    assert text_hits[0].document.id == "article:3"
    vec_hits = search(index, "I forgot how to log in", SearchFilters(tenant), use_text=False)
    assert vec_hits and all(h.text_rank is None and h.vector_rank is not None for h in vec_hits)
    assert vec_hits[0].document.id == "article:3"
    assert [h.vector_rank for h in vec_hits] == list(range(1, len(vec_hits) + 1))
    assert search(index, "zebra xylophone", SearchFilters(tenant), use_vector=False) == []


def test_no_query_crosses_tenants(index: KnowledgeIndex, tenant: str) -> None:
    other = f"{tenant}-other"
    index.upsert(tenant, corpus(tenant))
    secret = doc(other, "article", "1", "Refund timing secret", "Refunds for the other tenant take 90 days.")
    index.upsert(other, [secret])
    hits = search(index, "refund timing 90 days", SearchFilters(tenant), k=10)
    assert hits and all("secret" not in h.document.title and "90 days" not in h.chunk.text for h in hits)
    other_hits = search(index, "refund timing", SearchFilters(other), k=10)
    assert [h.document.title for h in other_hits] == ["Refund timing secret"]
    assert index.stats(other).documents == 1 and index.stats(tenant).documents == 6
    # Deleting in one tenant leaves the same id in another untouched.
    assert index.delete(other, ["article:1"]) == 1
    assert index.stats(tenant).documents == 6
    assert search(index, "refund", SearchFilters(other)) == []


def test_tenant_is_required(index: KnowledgeIndex, tenant: str) -> None:
    with pytest.raises(InvalidQueryError, match="tenant is required"):
        index.hybrid_search("refund", None, 5, SearchFilters(""))
    with pytest.raises(InvalidQueryError):
        index.hybrid_search("refund", None, 5, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        index.upsert("", corpus(tenant))
    with pytest.raises(InvalidQueryError, match="belongs to tenant"):
        index.upsert(f"{tenant}-x", corpus(tenant))


def test_filters_by_kind_locale_and_tags(index: KnowledgeIndex, tenant: str) -> None:
    index.upsert(tenant, corpus(tenant))
    q = "refund shipping delivery care password"
    kinds = search(index, q, SearchFilters(tenant, kinds=("macro", "ticket")), k=10)
    assert {h.document.kind for h in kinds} == {"macro", "ticket"}
    de = search(index, q, SearchFilters(tenant, locale="de"), k=10)
    assert {h.document.id for h in de} == {"article:4"}
    tagged = search(index, q, SearchFilters(tenant, tags=("shipping", "account")), k=10)
    assert {h.document.id for h in tagged} == {"article:2", "ticket:77", "article:3"}
    assert (
        search(index, q, SearchFilters(tenant, kinds=("article",), tags=("refunds",)), k=10)[0].document.id
        == "article:1"
    )


def restricted_corpus(tenant: str) -> list[Document]:
    """Visibility as ingest derives it from Zendesk (store/ingest/records.py): a public article; an
    article whose `user_segment_id` names a staff segment ("staff: only agents and Help Center
    managers"); one whose segment has `group_ids` ("The ids of the groups that have access");
    a macro restricted to one user (Macros API `restriction` `{"type": "User", "id"}`); a solved
    ticket's internal notes (`public: false`, "false if an internal note").
    https://developer.zendesk.com/api-reference/help_center/help-center-api/articles/,
    https://developer.zendesk.com/api-reference/help_center/help-center-api/user_segments/,
    https://developer.zendesk.com/api-reference/ticketing/business-rules/macros/,
    https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/"""
    return [
        doc(tenant, "article", "1", "Refund timing", "Refunds reach the card within 5 to 7 business days."),
        doc(tenant, "article", "2", "Refund exceptions (staff)", "Refunds after 30 days need a team lead.",
            internal=True, audience=("agents", "segment:11")),
        doc(tenant, "article", "3", "Refund overrides (tier 2)", "Tier 2 may refund after 60 days.",
            internal=True, audience=("group:900", "segment:12")),
        doc(tenant, "macro", "5", "Refund by hand", "Refund issued by hand by the finance lead.",
            internal=True, audience=("user:7",)),
        doc(tenant, "ticket", "77:internal", "Parcel lost (internal notes)", "Warehouse approved the refund.",
            internal=True, audience=("agents",)),
    ]  # fmt: skip


def test_search_returns_only_what_the_viewer_may_see(index: KnowledgeIndex, tenant: str) -> None:
    index.upsert(tenant, restricted_corpus(tenant))
    q = "refund after days approved"

    def visible(viewer: Viewer, **modes: bool) -> dict[str, bool]:
        hits = search(index, q, SearchFilters(tenant, audience=viewer.audience()), k=10, **modes)
        return {h.document.id: h.document.internal for h in hits}

    everyone_sees = {"article:1": False, "article:2": True, "ticket:77:internal": True}
    assert visible(Viewer("42", None)) == everyone_sees  # groups unknown: no group-restricted
    assert visible(Viewer("42", ("17",))) == everyone_sees
    assert visible(Viewer("42", ("900",))) == {**everyone_sees, "article:3": True}
    assert visible(Viewer("7", ())) == {**everyone_sees, "macro:5": True}
    # Both branches filter on their own (a text-only or vector-only search leaks nothing either).
    for modes in ({"use_vector": False}, {"use_text": False}):
        assert "article:3" not in visible(Viewer("42", None), **modes)
        assert "macro:5" not in visible(Viewer("42", None), **modes)
    # No audience filter: everything, with its flag (ingest, benchmarks).
    unfiltered = {h.document.id: h.document.internal for h in search(index, q, SearchFilters(tenant), k=10)}
    assert unfiltered == {**everyone_sees, "article:3": True, "macro:5": True}
    with pytest.raises(InvalidQueryError):
        SearchFilters(tenant, audience=())


def test_reupsert_is_incremental_and_replaces_chunks(index: KnowledgeIndex, tenant: str) -> None:
    docs = corpus(tenant)
    index.upsert(tenant, docs)
    again = index.upsert(tenant, docs)
    assert (again.added, again.updated, again.skipped, again.chunks_written) == (0, 0, 6, 0)
    changed = doc(
        tenant,
        "article",
        "2",
        "Shipping times",
        "<p>Delivery now takes 10 working days by sea freight.</p>",
        body_format="html",
        tags=("shipping",),
    )
    stats = index.upsert(tenant, [changed])
    assert (stats.added, stats.updated) == (0, 1)
    hits = search(
        index, "express arrives next day", SearchFilters(tenant, kinds=("article",)), k=10, use_vector=False
    )
    assert all("express" not in h.chunk.text for h in hits)
    assert search(index, "sea freight", SearchFilters(tenant), use_vector=False)[0].document.id == "article:2"
    hashes = index.document_hashes(tenant, source="test")
    assert set(hashes) == {d.id for d in docs} and hashes["article:2"] == changed.content_hash
    assert index.document_hashes(tenant, source="other") == {}


def test_delete_removes_from_both_lists(index: KnowledgeIndex, tenant: str) -> None:
    index.upsert(tenant, corpus(tenant))
    before = index.stats(tenant)
    assert index.delete(tenant, ["article:3", "article:404"]) == 1
    assert index.delete(tenant, ["article:3"]) == 0
    after = index.stats(tenant)
    assert after.documents == before.documents - 1 and after.chunks < before.chunks
    hits = search(index, "reset password forgot", SearchFilters(tenant), k=10)
    assert all(h.document.id != "article:3" for h in hits)


def test_concurrent_searches_during_writes(index: KnowledgeIndex, tenant: str) -> None:
    index.upsert(tenant, corpus(tenant)[:3])
    vector = index.embedder.embed(["refund"], task_type="RETRIEVAL_QUERY")[0]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                hits = index.hybrid_search("refund", vector, 5, SearchFilters(tenant))
                assert hits and hits[0].document.id in {"article:1", "macro:9"}
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(4):
        index.upsert(
            tenant, [doc(tenant, "article", f"x{i}", f"Extra {i}", f"Gift card balance number {i}.")]
        )
        index.delete(tenant, [f"article:x{i - 1}"])
    index.upsert(tenant, corpus(tenant)[3:])
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors[0]
    assert index.stats(tenant).documents == 7


def test_ping(index: KnowledgeIndex) -> None:
    index.ping()


# --- SQLite-specific: the numpy mirror and the file -----------------------------------------------


def test_sqlite_mirror_follows_writes_from_another_process(tmp_path: Path, embedder: LocalEmbedder) -> None:
    path = tmp_path / "shared.sqlite3"
    writer = open_knowledge_index("sqlite", embedder=embedder, sqlite_path=path)
    reader = open_knowledge_index("sqlite", embedder=embedder, sqlite_path=path)
    tenant = "acme"
    writer.upsert(tenant, corpus(tenant)[:2])
    assert search(reader, "refund", SearchFilters(tenant), use_text=False)[0].document.id == "article:1"
    writer.upsert(tenant, [corpus(tenant)[2]])
    writer.delete(tenant, ["article:1"])
    ids = {
        h.document.id for h in search(reader, "password refund", SearchFilters(tenant), k=10, use_text=False)
    }
    assert ids == {"article:2", "article:3"}
    writer.close()
    reader.close()
    reopened = open_knowledge_index("sqlite", embedder=embedder, sqlite_path=path)
    assert reopened.stats(tenant).documents == 2
    reopened.close()


def test_sqlite_failed_embedding_writes_nothing(tmp_path: Path, embedder: LocalEmbedder) -> None:
    class Broken:
        dimensions = embedder.dimensions

        def embed(self, texts, *, task_type):
            raise RuntimeError("model crashed")

    idx = open_knowledge_index("sqlite", embedder=Broken(), sqlite_path=tmp_path / "k.sqlite3")
    with pytest.raises(RuntimeError):
        idx.upsert("acme", corpus("acme"))
    assert idx.stats("acme").documents == 0 and idx.stats("acme").chunks == 0

    class WrongShape(Broken):
        def embed(self, texts, *, task_type):
            return np.zeros((1, 3), dtype=np.float32)

    idx2 = open_knowledge_index("sqlite", embedder=WrongShape(), sqlite_path=tmp_path / "k2.sqlite3")
    with pytest.raises(KnowledgeError, match="shape"):
        idx2.upsert("acme", corpus("acme"))
    assert idx2.stats("acme").chunks == 0


# --- SessionArchive -------------------------------------------------------------------------------


def record(
    session_id: str, version: int, *, tenant: str = "acme", ticket: str = "42", updated: float | None = None
) -> SessionRecord:
    return SessionRecord(
        session_id,
        tenant,
        "agent-1",
        ticket,
        version,
        {"v": version, "turns": [{"q": "hi"}]},
        updated or time.time(),
    )


def test_archive_roundtrip_and_version_guard(archive: SessionArchive) -> None:
    sid = f"s-{uuid.uuid4().hex}"
    archive.save(record(sid, 2))
    archive.save(record(sid, 1))  # older: ignored
    loaded = archive.load(sid)
    assert loaded is not None and loaded.version == 2 and loaded.data == {"v": 2, "turns": [{"q": "hi"}]}
    archive.save(record(sid, 3))
    assert archive.load(sid).version == 3
    assert archive.load("missing") is None


def test_archive_list_by_ticket_is_tenant_scoped_and_newest_first(archive: SessionArchive) -> None:
    ticket = uuid.uuid4().hex[:8]
    a, b, c = (f"s-{uuid.uuid4().hex}" for _ in range(3))
    archive.save(record(a, 1, ticket=ticket, updated=100.0))
    archive.save(record(b, 1, ticket=ticket, updated=200.0))
    archive.save(record(c, 1, ticket=ticket, tenant="other", updated=300.0))
    assert [r.session_id for r in archive.list_by_ticket("acme", ticket)] == [b, a]
    assert [r.session_id for r in archive.list_by_ticket("other", ticket)] == [c]


def test_archive_delete_and_ping(archive: SessionArchive) -> None:
    sid = f"s-{uuid.uuid4().hex}"
    archive.save(record(sid, 1))
    assert archive.delete(sid) is True
    assert archive.delete(sid) is False
    assert archive.load(sid) is None
    archive.ping()


def test_archive_iter_sessions_pages_filters_by_tenant_and_since(archive: SessionArchive) -> None:
    tenant, other = f"t-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    ids = sorted(f"s-{uuid.uuid4().hex}" for _ in range(7))
    for i, sid in enumerate(ids):
        archive.save(record(sid, 1, tenant=tenant, updated=1000.0 + i))
    archive.save(record(f"s-{uuid.uuid4().hex}", 1, tenant=other, updated=5000.0))
    # page_size 3 forces three pages (3 + 3 + 1): every record once, in session-id order.
    listed = list(archive.iter_sessions(tenant=tenant, page_size=3))
    assert [r.session_id for r in listed] == ids
    assert listed[0].data == {"v": 1, "turns": [{"q": "hi"}]} and listed[0].tenant == tenant
    recent = [r.session_id for r in archive.iter_sessions(tenant=tenant, since=1004.0, page_size=2)]
    assert recent == ids[4:]
    assert [r.tenant for r in archive.iter_sessions(tenant=other)] == [other]
    everyone = {r.session_id for r in archive.iter_sessions(page_size=4)}
    assert set(ids) <= everyone and len(everyone) >= 8
    with pytest.raises(ValueError):
        next(archive.iter_sessions(page_size=0))
