"""Our built-in agents served over A2A (`sidebar-assistant serve-agents`).

Each selected agent gets an agent card generated from its manifest at
`/agents/<name>/.well-known/agent-card.json` and a JSON-RPC endpoint at `/agents/<name>/`, built
from the `a2a-sdk` server classes (`DefaultRequestHandler`, `InMemoryTaskStore`, the Starlette
routes). A message runs the agent exactly as a sidebar turn does: the same `AgentContext`, store,
services and tool guardrails from `backend.assistant.build_assistant`; its thinking lines stream
as `TaskStatusUpdateEvent`s, each evidence item comes back as one artifact (a data part with id,
title, text, url, kind, score, internal), the summary as the completing status message.

The tenant is the caller's authenticated identity, never anything in the message: every call
but the public card needs `Authorization: Bearer <token>`, where the token is either a sidebar
token (verified by the same `Authenticator` as a Socket.IO connect) or a per-tenant API key
listed (as its SHA-256) in the API keys file. The request's own `tenant` field and any tenant in
its metadata or parts are ignored, and tasks are stored per caller (tenant/user), so one tenant
cannot read another's task either.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from a2a.auth.user import User
from a2a.helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import ServerCallContextBuilder, create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    Part,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from google.protobuf import json_format, struct_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.base import AgentContext, AgentResult, BaseAgent, viewing_as
from agents.remote_a2a import ticket_context
from backend.auth import Authenticator, AuthError
from orchestrator.orchestrator import Assistant
from orchestrator.turn import Principal
from store.knowledge import Viewer

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2000
MAX_TICKET_CHARS = 8000
MAX_BEARER_CHARS = 8192
MAX_BODY_BYTES = 256_000  # one message: a query and a bounded ticket, never more
_TENANT = re.compile(r"^[A-Za-z0-9_.@\-]{1,128}$")
_SHA256 = re.compile(r"^(sha256:)?([0-9a-f]{64})$")
CARD_SUFFIX = "/.well-known/agent-card.json"


# --- who is calling ------------------------------------------------------------------------------
class TenantUser(User):
    """The authenticated caller. `user_name` scopes the task store (tenant/user)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return f"{self.principal.tenant}/{self.principal.user_id}"


def load_api_keys(path: str | Path) -> dict[str, str]:
    """`{tenant: [sha256 of a key, ...]}` (YAML or JSON) → {sha256 hex: tenant}. Only hashes are
    stored, so the file itself grants nothing."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: expected a mapping of tenant → list of sha256 key hashes")
    out: dict[str, str] = {}
    for tenant, hashes in raw.items():
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise ValueError(f"{path}: invalid tenant name {tenant!r}")
        if not isinstance(hashes, list):
            raise ValueError(f"{path}: tenant {tenant}: expected a list of sha256 hashes")
        for h in hashes:
            m = _SHA256.match(str(h).strip().lower())
            if not m:
                raise ValueError(f"{path}: tenant {tenant}: not a sha256 hex digest")
            out[m.group(2)] = tenant
    return out


class CallerAuth:
    """`Authorization: Bearer <token>` → Principal, or None."""

    def __init__(
        self, authenticator: Authenticator | None, api_keys: Mapping[str, str] | None = None
    ) -> None:
        self.authenticator = authenticator
        self.api_keys = dict(api_keys or {})

    def principal(self, header: str | None) -> Principal | None:
        if not header or not header.startswith("Bearer ") or len(header) > MAX_BEARER_CHARS:
            return None
        token = header[len("Bearer ") :].strip()
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        for known, tenant in self.api_keys.items():
            if hmac.compare_digest(known, digest):
                return Principal(tenant, f"api-key-{digest[:8]}", "API client", ())
        if self.authenticator is None:
            return None
        try:
            return self.authenticator.authenticate({"token": token})
        except AuthError:
            return None


class AuthMiddleware:
    """Pure ASGI (SSE responses stream through untouched): the card is public, everything else
    needs a verified caller, stored in the scope for the call context builder."""

    def __init__(self, app, auth: CallerAuth) -> None:
        self.app, self.auth = app, auth

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if scope.get("method") == "GET" and (path.endswith(CARD_SUFFIX) or path in ("/agents", "/healthz")):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length", "")
        if scope.get("method") == "POST" and not (length.isdigit() and int(length) <= MAX_BODY_BYTES):
            too_big = length.isdigit()
            response = JSONResponse(
                {
                    "error": f"request body must be at most {MAX_BODY_BYTES} bytes"
                    if too_big
                    else "Content-Length required"
                },
                status_code=413 if too_big else 411,
            )
            await response(scope, receive, send)
            return
        principal = await asyncio.to_thread(self.auth.principal, headers.get("authorization"))
        if principal is None:
            response = JSONResponse(
                {"error": "unauthorized: send Authorization: Bearer <sidebar token or API key>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        scope["a2a_principal"] = principal
        await self.app(scope, receive, send)


class PrincipalContextBuilder(ServerCallContextBuilder):
    """The call context carries the verified caller; the request's `tenant` field is overwritten
    by the SDK's dispatcher afterwards and never read here."""

    def build(self, request: Request) -> ServerCallContext:
        principal = request.scope.get("a2a_principal")
        if not isinstance(principal, Principal):  # the middleware lets no such request through
            raise PermissionError("unauthenticated")
        # The SDK reads the protocol version (A2A-Version) from the headers; the token stays out.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        return ServerCallContext(
            user=TenantUser(principal), state={"principal": principal, "headers": headers}
        )


