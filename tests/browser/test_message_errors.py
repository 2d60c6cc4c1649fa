"""A message the server refuses for now (rate_limited) is shown as such on that message and sent
again, with the same id, after the delay the server gave."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.launcher import Instance, wait_ready
from testkit.servers import free_port
from tests.browser.conftest import server_env

expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[test]')"
).expect


@pytest.fixture
def limited(redis_server, tmp_path) -> Iterator[Instance]:
    # One question back to back, then one every 2 s.
    port = free_port()
    env = server_env(
        tmp_path / "data", redis_server.url, port, RATE_LIMIT_PER_MINUTE="30", RATE_LIMIT_BURST="1"
    )
    inst = Instance(port, env)
    inst.start()
    try:
        wait_ready(inst.url, alive=inst.alive)
        yield inst
    finally:
        inst.stop()


def test_rate_limited_message_shows_on_that_message_and_is_retried_after_the_delay(limited, page):
    """docs/protocol.md: `rate_limited` — "retry_after says when; the message was not stored" —
    and every chat:error caused by a message carries that message's `id`. Socket.IO itself ties
    no answer to an emit (https://socket.io/docs/v4/delivery-guarantees: ordering, at most once;
    acknowledgements are opt-in), so the sidebar can place the refusal only by that id. The
    refused question must say so on itself (not in a notice), then go again after the delay and
    be answered; the first question is untouched."""
    page.goto(f"{limited.url}/dev/sidebar?user=rachel")
    frame = page.frame_locator("#app-frame")
    expect(frame.locator("#status")).to_be_hidden(timeout=20_000)
    question = frame.locator("#question")
    question.fill("first question")
    question.press("Enter")
    question.fill("second question")
    question.press("Enter")

    second = frame.locator("li.sa-msg--user").nth(1)
    expect(second).to_have_attribute("data-status", "waiting")
    expect(second.locator('[data-error="rate_limited"]')).to_contain_text("Not sent yet")
    expect(second.locator('[data-error="rate_limited"]')).to_contain_text("Retrying in")

    # Sent again by itself after retry_after (about 2 s), acknowledged and answered.
    replies = frame.locator("li.sa-msg--assistant")
    expect(replies).to_have_count(2, timeout=15_000)
    expect(replies.nth(1)).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(replies.nth(1).locator(".sa-answer")).to_have_text("echo: second question")
    expect(replies.nth(0).locator(".sa-answer")).to_have_text("echo: first question")
    expect(second.locator("[data-error]")).to_have_count(0)
    expect(second).not_to_have_attribute("data-status", "waiting")
