"""SessionStore against a real redis-server: CAS, TTL on disconnect, hydration, orphaned turns."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from backend.sessions import Session, SessionStore, ThreadMessage, session_id_for
from orchestrator.turn import Principal
from store.sessions import SqliteSessionArchive

pytestmark = pytest.mark.integration

ALICE = Principal("acme", "alice", "Alice")
BOB = Principal("acme", "bob", "Bob")


@pytest.fixture
def archive(tmp_path):
    a = SqliteSessionArchive(tmp_path / "archive.sqlite3")
    yield a
    a.close()


@pytest.fixture
def store(redis_client, archive) -> SessionStore:
    # liveness_window=0: the test Redis is young, and these tests judge liveness by the key alone.
    return SessionStore(redis_client, archive, ttl_seconds=60, instance_id="inst-a", liveness_window=0)


def test_one_session_per_tenant_user_ticket(store):
    s1, resumed1, _ = store.open(ALICE, {"id": "42", "subject": "Where is my order?"})
    s2, resumed2, _ = store.open(ALICE, {"id": "42", "subject": "Where is my order? (edited)"})
    other, _, _ = store.open(BOB, {"id": "42"})
    assert (resumed1, resumed2) == (False, True)
    assert s1.id == s2.id == session_id_for(ALICE, "42")
    assert other.id != s1.id
    assert s2.ticket["subject"].endswith("(edited)")  # the live ticket context is refreshed


def test_concurrent_writers_never_lose_an_update(store, redis_url, archive):
    session, _, _ = store.open(ALICE, {"id": "7"})
    # Two "instances": separate stores, separate connections, same Redis key.
    other = SessionStore(
        redis.Redis.from_url(redis_url, decode_responses=True), archive, ttl_seconds=60, instance_id="inst-b"
    )
    writers, per_writer = 6, 40

    def write(st: SessionStore, w: int) -> None:
        for i in range(per_writer):
            st.update(session.id, lambda s, w=w, i=i: s.feedback.append({"message_id": f"{w}-{i}"}))

    threads = [threading.Thread(target=write, args=(store if w % 2 else other, w)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = store.get(session.id)
    assert len(final.feedback) == writers * per_writer
    assert len({f["message_id"] for f in final.feedback}) == writers * per_writer
    assert final.version == session.version + writers * per_writer


def test_disconnect_sets_ttl_and_archives_reconnect_persists(store, redis_client, archive):
    session, _, _ = store.open(ALICE, {"id": "9"})
    store.update(session.id, lambda s: s.thread.append(ThreadMessage(id="m1", role="user", text="hi")))
    store.attach(session.id, "sid-1")
    store.attach(session.id, "sid-2")
    assert store.detach(session.id, "sid-1") == 1  # another tab is still open
    assert redis_client.ttl(store.key(session.id)) == -1
    assert store.detach(session.id, "sid-2") == 0
    assert 0 < redis_client.ttl(store.key(session.id)) <= 60
    archived = archive.load(session.id)
    assert archived is not None and archived.data["thread"][0]["text"] == "hi"
    store.open(ALICE, {"id": "9"})
    store.attach(session.id, "sid-3")
    assert redis_client.ttl(store.key(session.id)) == -1


def test_connections_of_dead_instances_do_not_keep_a_session_alive(store, redis_client):
    session, _, _ = store.open(ALICE, {"id": "10"})
    redis_client.hset(store.conns_key(session.id), "sid-on-dead-instance", "inst-dead")
    store.attach(session.id, "sid-live")
    assert store.detach(session.id, "sid-live") == 0
    assert redis_client.ttl(store.key(session.id)) > 0


def test_expired_session_is_hydrated_from_archive(store, redis_client):
    session, _, _ = store.open(ALICE, {"id": "11"})
    session, _ = store.update(
        session.id, lambda s: s.thread.append(ThreadMessage(id="m1", role="user", text="kept"))
    )
    store.archive_now(session)
    redis_client.flushall()
    again, resumed, hydrated = store.open(ALICE, {"id": "11"})
    assert (resumed, hydrated) == (True, True)
    assert [m.text for m in again.thread] == ["kept"]
    assert again.version > session.version


def test_a_turn_starting_after_redis_lost_its_session_gets_it_back(store, redis_client):
    """The race CI hit: the turn's thread starts only after FLUSHALL (acked message archived)."""
    session, _, _ = store.open(ALICE, {"id": "12"})
    session, _ = store.update(
        session.id, lambda s: s.thread.append(ThreadMessage(id="q1", role="user", text="acked"))
    )
    store.archive_now(session)
    redis_client.flushall()
    assert store.get(session.id) is None
    back = store.get_or_rehydrate(session.id)
    assert back is not None and [m.id for m in back.thread] == ["q1"]
    assert store.get_or_rehydrate("no-such-session") is None


