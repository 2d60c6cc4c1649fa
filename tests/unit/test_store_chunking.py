"""Chunker, HTML/Markdown to text, query terms and RRF fusion (no embedder needed)."""

from __future__ import annotations

import itertools

import pytest

from store.knowledge import (
    ChunkerConfig,
    DocumentTooLargeError,
    chunk_document,
    fuse,
    html_to_text,
    query_terms,
)
from store.knowledge.chunking import html_blocks
from store.knowledge.types import Document, InvalidQueryError, SearchFilters, rrf_score


def test_html_to_text_drops_markup_scripts_and_keeps_structure() -> None:
    html = (
        "<h1>Returns</h1><p>Send it back within <b>30 days</b>.</p><script>alert(1)</script>"
        "<ul><li>Card</li><li>PayPal &amp; vouchers</li></ul><!-- note --><p>Line one<br>line two</p>"
    )
    text = html_to_text(html)
    assert "alert" not in text and "note" not in text and "<" not in text
    assert "Send it back within 30 days." in text
    assert "- PayPal & vouchers" in text
    assert "Line one\nline two" in text


def test_html_blocks_marks_headings_with_levels() -> None:
    blocks = html_blocks("<h2>A</h2><p>x</p><h3>B</h3><div><p>y</p><p>z</p></div>")
    assert [(b.text, b.heading_level) for b in blocks] == [("A", 2), ("x", 0), ("B", 3), ("y", 0), ("z", 0)]


def test_table_rows_become_self_contained_lines_with_their_headers() -> None:
    html = (
        "<p>Timings:</p><table><thead><tr><th>Paid with</th><th>Money back after we issue the refund</th></tr>"
        "</thead><tbody><tr><td>PayPal</td><td>Within 1 business day</td></tr>"
        "<tr><td>iDEAL, Bancontact</td><td>5–7 business days to your <b>bank</b> account</td></tr>"
        "<tr><td>Gift card</td><td></td></tr></tbody></table><p>After.</p>"
    )
    assert [b.text for b in html_blocks(html)] == [
        "Timings:",
        "Paid with: PayPal — Money back after we issue the refund: Within 1 business day.",
        "Paid with: iDEAL, Bancontact — Money back after we issue the refund: 5–7 business days to your bank account.",
        "Paid with: Gift card.",  # an empty cell adds nothing
        "After.",
    ]
    text = html_to_text(html)
    assert "Paid withMoney" not in text and "PayPalWithin" not in text


def test_table_without_thead_colspan_and_markdown_tables() -> None:
    # The first row of <th> cells is the header; a cell spanning two columns is named once.
    html = (
        "<table><tr><th>Destination</th><th>Express</th><th>Cost</th></tr>"
        "<tr><td>Norway</td><td colspan='2'>Not available</td></tr>"
        "<tr><td>UK</td><td>DPD, 2–3 days</td><td>€19.95</td></tr></table>"
    )
    assert [b.text for b in html_blocks(html)] == [
        "Destination: Norway — Express: Not available.",
        "Destination: UK — Express: DPD, 2–3 days — Cost: €19.95.",
    ]
    # No header at all: cells still never run together.
    assert [b.text for b in html_blocks("<table><tr><td>a b</td><td>c d!</td></tr></table>")] == [
        "a b — c d!"
    ]
    md = "# Fees\n\n| Item | Fee |\n|---|---|\n| Pickup | €49 |\n"
    assert chunk_document("Fees", md, "markdown") == ["Item: Pickup — Fee: €49."]


def test_chunks_carry_their_heading_path_and_split_per_section() -> None:
    html = "<h1>Refunds</h1><p>Intro text here.</p><h2>Timing</h2><p>Five to seven days.</p><h3>Cards</h3><p>Card refunds.</p>"
    chunks = chunk_document("Refunds", html, "html", ChunkerConfig(min_chars=1))
    # The H1 equals the title, so it is not repeated; nested headings form a path.
    assert chunks == ["Intro text here.", "Timing\nFive to seven days.", "Timing > Cards\nCard refunds."]


def test_long_sections_split_with_overlap_and_within_size() -> None:
    paras = [f"Paragraph {i} " + "word " * 40 for i in range(12)]
    md = "# Guide\n\n## Part\n\n" + "\n\n".join(paras)
    cfg = ChunkerConfig(max_chars=600, overlap_chars=250)
    chunks = chunk_document("Guide", md, "markdown", cfg)
    assert len(chunks) > 3
    assert all(len(c) <= cfg.max_chars * 1.25 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        last_para = before.split("\n")[-1]
        assert after.split("\n")[1] == last_para  # the overlap repeats the previous paragraph
    assert all(c.startswith("Part\n") for c in chunks)


def test_one_huge_paragraph_is_split_at_sentences() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(200))
    chunks = chunk_document("T", text, "text", ChunkerConfig(max_chars=500, overlap_chars=0))
    assert len(chunks) > 5 and all(len(c) <= 500 for c in chunks)
    assert all(c.rstrip().endswith(".") for c in chunks)


def test_chunk_cap_raises() -> None:
    text = "\n\n".join("para " * 50 for _ in range(50))
    with pytest.raises(DocumentTooLargeError):
        chunk_document(
            "T", text, "text", ChunkerConfig(max_chars=300, overlap_chars=0, max_chunks_per_document=5)
        )


def test_empty_body_still_yields_the_title() -> None:
    assert chunk_document("Only a title", "", "html") == ["Only a title"]


def test_query_terms_lowercase_dedupe_and_drop_stopwords() -> None:
    assert query_terms("How do I request a REFUND for my refund?") == ["request", "refund"]
    assert query_terms('"); DROP TABLE x; --') == ["drop", "table", "x"]


def test_rrf_fusion_ranks_and_scores() -> None:
    rows = fuse(["a", "b", "c"], ["c", "a", "d"], limit=10)
    by_key = {key: (t, v, s) for key, t, v, s in rows}
    assert by_key["a"] == (1, 2, pytest.approx(1 / 61 + 1 / 62))
    assert by_key["d"] == (None, 3, pytest.approx(1 / 63))
    assert [r[0] for r in rows][:2] == ["a", "c"]
    assert rrf_score(1, None) == pytest.approx(1 / 61)
    assert len(fuse(["a", "b"], ["c"], limit=2)) == 2


def test_filters_require_a_tenant() -> None:
    with pytest.raises(InvalidQueryError, match="tenant is required"):
        SearchFilters("")
    with pytest.raises(InvalidQueryError):
        SearchFilters(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        SearchFilters("t", kinds="article")  # type: ignore[arg-type]
    assert SearchFilters("t", locale="EN-US").locale == "en-us"


def test_content_hash_ignores_updated_at_but_not_content() -> None:
    base = dict(tenant="t", kind="article", external_id="1", title="T", body="b", source="help-center")
    a = Document(**base, updated_at="2026-01-01")
    assert a.id == "article:1"
    assert a.content_hash == Document(**base, updated_at="2026-02-02").content_hash
    assert a.content_hash != Document(**{**base, "body": "c"}).content_hash
    assert a.content_hash != Document(**base, tags=("x",)).content_hash
