"""Socket.IO event handlers: authenticate, validate, delegate to sessions and turns.

Every handler answers a bad request with `chat:error` to the sender only and keeps the
connection; nothing is stored for a payload that fails validation.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import request
from flask_socketio import SocketIO, join_room, leave_room
from socketio.exceptions import ConnectionRefusedError as SocketIORefused

from backend import protocol
from backend.auth import AuthError
from backend.briefs import BriefRunner, brief_source
from backend.observability import correlation
from backend.ratelimit import RateLimited
from backend.services import Connection, Connections, Services
from backend.sessions import ConcurrentUpdateError, Session, SessionNotFound, session_id_for
from backend.turns import room_for
from orchestrator.turn import Principal
from store.sessions import ArchiveError

log = logging.getLogger(__name__)


def register_socket_events(socketio: SocketIO, svc: Services) -> Connections:
    conns = Connections()
    store = svc.store
    briefs = _brief_runner(socketio, svc)

    def reply_error(
        code: str,
        message: str,
        *,
        retryable: bool = False,
        id: str | None = None,
        event: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        svc.metrics.errors.labels(code).inc()
        payload = protocol.error(
            code, message, retryable=retryable, id=id, event=event, retry_after=retry_after
        )
        socketio.emit(protocol.ERROR, payload, to=request.sid)

    def guarded(event: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
        """Map every failure of a handler to a clear chat:error; the socket stays open. Each
        error names the event and, when the payload names one, the message it concerns."""

        def decorate(fn: Callable[..., None]) -> Callable[..., None]:
            @functools.wraps(fn)
            def wrapper(*args: Any) -> None:
                conn = conns.get(request.sid)
                ids = {"tenant": conn.principal.tenant, "session_id": conn.session_id} if conn else {}
                fail = functools.partial(
                    reply_error, event=event, id=protocol.cause_id(event, args[0] if args else None)
                )
                try:
                    with correlation(**ids):
                        fn(*args)
                except protocol.ProtocolError as exc:
                    fail(exc.code, exc.message)
                except RateLimited as exc:
                    fail(
                        "rate_limited",
                        f"Too many questions in a short time; try again in {exc.retry_after:g} s.",
                        retryable=True,
                        retry_after=exc.retry_after,
                    )
                except ConcurrentUpdateError:
                    fail("conflict", "The session is busy; please try again.", retryable=True)
                except SessionNotFound:
                    fail("session_expired", "The session expired; join the ticket again.", retryable=True)
                except ArchiveError:
                    log.exception("archive unavailable during %s", fn.__name__)
                    fail("unavailable", "Session history is unavailable; retrying shortly.", retryable=True)
                except redis.RedisError:
                    log.exception("redis unavailable during %s", fn.__name__)
                    fail("unavailable", "Session storage is unavailable; retrying shortly.", retryable=True)
                except Exception:
                    log.exception("handler %s failed", fn.__name__)
                    fail("internal_error", "Something went wrong.", retryable=True)

            return wrapper

        return decorate

    def joined() -> tuple[Connection, str]:
        conn = conns.get(request.sid)
        if conn is None:  # cannot happen after a successful connect; defensive
            raise protocol.ProtocolError("unauthenticated", "connect with a valid token first")
        if conn.session_id is None:
            raise protocol.ProtocolError("not_joined", f"send {protocol.JOIN} before chatting")
        return conn, conn.session_id

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        try:
            principal = svc.authenticator.authenticate(auth)
        except AuthError as exc:
            log.info("connect refused: %s", exc)
            # socketio's own exception carries the reason to the client; the builtin one does not.
            raise SocketIORefused(str(exc)) from None
        conns.add(request.sid, Connection(principal))
        svc.metrics.connections.inc()

    @socketio.on("disconnect")
    def on_disconnect(*_: Any) -> None:
        conn = conns.pop(request.sid)
        if conn:
            svc.metrics.connections.dec()
            svc.metrics.active_sessions.set(conns.session_count())
        if conn and conn.session_id:
            try:
                store.detach(conn.session_id, request.sid)
            except redis.RedisError:
                log.exception("could not detach %s", conn.session_id)

    @socketio.on(protocol.JOIN)
    @guarded(protocol.JOIN)
    def on_join(data: Any = None) -> None:
        conn = conns.get(request.sid)
        if conn is None:
            raise protocol.ProtocolError("unauthenticated", "connect with a valid token first")
        payload = protocol.parse(protocol.JoinPayload, data)
        ticket = payload.ticket.model_dump(mode="json")
        own_id = session_id_for(conn.principal, ticket["id"])
        if payload.session_id and payload.session_id != own_id:
            raise protocol.ProtocolError("forbidden", "that session belongs to someone else")
        if conn.session_id and conn.session_id != own_id:
            leave_room(room_for(conn.session_id))
            store.detach(conn.session_id, request.sid)
        started = time.perf_counter()
        session, resumed, hydrated = store.open(conn.principal, ticket)
        if not session.owned_by(conn.principal):  # defence in depth: ids are derived, never trusted
            raise protocol.ProtocolError("forbidden", "that session belongs to someone else")
        session = store.mark_orphaned_turns(session.id)
        join_room(room_for(session.id))
        store.attach(session.id, request.sid)
        conn.session_id = session.id
        svc.metrics.joins.labels("hydrated" if hydrated else "resumed" if resumed else "new").inc()
        svc.metrics.active_sessions.set(conns.session_count())
        state = _state(session, resumed=resumed, hydrated=hydrated, elapsed=time.perf_counter() - started)
        state["agents"] = svc.catalog.agents if svc.catalog else []
        socketio.emit(protocol.STATE, state, to=request.sid)
        _start_brief(briefs, session, conn.principal, request.sid)

    @socketio.on(protocol.MESSAGE)
    @guarded(protocol.MESSAGE)
    def on_message(data: Any = None) -> None:
        conn, session_id = joined()
        payload = protocol.parse(
            protocol.MessagePayload, data, max_message_chars=svc.settings.max_message_chars
        )
        session = store.get(session_id)
        if session is None or session.message(payload.id) is None:  # a resend of a known id costs nothing
            svc.limiter.check(conn.principal)
        svc.runner.submit(session_id, conn.principal, payload.id, payload.text, sources=payload.sources)

    @socketio.on(protocol.RETRY)
    @guarded(protocol.RETRY)
    def on_retry(data: Any = None) -> None:
        conn, session_id = joined()
        payload = protocol.parse(protocol.RetryPayload, data)
        svc.limiter.check(conn.principal)
        svc.runner.retry(session_id, conn.principal, payload.id)

    @socketio.on(protocol.FEEDBACK)
    @guarded(protocol.FEEDBACK)
    def on_feedback(data: Any = None) -> None:
        conn, session_id = joined()
        payload = protocol.parse(protocol.FeedbackPayload, data)
        if payload.expected_agents:
            if svc.catalog is None:
                raise protocol.ProtocolError("invalid_payload", "expected_agents: no agents to choose from")
            svc.catalog.check(payload.expected_agents)

        def mutate(s: Session) -> None:
            if s.message(payload.message_id) is None:
                raise protocol.ProtocolError(
                    "unknown_message", f"no message {payload.message_id} in this session"
                )
            # One rating per message and user: a changed mind replaces the earlier one.
            s.feedback = [f for f in s.feedback if f.get("message_id") != payload.message_id]
            s.feedback.append(
                {**payload.model_dump(mode="json"), "user_id": conn.principal.user_id, "at": time.time()}
            )

        session, _ = store.update(session_id, mutate)
        store.archive_now(session)
        socketio.emit(protocol.FEEDBACK_ACK, {"message_id": payload.message_id}, to=request.sid)

    @socketio.on(protocol.INSERT)
    @guarded(protocol.INSERT)
    def on_insert(data: Any = None) -> None:
        conn, session_id = joined()
        payload = protocol.parse(protocol.InsertPayload, data)

        def mutate(s: Session) -> None:
            reply = s.message(payload.message_id)
            if reply is None or reply.role != "assistant":
                raise protocol.ProtocolError(
                    "unknown_message", f"no answer {payload.message_id} in this session"
                )
            if reply.status != "complete":
                raise protocol.ProtocolError(
                    "not_insertable", f"the answer {payload.message_id} is {reply.status}"
                )
            # Counted, not logged: what the insights page reads as "inserted answers" (and drafts used).
            seen = reply.meta.inserted or {}  # ReplyMeta.inserted (docs/protocol.md, chat:insert)
            reply.meta.inserted = {
                "count": int(seen.get("count", 0)) + 1,
                "first_at": seen.get("first_at", time.time()),
                "user_id": conn.principal.user_id,
            }

        session, _ = store.update(session_id, mutate)
        store.archive_now(session)
        socketio.emit(protocol.INSERT_ACK, {"message_id": payload.message_id}, to=request.sid)

    @socketio.on("*")
    def on_unknown(event: str, *_: Any) -> None:
        reply_error(
            "unknown_event",
            f"unknown event {str(event)[:64]!r}; expected one of {list(protocol.CLIENT_EVENTS)}",
            event=str(event)[:64],
        )

    return conns


def _brief_runner(socketio: SocketIO, svc: Services) -> BriefRunner | None:
    """The ticket brief on join (docs/brief.md), when enabled and the turn handler can brief."""
    if not svc.settings.brief_enabled:
        return None
    source = brief_source(svc.runner.handler)
    if source is None:
        return None
    return BriefRunner(
        svc.store,
        source,
        lambda event, payload, to: socketio.emit(event, payload, to=to),
        include_internal=svc.settings.brief_include_internal_notes,
        spawn=socketio.start_background_task,
    )


def _start_brief(briefs: BriefRunner | None, session: Session, principal: Principal, sid: str) -> None:
    # The brief is an extra: whatever goes wrong starting it, the join has already succeeded.
    if briefs is None:
        return
    try:
        briefs.on_join(session, principal, sid)
    except Exception:
        log.exception("could not start the brief for session %s", session.id)


def _state(session: Session, *, resumed: bool, hydrated: bool, elapsed: float) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "ticket_id": session.ticket_id,
        "thread": [m.model_dump(mode="json") for m in session.thread],
        "resumed": resumed,
        "hydrated": hydrated,
        "version": session.version,
        "server_ms": round(elapsed * 1000, 2),
    }
