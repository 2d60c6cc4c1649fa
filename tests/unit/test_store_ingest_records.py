"""Zendesk export parsing and reading: shapes, filtering, and per-record errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.ingest import IngestLimits, RecordError, read_export, read_markdown_dir
from store.ingest.records import parse_article, parse_macro, parse_markdown, parse_ticket

LIM = IngestLimits()


def article(**kw):
    base = {
        "id": 360001,
        "title": "Returns policy",
        "body": "<p>Return within 30 days.</p>",
        "html_url": "https://acme.zendesk.com/hc/en-us/articles/360001",
        "locale": "en-US",
        "label_names": ["returns", " refunds "],
        "draft": False,
        "section_id": 1,
        "updated_at": "2026-01-01T00:00:00Z",
    }
    return {**base, **kw}


def test_article_maps_fields() -> None:
    doc = parse_article(article(), "acme", LIM)
    assert doc is not None
    assert doc.id == "article:360001" and doc.kind == "article" and doc.source == "help-center"
    assert doc.locale == "en-us" and doc.tags == ("refunds", "returns") and doc.body_format == "html"
    assert doc.url.endswith("/articles/360001") and doc.updated_at == "2026-01-01T00:00:00Z"


def test_drafts_are_not_knowledge() -> None:
    assert parse_article(article(draft=True), "acme", LIM) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (article(id=None), "id"),
        (article(title=None), "missing field 'title'"),
        (article(body=42), "field 'body' must be str"),
        (article(label_names="x"), "label_names"),
        (article(title="  "), "empty title"),
        (article(body="x" * 300_000), "limit is 200,000"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_bad_articles_raise_clear_errors(raw, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_article(raw, "acme", LIM)


def ticket(status: str = "solved", **kw):
    base = {
        "id": 1042,
        "subject": "Refund not received",
        "description": "I returned my boots two weeks ago.",
        "status": status,
        "tags": ["refund"],
        "requester_id": 7,
        "url": "https://acme.zendesk.com/api/v2/tickets/1042.json",
        "updated_at": "2026-02-01T00:00:00Z",
        "comments": [
            {"id": 1, "author_id": 7, "body": "I returned my boots two weeks ago.", "public": True},
            {"id": 2, "author_id": 99, "body": "Internal: check the RMA.", "public": False},
            {"id": 3, "author_id": 99, "body": "Could you send the tracking number?", "public": True},
            {"id": 4, "author_id": 7, "body": "# It is 1Z999", "public": True},
            {"id": 5, "author_id": 99, "body": "Refund issued; it takes 5-7 business days.", "public": True},
        ],
    }
    return {**base, **kw}


def test_solved_ticket_becomes_problem_conversation_resolution() -> None:
    doc = parse_ticket(ticket(), "acme", LIM)
    assert doc is not None and doc.id == "ticket:1042" and doc.kind == "ticket"
    assert doc.url == "https://acme.zendesk.com/agent/tickets/1042"
    body = doc.body
    assert "## Problem\n\nI returned my boots" in body
    assert "Internal" not in body  # internal notes are not knowledge
    assert "**Customer:** \\# It is 1Z999" in body  # customer text cannot become a heading
    assert body.rstrip().endswith("## Resolution\n\nRefund issued; it takes 5-7 business days.")
    assert body.count("I returned my boots") == 1  # the description is not repeated


@pytest.mark.parametrize("status", ["new", "open", "pending", "hold"])
def test_unsolved_tickets_are_not_knowledge(status: str) -> None:
    assert parse_ticket(ticket(status), "acme", LIM) is None


def test_ticket_errors() -> None:
    with pytest.raises(RecordError, match="status"):
        parse_ticket(ticket(status=None), "acme", LIM)
    with pytest.raises(RecordError, match="comment #0"):
        parse_ticket(ticket(comments=[{"public": True}]), "acme", LIM)
    with pytest.raises(RecordError, match="comments; the limit"):
        parse_ticket(ticket(comments=[{"body": "x"}] * 3), "acme", IngestLimits(max_comments=2))


def test_active_macro_lists_reply_and_actions() -> None:
    raw = {
        "id": 9001,
        "title": "Refund issued",
        "description": "Use after issuing a refund.",
        "active": True,
        "actions": [
            {"field": "comment_value", "value": ["channel:all", "Your refund is on its way."]},
            {"field": "status", "value": "solved"},
            {"field": "current_tags", "value": "refund_issued"},
        ],
    }
    doc = parse_macro(raw, "acme", LIM)
    assert doc is not None and doc.id == "macro:9001"
    assert "## Reply\n\nYour refund is on its way." in doc.body
    assert "- Set status: solved" in doc.body and "- Add tags: refund_issued" in doc.body
    assert parse_macro({**raw, "active": False}, "acme", LIM) is None
    with pytest.raises(RecordError, match="action #0"):
        parse_macro({**raw, "actions": [{"value": 1}]}, "acme", LIM)


def test_markdown_front_matter_and_defaults() -> None:
    doc = parse_markdown(
        "---\ntitle: Care guide\ntags: [leather]\n---\n# Ignored\n\nOil monthly.",
        "care/boots.md",
        "acme",
        LIM,
    )
    assert doc.id == "article:md/care/boots" and doc.title == "Care guide" and doc.tags == ("leather",)
    doc2 = parse_markdown("# Wool care\n\nHand wash.", "wool.md", "acme", LIM)
    assert doc2.title == "Wool care" and doc2.source == "markdown"
    with pytest.raises(RecordError, match="front matter"):
        parse_markdown("---\n: [\n---\nx", "x.md", "acme", LIM)


def test_read_export_reports_non_utf8_record_and_reads_the_rest(tmp_path: Path) -> None:
    good = json.dumps(article(id=1)).encode()
    bad = json.dumps(article(id=2, title="caf\u00e9")).encode().replace(b"caf\\u00e9", b"caf\xe9")
    (tmp_path / "a.json").write_bytes(b'{"articles": [' + good + b"," + bad + b"]}")
    records = list(read_export(tmp_path / "a.json", "help-center"))
    assert [r.error for r in records] == [None, None]
    assert parse_article(records[0].raw, "acme", LIM) is not None
    with pytest.raises(RecordError, match="not valid UTF-8"):
        parse_article(records[1].raw, "acme", LIM)


def test_read_export_malformed_file_is_fatal_and_jsonl_lines_are_not(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"articles": [ {"id": 1,, ]}')
    (rec,) = read_export(tmp_path / "broken.json", "help-center")
    assert rec.fatal and "malformed JSON at line 1" in rec.error
    (tmp_path / "t.jsonl").write_text(json.dumps(ticket()) + "\n{oops\n" + json.dumps(ticket(id=5)) + "\n")
    recs = list(read_export(tmp_path / "t.jsonl", "tickets"))
    assert [r.error is None for r in recs] == [True, False, True]
    assert recs[1].ref == "t.jsonl:2" and not recs[1].fatal
    (rec,) = read_export(tmp_path / "nope.json", "tickets")
    assert rec.fatal and "does not exist" in rec.error
    (tmp_path / "wrong.json").write_text('{"tickets": {}}')
    (rec,) = read_export(tmp_path / "wrong.json", "tickets")
    assert rec.fatal and "expected a list under 'tickets'" in rec.error


def test_read_markdown_dir_caps_size(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\ntext")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "big.md").write_text("x" * 2000)
    (tmp_path / "ignore.txt").write_text("no")
    recs = list(read_markdown_dir(tmp_path, IngestLimits(max_markdown_bytes=1000)))
    assert [r.ref for r in recs] == ["a.md", "sub/big.md"]
    assert recs[0].error is None and "limit is 1,000" in recs[1].error
