"""Two real gunicorn instances sharing one Redis: cross-instance emits, SIGKILL mid-turn,
resume on the survivor, and hydration from the archive after Redis loses everything."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import redis

from backend import protocol
from backend.launcher import Instance, instance_env, wait_ready
from store.sessions import SqliteSessionArchive
from testkit.client import SidebarClient
from testkit.servers import free_port
from tests.conftest import TEST_SECRET

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TICKET = {"id": "5150", "subject": "Refund for a damaged kettle"}


@pytest.fixture
def cluster(settings, redis_url):
    extra = {
        "SECRET_KEY": TEST_SECRET,
        "TURN_HANDLER": "testkit.handlers:EchoHandler",
        "TEST_TURN_DELAY": "0.15",
        "INSTANCE_HEARTBEAT_SECONDS": "0.5",
        "PYTHONPATH": str(ROOT),
        "THREADS": "32",
    }
    instances = []
    for _ in range(2):
        port = free_port()
        inst = Instance(port, instance_env(settings, port, redis_url=redis_url, extra=extra))
        inst.start()
        instances.append(inst)
    for inst in instances:
        wait_ready(inst.url, alive=inst.alive)
    yield instances
    for inst in instances:
        inst.stop()


def thread_of(state_or_session) -> list[tuple[str, str, str]]:
    return [(m["id"], m["status"], m["text"]) for m in state_or_session["thread"]]


def test_sessions_survive_instance_crash_and_redis_loss(cluster, settings, redis_url, tokens):
    a, b = cluster
    token = tokens.mint("acme", "alice", "Alice")

    tab_a = SidebarClient()
    tab_a.connect(a.url, token)
    session_id = tab_a.join(TICKET)["session_id"]
    tab_a.ask("m1", "first question", timeout=20)

    # A second tab of the same user on instance B: its turn's events reach tab A through Redis.
    tab_b = SidebarClient()
    tab_b.connect(b.url, token)
    assert tab_b.join(TICKET)["session_id"] == session_id
    tab_b.ask("m2", "asked on b", timeout=20)
    assert (
        tab_a.wait_for(protocol.DONE, lambda d: d["id"] == "m2", timeout=10)["message"]["text"]
        == "echo: asked on b"
    )
    tab_b.disconnect()

    # A slow turn on A; kill A with SIGKILL once it is streaming.
    tab_a.emit(
        protocol.MESSAGE, {"id": "m3", "text": "a long question that takes a while to answer completely"}
    )
    tab_a.wait_for(protocol.ACK, lambda d: d["id"] == "m3")
    tab_a.wait_for(protocol.DELTA, lambda d: d["id"] == "m3")
    a.stop(signal.SIGKILL)
    tab_a.disconnect(abort=True)

    # The sidebar reconnects to B (after its backoff, longer than A's heartbeat lifetime).
    time.sleep(2.0)
    tab = SidebarClient()
    tab.connect(b.url, token)
    state = tab.join(TICKET)
    assert state["resumed"] is True
    assert thread_of(state) == [
        ("m1", "complete", "first question"),
        ("m1.reply", "complete", "echo: first question"),
        ("m2", "complete", "asked on b"),
        ("m2.reply", "complete", "echo: asked on b"),
        ("m3", "complete", "a long question that takes a while to answer completely"),
        ("m3.reply", "interrupted", ""),
    ]
    # The interrupted turn is retried on B and completes.
    tab.emit(protocol.RETRY, {"id": "m3"})
    done = tab.wait_for(protocol.DONE, lambda d: d["id"] == "m3", timeout=30)
    assert done["message"]["text"].startswith("echo: a long question")
    expected = [*thread_of(state)[:5], ("m3.reply", "complete", done["message"]["text"])]
    tab.disconnect()

    # The archive catches up right behind chat:done; then Redis loses everything.
    archive = SqliteSessionArchive(settings.sqlite_path)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        record = archive.load(session_id)
        if record and record.data["thread"][-1]["status"] == "complete":
            break
        time.sleep(0.05)
    redis.Redis.from_url(redis_url).flushall()

    fresh = SidebarClient()
    fresh.connect(b.url, token)
    state = fresh.join(TICKET)
    assert (state["resumed"], state["hydrated"]) == (True, True)
    assert thread_of(state) == expected
    # And the hydrated session keeps working.
    assert fresh.ask("m4", "after the flush", timeout=20)["message"]["text"] == "echo: after the flush"
    fresh.disconnect()


def test_acknowledged_message_survives_redis_loss_before_the_turn_ends(cluster, settings, redis_url, tokens):
    a, _ = cluster
    token = tokens.mint("acme", "bob")
    tab = SidebarClient()
    tab.connect(a.url, token)
    tab.join(TICKET)
    tab.emit(protocol.MESSAGE, {"id": "q1", "text": "ack then flush please wait for it"})
    tab.wait_for(protocol.ACK, lambda d: d["id"] == "q1")
    redis.Redis.from_url(redis_url).flushall()  # Redis lost right after the ack
    tab.disconnect(abort=True)
    again = SidebarClient()
    again.connect(a.url, token)
    state = again.join(TICKET)
    # Brought back from the archive — by this join, or already by the turn's own update.
    assert state["resumed"] is True
    assert ("q1", "complete", "ack then flush please wait for it") in thread_of(state)
    # The turn that was running on A finishes into the hydrated session: this tab either sees
    # chat:done, or (on a slow machine) the reply was already complete when it re-joined.
    reply = next(m for m in state["thread"] if m["id"] == "q1.reply")
    if reply["status"] != "complete":
        done = again.wait_for(protocol.DONE, lambda d: d["id"] == "q1", timeout=20)
        reply = done["message"]
    assert reply["status"] == "complete" and reply["text"].startswith("echo: ack then flush")
    again.disconnect()


def test_quick_rejoin_still_learns_the_reply_was_cut_off(cluster, tokens):
    """The sidebar is back (on B) before A's heartbeat has expired: the reply is still
    'streaming' then; B's sweeper settles it and tells the room, so nobody waits forever."""
    a, b = cluster
    token = tokens.mint("acme", "carol")
    tab = SidebarClient()
    tab.connect(a.url, token)
    tab.join(TICKET)
    tab.emit(
        protocol.MESSAGE, {"id": "k1", "text": "a long question that takes a while to answer completely"}
    )
    tab.wait_for(protocol.DELTA, lambda d: d["id"] == "k1")
    a.stop(signal.SIGKILL)
    tab.disconnect(abort=True)
    again = SidebarClient()
    again.connect(b.url, token)
    state = again.join(TICKET)
    assert next(m for m in state["thread"] if m["id"] == "k1.reply")["status"] == "streaming"
    err = again.wait_for(protocol.ERROR, lambda d: d.get("id") == "k1", timeout=15)
    assert (err["code"], err["retryable"]) == ("interrupted", True)
    again.emit(protocol.RETRY, {"id": "k1"})
    assert (
        again.wait_for(protocol.DONE, lambda d: d["id"] == "k1", timeout=30)["message"]["status"]
        == "complete"
    )
    again.disconnect()
