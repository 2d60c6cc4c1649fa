"""Ingest end to end on the SQLite twin: files, bad records, CLI, live import, demo tenant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.demo import ensure_demo_tenant
from store.ingest import (
    ZendeskApiError,
    ZendeskClient,
    ZendeskCredentials,
    import_from_zendesk,
    ingest_path,
)
from store.knowledge import SearchFilters, SqliteKnowledgeIndex
from tests.fakes.fake_zendesk import FakeZendesk, FakeZendeskData
from tests.integration.test_store_backends import shared_embedder

TENANT = "acme"


@pytest.fixture
def index(tmp_path: Path):
    idx = SqliteKnowledgeIndex(tmp_path / "knowledge.sqlite3", shared_embedder())
    yield idx
    idx.close()


def article(i: int, **kw) -> dict:
    base = {
        "id": 360000 + i,
        "title": f"Article {i}: " + ["Refund timing", "Shipping times", "Gift cards", "Boot care"][i % 4],
        "body": f"<h2>Details</h2><p>Policy text number {i} about "
        + ["refunds", "delivery", "vouchers", "leather"][i % 4]
        + ".</p>",
        "html_url": f"https://acme.zendesk.com/hc/en-us/articles/{360000 + i}",
        "locale": "en-us",
        "label_names": ["demo"],
        "draft": False,
        "updated_at": "2026-01-01T00:00:00Z",
    }
    return {**base, **kw}


def write_articles(path: Path, articles: list[dict]) -> Path:
    path.write_text(json.dumps({"articles": articles}), encoding="utf-8")
    return path


def test_ingest_is_idempotent_and_incremental(index: SqliteKnowledgeIndex, tmp_path: Path) -> None:
    file = tmp_path / "articles.json"
    arts = [article(i) for i in range(4)]
    r1 = ingest_path(index, TENANT, "help-center", write_articles(file, arts))
    assert (r1.added, r1.updated, r1.skipped, r1.deleted, len(r1.errors)) == (4, 0, 0, 0, 0)
    r2 = ingest_path(index, TENANT, "help-center", file)
    assert (r2.added, r2.updated, r2.skipped, r2.deleted) == (0, 0, 4, 0)
    arts[1] = article(1, body="<p>Now shipping takes two weeks.</p>", updated_at="2026-03-01T00:00:00Z")
    arts[2] = article(2, draft=True)  # unpublished -> removed from the index
    del arts[3]
    arts.append(article(9))
    r3 = ingest_path(index, TENANT, "help-center", write_articles(file, arts))
    assert (r3.added, r3.updated, r3.skipped, r3.deleted, r3.ignored) == (1, 1, 1, 2, 1)
    assert set(index.document_hashes(TENANT)) == {"article:360000", "article:360001", "article:360009"}
    assert "added 1, updated 1, skipped 1, deleted 2" in r3.summary()


def test_bad_records_are_reported_and_the_rest_ingested(index: SqliteKnowledgeIndex, tmp_path: Path) -> None:
    good = [article(i) for i in range(3)]
    bad_title = article(10, title=None)
    huge = article(11, body="<p>" + "word " * 60_000 + "</p>")
    raw = json.dumps({"articles": [*good, bad_title, huge, article(12, title="caf\u00e9 latte")]}).encode()
    raw = raw.replace(b"caf\\u00e9", b"caf\xe9")  # Latin-1 byte inside a UTF-8 file
    file = tmp_path / "mixed.json"
    file.write_bytes(raw)
    report = ingest_path(index, TENANT, "help-center", file)
    assert report.added == 3
    messages = sorted(str(e) for e in report.errors)
    assert len(messages) == 3
    assert any("(id 360010)" in m and "missing field 'title'" in m for m in messages)
    assert any("(id 360011)" in m and "limit is 200,000" in m for m in messages)
    assert any("(id 360012)" in m and "not valid UTF-8" in m for m in messages)
    # Nothing half-written: exactly the good documents, each with its chunks.
    assert set(index.document_hashes(TENANT)) == {f"article:{360000 + i}" for i in range(3)}
    assert index.stats(TENANT).chunks >= 3


def test_chunk_cap_failure_is_isolated_to_its_document(tmp_path: Path) -> None:
    from store.knowledge import ChunkerConfig

    idx = SqliteKnowledgeIndex(
        tmp_path / "k.sqlite3",
        shared_embedder(),
        chunker=ChunkerConfig(max_chars=200, overlap_chars=0, max_chunks_per_document=3),
    )
    long_body = "".join(f"<p>Paragraph {i} " + "text " * 30 + "</p>" for i in range(20))
    file = write_articles(tmp_path / "a.json", [article(0), article(1, body=long_body), article(2)])
    report = ingest_path(idx, TENANT, "help-center", file)
    assert report.added == 2 and len(report.errors) == 1 and "more than 3 chunks" in str(report.errors[0])
    assert "article:360001" not in idx.document_hashes(TENANT)
    idx.close()


def test_unreadable_file_deletes_nothing(index: SqliteKnowledgeIndex, tmp_path: Path) -> None:
    file = write_articles(tmp_path / "articles.json", [article(0), article(1)])
    ingest_path(index, TENANT, "help-center", file)
    file.write_text('{"articles": [', encoding="utf-8")
    report = ingest_path(index, TENANT, "help-center", file)
    assert report.deleted == 0 and report.errors[0].message.startswith("malformed JSON")
    assert report.sweep_skipped and len(index.document_hashes(TENANT)) == 2


def test_tickets_macros_and_markdown_sources(index: SqliteKnowledgeIndex, tmp_path: Path) -> None:
    tickets = {
        "tickets": [
            {
                "id": 1042,
                "subject": "Boots arrived with a scuffed toe",
                "description": "The left boot has a scuff.",
                "status": "solved",
                "tags": ["damaged"],
                "requester_id": 5,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-03T00:00:00Z",
                "comments": [
                    {
                        "id": 1,
                        "author_id": 5,
                        "body": "The left boot has a scuff.",
                        "public": True,
                        "created_at": "2026-01-01T00:00:00Z",
                    },
                    {
                        "id": 2,
                        "author_id": 8,
                        "body": "We sent a free replacement pair and a prepaid return label.",
                        "public": True,
                        "created_at": "2026-01-02T00:00:00Z",
                    },
                ],
            },
            {
                "id": 1043,
                "subject": "Still waiting",
                "description": "Where is it?",
                "status": "open",
                "requester_id": 6,
                "comments": [],
            },
        ]
    }
    (tmp_path / "tickets.json").write_text(json.dumps(tickets))
    r = ingest_path(index, TENANT, "tickets", tmp_path / "tickets.json")
    assert (r.added, r.ignored, len(r.errors)) == (1, 1, 0)
    macros = {
        "macros": [
            {
                "id": 9001,
                "title": "Damaged item: replacement",
                "description": "Offer a replacement.",
                "active": True,
                "actions": [{"field": "comment_value", "value": "We are sending a replacement today."}],
            },
            {"id": 9002, "title": "Old macro", "active": False, "actions": []},
        ]
    }
    (tmp_path / "macros.json").write_text(json.dumps(macros))
    r = ingest_path(index, TENANT, "macros", tmp_path / "macros.json")
    assert (r.added, r.ignored) == (1, 1)
    md = tmp_path / "md"
    (md / "care").mkdir(parents=True)
    (md / "care" / "suede.md").write_text("# Suede care\n\nUse a suede eraser, never water.\n")
    r = ingest_path(index, TENANT, "markdown", md)
    assert r.added == 1
    hits = index.search("damaged boot replacement", 5, SearchFilters(TENANT))
    top_docs = list(dict.fromkeys(h.document.id for h in hits))
    assert set(top_docs[:2]) == {"ticket:1042", "macro:9001"}
    ticket_hit = next(h for h in hits if h.document.id == "ticket:1042")
    assert "Resolution" in ticket_hit.chunk.text or any("Resolution" in h.chunk.text for h in hits)
    assert index.search("suede eraser", 1, SearchFilters(TENANT))[0].document.id == "article:md/care/suede"
    # Sources sweep independently: re-ingesting macros does not touch tickets or markdown.
    (tmp_path / "macros.json").write_text(json.dumps({"macros": []}))
    r = ingest_path(index, TENANT, "macros", tmp_path / "macros.json")
    assert r.deleted == 1 and set(index.document_hashes(TENANT)) == {"ticket:1042", "article:md/care/suede"}


def test_cli_ingest_prints_counts_and_fails_on_bad_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vertex_interface.local_embedder as le
    from backend.cli import cli

    monkeypatch.setattr(le, "LocalEmbedder", shared_embedder)  # reuse the loaded model
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVE_BACKEND", "sqlite")
    file = write_articles(tmp_path / "a.json", [article(0), article(1)])
    runner = CliRunner()
    result = runner.invoke(
        cli, ["ingest", "--tenant", "acme", "--source", "help-center", "--quiet", str(file)]
    )
    assert result.exit_code == 0, result.output
    assert "help-center: added 2, updated 0, skipped 0, deleted 0" in result.output
    assert (tmp_path / "data" / "knowledge.sqlite3").exists()
    again = runner.invoke(
        cli, ["ingest", "--tenant", "acme", "--source", "help-center", "--json", "--quiet", str(file)]
    )
    assert json.loads(again.stdout)[0]["skipped"] == 2
    write_articles(file, [article(0), article(5, title=None)])
    bad = runner.invoke(cli, ["ingest", "--tenant", "acme", "--source", "help-center", "--quiet", str(file)])
    assert bad.exit_code == 1
    assert "missing field 'title'" in bad.output
    usage = runner.invoke(cli, ["ingest", "--tenant", "bad tenant!", "--source", "help-center", str(file)])
    assert usage.exit_code == 2 and "invalid tenant" in usage.output


# --- live import ------------------------------------------------------------------------------------


def zendesk_data() -> FakeZendeskData:
    tickets = [
        {
            "id": 1,
            "subject": "Refund for returned jacket",
            "description": "I sent the jacket back.",
            "status": "solved",
            "requester_id": 50,
            "generated_timestamp": 10,
        },
        {
            "id": 2,
            "subject": "Where is my parcel",
            "description": "Tracking stuck.",
            "status": "open",
            "requester_id": 51,
            "generated_timestamp": 20,
        },
        {
            "id": 3,
            "subject": "Voucher code rejected",
            "description": "Code GIFT10 fails.",
            "status": "closed",
            "requester_id": 52,
            "generated_timestamp": 30,
        },
        {
            "id": 4,
            "subject": "Spam",
            "description": "x",
            "status": "deleted",
            "requester_id": 53,
            "generated_timestamp": 40,
        },
        {
            "id": 5,
            "subject": "Size exchange",
            "description": "Need a bigger size.",
            "status": "solved",
            "requester_id": 54,
            "generated_timestamp": 50,
        },
    ]
    comments = {
        1: [
            {"id": 11, "author_id": 50, "body": "I sent the jacket back.", "public": True},
            {"id": 12, "author_id": 9, "body": "Refund issued to your card.", "public": True},
        ],
        3: [{"id": 31, "author_id": 9, "body": "The code expired; here is a new one.", "public": True}],
        5: [{"id": 51, "author_id": 9, "body": "Exchange created; swap it at no cost.", "public": True}],
    }
    macros = [
        {
            "id": 700 + i,
            "title": f"Macro {i}",
            "active": i != 2,
            "actions": [{"field": "comment_value", "value": f"Reply {i}"}],
        }
        for i in range(5)
    ]
    return FakeZendeskData(
        articles=[article(i) for i in range(5)], tickets=tickets, comments=comments, macros=macros
    )


def test_live_import_paginates_handles_429_and_never_leaks_the_token(index: SqliteKnowledgeIndex) -> None:
    with FakeZendesk(zendesk_data(), token="s3cr3t-token", page_size=2) as fake:
        fake.rate_limit["/api/v2/help_center/en-us/articles.json"] = 1
        fake.rate_limit["/api/v2/incremental/tickets/cursor.json"] = 1
        sleeps: list[float] = []
        creds = ZendeskCredentials.from_env(
            {
                "ZENDESK_SUBDOMAIN": "acme",
                "ZENDESK_EMAIL": "agent@example.com",
                "ZENDESK_API_TOKEN": "s3cr3t-token",
                "ZENDESK_BASE_URL": fake.url,
            }
        )
        client = ZendeskClient(creds, sleep=sleeps.append)
        assert "s3cr3t" not in repr(client) and "s3cr3t" not in repr(creds)
        reports = {r.source: r for r in import_from_zendesk(index, TENANT, client)}
        assert sleeps == [1.0, 1.0] and client.rate_limited == 2
        assert (reports["help-center"].added, reports["help-center"].errors) == (5, [])
        assert (reports["tickets"].added, reports["tickets"].ignored) == (3, 1)
        assert (reports["macros"].added, reports["macros"].ignored) == (4, 1)
        # Pages were followed: 3 article pages, 3 export pages, 3 macro pages (+ two 429s).
        assert sum("/articles.json" in p for p in fake.requests) == 4
        assert sum("incremental/tickets" in p for p in fake.requests) == 4
        assert any("cursor=" in p for p in fake.requests) and any(
            "page[after]" in p or "page%5Bafter%5D" in p for p in fake.requests
        )
        hit = index.search("jacket refund", 1, SearchFilters(TENANT, kinds=("ticket",)))[0]
        assert hit.document.id == "ticket:1" and "Refund issued" in hit.chunk.text

        # Incremental run: ticket 1 reopened -> removed; nothing else swept.
        fake.data.tickets[0] = {**fake.data.tickets[0], "status": "open", "generated_timestamp": 60}
        again = import_from_zendesk(index, TENANT, client, sources=("tickets",), start_time=55)
        assert again[0].deleted == 1
        assert {d for d in index.document_hashes(TENANT, source="tickets")} == {"ticket:3", "ticket:5"}


def test_live_import_auth_failure_is_clear_and_sweeps_nothing(index: SqliteKnowledgeIndex) -> None:
    with FakeZendesk(zendesk_data(), token="right") as fake:
        good = ZendeskClient(ZendeskCredentials("acme", "agent@example.com", "right", base_url=fake.url))
        import_from_zendesk(index, TENANT, good, sources=("help-center",))
        bad = ZendeskClient(ZendeskCredentials("acme", "agent@example.com", "wrong", base_url=fake.url))
        (report,) = import_from_zendesk(index, TENANT, bad, sources=("help-center",))
        assert report.deleted == 0 and report.sweep_skipped
        assert "HTTP 401" in str(report.errors[0]) and "wrong" not in str(report.errors[0])
        assert len(index.document_hashes(TENANT)) == 5
        with pytest.raises(ZendeskApiError, match="another host"):
            good.get_json("https://evil.example.com/api/v2/macros.json")


def test_rate_limit_longer_than_we_wait_fails_fast() -> None:
    with FakeZendesk(zendesk_data()) as fake:
        fake.rate_limit["/api/v2/macros.json"] = 5
        fake.retry_after = "3600"
        client = ZendeskClient(
            ZendeskCredentials("acme", "agent@example.com", "secret-token", base_url=fake.url),
            sleep=lambda s: None,
        )
        with pytest.raises(ZendeskApiError, match="rate limited for 3600s"):
            list(client.macros())


def test_credentials_validation() -> None:
    with pytest.raises(ValueError, match="ZENDESK_API_TOKEN"):
        ZendeskCredentials.from_env({"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "a@b.c"})
    with pytest.raises(ValueError, match="bare subdomain"):
        ZendeskCredentials("acme.zendesk.com", "a@b.c", "t")


# --- demo tenant ------------------------------------------------------------------------------------


def test_ensure_demo_tenant_is_idempotent(index: SqliteKnowledgeIndex, tmp_path: Path) -> None:
    data = tmp_path / "demo"
    (data / "help_center").mkdir(parents=True)
    (data / "macros").mkdir()
    write_articles(data / "help_center" / "articles.json", [article(0), article(1)])
    (data / "macros" / "macros.json").write_text(json.dumps({"macros": zendesk_data().macros[:2]}))
    first = ensure_demo_tenant(index, "demo", progress=False, data_dir=data)
    assert first["help-center"].added == 2 and first["macros"].added == 2
    assert "missing" in str(first["tickets"].errors[0])  # partial data sets still serve
    second = ensure_demo_tenant(index, "demo", progress=False, data_dir=data)
    assert second["help-center"].skipped == 2 and second["help-center"].added == 0
    assert index.stats("demo").documents == 4


def test_bundled_demo_data_parses_cleanly() -> None:
    """The real demo files parse without record errors (no embedding: parsing only)."""
    from store.demo import DEMO_DATA_DIR, DEMO_SOURCES
    from store.ingest import IngestLimits, read_export
    from store.ingest.pipeline import parse_record
    from store.ingest.records import RecordError

    found = 0
    for source, rel in DEMO_SOURCES:
        path = DEMO_DATA_DIR / rel
        if not path.exists():
            continue
        for rec in read_export(path, source):
            assert rec.error is None, rec
            try:
                parse_record(source, rec, "demo", IngestLimits(), "en-us")
            except RecordError as exc:  # pragma: no cover - failure message
                pytest.fail(f"{rec.ref}: {exc}")
            found += 1
    if not found:
        pytest.skip("store/demo_data has no export files yet")


def test_cli_from_zendesk_uses_env_and_hides_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vertex_interface.local_embedder as le
    from backend.cli import cli

    monkeypatch.setattr(le, "LocalEmbedder", shared_embedder)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVE_BACKEND", "sqlite")
    with FakeZendesk(zendesk_data(), token="tok-987654321") as fake:
        monkeypatch.setenv("ZENDESK_SUBDOMAIN", "acme")
        monkeypatch.setenv("ZENDESK_EMAIL", "agent@example.com")
        monkeypatch.setenv("ZENDESK_API_TOKEN", "tok-987654321")
        monkeypatch.setenv("ZENDESK_BASE_URL", fake.url)
        result = CliRunner().invoke(cli, ["ingest", "--tenant", "acme", "--from-zendesk", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "help-center: added 5" in result.output
    assert "tickets: added 3" in result.output and "macros: added 4" in result.output
    assert "tok-987654321" not in result.output
    monkeypatch.delenv("ZENDESK_API_TOKEN")
    missing = CliRunner().invoke(cli, ["ingest", "--tenant", "acme", "--from-zendesk"])
    assert missing.exit_code == 1 and "ZENDESK_API_TOKEN is required" in missing.output
