"""The per-turn Orchestrator: route → run agents in parallel (by stage) → synthesise, streaming.

`Assistant` holds what lives for the process (agents, router, LLM, index, thread pool) and is
the backend's TurnHandler. For every turn it builds a fresh `Orchestrator` from the session
state the backend passes in, so nothing is remembered between turns except through the session.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import trace

from agents.base import (
    AgentCallbacks,
    AgentContext,
    AgentRequest,
    AgentResult,
    BaseAgent,
    Evidence,
    ToolCallbacks,
)
from orchestrator.context import FollowUp, bounded_history, is_task_switch, resolve_follow_up
from orchestrator.guardrails import PromptLeakFilter, detect_injection, render_ticket, retrieval_only
from orchestrator.routing.base import Route, Router, RoutingContext, RoutingDecision, RoutingError, timed
from orchestrator.routing.gemini import PROMPT as CONTROLLER_PROMPT
from orchestrator.routing.shadow import ShadowRouter
from orchestrator.turn import Delta, Done, Thinking, TurnEvent, TurnFailed, TurnRequest
from store.knowledge import KnowledgeIndex
from vertex_interface import LLM, Blocked, CallbackChain, CallTags, LLMError, Message, Source

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)  # a no-op unless the backend installs a tracer provider

SYNTHESIS_PROMPT = (Path(__file__).resolve().parent / "prompts" / "synthesis.md").read_text(encoding="utf-8")
UNAVAILABLE = {"timeout": "timed out", "unavailable": "is unavailable", "error": "failed"}
MAX_CITATION_TEXT = 700


@dataclass(frozen=True)
class OrchestratorConfig:
    max_sources: int = 8
    max_agent_timeout_s: float = 20.0
    prior_summary_chars: int = 1200
    history_turns: int = 8
    # Calls of one agent in flight at once on this instance. A tool that ignores cancellation can
    # hold at most this many threads; the pool is sized so the other agents always have theirs.
    max_inflight_per_agent: int = 8


@dataclass
class Assistant:
    """The TurnHandler: shared, thread-safe resources; one Orchestrator per turn."""

    agents: Sequence[BaseAgent]
    router: Router
    llm: LLM
    knowledge: KnowledgeIndex | None
    services: Mapping[str, Any] = field(default_factory=dict)
    fallback_router: Router | None = None
    config: OrchestratorConfig = field(default_factory=OrchestratorConfig)
    agent_callbacks: AgentCallbacks = field(default_factory=CallbackChain)
    tool_callbacks: ToolCallbacks = field(default_factory=lambda: CallbackChain(before=[retrieval_only]))

    def __post_init__(self) -> None:
        self.by_name = {a.name: a for a in self.agents if a.manifest.enabled}
        self.slots = {
            name: threading.BoundedSemaphore(self.config.max_inflight_per_agent) for name in self.by_name
        }
        workers = max(4, self.config.max_inflight_per_agent * len(self.by_name))
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agent")
        prompts = [SYNTHESIS_PROMPT, CONTROLLER_PROMPT, *(p for a in self.agents for p in a.prompts.values())]
        self.leak_filter = PromptLeakFilter(prompts)

    @property
    def manifests(self) -> list:
        return [a.manifest for a in self.by_name.values()]

    def handle(self, request: TurnRequest) -> Iterator[TurnEvent]:
        return Orchestrator(self, request).run()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if isinstance(self.router, ShadowRouter):
            self.router.close()


class Orchestrator:
    def __init__(self, assistant: Assistant, request: TurnRequest) -> None:
        self.a = assistant
        self.req = request
        self.turn_id = f"{request.message_id}:{uuid.uuid4().hex[:6]}"
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.tags = CallTags(session_id=request.session_id, turn_id=self.turn_id, agent="orchestrator")

    def _mark(self, phase: str, since: float) -> None:
        self.timings[f"{phase}_s"] = round(time.perf_counter() - since, 4)

    # --- the turn -----------------------------------------------------------------------------
    def run(self) -> Iterator[TurnEvent]:
        req = self.req
        injected = detect_injection(" ".join(str(req.ticket.get(k, "")) for k in ("subject", "description")))
        if injected:
            log.warning("ticket %s contains instruction-like text; treated as data", req.ticket.get("id"))
        follow = resolve_follow_up(req.text, req.thread)
        switch = not follow.citations and is_task_switch(req.text, req.thread, self._embed)
        history = [] if switch else list(req.model_history)

        t = time.perf_counter()
        with _tracer.start_as_current_span("route") as span:
            decision = self._route(follow, history)
            span.set_attributes(
                {"router": decision.router, "action": decision.action, "confidence": decision.confidence}
            )
        self._mark("route", t)
        decision.meta.update(
            {"task_switch": switch, **({"follow_up": follow.reason} if follow.reason else {})}
        )
        if injected:
            decision.meta["ticket_injection_flagged"] = True

        if decision.action in ("respond", "clarify"):
            text = decision.response or ""
            yield from self._stream_text(text)
            yield self._done(text, [], decision, history, {})
            return

        names = ", ".join(self.a.by_name[r.agent].manifest.title for r in decision.routes)
        yield Thinking(f"Looking in: {names}")
        t = time.perf_counter()
        results: list[AgentResult] = []
        for i, stage in enumerate(decision.stages):
            if i:
                stage = self._with_prior(stage, results)
            results += yield from self._run_stage(stage, results)
            if self.req.cancel.is_set():
                return
        self._mark("agents", t)

        evidence = self._evidence(follow, results)
        sources = [e.as_source(n) for n, e in enumerate(evidence, 1)]
        t = time.perf_counter()
        if sources:
            with _tracer.start_as_current_span("synthesis", attributes={"sources": len(sources)}):
                text, cited = yield from self._synthesise(sources, history, focus=follow.focus)
        else:
            searched = ", ".join(self.a.by_name[r.agent].manifest.title for r in decision.routes)
            text, cited = f"I couldn't find anything relevant to this question in: {searched}.", set()
            yield from self._stream_text(text)
        note = self._unavailable_note(results)
        if note:
            yield Delta(("\n\n" if text else "") + note)
            text = f"{text}\n\n{note}" if text else note
        self._mark("synthesis", t)
        citations = [self._citation(n, e, n in cited) for n, e in enumerate(evidence, 1)]
        facts = {"order_numbers": [e.id.split(":", 1)[1] for e in evidence if e.kind == "order"]}
        yield self._done(text, citations, decision, history, facts, results)

    # --- routing ------------------------------------------------------------------------------
    def _route(self, follow: FollowUp, history: list[dict[str, Any]]) -> RoutingDecision:
        ctx = RoutingContext(
            query=self.req.text,
            ticket=self.req.ticket,
            manifests=self.a.manifests,
            history=history,
            tenant=self.req.principal.tenant,
            session_id=self.req.session_id,
            turn_id=self.turn_id,
            hints={"order_numbers": follow.order_numbers} if follow.order_numbers else {},
        )
        try:
            decision = timed(self.a.router, ctx)
        except RoutingError as exc:
            if self.a.fallback_router is None:
                raise TurnFailed("routing_failed", "The assistant could not decide how to answer.") from exc
            log.warning(
                "router %s failed (%s); falling back to %s",
                self.a.router.name,
                exc,
                self.a.fallback_router.name,
            )
            decision = timed(self.a.fallback_router, ctx)
            decision.meta["fallback_from"] = self.a.router.name
            decision.meta["fallback_reason"] = str(exc)[:300]
        # Whatever a router said, only enabled agents run.
        decision.stages = [[r for r in s if r.agent in self.a.by_name] for s in decision.stages]
        decision.stages = [s for s in decision.stages if s]
        if decision.action == "route" and not decision.stages:
            decision.action, decision.response = (
                "clarify",
                "Could you tell me a bit more about what you need?",
            )
        return decision

    def _with_prior(self, stage: list[Route], prior: list[AgentResult]) -> list[Route]:
        """Later stages see the facts earlier agents found (e.g. the ordered product)."""
        context = " ".join(str(r.data.get("query_context", "")) for r in prior if r.usable).strip()
        if not context:
            return stage
        return [
            r.model_copy(update={"enhanced_query": f"{r.enhanced_query} ({context[:300]})"}) for r in stage
        ]

    # --- agents -------------------------------------------------------------------------------
    def _run_stage(self, stage: list[Route], prior: list[AgentResult]) -> Iterator[TurnEvent]:
        lines: queue.SimpleQueue[Thinking] = queue.SimpleQueue()
        running: dict[Future, tuple[Route, BaseAgent, AgentContext, float]] = {}
        bounded_prior = _bounded(prior, self.a.config.prior_summary_chars)
        for route in stage:
            agent = self.a.by_name[route.agent]
            title = agent.manifest.title
            ctx = AgentContext(
                tenant=self.req.principal.tenant,
                ticket=self.req.ticket,
                knowledge=self.a.knowledge,
                llm=self.a.llm,
                think=lambda text, title=title: lines.put(Thinking(f"{title}: {text}", agent=title)),
                cancel=threading.Event(),
                session_id=self.req.session_id,
                turn_id=self.turn_id,
                user_name=self.req.principal.user_name,
                services=self.a.services,
                prior=bounded_prior,
                tool_callbacks=self.a.tool_callbacks,
            )
            deadline = time.monotonic() + min(agent.manifest.timeout_s, self.a.config.max_agent_timeout_s)
            yield Thinking(f"{title}: searching for “{route.enhanced_query[:120]}”", agent=title)
            # copy_context: agent threads log with the turn's correlation ids.
            if not self.a.slots[agent.name].acquire(blocking=False):
                # Its earlier calls are still stuck: don't queue behind them (nor make others wait).
                busy = AgentResult(
                    agent=agent.name, summary="", status="unavailable", error="too many calls still running"
                )
                future = Future()
                future.set_result(busy)
            else:
                future = self.a.executor.submit(
                    contextvars.copy_context().run, self._call_agent_in_slot, agent, route.enhanced_query, ctx
                )
            running[future] = (
                route,
                agent,
                ctx,
                deadline,
            )

        results: dict[str, AgentResult] = {}
        pending = set(running)
        while pending:
            done, pending = wait(pending, timeout=0.05, return_when=FIRST_COMPLETED)
            while not lines.empty():
                yield lines.get()
            for fut in done:
                route, agent, _, _ = running[fut]
                results[route.agent] = fut.result()
            now = time.monotonic()
            for fut in list(pending):
                route, agent, ctx, deadline = running[fut]
                if now >= deadline or self.req.cancel.is_set():
                    ctx.cancel.set()  # the agent stops at its next check; its late result is ignored
                    pending.discard(fut)
                    status = "cancelled" if self.req.cancel.is_set() else "timeout"
                    results[route.agent] = AgentResult(
                        agent=route.agent,
                        summary="",
                        status=status,
                        error=f"no answer within {agent.manifest.timeout_s:g}s",
                    )
        while not lines.empty():
            yield lines.get()
        ordered = [results[r.agent] for r in stage]
        for r in ordered:
            title = self.a.by_name[r.agent].manifest.title
            if r.status == "ok":
                yield Thinking(
                    f"{title}: found {len(r.evidence)} result{'s' if len(r.evidence) != 1 else ''}",
                    agent=title,
                )
            elif r.status == "empty":
                yield Thinking(f"{title}: nothing relevant", agent=title)
            else:
                yield Thinking(f"{title} {UNAVAILABLE.get(r.status, r.status)}", agent=title)
        return ordered

    def _call_agent_in_slot(self, agent: BaseAgent, query: str, ctx: AgentContext) -> AgentResult:
        try:
            return self._call_agent(agent, query, ctx)
        finally:
            self.a.slots[agent.name].release()

    def _call_agent(self, agent: BaseAgent, query: str, ctx: AgentContext) -> AgentResult:
        with _tracer.start_as_current_span("agent", attributes={"agent": agent.name}) as span:
            result = self._call_agent_inner(agent, query, ctx)
            span.set_attributes({"status": result.status, "results": len(result.evidence)})
            return result

    def _call_agent_inner(self, agent: BaseAgent, query: str, ctx: AgentContext) -> AgentResult:
        request = AgentRequest(agent.name, query)
        try:
            self.a.agent_callbacks.run_before(request)
            result = agent.run(query, ctx)
            self.a.agent_callbacks.run_after(request, result)
        except Exception as exc:  # one agent failing never sinks the turn
            log.exception("agent %s failed", agent.name)
            result = AgentResult(agent=agent.name, summary="", status="error", error=type(exc).__name__)
        for e in result.evidence:
            if not e.agent:
                object.__setattr__(e, "agent", agent.name)
        return result

    # --- synthesis ----------------------------------------------------------------------------
    def _evidence(self, follow: FollowUp, results: list[AgentResult]) -> list[Evidence]:
        out: list[Evidence] = []
        seen: set[str] = set()
        for c in follow.citations:  # what the question explicitly points at comes first
            if c.get("text") and c.get("id") not in seen:
                seen.add(c["id"])
                out.append(
                    Evidence(
                        id=c["id"],
                        title=c.get("title", ""),
                        text=c["text"],
                        kind=c.get("kind", "article"),
                        url=c.get("url"),
                        score=1.0,
                        agent=c.get("agent", ""),
                    )
                )
        # Round-robin across agents so one agent's long list cannot crowd out the others.
        lists = [list(r.evidence) for r in results if r.status == "ok"]
        while any(lists) and len(out) < self.a.config.max_sources:
            for lst in lists:
                while lst:
                    e = lst.pop(0)
                    if e.id not in seen and e.text.strip():
                        seen.add(e.id)
                        out.append(e)
                        break
        return out[: self.a.config.max_sources]

    def _synthesise(
        self, sources: list[Source], history: list[dict[str, Any]], focus: str | None = None
    ) -> Iterator[TurnEvent]:
        contents = [
            *self._history_messages(history),
            Message("user", f"{render_ticket(self.req.ticket)}\n\nQuestion: {self.req.text}"),
        ]
        if self.a.llm.backend == "local":
            # The extractive responder ranks sentences against the question itself.
            contents = [Message("user", focus or self.req.text)]
        tags = CallTags(session_id=self.req.session_id, turn_id=self.turn_id, agent="synthesis")
        text, cited, first = "", set(), True
        try:
            for delta in self.a.llm.stream(contents, system=SYNTHESIS_PROMPT, sources=sources, tags=tags):
                if delta.is_final:
                    assert delta.response is not None
                    text = delta.response.text
                    cited = set(delta.response.citations)
                    break
                if first:
                    self.timings["first_token_s"] = round(time.perf_counter() - self.started, 4)
                    first = False
                yield Delta(delta.text)
        except Blocked as exc:
            raise TurnFailed(
                "blocked", "The answer was blocked by the model's safety filters.", retryable=False
            ) from exc
        except LLMError as exc:
            # The SDK's retries are spent, but the user's retry later may well succeed (outage ends).
            raise TurnFailed(
                "llm_unavailable",
                "The language model is unavailable right now; please retry.",
                retryable=True,
            ) from exc
        if self.a.leak_filter.leaks(text):
            log.warning("synthesis output quoted a protected prompt; replaced")
            text = "I can't share that. Ask me about the ticket and I'll answer from the sources."
            yield Delta("\n\n" + text)
        return text, cited

    def _stream_text(self, text: str) -> Iterator[TurnEvent]:
        words = text.split(" ")
        for i in range(0, len(words), 4):
            if i == 0:
                self.timings["first_token_s"] = round(time.perf_counter() - self.started, 4)
            yield Delta((" " if i else "") + " ".join(words[i : i + 4]))

    def _history_messages(self, history: list[dict[str, Any]]) -> list[Message]:
        out = []
        for h in history:
            role, text = h.get("role"), str(h.get("text", ""))
            if role == "summary":
                out.append(Message("user", f"(Summary of the earlier conversation)\n{text}"))
            elif role in ("user", "model") and text:
                out.append(Message(role, text))
        # google-genai expects alternating turns ending before the new user message.
        return out

    def _unavailable_note(self, results: list[AgentResult]) -> str:
        missing = [
            f"{self.a.by_name[r.agent].manifest.title} {UNAVAILABLE[r.status]}"
            for r in results
            if r.status in UNAVAILABLE
        ]
        return f"_Note: {'; '.join(missing)}, so this answer may be incomplete._" if missing else ""

    @staticmethod
    def _citation(n: int, e: Evidence, cited: bool) -> dict[str, Any]:
        return {
            "n": n,
            "id": e.id,
            "title": e.title,
            "url": e.url,
            "kind": e.kind,
            "agent": e.agent,
            "cited": cited,
            "text": e.text[:MAX_CITATION_TEXT],
        }

    def _done(
        self,
        text: str,
        citations: list[dict[str, Any]],
        decision: RoutingDecision,
        history: list[dict[str, Any]],
        facts: dict[str, Any],
        results: list[AgentResult] = (),  # type: ignore[assignment]
    ) -> Done:
        self.timings["total_s"] = round(time.perf_counter() - self.started, 4)
        routing = decision.summary()
        routing["agents"] = {
            r.agent: {
                "status": r.status,
                "latency_ms": round(r.latency_s * 1000, 1),
                "results": len(r.evidence),
                "confidence": round(r.confidence, 4),
            }
            for r in results
        }
        if facts.get("order_numbers"):
            routing["facts"] = facts
        if isinstance(self.a.router, ShadowRouter):
            # Whatever the candidate has by now; the turn never waits for it.
            shadow = self.a.router.collect(self.turn_id)
            if shadow:
                routing["shadow"] = shadow
        usage = self.a.llm.ledger.discard(session_id=self.req.session_id, turn_id=self.turn_id)
        return Done(
            text=text,
            citations=citations,
            routing=routing,
            timings=self.timings,
            cost=usage.as_dict(),
            model_history=bounded_history(
                history, self.req.text, text, max_turns=self.a.config.history_turns
            ),
        )

    def _embed(self, texts: list[str]):
        return self.a.llm.embed(texts, task_type="SEMANTIC_SIMILARITY", tags=self.tags)


def _bounded(results: list[AgentResult], limit: int) -> list[AgentResult]:
    """Later stages get short summaries of earlier results, not their whole evidence."""
    out, used = [], 0
    for r in results:
        summary = r.summary[: max(0, limit - used)]
        used += len(summary)
        out.append(
            AgentResult(agent=r.agent, summary=summary, status=r.status, data=r.data, confidence=r.confidence)
        )
    return out
