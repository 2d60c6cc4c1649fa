"""Chat sessions: live in Redis, mirrored to the durable archive.

A session is one JSON document per (tenant, user, ticket). Every change goes through
`SessionStore.update`, an optimistic compare-and-set (WATCH/MULTI) on the document's key, so
two tabs or two instances writing at once never lose an update: the loser re-reads and
re-applies its change.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import redis
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from orchestrator.turn import Principal
from store.sessions import ArchiveError, SessionArchive, SessionRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

_SESSION_NAMESPACE = uuid.UUID("6f1d0c1e-5a8b-4c55-9a57-2f6d5b9e0a11")
KEY_PREFIX = "sa"
INFLIGHT = f"{KEY_PREFIX}:inflight"  # members: session|message|instance|attempt|started_at
ARCHIVE_QUEUE = f"{KEY_PREFIX}:archive-queue"  # session ids whose archive write failed

MessageStatus = Literal["complete", "streaming", "interrupted", "error"]


class ReplyError(BaseModel):
    """Why a reply failed: what the sidebar shows (docs/protocol.md, `chat:error`)."""

    code: str
    message: str


class ReplyMeta(BaseModel):
    """What the server records about an assistant reply: `meta` of a Message on the wire.

    Only the fields that were set are stored and sent (a streaming reply has `instance`, `attempt`
    and `started_at`; a completed one `routing`, `timings`, `cost`, `thinking` and maybe
    `shadow`; a failed one `error`), so the JSON is what docs/protocol.md describes. User
    messages have none. Keys this version does not know (an archive written by another) are kept.
    """

    model_config = ConfigDict(extra="allow")

    instance: str | None = None  # the instance producing the reply, while it streams
    attempt: int | None = None  # 1 for the first answer, +1 per retry
    started_at: float | None = None
    routing: dict[str, Any] | None = None  # the live routing decision (orchestrator `Done.routing`)
    timings: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None
    thinking: list[dict[str, Any]] | None = None
    shadow: dict[str, Any] | None = None  # a shadow router's decision (`Done.shadow`, or late)
    error: ReplyError | None = None
    interrupted_reason: str | None = None  # timeout, instance_lost, stale
    # {count, first_at, user_id}: the agent put this answer into the ticket (`chat:insert`).
    inserted: dict[str, Any] | None = None

    def merge(self, other: ReplyMeta) -> None:
        """Set every field `other` has set."""
        for name in other.model_fields_set:
            setattr(self, name, getattr(other, name))

    def unset(self, name: str) -> None:
        """Remove a field, so it is no longer stored or sent."""
        setattr(self, name, None)
        self.model_fields_set.discard(name)

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        return {
            k: v for k, v in data.items() if k in self.model_fields_set or k not in type(self).model_fields
        }


class ThreadMessage(BaseModel):
    """One bubble of the sidebar thread."""

    id: str
    role: Literal["user", "assistant"]
    text: str = ""
    status: MessageStatus = "complete"
    created_at: float = Field(default_factory=time.time)
    reply_to: str | None = None
    citations: list[dict[str, Any]] = Field(default_factory=list)
    # For assistant messages: routing, timings, cost, error details, owning instance while streaming.
    meta: ReplyMeta = Field(default_factory=ReplyMeta)


class Session(BaseModel):
    id: str
    tenant: str
    user_id: str
    user_name: str = ""
    ticket_id: str
    ticket: dict[str, Any] = Field(default_factory=dict)
    thread: list[ThreadMessage] = Field(default_factory=list)
    model_history: list[dict[str, Any]] = Field(default_factory=list)
    routing_history: list[dict[str, Any]] = Field(default_factory=list)
    feedback: list[dict[str, Any]] = Field(default_factory=list)
    usage: dict[str, float] = Field(default_factory=dict)
    # The ticket brief of the ticket's current version (backend/briefs.py; {} until computed).
    brief: dict[str, Any] = Field(default_factory=dict)
    version: int = 0
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    def message(self, message_id: str) -> ThreadMessage | None:
        return next((m for m in self.thread if m.id == message_id), None)

    def reply_to(self, message_id: str) -> ThreadMessage | None:
        return next((m for m in self.thread if m.reply_to == message_id), None)

    def owned_by(self, principal: Principal) -> bool:
        return self.tenant == principal.tenant and self.user_id == principal.user_id

    def to_record(self) -> SessionRecord:
        return SessionRecord(
            session_id=self.id,
            tenant=self.tenant,
            user_id=self.user_id,
            ticket_id=self.ticket_id,
            version=self.version,
            data=self.model_dump(mode="json"),
            updated_at=self.updated_at,
        )


def session_id_for(principal: Principal, ticket_id: str) -> str:
    """Deterministic id: one session per (tenant, user, ticket), so re-joining resumes it and
    two instances creating it at once agree on the id without coordination."""
    return str(uuid.uuid5(_SESSION_NAMESPACE, f"{principal.tenant}\x00{principal.user_id}\x00{ticket_id}"))


class ConcurrentUpdateError(RuntimeError):
    """The compare-and-set kept losing; the caller should report a retryable error."""


class SessionNotFound(KeyError):
    pass


class SessionStore:
    """Redis-backed sessions with archive mirroring, TTL on disconnect and hydration."""

    def __init__(
        self,
        client: redis.Redis,
        archive: SessionArchive,
        *,
        ttl_seconds: int,
        instance_id: str,
        max_cas_retries: int = 64,
        stale_after: float = 300.0,
        liveness_window: float = 15.0,
    ) -> None:
        self.redis = client
        self.archive = archive
        self.ttl_seconds = ttl_seconds
        self.instance_id = instance_id
        self.max_cas_retries = max_cas_retries
        # A reply 'streaming' for longer than this has no live producer, whoever owns it.
        self.stale_after = stale_after
        self.liveness_window = liveness_window  # set from the heartbeat interval by heartbeat()

    # --- keys ---------------------------------------------------------------------------------
    @staticmethod
    def key(session_id: str) -> str:
        return f"{KEY_PREFIX}:session:{session_id}"

    @staticmethod
    def conns_key(session_id: str) -> str:
        return f"{KEY_PREFIX}:conns:{session_id}"

    @staticmethod
    def instance_key(instance_id: str) -> str:
        return f"{KEY_PREFIX}:instance:{instance_id}"

    # --- read ---------------------------------------------------------------------------------
    def get(self, session_id: str) -> Session | None:
        raw = self.redis.get(self.key(session_id))
        return Session.model_validate_json(raw) if raw else None

    def open(self, principal: Principal, ticket: dict[str, Any]) -> tuple[Session, bool, bool]:
        """Create or resume the caller's session for a ticket.

        Returns (session, resumed, hydrated): resumed when the session already existed (in Redis
        or the archive), hydrated when it had to be brought back from the archive.
        """
        ticket_id = str(ticket["id"])
        session_id = session_id_for(principal, ticket_id)
        key = self.key(session_id)
        resumed, hydrated = True, False
        if not self.redis.exists(key):
            record = self.archive.load(session_id)
            if record is not None:
                session = Session.model_validate(record.data)
                hydrated = True
            else:
                session = Session(
                    id=session_id,
                    tenant=principal.tenant,
                    user_id=principal.user_id,
                    user_name=principal.user_name,
                    ticket_id=ticket_id,
                )
                resumed = False
            # NX: if another instance created or hydrated it meanwhile, theirs wins and we re-read.
            if not self.redis.set(key, session.model_dump_json(), nx=True):
                hydrated = False
                resumed = True
        # Refresh the ticket context (the sidebar sends the live ticket) and cancel any expiry.
        session = self.update(session_id, lambda s: _set_ticket(s, ticket))[0]
        self.redis.persist(key)
        return session, resumed, hydrated

    # --- write --------------------------------------------------------------------------------
    def update(self, session_id: str, mutate: Callable[[Session], T]) -> tuple[Session, T]:
        """Apply `mutate` atomically. `mutate` may run several times (on conflict): keep it pure
        apart from changing the session it is given."""
        key = self.key(session_id)
        for _ in range(self.max_cas_retries):
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.reset()
                        if not self._rehydrate(session_id):
                            raise SessionNotFound(session_id)
                        continue
                    session = Session.model_validate_json(raw)
                    result = mutate(session)
                    session.version += 1
                    session.updated_at = time.time()
                    pipe.multi()
                    # KEEPTTL: an update while nobody is connected must not revive an expiring session.
                    pipe.set(key, session.model_dump_json(), keepttl=True)
                    pipe.execute()
                    return session, result
                except redis.WatchError:
                    continue
        raise ConcurrentUpdateError(f"session {session_id}: too many concurrent updates")

    def get_or_rehydrate(self, session_id: str) -> Session | None:
        """The session, brought back from the archive when Redis lost it (flush, failover): a
        turn whose thread starts only after the loss must still land in the session it was acked in."""
        session = self.get(session_id)
        if session is None and self._rehydrate(session_id):
            session = self.get(session_id)
        return session

    def _rehydrate(self, session_id: str) -> bool:
        """Redis lost the session (flush, failover) mid-flight: bring it back from the archive.

        It gets the disconnect TTL, since no connection is known; a join PERSISTs it again.
        """
        record = self.archive.load(session_id)
        if record is None:
            return False
        self.redis.set(
            self.key(session_id),
            Session.model_validate(record.data).model_dump_json(),
            nx=True,
            ex=self.ttl_seconds,
        )
        log.warning("session %s rehydrated from the archive during an update", session_id)
        return True

    def archive_now(self, session: Session) -> bool:
        """Mirror to the archive. A failure is queued for `flush_archive_queue` (Redis still has
        the session), so the archive catches up when it returns."""
        try:
            self.archive.save(session.to_record())
            return True
        except ArchiveError:
            log.exception("archive write failed; queued", extra={"session_id": session.id})
            with contextlib.suppress(redis.RedisError):
                self.redis.sadd(ARCHIVE_QUEUE, session.id)
            return False

    def flush_archive_queue(self, limit: int = 200) -> int:
        """Write queued sessions to the archive; returns how many were written."""
        written = 0
        for session_id in self.redis.srandmember(ARCHIVE_QUEUE, limit) or []:
            session = self.get(session_id)
            if session is None:
                self.redis.srem(ARCHIVE_QUEUE, session_id)
                continue
            try:
                self.archive.save(session.to_record())
            except ArchiveError:
                return written  # still down: try again at the next beat
            self.redis.srem(ARCHIVE_QUEUE, session_id)
            written += 1
        return written

    # --- in-flight turns ----------------------------------------------------------------------
    def track_turn(self, session_id: str, message_id: str, attempt: int) -> None:
        self.redis.sadd(INFLIGHT, _inflight(session_id, message_id, self.instance_id, attempt, time.time()))

    def untrack_turn(self, session_id: str, message_id: str, attempt: int) -> None:
        prefix = f"{session_id}|{message_id}|{self.instance_id}|{attempt}|"
        members = [m for m in self.redis.smembers(INFLIGHT) if m.startswith(prefix)]
        if members:
            self.redis.srem(INFLIGHT, *members)

    def sweep_orphans(self) -> list[tuple[str, str]]:
        """Settle turns whose producer is gone (instance dead, or running past `stale_after`):
        any instance may do it; the compare-and-set makes exactly one of them win. Returns the
        (session id, message id) pairs this call marked interrupted."""
        settled: list[tuple[str, str]] = []
        now = time.time()
        for member in self.redis.smembers(INFLIGHT):
            try:
                session_id, message_id, owner, _attempt, started = member.split("|")
            except ValueError:
                self.redis.srem(INFLIGHT, member)
                continue
            if self.instance_alive(owner) and now - float(started) < self.stale_after:
                continue
            try:
                _, changed = self.mark_orphaned(session_id)
            except SessionNotFound:
                changed = []
            self.redis.srem(INFLIGHT, member)
            settled += [(session_id, m) for m in changed if m == message_id]
        return settled

    # --- connections and expiry ---------------------------------------------------------------
    def attach(self, session_id: str, sid: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self.conns_key(session_id), sid, self.instance_id)
            pipe.persist(self.key(session_id))
            pipe.persist(self.conns_key(session_id))
            pipe.execute()

    def detach(self, session_id: str, sid: str) -> int:
        """Forget a connection; when no live connection is left, start the TTL and archive.

        Connections of crashed instances are ignored, so a session whose tab moved from a
        dead instance still expires when that tab goes away.
        """
        conns_key = self.conns_key(session_id)
        self.redis.hdel(conns_key, sid)
        remaining = self.redis.hgetall(conns_key)
        live = [s for s, inst in remaining.items() if self.instance_alive(inst)]
        if not live:
            with self.redis.pipeline() as pipe:
                pipe.expire(self.key(session_id), self.ttl_seconds)
                pipe.expire(conns_key, self.ttl_seconds)
                pipe.execute()
            session = self.get(session_id)
            if session is not None:
                self.archive_now(session)
        return len(live)

    def heartbeat(self, interval: float) -> None:
        # Three missed beats and the instance counts as dead.
        self.liveness_window = interval * 3
        self.redis.set(self.instance_key(self.instance_id), str(time.time()), px=int(interval * 3000))

    def retire(self) -> None:
        self.redis.delete(self.instance_key(self.instance_id))

    def instance_alive(self, instance_id: str) -> bool:
        if instance_id == self.instance_id or self.redis.exists(self.instance_key(instance_id)):
            return True
        # A missing key proves death only once Redis has been up for a whole liveness window:
        # right after Redis restarts empty, every instance lacks its key until its next beat.
        uptime = int(self.redis.info("server").get("uptime_in_seconds", 0))
        return uptime < self.liveness_window

    def mark_orphaned_turns(self, session_id: str) -> Session:
        return self.mark_orphaned(session_id)[0]

    def mark_orphaned(self, session_id: str) -> tuple[Session, list[str]]:
        """Replies still 'streaming' with no live producer — their instance died, or they have run
        past `stale_after` (e.g. the turn's last write hit a Redis outage) — become interrupted.
        Returns the session and the ids of the user messages whose replies changed."""
        now = time.time()

        def orphaned(m: ThreadMessage) -> str | None:
            if m.status != "streaming":
                return None
            owner = m.meta.instance
            if owner and not self.instance_alive(owner):
                return "instance_lost"
            started = m.meta.started_at
            if now - (now if started is None else started) > self.stale_after:
                return "stale"
            return None

        def mutate(s: Session) -> list[str]:
            changed = []
            for m in s.thread:
                reason = orphaned(m)
                if reason:
                    m.status = "interrupted"
                    m.meta.interrupted_reason = reason
                    changed.append(m.reply_to or m.id)
            return changed

        session = self.get(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        if not any(orphaned(m) for m in session.thread):
            return session, []
        session, changed = self.update(session_id, mutate)
        if changed:
            self.archive_now(session)
        return session, changed


def _inflight(session_id: str, message_id: str, instance: str, attempt: int, started: float) -> str:
    return f"{session_id}|{message_id}|{instance}|{attempt}|{started:.3f}"


def _set_ticket(session: Session, ticket: dict[str, Any]) -> None:
    session.ticket = ticket
