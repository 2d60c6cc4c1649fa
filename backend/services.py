"""What one server process wires together, in a module of its own.

The HTTP routes, the sidebar pages and the Socket.IO handlers all reach the same `Services`
(`app.extensions["sidebar"]`); keeping it apart from the application factory means they import
it without importing the factory (no cycle), and the CLI's commands open the archive or read the
settings without pulling in Flask-SocketIO.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis

from backend.auth import Authenticator, load_or_create_secret
from backend.observability import Metrics
from backend.ratelimit import RateLimiter
from backend.sessions import SessionStore
from backend.settings import Settings
from backend.zendesk_auth import SessionTokens, ZendeskSessionAuthenticator
from orchestrator.turn import Principal
from store.sessions import SessionArchive, SqliteSessionArchive

if TYPE_CHECKING:
    from flask_socketio import SocketIO

    from backend.catalog import AgentCatalog
    from backend.turns import TurnRunner
    from orchestrator.routing.factory import RouterWarmup


@dataclass
class Connection:
    principal: Principal
    session_id: str | None = None


class Connections:
    """Who is on each socket of this process (a socket lives on exactly one instance)."""

    def __init__(self) -> None:
        self._by_sid: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def add(self, sid: str, conn: Connection) -> None:
        with self._lock:
            self._by_sid[sid] = conn

    def get(self, sid: str) -> Connection | None:
        with self._lock:
            return self._by_sid.get(sid)

    def pop(self, sid: str) -> Connection | None:
        with self._lock:
            return self._by_sid.pop(sid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_sid)

    def session_count(self) -> int:
        with self._lock:
            return len({c.session_id for c in self._by_sid.values() if c.session_id})


@dataclass
class Services:
    """Everything one server process wires together; reachable as app.extensions['sidebar'].

    Built once by `backend.app.create_app`; every field is safe to share between request threads
    (each is thread-safe or only read after start-up)."""

    settings: Settings
    instance_id: str
    redis: redis.Redis
    archive: SessionArchive
    store: SessionStore
    authenticator: Authenticator
    # Short-lived tokens of the Zendesk sidebar: minted by its pages, checked by `authenticator`.
    tokens: SessionTokens
    socketio: SocketIO
    runner: TurnRunner
    metrics: Metrics
    limiter: RateLimiter
    connections: Connections | None = None
    catalog: AgentCatalog | None = None  # agents the feedback picker offers
    router_warmup: RouterWarmup | None = None  # readiness waits for it (a model-backed router)
    _stop: threading.Event = field(default_factory=threading.Event)

    def shutdown(self) -> None:
        from backend.redis_manager import RedisManager

        self._stop.set()
        with contextlib.suppress(redis.RedisError):
            self.store.retire()  # peers see our in-flight turns as orphaned right away
        # The Socket.IO listener would otherwise outlive the app, retrying (and logging) every
        # second once its Redis is gone: every finished test app, a draining instance.
        manager = self.socketio.server.manager if self.socketio.server else None
        if isinstance(manager, RedisManager):
            manager.stop()


def server_secret(settings: Settings) -> str:
    """SECRET_KEY, or the per-deployment secret kept in DATA_DIR."""
    if settings.secret_key:
        return settings.secret_key.get_secret_value()
    return load_or_create_secret(settings.data_dir)


def build_authenticator(settings: Settings, secret: str, tokens: SessionTokens) -> Authenticator:
    """Who may connect: session tokens from the Zendesk sidebar, and in AUTH_MODE=dev dev tokens too."""
    sessions = ZendeskSessionAuthenticator(tokens)
    if settings.auth_mode == "dev":
        from backend.dev_auth import DevModeAuthenticator

        # Dev tokens for scripts, session tokens for the /dev/sidebar harness.
        return DevModeAuthenticator(secret, settings.dev_token_ttl_seconds, sessions)
    return sessions


def session_tokens(settings: Settings, secret: str) -> SessionTokens:
    return SessionTokens(secret, settings.session_token_ttl_seconds, settings.session_max_age_seconds)


def open_archive(settings: Settings) -> SessionArchive:
    """The durable session archive ARCHIVE_BACKEND names (SQLite locally, Spanner in production)."""
    if settings.archive_backend == "sqlite":
        return SqliteSessionArchive(settings.sqlite_path)
    from backend.assistant import spanner_config
    from store.factory import open_session_archive

    # The session table has no vectors; dimensions only matter to the knowledge index.
    return open_session_archive("spanner", spanner=spanner_config(settings, dimensions=384))
