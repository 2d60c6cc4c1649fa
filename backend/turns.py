"""Running one chat turn: store the question, acknowledge it, stream the handler's events,
record the answer. Transport-agnostic: it emits through a callable, so tests and the
Socket.IO layer share it.

The walk of one turn: `TurnRunner.submit` (on the Socket.IO handler's thread) stores the user
message and a `streaming` placeholder reply, acks, and spawns `TurnRunner._run` on a background
thread; `_run` streams the handler's events (`orchestrator.turn.TurnHandler`) to the session's
room and settles the reply once — complete, error, or interrupted by the watchdog.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from opentelemetry import trace

from agents.base import viewing_as
from backend import protocol
from backend.observability import correlation
from backend.sessions import ReplyError, ReplyMeta, Session, SessionNotFound, SessionStore, ThreadMessage
from orchestrator.turn import (
    Delta,
    Done,
    Principal,
    Thinking,
    TurnFailed,
    TurnHandler,
    TurnRequest,
    message_id_of,
)
from store.knowledge import Viewer

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

Emit = Callable[[str, dict[str, Any], str], None]  # (event, payload, room)
MAX_MODEL_HISTORY = 50


def room_for(session_id: str) -> str:
    return f"session:{session_id}"


def reply_id(message_id: str) -> str:
    return f"{message_id}.reply"


class TurnRunner:
    """Runs chat turns against a session store: one background thread per turn.

    `emit(event, payload, room)` sends a protocol event (docs/protocol.md) to everyone in the
    session's room; `spawn(fn, *args)` starts the turn's thread (Flask-SocketIO's
    `start_background_task` in the server). Thread-safe: every session change goes through the
    store's compare-and-set, so two instances or two tabs never lose an update, and a reply is
    settled at most once per attempt (the watchdog and a late answer cannot both win).
    """

    def __init__(
        self,
        store: SessionStore,
        handler: TurnHandler,
        emit: Emit,
        *,
        turn_timeout: float,
        spawn: Callable[..., Any] | None = None,
        observe: Callable[..., None] | None = None,
        settle_timeout: float = 30.0,
    ) -> None:
        self.store = store
        self.handler = handler
        self.emit = emit
        self.turn_timeout = turn_timeout
        # Flask-SocketIO's start_background_task in production; a plain thread elsewhere.
        self.spawn = spawn or (lambda fn, *a: threading.Thread(target=fn, args=a, daemon=True).start())
        # observe(outcome, routing, timings, cost, shadow=): metrics hook, once per settled turn.
        self.observe = observe or (lambda *a, **k: None)
        self.settle_timeout = settle_timeout

    # --- entry points -------------------------------------------------------------------------
    def submit(
        self,
        session_id: str,
        principal: Principal,
        message_id: str,
        text: str,
        *,
        sources: list[str] | None = None,
    ) -> bool:
        """Store the user message and its placeholder reply, ack it, and start its turn.

        Idempotent on `message_id`: a resend is acked again and starts nothing. Returns whether
        the message was new. The archive holds the message before the ack is emitted. Raises
        `SessionNotFound` for an unknown session and `redis.RedisError` / `ArchiveError` when
        storage is down (the Socket.IO layer maps them to `chat:error`).
        """
        instance = self.store.instance_id

        def mutate(s: Session) -> tuple[bool, int]:
            if s.message(message_id) is not None:
                return False, 0
            now = time.time()
            # A source filter is part of the question: stored with it, so a retry asks the same.
            meta = ReplyMeta(sources=list(sources)) if sources else ReplyMeta()
            s.thread.append(ThreadMessage(id=message_id, role="user", text=text, created_at=now, meta=meta))
            s.thread.append(_placeholder(message_id, instance, attempt=1))
            return True, 1

        session, (is_new, attempt) = self.store.update(session_id, mutate)
        # The ack promises durability: the archive holds the message before the client hears of it.
        if is_new:
            self.store.archive_now(session)
        user_msg = session.message(message_id)
        assert user_msg is not None
        self.emit(
            protocol.ACK,
            {"id": message_id, "message": user_msg.model_dump(mode="json")},
            room_for(session_id),
        )
        if is_new:
            self.store.track_turn(session_id, message_id, attempt)
            self.spawn(self._run, session_id, principal, message_id, attempt)
        return is_new

    def retry(self, session_id: str, principal: Principal, message_id: str) -> None:
        """Answer `message_id` again, as a new attempt, after its reply was interrupted or failed.

        Raises `protocol.ProtocolError` (`unknown_message`, `not_retryable`) otherwise.
        """
        instance = self.store.instance_id

        def mutate(s: Session) -> int:
            reply = s.reply_to(message_id)
            if s.message(message_id) is None or reply is None:
                raise protocol.ProtocolError("unknown_message", f"no message {message_id} in this session")
            if reply.status not in ("interrupted", "error"):
                raise protocol.ProtocolError("not_retryable", f"the reply to {message_id} is {reply.status}")
            attempt = (reply.meta.attempt or 1) + 1
            s.thread[s.thread.index(reply)] = _placeholder(message_id, instance, attempt)
            return attempt

        _, attempt = self.store.update(session_id, mutate)
        self.store.track_turn(session_id, message_id, attempt)
        self.spawn(self._run, session_id, principal, message_id, attempt)

    # --- the turn -----------------------------------------------------------------------------
    def _run(self, session_id: str, principal: Principal, message_id: str, attempt: int) -> None:
        """The turn's thread: stream the handler's events to the room, settle the reply once.

        A handler's failure becomes `chat:error` (its `TurnFailed` code, else `internal_error`);
        only storage still down after `settle_timeout` escapes, and the sweep of orphaned turns
        settles that reply later."""
        with (
            correlation(
                tenant=principal.tenant, session_id=session_id, message_id=message_id, attempt=attempt
            ),
            # Knowledge searches of this turn see what this agent may see (restricted articles).
            viewing_as(Viewer(principal.user_id, principal.group_ids)),
            self._tracked(session_id, message_id, attempt),
        ):
            room = room_for(session_id)
            started = time.monotonic()
            session = self._load(session_id)
            if session is None:
                return
            request = _request(session, principal, message_id)
            watchdog = threading.Timer(
                self.turn_timeout, self._time_out, (session_id, message_id, attempt, request.cancel)
            )
            watchdog.daemon = True
            watchdog.start()
            thinking: list[dict[str, Any]] = []
            seq = 0
            try:
                for event in self.handler.handle(request):
                    if request.cancel.is_set():
                        return
                    if isinstance(event, Thinking):
                        thinking.append({"text": event.text, "agent": event.agent})
                        self.emit(
                            protocol.THINKING,
                            {"id": message_id, "text": event.text, "agent": event.agent},
                            room,
                        )
                    elif isinstance(event, Delta):
                        seq += 1
                        self.emit(protocol.DELTA, {"id": message_id, "text": event.text, "seq": seq}, room)
                    elif isinstance(event, Done):
                        watchdog.cancel()
                        elapsed = time.monotonic() - started
                        settled = self._complete(session_id, message_id, attempt, event, thinking, elapsed)
                        if settled is not None:
                            payload, session = settled
                            self.emit(protocol.DONE, payload, room)
                            self.store.archive_now(session)  # write-behind: the user already has the answer
                            self.observe(
                                "complete", event.routing, payload["timings"], event.cost, shadow=event.shadow
                            )
                        return
                raise TurnFailed("no_answer", "The assistant finished without an answer.", retryable=True)
            except TurnFailed as exc:
                self._fail(session_id, message_id, attempt, exc.code, exc.message, exc.retryable, room)
            except Exception:
                log.exception("turn failed", extra={"session_id": session_id, "message_id": message_id})
                self._fail(
                    session_id,
                    message_id,
                    attempt,
                    "internal_error",
                    "Something went wrong while answering.",
                    True,
                    room,
                )
            finally:
                watchdog.cancel()

    def _load(self, session_id: str) -> Session | None:
        try:
            session = self.store.get_or_rehydrate(session_id)
        except Exception:  # archive down as well: nothing to run the turn against
            log.exception("turn for a vanished session: archive unavailable")
            return None
        if session is None:
            log.warning("turn for a vanished session", extra={"session_id": session_id})
        return session

    def _time_out(self, session_id: str, message_id: str, attempt: int, cancel: threading.Event) -> None:
        """The watchdog: stop the handler and settle the reply as interrupted (unless it is done)."""
        cancel.set()
        session = self._finish(
            session_id,
            message_id,
            attempt,
            status="interrupted",
            meta=ReplyMeta(interrupted_reason="timeout"),
        )
        if session is not None:
            self.emit(
                protocol.ERROR,
                protocol.error(
                    "turn_timeout", "The answer took too long and was stopped.", retryable=True, id=message_id
                ),
                room_for(session_id),
            )
            self.store.archive_now(session)
            self.observe("timeout")

    @contextlib.contextmanager
    def _tracked(self, session_id: str, message_id: str, attempt: int) -> Iterator[None]:
        try:
            yield
        finally:
            with contextlib.suppress(redis.RedisError):
                self.store.untrack_turn(session_id, message_id, attempt)

    def _fail(
        self,
        session_id: str,
        message_id: str,
        attempt: int,
        code: str,
        message: str,
        retryable: bool,
        room: str,
    ) -> None:
        session = self._finish(
            session_id,
            message_id,
            attempt,
            status="error",
            meta=ReplyMeta(error=ReplyError(code=code, message=message)),
        )
        if session is not None:
            self.emit(protocol.ERROR, protocol.error(code, message, retryable=retryable, id=message_id), room)
            self.store.archive_now(session)
            self.observe("error")

    def _complete(
        self,
        session_id: str,
        message_id: str,
        attempt: int,
        done: Done,
        thinking: list[dict[str, Any]],
        elapsed: float,
    ) -> tuple[dict[str, Any], Session] | None:
        routing, shadow = done.routing, done.shadow
        meta = ReplyMeta(
            routing=routing,
            timings={**done.timings, "total_s": round(elapsed, 4)},
            cost=done.cost,
            thinking=thinking,
        )

        def extra(s: Session) -> None:
            user = s.message(message_id)
            if done.model_history:
                s.model_history = list(done.model_history)
            else:
                s.model_history.extend(
                    [
                        {"role": "user", "text": user.text if user else ""},
                        {"role": "assistant", "text": done.text},
                    ]
                )
            s.model_history = s.model_history[-MAX_MODEL_HISTORY:]
            if routing:
                s.routing_history.append({"message_id": message_id, **routing})
            for k, v in (done.cost or {}).items():
                if isinstance(v, int | float):
                    s.usage[k] = s.usage.get(k, 0) + v
            reply = s.reply_to(message_id)
            # A shadow router's decision is stored beside the live one (meta.shadow, for
            # shadow-report), not inside `routing`, which the routing history and later turns read.
            if shadow and reply is not None:
                old = reply.meta.shadow or {}
                # A late candidate result may have landed while the turn was finishing: keep it.
                if not (old.get("late") and shadow.get("status") == "pending"):
                    reply.meta.shadow = shadow

        session = self._finish(
            session_id,
            message_id,
            attempt,
            status="complete",
            meta=meta,
            text=done.text,
            citations=done.citations,
            extra=extra,
        )
        if session is None:
            return None
        reply = session.reply_to(message_id)
        payload = {
            "id": message_id,
            "message": reply.model_dump(mode="json") if reply else None,
            "citations": done.citations,
            "routing": routing,
            "timings": meta.timings,
        }
        return payload, session

    def _finish(
        self,
        session_id: str,
        message_id: str,
        attempt: int,
        *,
        status: str,
        meta: ReplyMeta,
        text: str | None = None,
        citations: list[dict[str, Any]] | None = None,
        extra: Callable[[Session], None] | None = None,
    ) -> Session | None:
        """Settle this attempt's reply, unless it was already settled (timeout vs. late answer)."""

        def mutate(s: Session) -> bool:
            reply = s.reply_to(message_id)
            if reply is None or reply.status != "streaming" or reply.meta.attempt != attempt:
                return False
            reply.status = status  # type: ignore[assignment]
            reply.meta.merge(meta)
            reply.meta.unset("instance")  # settled: no instance owns it any more
            if text is not None:
                reply.text = text
            if citations is not None:
                reply.citations = citations
            if extra:
                extra(s)
            return True

        # The answer exists; a Redis blip (failover, restart) must not strand it as 'streaming'.
        # Retry until Redis is back — the update rehydrates from the archive if Redis came back empty.
        deadline = time.monotonic() + self.settle_timeout
        delay = 0.2
        while True:
            try:
                session, applied = self.store.update(session_id, mutate)
                return session if applied else None
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() >= deadline:
                    raise
                log.warning("redis unavailable while settling a turn; retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


def record_late_shadow(store: SessionStore, session_id: str, turn_id: str, shadow: dict[str, Any]) -> bool:
    """Store a shadow router's decision that arrived after its turn was recorded as `pending`.

    The `on_late` hook of orchestrator.routing.shadow.ShadowRouter (create_app passes it when it
    builds the assistant); called on the shadow router's thread. Returns whether it stored it;
    never raises for a vanished session or a Redis outage (the decision is then dropped, logged).
    """
    message_id = message_id_of(turn_id)

    def mutate(s: Session) -> bool:
        reply = s.reply_to(message_id)
        if reply is None:
            return False
        old = reply.meta.shadow
        if old is None:
            ok = reply.status == "streaming"  # the turn is still being written: it keeps this
        else:
            ok = old.get("status") == "pending" and old.get("turn") == turn_id
        if ok:
            reply.meta.shadow = shadow
        return ok

    try:
        session, changed = store.update(session_id, mutate)
    except (SessionNotFound, redis.RedisError):
        log.warning("late shadow decision dropped", extra={"session_id": session_id})
        return False
    if changed:
        store.archive_now(session)
    return changed


def _placeholder(message_id: str, instance: str, attempt: int) -> ThreadMessage:
    return ThreadMessage(
        id=reply_id(message_id),
        role="assistant",
        status="streaming",
        reply_to=message_id,
        meta=ReplyMeta(instance=instance, attempt=attempt, started_at=time.time()),
    )


def _request(session: Session, principal: Principal, message_id: str) -> TurnRequest:
    user = session.message(message_id)
    idx = session.thread.index(user) if user else len(session.thread)
    return TurnRequest(
        session_id=session.id,
        principal=principal,
        message_id=message_id,
        text=user.text if user else "",
        ticket=dict(session.ticket),
        thread=[m.model_dump(mode="json") for m in session.thread[:idx]],
        model_history=list(session.model_history),
        routing_history=list(session.routing_history),
        sources=tuple((user.meta.model_extra or {}).get("sources") or ()) if user else (),
    )
