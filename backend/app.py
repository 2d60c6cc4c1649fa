"""Flask application factory: explicit wiring of settings, Redis, archive, auth and turns."""

from __future__ import annotations

import atexit
import functools
import importlib
import logging
import threading
import uuid

import redis
from flask import Flask
from flask_socketio import SocketIO

from backend import protocol
from backend.catalog import AgentCatalog
from backend.http import bp as http_bp
from backend.insights import register_insights
from backend.observability import Metrics, configure_logging, configure_tracing
from backend.ratelimit import RateLimiter
from backend.redis_manager import RedisManager, redis_connection_options
from backend.services import (
    Services,
    build_authenticator,
    open_archive,
    server_secret,
    session_tokens,
)
from backend.sessions import SessionStore
from backend.settings import Settings
from backend.sidebar import register_sidebar
from backend.socket_events import register_socket_events
from backend.turns import TurnRunner, record_late_shadow, room_for
from orchestrator.routing.factory import RouterWarmup
from orchestrator.turn import TurnHandler
from store.sessions import SessionArchive

log = logging.getLogger(__name__)


def load_turn_handler(path: str) -> TurnHandler:
    """`module:attr` naming a TurnHandler class or zero-argument factory."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"TURN_HANDLER must look like 'package.module:Name', got {path!r}")
    target = getattr(importlib.import_module(module_name), attr)
    # A class or factory is called; an object that already handles turns is used as is.
    handler = target() if isinstance(target, type) or not hasattr(target, "handle") else target
    if not isinstance(handler, TurnHandler):
        raise TypeError(f"{path} did not produce a TurnHandler")
    return handler


def create_app(
    settings: Settings | None = None,
    *,
    handler: TurnHandler | None = None,
    archive: SessionArchive | None = None,
) -> Flask:
    settings = settings or Settings()
    configure_logging(settings.log_level, json_logs=settings.log_format == "json")
    configure_tracing(settings.otel_exporter, settings.otel_endpoint)
    if not settings.redis_url:
        # A lone process without the launcher: run its own Redis (not shared with other instances).
        from backend.redis_embedded import EmbeddedRedis

        embedded = EmbeddedRedis(settings.data_dir)
        atexit.register(embedded.shutdown)
        settings = settings.model_copy(update={"redis_url": embedded.url})
    assert settings.redis_url
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_event_bytes
    instance_id = f"{uuid.uuid4().hex[:12]}"
    # Both Redis clients (this one and the Socket.IO manager's) share health checks, keepalive,
    # timeouts and, with rediss://, the server CA (docs/deploy.md, "Memorystore TLS").
    client = redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        **redis_connection_options(settings.redis_url, ca_file=settings.redis_tls_ca_file),
    )
    archive = archive or open_archive(settings)
    store = SessionStore(
        client,
        archive,
        ttl_seconds=settings.session_ttl_seconds,
        instance_id=instance_id,
        stale_after=settings.turn_timeout_seconds + 30,
    )
    origins = settings.cors_allowed_origins
    socketio = SocketIO(
        app,
        async_mode="threading",
        # Built explicitly: Flask-SocketIO only recognises redis:// URLs, not the embedded unix socket.
        client_manager=RedisManager(
            settings.redis_url, channel="sidebar-assistant", ca_file=settings.redis_tls_ca_file
        ),
        cors_allowed_origins="*"
        if origins.strip() == "*"
        else [o.strip() for o in origins.split(",") if o.strip()],
        max_http_buffer_size=settings.max_event_bytes,
        logger=False,
        engineio_logger=False,
    )
    warmup: RouterWarmup | None = None
    if handler is None:
        if settings.turn_handler == "orchestrator":
            from backend.assistant import build_assistant  # loads models: only when actually serving

            # A shadow candidate slower than its turn still gets its decision stored
            # (docs/learning_loop.md): the router is built with the store's hook.
            late = functools.partial(record_late_shadow, store)
            handler = build_assistant(settings, on_late_shadow=late)
            warmup = RouterWarmup(handler.router).start()
        else:
            handler = load_turn_handler(settings.turn_handler)

    def emit(event: str, payload: dict, room: str) -> None:
        socketio.emit(event, payload, to=room)

    metrics = Metrics()
    runner = TurnRunner(
        store,
        handler,
        emit,
        turn_timeout=settings.turn_timeout_seconds,
        spawn=socketio.start_background_task,
        observe=metrics.observe_turn,
    )
    secret = server_secret(settings)
    tokens = session_tokens(settings, secret)
    svc = Services(
        settings,
        instance_id,
        client,
        archive,
        store,
        build_authenticator(settings, secret, tokens),
        tokens,
        socketio,
        runner,
        metrics,
        RateLimiter(client, per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst),
        router_warmup=warmup,
    )
    svc.catalog = AgentCatalog(handler, settings.agent_paths)
    # Warmed off the request path: reading the agent registry costs about a second the first time.
    threading.Thread(
        target=lambda: svc.catalog and svc.catalog.agents, name="agent-catalog", daemon=True
    ).start()
    svc.connections = register_socket_events(socketio, svc)
    app.extensions["sidebar"] = svc
    app.register_blueprint(http_bp)
    register_sidebar(app, svc)
    register_insights(app, svc)  # after the sidebar: it shares its ZAF verifier
    _start_heartbeat(svc)
    atexit.register(svc.shutdown)
    log.info(
        "instance %s ready (redis=%s, archive=%s)",
        instance_id,
        _redact(settings.redis_url),
        settings.archive_backend,
    )
    return app


def _start_heartbeat(svc: Services) -> None:
    interval = svc.settings.instance_heartbeat_seconds

    def beat() -> None:
        while not svc._stop.is_set():
            try:
                svc.store.heartbeat(interval)
                # Turns whose instance died (or that went stale) are settled and the room told,
                # so a sidebar never waits on an answer nobody is producing.
                for session_id, message_id in svc.store.sweep_orphans():
                    svc.socketio.emit(
                        protocol.ERROR,
                        protocol.error(
                            "interrupted",
                            "The answer was cut off because the server handling it stopped. Retry?",
                            retryable=True,
                            id=message_id,
                        ),
                        to=room_for(session_id),
                    )
                    svc.metrics.turns.labels("interrupted").inc()
                svc.store.flush_archive_queue()
            except redis.RedisError:
                log.warning("heartbeat to redis failed", exc_info=True)
            except Exception:
                log.exception("heartbeat housekeeping failed")
            svc._stop.wait(interval)

    svc.store.heartbeat(interval)
    threading.Thread(target=beat, name="instance-heartbeat", daemon=True).start()


def _redact(url: str) -> str:
    """Never log a password embedded in a Redis URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
