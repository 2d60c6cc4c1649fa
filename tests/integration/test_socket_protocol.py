"""The Socket.IO protocol over a real server: auth, join/resume, turns, idempotency, bad input."""

from __future__ import annotations

import time

import pytest
import socketio

from backend import protocol
from testkit.client import SidebarClient
from testkit.handlers import HangingHandler

pytestmark = pytest.mark.integration

TICKET = {
    "id": 1001,
    "subject": "Parcel never arrived",
    "description": "Order BO-100234 shows delivered",
    "tags": ["shipping"],
}


@pytest.fixture
def server(live_app):
    return live_app()


@pytest.fixture
def client(server, tokens):
    c = SidebarClient()
    c.connect(server.url, tokens.mint("acme", "alice", "Alice"))
    yield c
    c.disconnect()


def test_connect_without_or_with_bad_token_is_refused(server, tokens):
    for token in (None, "", "not-a-token", tokens.mint("acme", "alice")[:-3] + "xyz"):
        c = SidebarClient()
        with pytest.raises(socketio.exceptions.ConnectionError):
            c.connect(server.url, token)
        assert not c.sio.connected
        assert c.connect_errors[0]["message"] in (
            "missing token: connect with auth={'token': ...}",
            "malformed token",
            "invalid token",
        )


def test_expired_token_is_refused(server):
    from backend.auth import DevTokenAuthenticator
    from tests.conftest import TEST_SECRET

    old = DevTokenAuthenticator(TEST_SECRET, 3600).mint("acme", "alice")
    time.sleep(2.1)  # itsdangerous timestamps have one-second resolution
    server.services.authenticator.max_age_seconds = 1  # the server now considers it too old
    c = SidebarClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect(server.url, old)
    assert c.connect_errors == [{"message": "token expired"}]


def test_join_ask_stream_and_resume(server, client, tokens):
    state = client.join(TICKET)
    assert state["resumed"] is False and state["thread"] == []
    done = client.ask("m-1", "where is the parcel")
    assert client.of(protocol.ACK)[0]["id"] == "m-1"
    assert client.of(protocol.THINKING)[0]["text"] == "reading the ticket"
    deltas = [d["text"] for d in client.of(protocol.DELTA) if d["id"] == "m-1"]
    assert "".join(deltas) == "echo: where is the parcel" == done["message"]["text"]
    assert [d["seq"] for d in client.of(protocol.DELTA)] == list(range(1, len(deltas) + 1))
    assert done["citations"][0]["title"] == "Test source"
    assert done["message"]["status"] == "complete"
    client.disconnect()

    again = SidebarClient()
    again.connect(server.url, tokens.mint("acme", "alice", "Alice"))
    state = again.join({"id": "1001"})
    assert state["resumed"] is True
    assert [(m["role"], m["text"]) for m in state["thread"]] == [
        ("user", "where is the parcel"),
        ("assistant", "echo: where is the parcel"),
    ]
    again.disconnect()


def test_resent_message_is_acked_but_processed_once(server, client):
    client.join(TICKET)
    client.ask("m-dup", "hello")
    client.emit(protocol.MESSAGE, {"id": "m-dup", "text": "hello"})
    client.wait_for(protocol.ACK, timeout=5, start=len(client.events) - 1 if client.events else 0)
    time.sleep(0.3)
    assert len(client.of(protocol.ACK)) == 2
    assert len(client.of(protocol.DONE)) == 1
    session = server.services.store.get(client.of(protocol.STATE)[0]["session_id"])
    assert [m.id for m in session.thread] == ["m-dup", "m-dup.reply"]


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        (protocol.MESSAGE, {"id": "x", "text": "a" * 5000}, "message_too_long"),
        (protocol.MESSAGE, {"id": "bad id with spaces", "text": "hi"}, "invalid_payload"),
        (protocol.MESSAGE, {"text": "no id"}, "invalid_payload"),
        (protocol.MESSAGE, "just a string", "invalid_payload"),
        (protocol.MESSAGE, {"id": "x", "text": "hi", "admin": True}, "invalid_payload"),
        (protocol.FEEDBACK, {"message_id": "nope", "rating": "up"}, "unknown_message"),
        (protocol.FEEDBACK, {"message_id": "x", "rating": "meh"}, "invalid_payload"),
        (protocol.RETRY, {"id": "nope"}, "unknown_message"),
        (protocol.JOIN, {"ticket": {"id": "1", "description": "x" * 70_000}}, "invalid_payload"),
        (protocol.JOIN, {"ticket": {"id": "1", "custom": "x" * 70_000}}, "ticket_too_large"),
        ("admin:drop_tables", {}, "unknown_event"),
    ],
)
def test_bad_input_gets_clear_error_keeps_connection_stores_nothing(server, client, event, payload, code):
    state = client.join(TICKET)
    client.emit(event, payload)
    err = client.wait_for(protocol.ERROR, lambda d: d["code"] == code, timeout=5)
    assert err["message"] and err["retryable"] is False
    session = server.services.store.get(state["session_id"])
    assert session.thread == [] and session.feedback == []
    assert client.sio.connected
    assert client.ask("after", "still works")["message"]["status"] == "complete"


