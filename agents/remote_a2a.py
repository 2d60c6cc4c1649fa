"""A remote agent reached over the Agent2Agent (A2A) protocol, plugged in with a manifest alone.

A folder whose manifest says `kind: a2a` (and gives `a2a.url`, the agent card's URL) becomes a
`RemoteA2AAgent`. At start-up it fetches and checks the remote agent's card
(`/.well-known/agent-card.json`), taking the card's skills as routing examples when the manifest
gives none; a card that cannot be fetched marks the agent unavailable with the reason and never
blocks start-up (the fetch is bounded, and retried on later calls). Each run sends the enhanced
query plus bounded ticket context as one A2A message with the official `a2a-sdk` client
(streaming when the card allows it), forwards task status updates as thinking lines, and maps
the returned text/data parts and artifacts to `Evidence` (bounded; anything malformed or
oversized is dropped, and when nothing usable is left the agent is "unavailable", never a crashed
turn).

It is an ordinary `BaseAgent`: its one tool, `send_message`, goes through the tool callbacks (the
tool-veto guardrail refuses it on sidebar turns when the manifest says `read_only: false`); the
orchestrator's timeout and cancel event stop the stream; a circuit breaker per remote base URL
(`agents.http.DEFAULT_BREAKERS`) fails fast while the remote is down.

Protocol: A2A 1.0 (https://a2a-protocol.org/v1.0.0/specification/): JSON-RPC `SendStreamingMessage`
answered by a Task, then `TaskStatusUpdateEvent`s and `TaskArtifactUpdateEvent`s, or one Message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.types.a2a_pb2 import (
    AgentCard,
    Artifact,
    Message,
    Part,
    Role,
    SendMessageRequest,
    TaskState,
)
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from a2a.utils.errors import A2AError
from google.protobuf import json_format, struct_pb2

from agents.base import (
    A2ASpec,
    AgentContext,
    AgentManifest,
    AgentResult,
    BaseAgent,
    Evidence,
    ToolCall,
    ToolParameter,
    ToolSpec,
    ToolUnavailable,
)
from agents.common import lead
from agents.http import DEFAULT_BREAKERS, BreakerRegistry
from vertex_interface.config import BreakerPolicy

log = logging.getLogger(__name__)

TOOL = "send_message"
TIMED_OUT = "did not answer within"
MAX_EVENTS = 500  # a stream longer than this is cut off (a remote stuck in a loop)
MAX_THINKING_LINES = 8
MAX_THINKING_CHARS = 160
MAX_EVIDENCE = 8
MAX_EXAMPLES = 40
MAX_EXAMPLE_CHARS = 300
CARD_RETRY_S = 15.0  # an unavailable card is fetched again at most this often
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ID_CHARS = re.compile(r"[^A-Za-z0-9_.:\-]")
_TERMINAL = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED,
}
_INTERRUPTED = {TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED}
_SOURCE_LISTS = ("sources", "results", "evidence", "items", "documents")


# --- one event loop for every remote agent's client ----------------------------------------------
class _LoopThread:
    """The a2a-sdk client is asyncio; agents run in the orchestrator's worker threads. One
    background loop serves them all (connection pools stay warm across turns)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="a2a-client", daemon=True).start()
                self._loop = loop
            return self._loop

    def submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop())


LOOP = _LoopThread()


