"""The ticket brief on join: computed in the background, streamed to the session's room, cached
in the session per ticket version (orchestrator/brief.py computes it).

A join whose ticket version already has a brief gets it straight from the session (`brief:done`
with `cached: true`); otherwise one computation per (session, version) runs on this instance
and streams `brief:start`, `brief:section`… `brief:done`. A failure sends `brief:error` and
nothing else: the chat never waits for, or on, the brief.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis

from agents.base import viewing_as
from backend import protocol
from backend.observability import correlation
from backend.sessions import Session, SessionNotFound, SessionStore
from backend.turns import room_for
from orchestrator.brief import BriefDone, BriefEvent, BriefRequest, BriefSection, build_brief, ticket_version
from orchestrator.turn import Principal
from store.knowledge import Viewer

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any], str], None]  # (event, payload, room or sid)
BriefSource = Callable[[BriefRequest], Iterator[BriefEvent]]


def brief_source(handler: Any) -> BriefSource | None:
    """How this process computes briefs: a handler's own `brief(request)` (test handlers), the
    orchestrator's Assistant (its agents, LLM and services), or nothing (no brief is sent)."""
    own = getattr(handler, "brief", None)
    if callable(own):
        return own
    from orchestrator.orchestrator import Assistant

    if not isinstance(handler, Assistant):
        return None
    from orchestrator.suggestions import Suggester

    suggester = Suggester(handler)

    def compute(request: BriefRequest) -> Iterator[BriefEvent]:
        def suggest(ticket: dict[str, Any], recap: dict[str, Any]) -> dict[str, Any]:
            return suggester(
                ticket,
                recap,
                tenant=request.tenant,
                session_id=request.session_id,
                user_name=request.user_name,
            )

        return build_brief(request, llm=handler.llm, services=handler.services, suggest=suggest)

    return compute


class BriefRunner:
    def __init__(
        self,
        store: SessionStore,
        source: BriefSource | None,
        emit: Emit,
        *,
        include_internal: bool = False,
        enabled: bool = True,
        spawn: Callable[..., Any] | None = None,
        chat_wait_s: float = 20.0,
    ) -> None:
        self.store = store
        self.chat_wait_s = chat_wait_s
        self.source = source
        self.emit = emit
        self.include_internal = include_internal
        self.enabled = enabled and source is not None
        self.spawn = spawn or (lambda fn, *a: threading.Thread(target=fn, args=a, daemon=True).start())
        self._running: dict[str, str] = {}  # session id -> the version being computed
        # A join with yet another version while one runs: only the latest waits (one computation
        # per session at a time, so a client re-joining in a loop cannot pile up work).
        self._next: dict[str, tuple[BriefRequest, Principal]] = {}
        self._lock = threading.Lock()

    def version(self, session: Session) -> str:
        return ticket_version(session.ticket, include_internal=self.include_internal)

    def on_join(self, session: Session, principal: Principal, sid: str) -> str | None:
        """After a join: the cached brief to this socket, or a computation for the room. Returns
        what happened ("cached", "started", "running", "queued"; None when briefs are off)."""
        if not self.enabled:
            return None
        version = self.version(session)
        cached = session.brief if session.brief.get("version") == version else None
        if cached:
            self.emit(protocol.BRIEF_DONE, {"version": version, "brief": cached, "cached": True}, sid)
            return "cached"
        request = BriefRequest(
            session_id=session.id,
            tenant=principal.tenant,
            user_name=principal.user_name,
            ticket=dict(session.ticket),
            include_internal=self.include_internal,
            version=version,
            before_suggestions=lambda: self.wait_for_chat(session.id),
        )
        with self._lock:
            running = self._running.get(session.id)
            if running == version:
                # Already streaming to the room this socket just joined: tell it a brief is coming.
                self.emit(protocol.BRIEF_START, {"version": version}, sid)
                return "running"
            if running is not None:
                self._next[session.id] = (request, principal)
                self.emit(protocol.BRIEF_START, {"version": version}, room_for(session.id))
                return "queued"
            self._running[session.id] = version
        self.emit(protocol.BRIEF_START, {"version": version}, room_for(session.id))
        self.spawn(self._run, request, principal)
        return "started"

    def wait_for_chat(self, session_id: str) -> None:
        """Chat first: while a turn of this session is streaming (the agent asked something right
        away), the brief's searches wait, up to `chat_wait_s`."""
        deadline = time.monotonic() + self.chat_wait_s
        while time.monotonic() < deadline:
            try:
                session = self.store.get(session_id)
            except redis.RedisError:
                return
            if session is None or not any(m.status == "streaming" for m in session.thread):
                return
            time.sleep(0.1)

    def _run(self, request: BriefRequest, principal: Principal) -> None:
        room = room_for(request.session_id)
        started = time.perf_counter()
        try:
            with (
                correlation(tenant=principal.tenant, session_id=request.session_id),
                viewing_as(Viewer(principal.user_id, principal.group_ids)),
            ):
                self._compute(request, room, started)
        except Exception as exc:
            log.exception("brief failed for session %s", request.session_id)
            self.emit(
                protocol.BRIEF_ERROR,
                {
                    "version": request.version,
                    "code": "brief_failed",
                    "message": "The ticket brief could not be prepared; you can still ask questions.",
                    "retryable": not isinstance(exc, SessionNotFound),
                },
                room,
            )
        finally:
            with self._lock:
                following = self._next.pop(request.session_id, None)
                if following is None:
                    self._running.pop(request.session_id, None)
                else:
                    self._running[request.session_id] = following[0].version
            if following is not None:
                self.spawn(self._run, *following)

    def _compute(self, request: BriefRequest, room: str, started: float) -> None:
        assert self.source is not None
        brief: dict[str, Any] | None = None
        for event in self.source(request):
            if isinstance(event, BriefSection):
                self.emit(
                    protocol.BRIEF_SECTION,
                    {"version": request.version, "section": event.name, "data": event.data},
                    room,
                )
            elif isinstance(event, BriefDone):
                brief = event.brief
        if brief is None:
            raise RuntimeError("the brief source ended without a brief")
        brief["version"] = request.version
        brief.setdefault("timings", {})["server_ms"] = round((time.perf_counter() - started) * 1000, 2)

        def keep(s: Session) -> bool:
            # Only the brief of the ticket the session holds now: a newer join may have moved on.
            if self.version(s) != request.version:
                return False
            s.brief = brief
            return True

        stored = False
        with contextlib.suppress(redis.RedisError, SessionNotFound):
            session, stored = self.store.update(request.session_id, keep)
            if stored:
                self.store.archive_now(session)
        self.emit(protocol.BRIEF_DONE, {"version": request.version, "brief": brief, "cached": False}, room)
        if not stored:
            log.info("brief %s not cached (ticket changed meanwhile or storage down)", request.version)