def test_chat_before_join_is_refused(client):
    client.emit(protocol.MESSAGE, {"id": "m", "text": "hi"})
    assert client.wait_for(protocol.ERROR)["code"] == "not_joined"


def test_cannot_join_someone_elses_session(server, tokens):
    alice, bob = SidebarClient(), SidebarClient()
    alice.connect(server.url, tokens.mint("acme", "alice"))
    bob.connect(server.url, tokens.mint("acme", "bob"))
    alices = alice.join(TICKET)["session_id"]
    alice.ask("secret", "my private question")
    bob.emit(protocol.JOIN, {"ticket": TICKET, "session_id": alices})
    assert bob.wait_for(protocol.ERROR)["code"] == "forbidden"
    assert not bob.of(protocol.STATE)
    # Same ticket without a session id: bob gets his own, empty session.
    assert bob.join(TICKET)["thread"] == []
    # Another tenant with the same user id is someone else too.
    eve = SidebarClient()
    eve.connect(server.url, tokens.mint("other-tenant", "alice"))
    assert eve.join(TICKET)["session_id"] != alices
    for c in (alice, bob, eve):
        c.disconnect()


def test_two_tabs_share_the_session_and_see_each_others_turns(server, tokens):
    tab1, tab2 = SidebarClient(), SidebarClient()
    for tab in (tab1, tab2):
        tab.connect(server.url, tokens.mint("acme", "alice"))
        tab.join(TICKET)
    tab2.ask("from-tab-2", "hi from tab two")
    assert tab1.wait_for(protocol.DONE, lambda d: d["id"] == "from-tab-2")["message"]["text"].endswith(
        "tab two"
    )
    assert tab1.of(protocol.ACK)[0]["message"]["text"] == "hi from tab two"
    tab1.disconnect()
    tab2.disconnect()


def test_handler_failure_is_reported_and_retryable(server, client):
    client.join(TICKET)
    client.emit(protocol.MESSAGE, {"id": "f1", "text": "please fail"})
    err = client.wait_for(protocol.ERROR, lambda d: d.get("id") == "f1")
    assert (err["code"], err["retryable"]) == ("agent_failed", True)
    client.emit(protocol.MESSAGE, {"id": "c1", "text": "please crash"})
    err = client.wait_for(protocol.ERROR, lambda d: d.get("id") == "c1")
    assert err["code"] == "internal_error" and "boom" not in err["message"]
    session = server.services.store.get(client.of(protocol.STATE)[0]["session_id"])
    assert session.reply_to("f1").status == "error"


def test_retry_reruns_an_interrupted_turn(server, client):
    state = client.join(TICKET)
    sid = state["session_id"]
    store = server.services.store
    client.emit(protocol.MESSAGE, {"id": "r1", "text": "please fail"})
    client.wait_for(protocol.ERROR, lambda d: d.get("id") == "r1")
    # The user edits nothing and retries; this time the handler succeeds.
    store.update(sid, lambda s: setattr(s.message("r1"), "text", "second try"))
    client.emit(protocol.RETRY, {"id": "r1"})
    done = client.wait_for(protocol.DONE, lambda d: d["id"] == "r1")
    assert done["message"]["text"] == "echo: second try"
    assert done["message"]["meta"]["attempt"] == 2
    client.emit(protocol.RETRY, {"id": "r1"})
    assert client.wait_for(protocol.ERROR, lambda d: d["code"] == "not_retryable")