# --- cards ---------------------------------------------------------------------------------------
def agent_card(agent: BaseAgent, base_url: str, version: str = "0.1.0") -> AgentCard:
    """The card of one built-in agent, generated from its manifest."""
    m = agent.manifest
    return AgentCard(
        name=m.title,
        description=m.description,
        version=version,
        supported_interfaces=[
            AgentInterface(
                url=f"{base_url.rstrip('/')}/agents/{m.name}/",
                protocol_binding="JSONRPC",
                protocol_version="1.0",
            )
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["application/json", "text/plain"],
        skills=[
            AgentSkill(
                id=m.name,
                name=m.title,
                description=m.description,
                tags=[m.kind],
                examples=list(m.when_to_use),
            )
        ],
        security_schemes={
            "bearer": SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer",
                    description="A sidebar token of the tenant, or the tenant's API key for this service.",
                )
            )
        },
        security_requirements=[SecurityRequirement(schemes={"bearer": StringList()})],
    )


# --- running an agent for a caller -----------------------------------------------------------------
def _data(value: Any) -> Part:
    return Part(data=json_format.ParseDict(value, struct_pb2.Value()), media_type="application/json")


def read_request(message) -> tuple[str, dict[str, Any]]:
    """The query (text parts) and the ticket (a data part's `ticket`), bounded and cleaned. A
    `tenant` anywhere in it is just data: it never selects whose data is read."""
    query = " ".join(p.text for p in message.parts if p.text).strip()[:MAX_QUERY_CHARS]
    ticket: dict[str, Any] = {}
    for part in message.parts:
        if part.HasField("data"):
            try:
                value = json_format.MessageToDict(part.data)
            except (json_format.Error, ValueError):
                continue
            if isinstance(value, dict) and isinstance(value.get("ticket"), dict):
                ticket = ticket_context(value["ticket"], MAX_TICKET_CHARS)
                break
    return query, ticket


def evidence_parts(result: AgentResult) -> list[tuple[str, str, Part]]:
    return [
        (
            e.id,
            e.title,
            _data(
                {
                    "id": e.id,
                    "title": e.title,
                    "text": e.text,
                    "url": e.url,
                    "kind": e.kind,
                    "score": round(float(e.score), 4),
                    "internal": e.internal,
                    "agent": e.agent or result.agent,
                }
            ),
        )
        for e in result.evidence
    ]