def test_stale_archive_write_never_overwrites_newer(store, archive):
    session, _, _ = store.open(ALICE, {"id": "12"})
    new, _ = store.update(
        session.id, lambda s: s.thread.append(ThreadMessage(id="m", role="user", text="new"))
    )
    store.archive_now(new)
    store.archive_now(session)  # an older snapshot arriving late
    assert archive.load(session.id).version == new.version


def test_orphaned_streaming_reply_is_marked_interrupted(store, redis_client):
    session, _, _ = store.open(ALICE, {"id": "13"})

    def add(s: Session) -> None:
        s.thread.append(ThreadMessage(id="q", role="user", text="?"))
        s.thread.append(
            ThreadMessage(
                id="q.reply",
                role="assistant",
                status="streaming",
                reply_to="q",
                meta={"instance": "inst-dead"},
            )
        )
        s.thread.append(ThreadMessage(id="r", role="user", text="?"))
        s.thread.append(
            ThreadMessage(
                id="r.reply",
                role="assistant",
                status="streaming",
                reply_to="r",
                meta={"instance": "inst-live"},
            )
        )

    store.update(session.id, add)
    redis_client.set(store.instance_key("inst-live"), "1", ex=30)  # inst-live is beating; inst-dead is not
    after = store.mark_orphaned_turns(session.id)
    assert after.reply_to("q").status == "interrupted"
    assert after.reply_to("r").status == "streaming"


def test_embedded_redis_shutdown_really_stops_the_server(tmp_path):
    import subprocess
    import time

    from backend.redis_embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "r", persist=False)
    assert redis.Redis.from_url(server.url).ping()
    server.shutdown()
    deadline = time.monotonic() + 5
    while (
        time.monotonic() < deadline
        and subprocess.run(["pgrep", "-f", server.socket_file], capture_output=True).returncode == 0
    ):
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-f", server.socket_file], capture_output=True).returncode != 0


def test_sweeper_settles_turns_of_dead_instances_once(store, redis_client):
    session, _, _ = store.open(ALICE, {"id": "20"})

    def add(s: Session) -> None:
        s.thread.append(ThreadMessage(id="q", role="user", text="?"))
        s.thread.append(
            ThreadMessage(
                id="q.reply",
                role="assistant",
                status="streaming",
                reply_to="q",
                meta={"instance": "inst-dead", "started_at": time.time()},
            )
        )

    store.update(session.id, add)
    dead = SessionStore(
        redis_client, store.archive, ttl_seconds=60, instance_id="inst-dead", liveness_window=0
    )
    dead.track_turn(session.id, "q", 1)
    assert store.sweep_orphans() == [(session.id, "q")]
    assert store.get(session.id).reply_to("q").status == "interrupted"
    assert store.sweep_orphans() == []  # settled once, forgotten


def test_stale_streaming_reply_is_interrupted_even_if_its_instance_lives(redis_client, archive):
    store = SessionStore(redis_client, archive, ttl_seconds=60, instance_id="inst-a", stale_after=5)
    session, _, _ = store.open(ALICE, {"id": "21"})

    def add(s: Session) -> None:
        s.thread.append(ThreadMessage(id="q", role="user", text="?"))
        s.thread.append(
            ThreadMessage(
                id="q.reply",
                role="assistant",
                status="streaming",
                reply_to="q",
                meta={"instance": "inst-a", "started_at": time.time() - 60},
            )
        )

    store.update(session.id, add)
    _, changed = store.mark_orphaned(session.id)
    assert changed == ["q"]
    assert store.get(session.id).reply_to("q").meta.interrupted_reason == "stale"


def test_failed_archive_writes_are_queued_and_flushed(store, redis_client, tmp_path):
    session, _, _ = store.open(ALICE, {"id": "22"})
    session, _ = store.update(
        session.id, lambda s: s.thread.append(ThreadMessage(id="m", role="user", text="kept"))
    )
    store.archive.close()  # the archive goes down
    assert store.archive_now(session) is False
    assert redis_client.sismember("sa:archive-queue", session.id)
    assert store.flush_archive_queue() == 0  # still down
    store.archive = SqliteSessionArchive(tmp_path / "archive.sqlite3")  # and comes back
    assert store.flush_archive_queue() == 1
    assert store.archive.load(session.id).data["thread"][0]["text"] == "kept"
    assert not redis_client.sismember("sa:archive-queue", session.id)


def test_right_after_redis_restarts_nobody_is_judged_dead(redis_client, archive):
    # Redis younger than the liveness window: a missing key proves nothing yet (every instance
    # re-creates its key at its next beat), so no turn is interrupted on that evidence.
    young = SessionStore(redis_client, archive, ttl_seconds=60, instance_id="inst-a", liveness_window=3600)
    assert young.instance_alive("inst-without-a-key") is True
    settled = SessionStore(redis_client, archive, ttl_seconds=60, instance_id="inst-a", liveness_window=0)
    assert settled.instance_alive("inst-without-a-key") is False