def test_turn_timeout_marks_interrupted(live_app, tokens):
    server = live_app(handler=HangingHandler(), settings={"turn_timeout_seconds": 0.5})
    c = SidebarClient()
    c.connect(server.url, tokens.mint("acme", "alice"))
    state = c.join(TICKET)
    c.emit(protocol.MESSAGE, {"id": "slow", "text": "take forever"})
    err = c.wait_for(protocol.ERROR, lambda d: d.get("id") == "slow", timeout=5)
    assert (err["code"], err["retryable"]) == ("turn_timeout", True)
    assert server.services.store.get(state["session_id"]).reply_to("slow").status == "interrupted"
    c.disconnect()


def test_feedback_is_stored_and_replaced(server, client):
    state = client.join(TICKET)
    client.ask("q", "hello")
    client.emit(protocol.FEEDBACK, {"message_id": "q.reply", "rating": "down", "reasons": ["wrong_sources"]})
    client.wait_for(protocol.FEEDBACK_ACK)
    client.emit(protocol.FEEDBACK, {"message_id": "q.reply", "rating": "up", "comment": "actually fine"})
    client.wait_for(protocol.FEEDBACK_ACK, start=len(client.events) - 1)
    time.sleep(0.1)
    fb = server.services.store.get(state["session_id"]).feedback
    assert len(fb) == 1 and fb[0]["rating"] == "up" and fb[0]["user_id"] == "alice"
    assert server.services.archive.load(state["session_id"]).data["feedback"][0]["comment"] == "actually fine"


def test_feedback_names_the_agents_it_should_have_used(server, client):
    state = client.join(TICKET)
    # The picker's choices: the enabled agents (here from the registry: the echo handler has none).
    names = [a["name"] for a in state["agents"]]
    assert "knowledge_base" in names and "order_lookup" in names
    assert all(a["title"] for a in state["agents"])
    client.ask("q", "where is my order")
    bad = [
        ({"expected_agents": ["order_lookup"]}, "only accepted with the reason 'wrong_sources'"),
        ({"reasons": ["wrong_sources"], "expected_agents": ["ghost_agent"]}, "unknown agent 'ghost_agent'"),
        ({"reasons": ["wrong_sources"], "expected_agents": ["respond", "macros"]}, "cannot be combined"),
        ({"reasons": ["wrong_sources"], "expected_agents": ["a_b"] * 6}, "at most 5"),
    ]
    for extra, why in bad:
        client.emit(protocol.FEEDBACK, {"message_id": "q.reply", "rating": "down", **extra})
        err = client.wait_for(protocol.ERROR, lambda d, why=why: why in d["message"])
        assert err["code"] == "invalid_payload"
    assert server.services.store.get(state["session_id"]).feedback == []  # nothing stored for bad input
    client.emit(
        protocol.FEEDBACK,
        {
            "message_id": "q.reply",
            "rating": "down",
            "reasons": ["wrong_sources"],
            "expected_agents": ["order_lookup", "macros", "order_lookup"],
        },
    )
    client.wait_for(protocol.FEEDBACK_ACK)
    (fb,) = server.services.archive.load(state["session_id"]).data["feedback"]
    assert fb["expected_agents"] == ["order_lookup", "macros"]  # de-duplicated, order kept
    # The reply records what the router chose, beside the feedback, for the export.
    reply = server.services.store.get(state["session_id"]).reply_to("q")
    assert reply.meta.routing["router"] == "test" and reply.meta.routing["action"] == "respond"


def test_health_and_readiness(server):
    import requests

    assert requests.get(server.url + "/healthz", timeout=5).json()["status"] == "ok"
    r = requests.get(server.url + "/readyz", timeout=5)
    assert r.status_code == 200 and r.json()["checks"] == {"redis": "ok", "archive": "ok"}
    server.services.archive.close()
    r = requests.get(server.url + "/readyz", timeout=5)
    assert r.status_code == 503 and r.json()["checks"]["archive"].startswith("unreachable")


def test_metrics_count_turns_joins_and_errors(server, client):
    import requests

    client.join(TICKET)
    client.ask("mm1", "hello metrics")
    client.emit(protocol.MESSAGE, {"id": "bad id", "text": "x"})
    client.wait_for(protocol.ERROR)
    body = requests.get(server.url + "/metrics", timeout=5).text
    assert 'sidebar_turns_total{outcome="complete"} 1.0' in body
    assert 'sidebar_session_joins_total{kind="new"} 1.0' in body
    assert 'sidebar_client_errors_total{code="invalid_payload"} 1.0' in body
    assert 'sidebar_routing_decisions_total{action="respond",router="test"} 1.0' in body
    assert "sidebar_connections 1.0" in body
    assert 'sidebar_turn_phase_seconds_count{phase="total"} 1.0' in body