# --- URLs, secrets, transport limits -------------------------------------------------------------
def card_location(url: str) -> tuple[str, str]:
    """(base URL, card path) from a manifest's `a2a.url`: the card's own URL
    (`…/.well-known/agent-card.json`, or any `….json`) or the agent's base URL."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    if "/.well-known/" in path:
        prefix, _, rest = path.partition("/.well-known/")
        return origin + prefix, "/.well-known/" + rest
    if path.endswith(".json"):
        prefix, _, name = path.rpartition("/")
        return origin + prefix, "/" + name
    return origin + path, AGENT_CARD_WELL_KNOWN_PATH


class SecretUnavailable(RuntimeError):
    """The secret a manifest names is not there (message names it, never shows a value)."""


class Credentials:
    """The Authorization header for one remote agent, from the secret the manifest names.

    - bearer: the token in env var `secret_env` (Cloud Run mounts Secret Manager secrets as env
      vars or files) or file `secret_file`;
    - google_id_token: a Google-signed ID token whose audience is the remote service's URL, as
      Cloud Run service-to-service calls need
      (https://cloud.google.com/run/docs/authenticating/service-to-service); fetched with
      google-auth's `id_token.fetch_id_token` (metadata server on Cloud Run, or the service
      account file in GOOGLE_APPLICATION_CREDENTIALS) and reused until shortly before it expires.
    """

    def __init__(self, spec: A2ASpec, base_url: str) -> None:
        self.auth = spec.auth
        origin = urlsplit(base_url)
        self.audience = self.auth.audience or f"{origin.scheme}://{origin.netloc}"
        self._cached: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def header(self) -> str | None:
        if self.auth.type == "none":
            return None
        if self.auth.type == "bearer":
            return f"Bearer {self._secret()}"
        return f"Bearer {self._id_token()}"

    def _secret(self) -> str:
        if self.auth.secret_env:
            value = os.environ.get(self.auth.secret_env, "").strip()
            if not value:
                raise SecretUnavailable(f"secret {self.auth.secret_env} is not set")
            return value
        assert self.auth.secret_file
        try:
            value = Path(self.auth.secret_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError:
            raise SecretUnavailable("the secret file cannot be read") from None
        if not value:
            raise SecretUnavailable("the secret file is empty")
        return value

    def _id_token(self) -> str:
        with self._lock:
            if self._cached and self._cached[1] - 300 > time.time():
                return self._cached[0]
            import google.auth.exceptions
            import google.auth.jwt
            import google.auth.transport.requests
            import google.oauth2.id_token

            try:
                token = google.oauth2.id_token.fetch_id_token(
                    google.auth.transport.requests.Request(), self.audience
                )
            except (google.auth.exceptions.GoogleAuthError, ValueError, OSError) as exc:
                raise SecretUnavailable(f"no Google ID token ({type(exc).__name__})") from None
            try:
                expiry = float(google.auth.jwt.decode(token, verify=False).get("exp", 0))
            except ValueError:
                expiry = time.time() + 600
            self._cached = (token, expiry)
            return token


class _Auth(httpx.Auth):
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    async def async_auth_flow(self, request: httpx.Request):
        if self.credentials.auth.type != "none":
            # google-auth blocks on the network when the token needs refreshing.
            request.headers["Authorization"] = await asyncio.to_thread(self.credentials.header)
        yield request


class ResponseTooLarge(Exception):
    """The remote sent more bytes than `a2a.max_response_bytes` in one response."""


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, cap: int) -> None:
        self.inner, self.cap, self.size = inner, cap, 0

    async def __aiter__(self):
        async for chunk in self.inner:
            self.size += len(chunk)
            if self.size > self.cap:
                raise ResponseTooLarge(f"response larger than {self.cap} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CappedTransport(httpx.AsyncBaseTransport):
    """Counts the bytes of every response (SSE streams included) against a cap, so a remote
    cannot make us buffer an unbounded body."""

    def __init__(self, cap: int) -> None:
        # TCP_NODELAY: a request's headers and body go out as separate writes; with Nagle on,
        # the body waits for the peer's delayed ACK (~40 ms on Linux) on every call.
        self.inner = httpx.AsyncHTTPTransport(
            retries=0, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        self.cap = cap

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.cap:
            await response.aclose()
            raise ResponseTooLarge(f"response larger than {self.cap} bytes")
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(response.stream, self.cap)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- ticket context out, parts in ----------------------------------------------------------------
def _clean(text: object, limit: int) -> str:
    s = _CONTROL.sub("", text if isinstance(text, str) else str(text)).strip()
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def ticket_context(ticket: Mapping[str, Any], max_chars: int) -> dict[str, Any]:
    """The ticket as the remote agent sees it: what the sidebar sent, bounded to `max_chars` of
    JSON, public comments only (internal notes never leave for another team's service)."""
    out: dict[str, Any] = {}
    for key in ("id", "subject", "status", "priority"):
        if ticket.get(key) not in (None, ""):
            out[key] = _clean(ticket[key], 300)
    tags = ticket.get("tags")
    if isinstance(tags, list):
        out["tags"] = [_clean(t, 60) for t in tags[:20]]
    fields = ticket.get("custom_fields")
    if isinstance(fields, Mapping):
        out["custom_fields"] = {_clean(k, 80): _clean(v, 200) for k, v in list(fields.items())[:30]}
    elif isinstance(fields, list):
        out["custom_fields"] = [
            {"id": _clean(f.get("id"), 40), "value": _clean(f.get("value"), 200)}
            for f in fields[:30]
            if isinstance(f, Mapping) and f.get("value") not in (None, "")
        ]
    req = ticket.get("requester")
    if isinstance(req, Mapping):
        out["requester"] = {k: _clean(req[k], 200) for k in ("name", "email") if req.get(k)}
    comments = [
        c
        for c in (ticket.get("comments") or [])
        if isinstance(c, Mapping) and c.get("public", True) is not False
    ]
    out["comments"] = [
        {"text": _clean(c.get("text") or c.get("body") or c.get("value") or "", 600)} for c in comments[-3:]
    ]

    def size(d: dict[str, Any]) -> int:
        return len(json.dumps(d, ensure_ascii=False))

    # The description gets the room the other fields leave; comments give way first, then the
    # tags and fields, when even an empty description does not fit.
    out["description"] = ""
    while size(out) > max_chars and out["comments"]:
        out["comments"].pop(0)
    for key in ("custom_fields", "tags", "requester"):
        if size(out) > max_chars:
            out.pop(key, None)
    room = max_chars - size(out)
    description = _clean(ticket.get("description") or "", max(0, room))
    while description and size({**out, "description": description}) > max_chars:
        description = description[
            : max(0, len(description) - (size({**out, "description": description}) - max_chars) - 1)
        ]
    out["description"] = description.strip()
    if not out["description"]:
        out.pop("description")
    if not out["comments"]:
        out.pop("comments")
    return out


def build_message(query: str, ticket: Mapping[str, Any], spec: A2ASpec) -> Message:
    """One user message: the enhanced query as text, the bounded ticket as a data part."""
    parts = [Part(text=query[:2000], media_type="text/plain")]
    context = ticket_context(ticket, spec.max_context_chars)
    if context:
        parts.append(
            Part(
                data=json_format.ParseDict({"ticket": context}, struct_pb2.Value()),
                media_type="application/json",
            )
        )
    return Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=parts)


