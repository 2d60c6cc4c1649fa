"""The sidebar in Chromium, inside the dev harness that plays Zendesk's parent frame."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backend.sessions import session_id_for
from orchestrator.turn import Principal
from store.sessions import SqliteSessionArchive
from tests.browser.conftest import SCREENSHOTS

expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[test]')"
).expect

XSS_PROBE = "() => window.__xss"


def open_harness(page, server, user: str):
    page.goto(f"{server.url}/dev/sidebar?user={user}")
    frame = page.frame_locator("#app-frame")
    expect(frame.locator("#ticket")).to_have_attribute("data-state", "ready")
    expect(frame.locator("#status")).to_be_hidden()  # joined: the status line only shows trouble
    return frame


def ask(frame, text: str) -> None:
    frame.locator("#question").fill(text)
    frame.locator("#question").press("Enter")


def app_frame(page):
    return next(f for f in page.frames if f.name == "app-frame")


def test_streamed_cited_answer_insert_and_feedback(server, page):
    frame = open_harness(page, server, "alice")
    ticket = page.evaluate("() => window.__harness.ticket")
    expect(frame.locator("#ticket-subject")).to_have_text(ticket["subject"])
    # The app subscribed to ticket change events through the real SDK.
    expect(page.locator("#subscriptions")).to_contain_text("ticket.updated")

    question = "how do refunds for damaged items work for this customer"
    ask(frame, question)
    reply = frame.locator("li.sa-msg--assistant").last
    # Streamed: the answer is visible while still streaming, before it is complete.
    expect(frame.locator('li.sa-msg--assistant[data-status="streaming"] .sa-answer p')).to_contain_text(
        "echo:"
    )
    expect(frame.locator('li.sa-msg--assistant[data-status="streaming"] .sa-thinking')).to_contain_text(
        "reading the ticket"
    )
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".sa-answer")).to_have_text(f"echo: {question}")
    source = reply.locator(".sa-sources a")
    expect(source).to_have_text("Test source")
    expect(source).to_have_attribute("href", "https://example.invalid/1")
    expect(source).to_have_attribute("rel", "noopener noreferrer")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".hx-sidebar").screenshot(path=str(SCREENSHOTS / "sidebar-answer.png"))

    # Insert into reply reaches the parent frame through ZAF invoke.
    reply.locator('[data-action="insert"]').click()
    expect(page.locator("#invocations [data-action='ticket.comment.appendMarkdown']")).to_have_count(1)
    editor = page.locator("#reply-editor")
    # The echo cites no source in its text ([n]), so no source list goes under the reply.
    expect(editor).to_have_value(f"echo: {question}")

    reply.locator('[data-action="copy"]').click()
    expect(reply.locator('[data-action="copy"]')).to_have_text("Copied ✓")

    # Thumbs down with "wrong sources" reveals the source picker; the pick is stored in the session
    # (and the archive) as the routing label for this turn.
    reply.locator('[data-action="down"]').click()
    picker = reply.locator("[data-picker=sources]")
    expect(picker).to_be_hidden()
    reply.locator("input[value=wrong_sources]").check()
    expect(picker).to_be_visible()
    expect(picker.locator("legend")).to_have_text("Which sources should it have used?")
    expect(picker.get_by_label("Order system")).to_have_count(1)  # the enabled agents, by title
    picker.get_by_label("None: no sources needed").check()
    picker.get_by_label("Order system").check()  # an agent replaces the "none" choice
    expect(picker.get_by_label("None: no sources needed")).not_to_be_checked()
    picker.get_by_label("Help Center").check()
    reply.locator(".sa-feedback textarea").fill("cites the wrong policy")
    reply.locator(".sa-feedback button[type=submit]").click()
    expect(reply.locator("[data-feedback=saved]")).to_be_visible()
    expect(reply.locator('[data-action="down"]')).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=str(SCREENSHOTS / "dev-harness.png"))

    archive = SqliteSessionArchive(Path(server.env["DATA_DIR"]) / "archive.sqlite3")
    record = archive.load(session_id_for(Principal("demo", "alice", "alice"), str(ticket["id"])))
    assert record is not None
    (fb,) = record.data["feedback"]
    assert fb["rating"] == "down"
    assert fb["reasons"] == ["wrong_sources"]
    assert fb["comment"] == "cites the wrong policy"
    assert fb["expected_agents"] == ["knowledge_base", "order_lookup"]  # picker (catalog) order
    assert fb["message_id"].endswith(".reply")


def test_ticket_subject_xss_is_inert_and_change_events_update_the_ticket(server, page):
    frame = open_harness(page, server, "bob")
    payload = "<img src=x onerror=\"window.__xss='subject'\"><script>window.__xss='s'</script>"
    page.evaluate("(s) => window.__harness.setSubject(s)", payload)
    # ticket.subject.changed reached the app, which re-read the ticket and shows it as text.
    expect(frame.locator("#ticket-subject")).to_have_text(payload)
    expect(frame.locator("#ticket img, #ticket script")).to_have_count(0)
    ask(frame, "is the subject safe")
    expect(frame.locator("li.sa-msg--assistant").last).to_have_attribute("data-status", "complete")
    assert app_frame(page).evaluate(XSS_PROBE) is None
    assert page.evaluate(XSS_PROBE) is None


def test_hostile_answer_and_citations_are_inert(server, page):
    frame = open_harness(page, server, "carol")
    ask(frame, "hostile answer please")
    reply = frame.locator("li.sa-msg--assistant").last
    expect(reply).to_have_attribute("data-status", "complete")
    answer = reply.locator(".sa-answer")
    expect(answer).to_contain_text("Try this <img src=x onerror=")  # raw HTML is shown as text
    expect(answer).to_contain_text("<script>window.__xss='script'</script>")
    expect(answer.locator("img, script, iframe")).to_have_count(0)
    hrefs = answer.locator("a").evaluate_all("(as) => as.map((a) => a.getAttribute('href'))")
    assert all(h is None or h.startswith("https://") for h in hrefs), hrefs
    # [1] points at a javascript: URL: shown as text, not a link; [2] is a real link.
    expect(answer.locator("a.sa-cite")).to_have_count(1)
    expect(answer.locator("a.sa-cite")).to_have_attribute("href", "https://example.invalid/kb/2")
    sources = reply.locator(".sa-sources li")
    expect(sources.first).to_contain_text("<img src=x")  # the hostile title, as text
    expect(sources.first.locator("a")).to_have_count(0)
    expect(reply.locator(".sa-steps")).to_contain_text("<b onmouseover=alert(1)>searching</b>")
    expect(reply.locator(".sa-steps b, .sa-steps i")).to_have_count(0)
    # Clicking everything that looks like a link runs nothing.
    for link in answer.locator("a").all():
        link.click(modifiers=["Alt"], no_wait_after=True)
    answer.get_by_text("click me").click()
    time.sleep(0.3)
    assert app_frame(page).evaluate(XSS_PROBE) is None
    assert page.evaluate(XSS_PROBE) is None


def post_token(page, url: str, token: str):
    page.goto(f"{url}/healthz")
    with page.expect_response(lambda r: r.url.startswith(f"{url}/zendesk/sidebar")) as resp:
        page.evaluate(
            """(token) => {
                const f = document.createElement('form');
                f.method = 'POST';
                f.action = `/zendesk/sidebar?origin=${encodeURIComponent(location.origin)}&app_guid=y`;
                const i = document.createElement('input'); i.name = 'token'; i.value = token;
                f.append(i); document.body.append(f); f.submit();
            }""",
            token,
        )
    page.wait_for_load_state()
    return resp.value


@pytest.mark.parametrize("kind", ["garbage", "forged", "expired", "wrong_audience", "stale"])
def test_invalid_jwt_shows_the_error_page_without_user_data(server, page, kind):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from backend.dev_auth import load_or_create_dev_key, sign_zaf_token

    dev_key = load_or_create_dev_key(Path(server.env["DATA_DIR"]))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "subdomain": "demo",
        "installation_id": "1",
        "user_id": "mallory",
        "user_name": "Mallory Secret",
    }
    token = {
        "garbage": lambda: "not.a.jwt",
        "forged": lambda: sign_zaf_token(other_key, **claims),
        "expired": lambda: sign_zaf_token(dev_key, now=time.time() - 3600, **claims),
        "wrong_audience": lambda: sign_zaf_token(
            dev_key, **claims, extra={"aud": "https://demo.zendesk.com/api/v2/apps/installations/2.json"}
        ),
        # Signed 20 minutes ago, an hour to live: replayed long after the page load it was for.
        "stale": lambda: sign_zaf_token(dev_key, now=time.time() - 1200, ttl_seconds=3600, **claims),
    }[kind]()
    resp = post_token(page, server.url, token)
    assert resp.status == 401
    expect(page.locator("#auth-error")).to_be_visible()
    expect(page.locator("#auth-error")).to_contain_text("could not start")
    html = page.content()
    assert (
        "Mallory" not in html and "mallory" not in html and "sidebar-config" not in html and token not in html
    )
    if kind == "forged":
        page.set_viewport_size({"width": 340, "height": 400})
        page.screenshot(path=str(SCREENSHOTS / "sidebar-auth-error.png"))


def test_a_draft_reply_is_inserted_without_the_assistants_label(server, page):
    frame = open_harness(page, server, "dana")
    ask(frame, "draft a reply for her")
    reply = frame.locator("li.sa-msg--assistant").last
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".sa-answer")).to_contain_text("Draft reply")
    reply.locator('[data-action="insert"]').click()
    editor = page.locator("#reply-editor")
    # What the customer gets starts with the greeting: the label spoke to the support agent.
    expect(editor).to_have_value("Hi Felix,\n\nYour order was sent in two parcels.\n\nKind regards,\nDana")


def test_keyboard_only_ask_insert_and_feedback(server, page):
    frame = open_harness(page, server, "erin")
    frame.locator("#question").focus()
    page.keyboard.type("keyboard question")
    page.keyboard.press("Enter")
    reply = frame.locator("li.sa-msg--assistant").last
    expect(reply).to_have_attribute("data-status", "complete")
    expect(frame.locator("#question")).to_be_focused()  # focus stays in the composer
    focused = frame.locator(":focus")
    for action in ("down", "up", "copy", "insert"):  # backwards from the composer
        page.keyboard.press("Shift+Tab")
        expect(focused).to_have_attribute("data-action", action)
    page.keyboard.press("Enter")
    expect(page.locator("#invocations [data-action='ticket.comment.appendMarkdown']")).to_have_count(1)
    # Thumbs down opens the reasons form with focus in it; Escape closes it and returns focus.
    for _ in range(3):
        page.keyboard.press("Tab")
    expect(focused).to_have_attribute("data-action", "down")
    page.keyboard.press("Enter")
    expect(reply.locator(".sa-feedback")).to_be_visible()
    expect(reply.locator("input[value=wrong_sources]")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Escape")
    expect(reply.locator(".sa-feedback")).to_have_count(0)
    expect(reply.locator('[data-action="down"]')).to_be_focused()
    # Every control has an accessible name.
    names = frame.locator("button, textarea, a").evaluate_all(
        "(els) => els.filter((e) => !(e.getAttribute('aria-label') || e.textContent.trim() || e.labels?.length))"
        ".map((e) => e.outerHTML)"
    )
    assert names == []


def test_a_refused_message_is_marked_not_sent_and_never_resent(redis_server, tmp_path, page):
    from backend.launcher import Instance, wait_ready
    from testkit.servers import free_port
    from tests.browser.conftest import server_env

    port = free_port()
    inst = Instance(port, server_env(tmp_path / "data", redis_server.url, port, MAX_MESSAGE_CHARS="20"))
    inst.start()
    try:
        wait_ready(inst.url, alive=inst.alive)
        frame = open_harness(page, inst, "gina")
        ask(frame, "this question is far longer than twenty characters")
        user = frame.locator("li.sa-msg--user").last
        expect(user).to_have_attribute("data-status", "failed")
        expect(user).to_contain_text("Not sent: message is 50 characters; the limit is 20")
        ask(frame, "short one")
        expect(frame.locator("li.sa-msg--assistant").last.locator(".sa-answer")).to_have_text(
            "echo: short one"
        )
        assert frame.locator("li.sa-msg--user").count() == 2
    finally:
        inst.stop()