def test_logs_are_json_with_correlation_ids_and_no_message_text(server, client, capsys):
    import json as _json
    import logging

    client.join(TICKET)
    client.emit(protocol.MESSAGE, {"id": "log1", "text": "please crash"})  # logs an exception for the turn
    client.wait_for(protocol.ERROR, lambda d: d.get("id") == "log1")
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("{")]
    records = [_json.loads(ln) for ln in lines]
    turn_failed = [r for r in records if r.get("message") == "turn failed"]
    assert turn_failed, lines[-5:]
    rec = turn_failed[-1]
    assert rec["tenant"] == "acme" and rec["message_id"] == "log1" and rec["session_id"]
    assert rec["level"] == "ERROR"
    assert all("please crash" not in ln for ln in lines)  # the user's text is never logged
    assert logging.getLogger().level <= logging.INFO


def test_per_user_rate_limit_refuses_without_storing_and_spans_instances(live_app, tokens):
    a = live_app(settings={"rate_limit_per_minute": 6, "rate_limit_burst": 3})
    b = live_app(settings={"rate_limit_per_minute": 6, "rate_limit_burst": 3})
    tab_a, tab_b = SidebarClient(), SidebarClient()
    tab_a.connect(a.url, tokens.mint("acme", "alice"))
    tab_b.connect(b.url, tokens.mint("acme", "alice"))
    state = tab_a.join(TICKET)
    tab_b.join(TICKET)
    for i in range(3):  # the burst, spread over two instances
        (tab_a if i % 2 else tab_b).ask(f"ok{i}", f"question {i}")
    tab_a.emit(protocol.MESSAGE, {"id": "over", "text": "one too many"})
    err = tab_a.wait_for(protocol.ERROR, lambda d: d["code"] == "rate_limited")
    assert err["retryable"] is True and 0 < err["retry_after"] <= 10
    assert err["id"] == "over" and err["event"] == protocol.MESSAGE  # tied to the refused message
    assert a.services.store.get(state["session_id"]).message("over") is None  # nothing stored
    # Another user is not affected.
    bob = SidebarClient()
    bob.connect(a.url, tokens.mint("acme", "bob"))
    bob.join(TICKET)
    assert bob.ask("b1", "hello")["message"]["status"] == "complete"
    for c in (tab_a, tab_b, bob):
        c.disconnect()


@pytest.mark.parametrize(
    ("event", "payload", "code", "message_id"),
    [
        (protocol.MESSAGE, {"id": "long-1", "text": "a" * 5000}, "message_too_long", "long-1"),
        (protocol.MESSAGE, {"id": "extra-1", "text": "hi", "admin": True}, "invalid_payload", "extra-1"),
        (protocol.RETRY, {"id": "nope-1"}, "unknown_message", "nope-1"),
        (protocol.FEEDBACK, {"message_id": "nope-2", "rating": "up"}, "unknown_message", "nope-2"),
        (protocol.FEEDBACK, {"message_id": "meh-1", "rating": "meh"}, "invalid_payload", "meh-1"),
        # No valid id to name: the error says which event it answers, and nothing more.
        (protocol.MESSAGE, {"id": "bad id", "text": "hi"}, "invalid_payload", None),
        (protocol.JOIN, {"ticket": {"id": "1", "custom": "x" * 70_000}}, "ticket_too_large", None),
    ],
)
def test_every_error_caused_by_a_message_carries_its_id(client, event, payload, code, message_id):
    """Socket.IO delivers a connection's events in order but with no link between an emit and
    what answers it unless the application adds one (https://socket.io/docs/v4/delivery-guarantees:
    "message ordering" is guaranteed, "at most once" by default; acknowledgements are opt-in,
    https://socket.io/docs/v4/emitting-events/#acknowledgements). While a turn streams, a
    chat:error can therefore only be tied to the message it refused by the id it carries
    (docs/protocol.md, "chat:error")."""
    client.join(TICKET)
    client.emit(event, payload)
    err = client.wait_for(protocol.ERROR, lambda d: d["code"] == code, timeout=5)
    assert err.get("id") == message_id
    assert err["event"] == event


def test_error_before_join_names_the_message(client):
    client.emit(protocol.MESSAGE, {"id": "early-1", "text": "hi"})
    err = client.wait_for(protocol.ERROR)
    assert (err["code"], err["id"], err["event"]) == ("not_joined", "early-1", protocol.MESSAGE)