def _safe_url(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 2000:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
        return None
    return value.strip()


def _score(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return max(0.0, min(1.0, float(value)))


def _flatten(data: Mapping[str, Any], limit: int) -> str:
    """A data record as 'key: value' lines (nested values as compact JSON)."""
    lines = []
    for k, v in sorted(data.items())[:50]:  # sorted: a protobuf Struct keeps no key order
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # protobuf Values carry every number as a double
        value = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        lines.append(f"{_clean(k, 80)}: {_clean(value, 1000)}")
    return _clean("\n".join(lines), limit)


@dataclass
class Collected:
    """What one exchange returned, before it becomes evidence."""

    artifacts: dict[str, Artifact] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    reply: list[Part] = field(default_factory=list)  # a Message answer, or the final status message
    state: int = TaskState.TASK_STATE_UNSPECIFIED
    status_text: str = ""
    events: int = 0

    def add_artifact(self, artifact: Artifact, append: bool) -> None:
        key = artifact.artifact_id or f"artifact-{len(self.order) + 1}"
        if append and key in self.artifacts:
            self.artifacts[key].parts.extend(artifact.parts)
            return
        if key not in self.artifacts:
            self.order.append(key)
        copy = Artifact()
        copy.CopyFrom(artifact)
        self.artifacts[key] = copy


@dataclass
class Mapped:
    evidence: list[Evidence]
    malformed: int = 0
    oversized: int = 0


class PartMapper:
    """Text/data/url parts of artifacts and replies → Evidence, bounded and defensive."""

    def __init__(self, agent: str, title: str, spec: A2ASpec, default_score: float = 0.5) -> None:
        self.agent, self.title, self.spec, self.default_score = agent, title, spec, default_score

    def _id(self, key: str) -> str:
        return f"a2a:{self.agent}:{_ID_CHARS.sub('_', key)[:100]}"

    def _record(self, record: Mapping[str, Any], key: str, fallback_title: str) -> Evidence | None:
        text = record.get("text", record.get("content"))
        if not isinstance(text, str) or not text.strip():
            return None
        return Evidence(
            id=self._id(str(record.get("id") or key)),
            title=_clean(record.get("title") or fallback_title, 200),
            text=_clean(text, self.spec.max_artifact_chars),
            kind="a2a",
            url=_safe_url(record.get("url")),
            score=_score(record.get("score"), self.default_score),
            agent=self.agent,
            internal=self.spec.internal or record.get("internal") is True,
        )

    def map_parts(self, parts: list[Part], key: str, title: str, mapped: Mapped) -> None:
        texts: list[str] = []
        urls: list[str] = []
        records: list[Evidence] = []
        size = 0
        bad = 0
        for i, part in enumerate(parts):
            kind = part.WhichOneof("content")
            if kind == "text":
                if part.text.strip():
                    texts.append(part.text)
                    size += len(part.text)
                else:
                    bad += 1
            elif kind == "data":
                try:
                    data = json_format.MessageToDict(part.data)
                except (json_format.Error, ValueError, TypeError):
                    bad += 1
                    continue
                size += len(json.dumps(data, default=str))
                if not isinstance(data, dict):
                    bad += 1  # a bare number or list says nothing citable
                    continue
                lists = [data[k] for k in _SOURCE_LISTS if isinstance(data.get(k), list)]
                if lists:
                    for j, item in enumerate(lists[0][: MAX_EVIDENCE * 2]):
                        e = self._record(item, f"{key}-{i}-{j}", title) if isinstance(item, dict) else None
                        if e is None:
                            bad += 1
                        else:
                            records.append(e)
                    continue
                e = self._record(data, f"{key}-{i}", title)
                if e is None and set(data) <= {"url", "title"} and _safe_url(data.get("url")):
                    urls.append(str(_safe_url(data.get("url"))))  # a citation link for the text
                elif e is not None:
                    records.append(e)
                elif data:
                    texts.append(_flatten(data, self.spec.max_artifact_chars))
                else:
                    bad += 1
            elif kind == "url":
                url = _safe_url(part.url)
                if url:
                    urls.append(url)
                else:
                    bad += 1
            elif kind == "raw" and part.media_type.startswith("text/"):
                try:
                    texts.append(part.raw.decode("utf-8"))
                    size += len(part.raw)
                except UnicodeDecodeError:
                    bad += 1
            else:
                bad += 1  # an empty part, or binary content we cannot cite
        if size > self.spec.max_artifact_chars:
            mapped.oversized += 1
            return
        mapped.malformed += bad
        mapped.evidence.extend(records)
        text = _clean("\n\n".join(t.strip() for t in texts if t.strip()), self.spec.max_artifact_chars)
        if text:
            mapped.evidence.append(
                Evidence(
                    id=self._id(key),
                    title=_clean(title, 200),
                    text=text,
                    kind="a2a",
                    url=urls[0] if urls else None,
                    score=self.default_score,
                    agent=self.agent,
                    internal=self.spec.internal,
                )
            )

    def map(self, collected: Collected) -> Mapped:
        mapped = Mapped([])
        for key in collected.order:
            artifact = collected.artifacts[key]
            title = artifact.name or artifact.description or self.title
            self.map_parts(list(artifact.parts), key, title, mapped)
        if not collected.order and collected.reply:
            self.map_parts(collected.reply, "reply", self.title, mapped)
        seen: set[str] = set()
        unique = [e for e in mapped.evidence if not (e.id in seen or seen.add(e.id))]
        mapped.evidence = unique[:MAX_EVIDENCE]
        return mapped


# --- the agent -----------------------------------------------------------------------------------
def examples_from_card(card: AgentCard) -> list[str]:
    """Routing examples from the card's skills: their examples, else their names and descriptions."""
    examples = [e for s in card.skills for e in s.examples]
    if len(examples) < 3:
        examples += [s.description or s.name for s in card.skills]
    out: list[str] = []
    for e in examples:
        text = _clean(e, MAX_EXAMPLE_CHARS)
        if text and text not in out:
            out.append(text)
    return out[:MAX_EXAMPLES]


def check_card(card: AgentCard) -> None:
    """What we need from a card: a name, a JSON-RPC or HTTP+JSON interface on http(s)."""
    if not card.name:
        raise ValueError("the agent card has no name")
    usable = [
        i
        for i in card.supported_interfaces
        if i.protocol_binding in ("JSONRPC", "HTTP+JSON") and _safe_url(i.url)
    ]
    if not usable:
        raise ValueError("the agent card offers no JSON-RPC or HTTP+JSON interface")


class RemoteA2AAgent(BaseAgent):
    """`kind: a2a`: the manifest alone (no agent.py); see the module docstring."""

    def __init__(
        self,
        manifest: AgentManifest,
        folder: Path | None = None,
        *,
        breakers: BreakerRegistry | None = None,
    ) -> None:
        assert manifest.a2a is not None, "a kind a2a manifest has an a2a section"
        self.spec = manifest.a2a
        tool = ToolSpec(
            name=TOOL,
            description=f"Send the request to the remote A2A agent {manifest.title}.",
            parameters={"query": ToolParameter(description="the request")},
            retrieval=self.spec.read_only,
        )
        super().__init__(manifest.model_copy(update={"tools": [tool]}), folder)
        self.base_url, self.card_path = card_location(self.spec.url)
        self.credentials = Credentials(self.spec, self.base_url)
        self.breaker = (breakers or DEFAULT_BREAKERS).for_url(
            self.base_url, BreakerPolicy(failure_threshold=3, reset_timeout_s=30.0)
        )
        self.card: AgentCard | None = None
        self.unavailable_reason: str | None = "agent card not fetched yet"
        self._client = None
        self._http: httpx.AsyncClient | None = None
        self._card_lock = threading.Lock()
        self._last_fetch = 0.0
        self._pending: concurrent.futures.Future | None = None
        self._start_fetch()
        if not manifest.when_to_use:
            # Routing needs the card's skills now; bounded, so start-up never hangs on a remote.
            self._wait_for_card(self.spec.card_timeout_s + 0.5)
            examples = examples_from_card(self.card) if self.card is not None else []
            update: dict[str, Any] = {"when_to_use": examples or [manifest.description]}
            if not examples:
                # Nothing to route on until the card can be read: out of routing, with the reason.
                update["enabled"] = False
            self.manifest = self.manifest.model_copy(update=update)
        elif self.card is None:
            log.info("a2a agent %s: fetching its card in the background", self.name)

    # -- the card ------------------------------------------------------------------------------
    def _start_fetch(self) -> concurrent.futures.Future:
        with self._card_lock:
            if self._pending is None or self._pending.done():
                self._last_fetch = time.monotonic()
                self._pending = LOOP.submit(self._fetch_card())
            return self._pending

    def _wait_for_card(self, timeout: float) -> None:
        future = self._start_fetch()
        try:
            future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            self.unavailable_reason = f"agent card did not arrive within {self.spec.card_timeout_s:g}s"

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                auth=_Auth(self.credentials),
                transport=_CappedTransport(self.spec.max_response_bytes),
                timeout=httpx.Timeout(
                    connect=self.spec.card_timeout_s,
                    read=self.manifest.timeout_s + 1.0,  # a backstop: the agent's deadline decides
                    write=5.0,
                    pool=5.0,
                ),
                follow_redirects=False,
                headers={"User-Agent": "zendesk-sidebar-assistant (a2a)"},
            )
        return self._http

    async def _fetch_card(self) -> None:
        try:
            resolver = A2ACardResolver(self._http_client(), self.base_url, self.card_path)
            card = await asyncio.wait_for(
                resolver.get_agent_card(http_kwargs={"timeout": self.spec.card_timeout_s}),
                self.spec.card_timeout_s,
            )
            check_card(card)
            client = ClientFactory(
                ClientConfig(
                    streaming=True,
                    httpx_client=self._http_client(),
                    supported_protocol_bindings=["JSONRPC", "HTTP+JSON"],  # what check_card accepts
                )
            ).create(card)
        except TimeoutError:
            self.unavailable_reason = f"agent card did not arrive within {self.spec.card_timeout_s:g}s"
        except SecretUnavailable as exc:
            self.unavailable_reason = f"cannot authenticate: {exc}"
        except ResponseTooLarge:
            self.unavailable_reason = "agent card is too large"
        except A2AError as exc:
            status = getattr(exc, "status_code", None)
            cause = exc.__cause__
            why = (
                f"HTTP {status}"
                if status
                else "timed out"
                if isinstance(cause, httpx.TimeoutException)
                else "cannot connect"
                if isinstance(cause, httpx.TransportError)
                else "not a valid agent card"
            )
            self.unavailable_reason = f"agent card cannot be fetched ({why})"
        except (ValueError, httpx.HTTPError) as exc:
            self.unavailable_reason = f"agent card is not usable: {_clean(exc, 120)}"
        except Exception as exc:  # whatever a broken remote causes, start-up goes on
            self.unavailable_reason = f"agent card cannot be read ({type(exc).__name__})"
        else:
            self.card, self._client, self.unavailable_reason = card, client, None
            log.info("a2a agent %s: card %r, %d skills", self.name, card.name, len(card.skills))
            return
        log.warning("a2a agent %s unavailable: %s", self.name, self.unavailable_reason)

    def refresh_card(self, timeout: float | None = None) -> bool:
        """Fetch the card now (bounded); True when the agent can be called."""
        self._wait_for_card(self.spec.card_timeout_s + 0.5 if timeout is None else timeout)
        return self._client is not None

    def _ensure_card(self) -> bool:
        if self._client is not None:
            return True
        in_flight = self._pending is not None and not self._pending.done()
        if in_flight or time.monotonic() - self._last_fetch >= CARD_RETRY_S:  # join it, or try again
            self._wait_for_card(self.spec.card_timeout_s + 0.5)
        return self._client is not None

    # -- the workflow --------------------------------------------------------------------------
    def tools(self) -> dict[str, Callable[..., Any]]:
        return {TOOL: self.send}

    def choose_tool(
        self, query: str, ctx: AgentContext, attempt: int, previous: list[ToolCall]
    ) -> ToolCall | None:
        # One message per run: the remote agent does its own planning, so no model call here.
        return ToolCall(TOOL, {"query": query}, "ask the remote agent") if attempt == 1 else None

    def run(self, query: str, ctx: AgentContext) -> AgentResult:
        started = time.perf_counter()
        if not ctx.cancel.is_set() and not self._ensure_card():
            return AgentResult(
                agent=self.name,
                summary="",
                status="unavailable",
                error=self.unavailable_reason,
                latency_s=time.perf_counter() - started,
            )
        result = super().run(query, ctx)
        if ctx.cancel.is_set() and result.status != "ok":
            result.status = "cancelled"  # the stream was closed on purpose, not by a fault
        elif result.status == "unavailable" and TIMED_OUT in (result.error or ""):
            result.status = "timeout"
        return result

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        return "\n".join(f"- {e.title}: {lead(e.text)}" for e in evidence[:3])

    def send(self, ctx: AgentContext, query: str) -> list[Evidence]:
        if not self.breaker.try_acquire():
            raise ToolUnavailable(
                f"{self.manifest.title} is unavailable (circuit open, next try in {self.breaker.retry_in():.0f} s)"
            )
        request = SendMessageRequest(message=build_message(query, ctx.ticket, self.spec))
        lines = _ThinkingLines(ctx.think)
        future = LOOP.submit(self._exchange(request, lines))
        # A backstop past the manifest's timeout: inside a turn the orchestrator's own deadline
        # decides (status "timeout") and sets the cancel event; this ends runs outside a turn.
        deadline = time.monotonic() + self.manifest.timeout_s + 0.5
        try:
            while True:
                try:
                    collected = future.result(timeout=0.05)
                    break
                except concurrent.futures.TimeoutError:
                    if ctx.cancel.is_set() or time.monotonic() >= deadline:
                        future.cancel()  # closes the stream: the remote sees the client go
                        if ctx.cancel.is_set():
                            self.breaker.release()
                            raise ToolUnavailable(f"{self.manifest.title} was cancelled") from None
                        self.breaker.record_failure()
                        raise ToolUnavailable(
                            f"{self.manifest.title} {TIMED_OUT} {self.manifest.timeout_s:g}s"
                        ) from None
        except ToolUnavailable:
            raise
        except concurrent.futures.CancelledError:
            self.breaker.release()
            raise ToolUnavailable(f"{self.manifest.title} was cancelled") from None
        except Exception as exc:
            raise self._failure(exc) from None
        self.breaker.record_success()
        return self._evidence(collected)

    def _failure(self, exc: BaseException) -> ToolUnavailable:
        """Every way an exchange fails, as a short reason (never a URL, header or token)."""
        title = self.manifest.title
        if isinstance(exc, SecretUnavailable):
            self.breaker.release()
            return ToolUnavailable(f"{title} cannot authenticate: {exc}")
        if isinstance(exc, ResponseTooLarge):
            self.breaker.release()
            return ToolUnavailable(f"{title} sent a {exc}")
        if isinstance(exc, A2AClientTimeoutError):
            self.breaker.record_failure()
            return ToolUnavailable(f"{title} {TIMED_OUT} {self.manifest.timeout_s:g}s")
        if isinstance(exc, A2AClientError):
            status = getattr(exc.__cause__, "response", None)
            code = getattr(status, "status_code", None)
            if code in (401, 403):
                self.breaker.release()
                return ToolUnavailable(f"{title} refused our credentials (HTTP {code})")
            self.breaker.record_failure()
            return ToolUnavailable(f"{title} is unavailable" + (f" (HTTP {code})" if code else ""))
        if isinstance(exc, A2AError):  # a JSON-RPC error the remote agent answered with
            self.breaker.record_success()
            return ToolUnavailable(f"{title} answered with an error ({type(exc).__name__})")
        self.breaker.record_failure()
        log.warning("a2a agent %s: malformed exchange: %s", self.name, type(exc).__name__)
        return ToolUnavailable(f"{title} returned a malformed response")

    async def _exchange(self, request: SendMessageRequest, lines: _ThinkingLines) -> Collected:
        assert self._client is not None
        got = Collected()
        # aclosing: leaving early (terminal state, a Message, too many events) closes the stream now.
        async with contextlib.aclosing(self._client.send_message(request)) as events:
            async for event in events:
                got.events += 1
                if got.events > MAX_EVENTS:
                    break
                kind = event.WhichOneof("payload")
                if kind == "message":
                    got.reply = list(event.message.parts)
                    break
                if kind == "task":
                    for artifact in event.task.artifacts:
                        got.add_artifact(artifact, append=False)
                    status = event.task.status
                elif kind == "artifact_update":
                    got.add_artifact(event.artifact_update.artifact, append=event.artifact_update.append)
                    continue
                elif kind == "status_update":
                    status = event.status_update.status
                else:
                    continue
                got.state = status.state
                text = " ".join(p.text for p in status.message.parts if p.text).strip()
                if status.state in _TERMINAL or status.state in _INTERRUPTED:
                    got.status_text = text
                    if status.state == TaskState.TASK_STATE_COMPLETED and status.message.parts:
                        got.reply = list(status.message.parts)
                    break
                lines.add(text or ("working" if status.state == TaskState.TASK_STATE_WORKING else ""))
        return got

    def _evidence(self, got: Collected) -> list[Evidence]:
        title = self.manifest.title
        mapped = PartMapper(self.name, title, self.spec).map(got)
        if got.state in (TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_REJECTED) and not mapped.evidence:
            reason = f": {_clean(got.status_text, 120)}" if got.status_text else ""
            raise ToolUnavailable(f"{title} could not do the task{reason}")
        if got.state in _INTERRUPTED and not mapped.evidence:
            raise ToolUnavailable(f"{title} asks for more input, which the sidebar cannot give")
        if not mapped.evidence and mapped.oversized:
            raise ToolUnavailable(
                f"{title} sent an artifact larger than {self.spec.max_artifact_chars} characters"
            )
        if not mapped.evidence and mapped.malformed:
            raise ToolUnavailable(f"{title} returned parts that cannot be read")
        if mapped.malformed or mapped.oversized:
            log.info(
                "a2a agent %s: dropped %d malformed and %d oversized part(s)",
                self.name,
                mapped.malformed,
                mapped.oversized,
            )
        return mapped.evidence


class _ThinkingLines:
    """Status updates → thinking lines: deduplicated, bounded in number and length."""

    def __init__(self, think: Callable[[str], None]) -> None:
        self.think, self.sent, self.last = think, 0, ""

    def add(self, text: str) -> None:
        text = _clean(" ".join(text.split()), MAX_THINKING_CHARS)
        if not text or text == self.last or self.sent >= MAX_THINKING_LINES:
            return
        self.last = text
        self.sent += 1
        try:
            self.think(text)
        except Exception:  # a thinking line is never worth failing the call for
            log.debug("thinking line dropped", exc_info=True)
