"""Source filter chips in the ask box (issue 15, item 4): the chosen groups go out with the
question as `sources` (docs/protocol.md, chat:message), and the choice survives a reload of the
same assistant session (sessionStorage, keyed by the session id)."""

from __future__ import annotations

import json

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[test]')"
).expect


def _sent_messages(frames: list[str]) -> list[dict]:
    """The chat:message payloads among Socket.IO frames ('42["chat:message",{...}]')."""
    out = []
    for f in frames:
        if f.startswith("42") and '"chat:message"' in f:
            event, payload = json.loads(f[2:])[:2]
            if event == "chat:message":
                out.append(payload)
    return out


def test_chips_restrict_the_question_and_persist_in_the_session(server, page):
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda data: frames.append(str(data))))
    page.goto(f"{server.url}/dev/sidebar?user=chips")
    frame = page.frame_locator("#app-frame")
    expect(frame.locator("#status")).to_be_hidden(timeout=20_000)
    chips = frame.locator("#source-chips [data-source]")
    expect(chips).to_have_count(4)
    expect(frame.locator("#source-chips")).to_have_attribute("aria-label", "Search only in")

    # No chip: every source (no `sources` field at all).
    question = frame.locator("#question")
    question.fill("first question")
    question.press("Enter")
    replies = frame.locator("li.sa-msg--assistant")
    expect(replies.nth(0)).to_have_attribute("data-status", "complete")

    macros = frame.locator('#source-chips [data-source="macros"]')
    store = frame.locator('#source-chips [data-source="store"]')
    macros.click()
    store.click()
    expect(macros).to_have_attribute("aria-pressed", "true")
    expect(frame.locator('#source-chips [data-source="help_center"]')).to_have_attribute(
        "aria-pressed", "false"
    )
    question.fill("second question")
    question.press("Enter")
    expect(replies.nth(1)).to_have_attribute("data-status", "complete")
    sent = _sent_messages(frames)
    assert [m["text"] for m in sent] == ["first question", "second question"]
    assert "sources" not in sent[0]
    assert sent[1]["sources"] == ["macros", "store"]
    # The question says what it was restricted to; the first one says nothing.
    users = frame.locator("li.sa-msg--user")
    expect(users.nth(1).locator("[data-sources]")).to_have_text("Only: Macros, Store systems")
    expect(users.nth(0).locator("[data-sources]")).to_have_count(0)
    page.screenshot(path=str(_artifact("sidebar-source-chips.png")))

    # The same session after a reload: the chips are as the agent left them.
    page.reload()
    frame = page.frame_locator("#app-frame")
    expect(frame.locator("#status")).to_be_hidden(timeout=20_000)
    expect(frame.locator('#source-chips [data-source="macros"]')).to_have_attribute("aria-pressed", "true")
    expect(frame.locator('#source-chips [data-source="store"]')).to_have_attribute("aria-pressed", "true")
    # The thread from the server still shows the second question's filter (its meta.sources).
    expect(frame.locator("li.sa-msg--user").nth(1).locator("[data-sources]")).to_have_text(
        "Only: Macros, Store systems"
    )
    frame.locator('#source-chips [data-source="macros"]').click()
    frame.locator("#question").fill("third question")
    frame.locator("#question").press("Enter")
    expect(frame.locator("li.sa-msg--assistant").nth(2)).to_have_attribute("data-status", "complete")
    assert _sent_messages(frames)[-1] == {
        **_sent_messages(frames)[-1],
        "text": "third question",
        "sources": ["store"],
    }


def _artifact(name: str):
    from tests.browser.conftest import SCREENSHOTS

    return SCREENSHOTS / name
