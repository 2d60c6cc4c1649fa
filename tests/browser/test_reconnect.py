"""Server restarts under a live sidebar: reconnecting state, then the whole thread, once."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from backend.launcher import Instance, wait_ready
from testkit.servers import free_port
from tests.browser.conftest import SCREENSHOTS, server_env

expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[test]')"
).expect


@pytest.fixture
def restartable(redis_server, tmp_path):
    port = free_port()
    inst = Instance(port, server_env(tmp_path / "data", redis_server.url, port, TEST_TURN_DELAY="0.2"))
    inst.start()
    wait_ready(inst.url, alive=inst.alive)
    yield inst
    inst.stop()


def kill_server(inst: Instance) -> None:
    """SIGKILL gunicorn's master and its worker: a crash of the whole instance. (Killing only the
    master leaves the worker serving its open WebSockets for a while.)"""
    assert inst.process is not None
    pid = inst.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    inst.stop(signal.SIGKILL)
    for child in children:
        while Path(f"/proc/{child}").exists() and "zombie" not in _state(child):
            time.sleep(0.05)


def _state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def thread(frame) -> list[tuple[str, str, str]]:
    return frame.locator("#thread > li").evaluate_all(
        "(lis) => lis.map((li) => [li.dataset.id, li.dataset.status,"
        " ((li.querySelector('.sa-msg__text, .sa-answer') || {}).textContent || '').trim()])"
    )


def test_restart_mid_conversation_resumes_the_whole_thread(restartable, page):
    server = restartable
    page.goto(f"{server.url}/dev/sidebar?user=dora")
    frame = page.frame_locator("#app-frame")
    status = frame.locator("#status")
    expect(status).to_be_hidden()
    frame.locator("#question").fill("first question")
    frame.locator("#question").press("Enter")
    expect(frame.locator("li.sa-msg--assistant").last).to_have_attribute("data-status", "complete")

    # 1. The server goes away between turns; a question asked meanwhile waits, then is sent once.
    kill_server(server)
    expect(status).to_be_visible()
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_contain_text("Reconnecting")
    frame.locator("#question").fill("asked while offline")
    frame.locator("#question").press("Enter")
    expect(frame.locator("[data-pending=true]")).to_have_count(1)
    page.locator(".hx-sidebar").screenshot(path=str(SCREENSHOTS / "sidebar-reconnecting.png"))
    server.start()
    wait_ready(server.url, alive=server.alive)
    expect(status).to_be_hidden(timeout=20_000)
    # Wait for the queued question's own answer (the last reply shown until then is the first one).
    expect(frame.locator("#thread > li")).to_have_count(4, timeout=20_000)
    expect(frame.locator("li.sa-msg--assistant").last).to_have_attribute("data-status", "complete")
    rows = thread(frame)
    assert [(s, t) for _, s, t in rows] == [
        ("complete", "first question"),
        ("complete", "echo: first question"),
        ("complete", "asked while offline"),
        ("complete", "echo: asked while offline"),
    ]
    assert len({i for i, _, _ in rows}) == 4

    # 2. The server dies in the middle of an answer: the reply is shown interrupted, Retry completes it.
    question = "a long question that takes a while to answer completely"
    frame.locator("#question").fill(question)
    frame.locator("#question").press("Enter")
    expect(frame.locator('li.sa-msg--assistant[data-status="streaming"] .sa-answer p')).to_contain_text(
        "echo:"
    )
    kill_server(server)
    expect(status).to_have_attribute("data-state", "reconnecting")
    time.sleep(1.6)  # three missed heartbeats: the old instance is dead to its peers
    server.start()
    wait_ready(server.url, alive=server.alive)
    expect(status).to_be_hidden(timeout=20_000)
    last = frame.locator("li.sa-msg--assistant").last
    expect(last).to_have_attribute("data-status", "interrupted")
    expect(last).to_contain_text("interrupted")
    last.locator('[data-action="retry"]').click()
    expect(last).to_have_attribute("data-status", "complete", timeout=20_000)
    expect(last.locator(".sa-answer")).to_have_text(f"echo: {question}")
    rows = thread(frame)
    assert len(rows) == 6 and len({i for i, _, _ in rows}) == 6
    assert [s for _, s, _ in rows] == ["complete"] * 6

    # 3. A fresh load of the app (another tab, or tomorrow) shows the same thread from the server.
    frame.locator("body").evaluate("(b) => { b.dataset.old = '1'; }")
    page.evaluate("() => window.__harness.reload()")
    expect(frame.locator("body:not([data-old]) #thread > li")).to_have_count(6)
    expect(frame.locator("body:not([data-old]) #status")).to_be_hidden()
    assert [(s, t) for _, s, t in thread(frame)] == [(s, t) for _, s, t in rows]


def test_session_token_is_refreshed_and_used_to_reconnect(redis_server, tmp_path, page):
    port = free_port()
    env = server_env(tmp_path / "data", redis_server.url, port, SESSION_TOKEN_TTL_SECONDS="60")
    server = Instance(port, env)
    server.start()
    try:
        wait_ready(server.url, alive=server.alive)
        with page.expect_response(
            lambda r: r.url.endswith("/zendesk/session/refresh"), timeout=20_000
        ) as resp:
            page.goto(f"{server.url}/dev/sidebar?user=frank")
        assert resp.value.status == 200
        frame = page.frame_locator("#app-frame")
        kill_server(server)
        expect(frame.locator("#status")).to_have_attribute("data-state", "reconnecting")
        server.start()
        wait_ready(server.url, alive=server.alive)
        expect(frame.locator("#status")).to_be_hidden(timeout=20_000)
        frame.locator("#question").fill("after refresh")
        frame.locator("#question").press("Enter")
        expect(frame.locator("li.sa-msg--assistant").last.locator(".sa-answer")).to_have_text(
            "echo: after refresh"
        )
    finally:
        server.stop()
