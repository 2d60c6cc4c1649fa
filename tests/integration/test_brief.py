"""The ticket brief over the real Socket.IO path, with the real offline assistant on the demo
tenant: streamed on join, cached per ticket version, refreshed by a new comment, internal notes
only when the admin enables them, and a failing brief that never blocks the chat."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator

import pytest

from backend import protocol
from bench.answers.payload import sidebar_ticket
from orchestrator.brief import BriefRequest
from testkit.client import SidebarClient
from testkit.handlers import EchoHandler

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def assistant(local_llm, demo_index):
    from backend.assistant import build_assistant
    from backend.settings import Settings

    # The keyword router: routing is not what these tests are about, and it loads nothing.
    a = build_assistant(Settings(_env_file=None, router="keyword"), llm=local_llm, index=demo_index)
    yield a
    a.close()


def _connect(server, tokens, user: str) -> SidebarClient:
    c = SidebarClient()
    c.connect(server.url, tokens.mint("demo", user, user.title()))
    return c


def _brief(client: SidebarClient, start: int = 0, timeout: float = 60) -> dict:
    return client.wait_for(protocol.BRIEF_DONE, timeout=timeout, start=start)


def test_brief_streams_on_join_then_comes_from_the_session(live_app, tokens, assistant):
    server = live_app(handler=assistant)
    ticket = sidebar_ticket(41308)
    c = _connect(server, tokens, "dana")
    try:
        c.join(ticket)
        done = _brief(c)
        started = c.of(protocol.BRIEF_START)
        sections = [s["section"] for s in c.of(protocol.BRIEF_SECTION)]
    finally:
        c.disconnect()
    assert done["cached"] is False and started[0]["version"] == done["version"]
    assert sections == ["recap", "entities", "signals", "suggestions"]
    brief = done["brief"]
    assert brief["recap"]["ask"] == "Please send it."
    assert "Lumo Garden Light Starter Kit" in brief["recap"]["problem"]
    assert brief["recap"]["done"].startswith("Don't worry – your order was sent in two parcels")
    states = {e["id"]: e["state"] for e in brief["entities"]}
    assert states["order:BO-100693"] == "BO-100693 · delivered 2026-11-15 · 2 items"
    assert states["customer:felix.wagner54@example.net"].startswith("Felix Wagner")
    assert brief["signals"]["language"]["code"] == "en"
    assert {"ticket:41308", "order:BO-100693"} <= set(brief["sources"])
    kinds = {s["kind"] for s in brief["suggestions"]["items"]}
    assert kinds == {"article", "ticket", "macro"}, brief["suggestions"]
    for s in brief["suggestions"]["items"]:
        assert s["why"] and s["insert"] is not None
    macro = next(s for s in brief["suggestions"]["items"] if s["kind"] == "macro")
    # Placeholders filled from the ticket: the requester's first name, the agent's name.
    assert macro["insert"].startswith("Hi Felix") and "{{" not in macro["insert"]
    assert macro["insert"].rstrip().splitlines()[-2:][0] == "Dana" or "Dana" in macro["insert"]

    # The same ticket again (another tab, a reload): the cached brief, nothing recomputed.
    again = _connect(server, tokens, "dana")
    try:
        again.join(ticket)
        cached = _brief(again, timeout=10)
    finally:
        again.disconnect()
    assert cached["cached"] is True and cached["version"] == done["version"]
    assert again.of(protocol.BRIEF_START) == []
    assert cached["brief"]["text"] == brief["text"]


def test_a_new_comment_makes_a_new_brief(live_app, tokens, assistant):
    server = live_app(handler=assistant)
    ticket = sidebar_ticket(41308)
    c = _connect(server, tokens, "erin")
    try:
        c.join(ticket)
        first = _brief(c)
        newer = copy.deepcopy(ticket)
        newer["comments"].append(
            {
                "author": "Felix Wagner",
                "role": "end-user",
                "public": True,
                "text": "Still nothing here after four days. Could you refund the light kit instead?",
            }
        )
        mark = len(c.events)
        c.join(newer)  # what the sidebar does on ZAF's ticket.updated
        second = _brief(c, start=mark)
    finally:
        c.disconnect()
    assert second["cached"] is False and second["version"] != first["version"]
    recap = second["brief"]["recap"]
    assert "refund the light kit" in recap["ask"]
    assert recap["waiting_on"] == "us"
    assert "refund the light kit" in recap["next_step"]


def test_internal_notes_only_when_the_admin_enables_them(live_app, tokens, assistant):
    ticket = sidebar_ticket(41308)
    ticket["comments"].append(
        {
            "author": "Amira",
            "role": "agent",
            "public": False,
            "text": "Warehouse says the kit was never packed.",
        }
    )
    for enabled in (False, True):
        server = live_app(handler=assistant, settings={"brief_include_internal_notes": enabled})
        c = _connect(server, tokens, f"ivy-{enabled}")
        try:
            c.join(ticket)
            brief = _brief(c)["brief"]
        finally:
            c.disconnect()
        assert "never packed" not in brief["text"]
        assert brief["recap"]["internal_notes"] == 1
        if enabled:
            assert brief["recap"]["internal"] == [
                "Internal note by Amira: Warehouse says the kit was never packed."
            ]
        else:
            assert "internal" not in brief["recap"]
            assert "never packed" not in str(brief)


class FailingBrief(EchoHandler):
    """Chats like EchoHandler; its brief fails after the recap."""

    def brief(self, request: BriefRequest) -> Iterator:
        from orchestrator.brief import BriefSection

        yield BriefSection("recap", {"version": request.version, "problem": "half a brief"})
        raise RuntimeError("the brief broke")


def test_a_failing_brief_sends_a_note_and_chat_still_works(live_app, tokens):
    server = live_app(handler=FailingBrief())
    c = _connect(server, tokens, "fay")
    try:
        c.join({"id": "5001", "subject": "Where is my parcel?", "description": "It is late."})
        error = c.wait_for(protocol.BRIEF_ERROR, timeout=10)
        done = c.ask("m-1", "hello there")
    finally:
        c.disconnect()
    assert error["code"] == "brief_failed" and "still ask" in error["message"]
    assert "the brief broke" not in error["message"]  # no internals to the client
    assert done["message"]["text"] == "echo: hello there"
    assert c.of(protocol.ERROR) == []  # the chat saw no error
    assert c.of(protocol.BRIEF_DONE) == []


def test_no_brief_when_disabled_or_the_handler_cannot_brief(live_app, tokens, assistant):
    for kwargs in ({"handler": EchoHandler()}, {"handler": assistant, "settings": {"brief_enabled": False}}):
        server = live_app(**kwargs)
        c = _connect(server, tokens, "gus")
        try:
            c.join({"id": "5002", "subject": "Hello", "description": "Just a test."})
            time.sleep(1.5)  # a brief would have started by now (it starts right after session:state)
        finally:
            c.disconnect()
        assert not [n for n, _ in c.events if n.startswith("brief:")]


def test_one_brief_per_session_at_a_time_and_only_the_latest_waits(redis_client, tmp_path):
    """A client re-joining with ever-changing tickets cannot pile up work: while one brief runs,
    only the latest version waits; the stored brief is that latest one."""
    import threading

    from backend.briefs import BriefRunner
    from backend.sessions import SessionStore
    from orchestrator.brief import BriefDone
    from orchestrator.turn import Principal
    from store.sessions import SqliteSessionArchive

    store = SessionStore(redis_client, SqliteSessionArchive(tmp_path / "a.sqlite3"), ttl_seconds=60,
                         instance_id="inst-brief")  # fmt: skip
    gate, computed, sent = threading.Event(), [], []

    def source(request):
        computed.append(request.ticket["subject"])
        gate.wait(10)
        yield BriefDone({"recap": {"problem": request.ticket["subject"]}})

    runner = BriefRunner(store, source, lambda event, payload, to: sent.append((event, payload)))
    principal = Principal("demo", "hal", "Hal")
    outcomes = []
    for subject in ("v1", "v2", "v3"):
        session, _, _ = store.open(principal, {"id": "6001", "subject": subject})
        outcomes.append(runner.on_join(session, principal, "sid-1"))
    assert outcomes == ["started", "queued", "queued"]
    gate.set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len([e for e, _ in sent if e == protocol.BRIEF_DONE]) < 2:
        time.sleep(0.05)
    assert computed == ["v1", "v3"]  # v2 was superseded before it started
    stored = store.get(session.id).brief
    assert stored["recap"]["problem"] == "v3" and stored["version"] == runner.version(session)


def test_the_brief_searches_wait_while_a_chat_turn_streams(redis_client, tmp_path):
    """Chat first: the agent asked right away, so the brief's searches start after the answer."""
    import threading

    from backend.briefs import BriefRunner
    from backend.sessions import SessionStore, ThreadMessage
    from orchestrator.brief import BriefDone
    from orchestrator.turn import Principal
    from store.sessions import SqliteSessionArchive

    store = SessionStore(redis_client, SqliteSessionArchive(tmp_path / "a.sqlite3"), ttl_seconds=60,
                         instance_id="inst-chat-first")  # fmt: skip
    principal = Principal("demo", "ida", "Ida")
    session, _, _ = store.open(principal, {"id": "6002", "subject": "Where is it?"})
    store.update(
        session.id,
        lambda s: s.thread.append(ThreadMessage(id="m1.reply", role="assistant", status="streaming")),
    )
    searched_at, done = [], threading.Event()

    def source(request):
        request.before_suggestions()
        searched_at.append(time.monotonic())
        yield BriefDone({"recap": {}})
        done.set()

    runner = BriefRunner(store, source, lambda *a: None)
    started = time.monotonic()
    assert runner.on_join(session, principal, "sid-1") == "started"
    time.sleep(0.6)
    assert searched_at == []  # still waiting for the turn

    def finish(s):
        s.thread[-1].status = "complete"

    store.update(session.id, finish)
    assert done.wait(5)
    assert searched_at[0] - started >= 0.6
