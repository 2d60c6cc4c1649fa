"""Internal content in the sidebar: badged, and never inserted into a reply without confirming.

What counts as internal, from Zendesk's documentation:
- a Help Center article with a `user_segment_id` ("The id of the user segment which defines who can
  see this article. Set to null to make it accessible to everyone",
  https://developer.zendesk.com/api-reference/help_center/help-center-api/articles/; segments,
  https://developer.zendesk.com/api-reference/help_center/help-center-api/user_segments/);
- a ticket comment with `public: false` ("true if a public comment; false if an internal note",
  https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/);
- a macro with a `restriction` ("A null value allows unrestricted access for all users in the
  account", https://developer.zendesk.com/api-reference/ticketing/business-rules/macros/) or whose
  `comment_mode_is_public` action is false (its comment is private).
The server marks such citations `internal: true` (docs/protocol.md); the test handler answers
`internal …` with one public and two internal citations.
"""

from __future__ import annotations

import pytest

from tests.browser.test_sidebar import ask, open_harness

expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[test]')"
).expect


def test_internal_citations_are_badged_and_insert_needs_confirming(server, page):
    frame = open_harness(page, server, "irene")
    ask(frame, "internal: how long do refunds take")
    reply = frame.locator("li.sa-msg--assistant").last
    expect(reply).to_have_attribute("data-status", "complete")

    sources = reply.locator(".sa-sources li")
    expect(sources).to_have_count(3)
    expect(sources.nth(0).locator(".sa-internal")).to_have_count(0)
    expect(sources.nth(1).locator(".sa-internal")).to_have_text("Internal")
    expect(sources.nth(2).locator(".sa-internal")).to_have_text("Internal")

    invocations = page.locator("#invocations [data-action='ticket.comment.appendMarkdown']")
    editor = page.locator("#reply-editor")
    # The first click only asks: nothing reaches the reply.
    reply.locator('[data-action="insert"]').click()
    confirm = reply.locator('[data-confirm="insert"]')
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Parcel lost (internal notes)")
    expect(confirm.locator('[data-action="confirm-insert"]')).to_be_focused()
    expect(invocations).to_have_count(0)
    expect(editor).to_have_value("")
    # Cancel: still nothing inserted; clicking Insert again asks again.
    confirm.locator('[data-action="cancel-insert"]').click()
    expect(confirm).to_have_count(0)
    reply.locator('[data-action="insert"]').click()
    expect(invocations).to_have_count(0)
    # Confirmed: inserted once, and the restricted article is not linked for the customer.
    reply.locator('[data-action="confirm-insert"]').click()
    expect(invocations).to_have_count(1)
    expect(reply.locator('[data-confirm="insert"]')).to_have_count(0)
    value = editor.input_value()
    assert value.startswith("Refunds reach the card within 5 to 7 business days [1].")
    assert "[1] [Refund timing](https://example.invalid/hc/1)" in value
    assert "example.invalid/hc/9" not in value and "[3]" not in value


def test_insert_without_confirming_is_impossible_from_the_page(server, page):
    """Scripted clicks on Insert (as a stuck key or an automation would) never insert internal
    content: only the confirm button, shown after the first click, does."""
    frame = open_harness(page, server, "ivan")
    ask(frame, "internal: refund exceptions")
    reply = frame.locator("li.sa-msg--assistant").last
    expect(reply).to_have_attribute("data-status", "complete")
    for _ in range(3):
        reply.locator('[data-action="insert"]').click()
    expect(page.locator("#invocations [data-action='ticket.comment.appendMarkdown']")).to_have_count(0)
    expect(page.locator("#invocations [data-action='ticket.comment.appendText']")).to_have_count(0)
    expect(page.locator("#reply-editor")).to_have_value("")