class BuiltinAgentExecutor(AgentExecutor):
    """Runs one built-in agent for the authenticated caller, streaming its thinking lines."""

    def __init__(self, agent: BaseAgent, assistant: Assistant, pool: ThreadPoolExecutor) -> None:
        self.agent, self.assistant, self.pool = agent, assistant, pool

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        user = context.call_context.user
        if not isinstance(user, TenantUser) or context.message is None:
            raise PermissionError("unauthenticated")
        principal = user.principal
        query, ticket = read_request(context.message)
        task = context.current_task or new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        if not query:
            await updater.reject(updater.new_agent_message([Part(text="The message has no text to answer.")]))
            return
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()
        cancel = threading.Event()
        title = self.agent.manifest.title
        ctx = AgentContext(
            tenant=principal.tenant,
            ticket=ticket,
            knowledge=self.assistant.knowledge,
            llm=self.assistant.llm,
            think=lambda text: loop.call_soon_threadsafe(lines.put_nowait, str(text)),
            cancel=cancel,
            turn_id=f"a2a:{task.id}",
            user_name=principal.user_name or None,
            services=self.assistant.services,
            tool_callbacks=self.assistant.tool_callbacks,
            viewer=Viewer(principal.user_id, principal.group_ids),
        )
        await updater.start_work(updater.new_agent_message([Part(text=f"{title}: searching")]))
        run = loop.run_in_executor(self.pool, contextvars.copy_context().run, self._run, query, ctx)
        timeout = min(self.agent.manifest.timeout_s, self.assistant.config.max_agent_timeout_s)
        deadline = loop.time() + timeout
        try:
            while not run.done():
                getter = asyncio.ensure_future(lines.get())
                done, _ = await asyncio.wait(
                    {run, getter},
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if getter in done:
                    await updater.start_work(updater.new_agent_message([Part(text=getter.result()[:300])]))
                else:
                    getter.cancel()
                if not done and loop.time() >= deadline:
                    cancel.set()
                    await updater.failed(
                        updater.new_agent_message([Part(text=f"no answer within {timeout:g}s")])
                    )
                    return
        except asyncio.CancelledError:
            cancel.set()  # the caller went away or cancelled the task: the agent stops at its next check
            raise
        while not lines.empty():
            await updater.start_work(updater.new_agent_message([Part(text=lines.get_nowait()[:300])]))
        result: AgentResult = run.result()
        if result.status == "ok":
            for artifact_id, name, part in evidence_parts(result):
                await updater.add_artifact([part], artifact_id=artifact_id, name=name, last_chunk=True)
            await updater.complete(
                updater.new_agent_message([Part(text=result.summary or f"{title} answered.")])
            )
        elif result.status == "empty":
            await updater.complete(
                updater.new_agent_message([Part(text=result.summary or f"{title} found nothing relevant.")])
            )
        else:
            # The reason, not internals: errors are short messages by the agents' contract.
            reason = f"{title} {result.status}" + (f": {result.error[:200]}" if result.error else "")
            await updater.failed(updater.new_agent_message([Part(text=reason)]))

    def _run(self, query: str, ctx: AgentContext) -> AgentResult:
        with viewing_as(ctx.viewer):
            try:
                return self.agent.run(query, ctx)
            except Exception as exc:  # an agent never sinks the server
                log.exception("agent %s failed", self.agent.name)
                return AgentResult(
                    agent=self.agent.name, summary="", status="error", error=type(exc).__name__
                )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        # The framework cancels execute() (CancelledError sets the agent's cancel event).
        return None


# --- the app -------------------------------------------------------------------------------------
def select_agents(
    assistant: Assistant, names: Iterable[str] = (), *, builtin: set[str] | None = None
) -> list[BaseAgent]:
    """The agents to serve: the named ones (default: every enabled built-in one). Remote (a2a)
    agents are never re-served."""
    available = {
        n: a
        for n, a in assistant.by_name.items()
        if a.manifest.kind != "a2a" and (builtin is None or n in builtin)
    }
    wanted = [n.strip() for n in names if n.strip()]
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ValueError(
            f"unknown or not servable agent(s): {', '.join(unknown)}; choose from {', '.join(sorted(available))}"
        )
    return [available[n] for n in (wanted or sorted(available))]


def build_app(
    assistant: Assistant,
    agents: list[BaseAgent],
    base_url: str,
    auth: CallerAuth,
    *,
    workers: int = 16,
) -> Starlette:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="a2a-agent")
    builder = PrincipalContextBuilder()
    routes: list[Any] = []
    cards: dict[str, str] = {}
    for agent in agents:
        card = agent_card(agent, base_url)
        handler = DefaultRequestHandler(
            agent_executor=BuiltinAgentExecutor(agent, assistant, pool),
            task_store=InMemoryTaskStore(),
            agent_card=card,
        )
        prefix = f"/agents/{agent.name}"
        routes += create_agent_card_routes(card, card_url=prefix + CARD_SUFFIX)
        routes += create_jsonrpc_routes(handler, rpc_url=prefix + "/", context_builder=builder)
        cards[agent.name] = f"{base_url.rstrip('/')}{prefix}{CARD_SUFFIX}"

    async def index(request: Request) -> JSONResponse:
        return JSONResponse({"agents": cards})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes += [Route("/agents", index, methods=["GET"]), Route("/healthz", health, methods=["GET"])]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(AuthMiddleware, auth=auth)
    log.info("serving %d agent(s) over A2A: %s", len(agents), json.dumps(sorted(cards)))
    return app
