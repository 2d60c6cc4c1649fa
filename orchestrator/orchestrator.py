"""The per-turn Orchestrator: route → run agents in parallel (by stage) → synthesise, streaming.

`Assistant` holds what lives for the process (agents, router, LLM, index, thread pool) and is
the backend's TurnHandler. For every turn it builds a fresh `Orchestrator` from the session
state the backend passes in, so nothing is remembered between turns except through the session.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import re
import threading
import time
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
from agents.language import text_language
from orchestrator.context import (
    FollowUp,
    Reference,
    bounded_history,
    is_task_switch,
    resolve_follow_up,
    resolve_reference,
)
from orchestrator.coverage import (
    is_about_this_case,
    is_conversational,
    is_order_question,
    is_policy_question,
    is_ticket_question,
    mentions_this_product,
)
from orchestrator.drafting import (
    ReplyLanguage,
    compose_draft,
    is_draft_request,
    reply_language,
    ticket_language,
    ticket_topics,
)
from orchestrator.guardrails import PromptLeakFilter, detect_injection, render_ticket, retrieval_only
from orchestrator.routing.base import Route, Router, RoutingContext, RoutingDecision, RoutingError, timed
from orchestrator.routing.gemini import PROMPT as CONTROLLER_PROMPT
from orchestrator.routing.queries import MIN_SELF_CONTAINED_WORDS, enhance, order_numbers, ticket_text
from orchestrator.routing.shadow import ShadowRouter
from orchestrator.turn import (
    Delta,
    Done,
    Thinking,
    TurnEvent,
    TurnFailed,
    TurnRequest,
    new_turn_id,
)
from store.knowledge import KnowledgeIndex
from vertex_interface import LLM, Blocked, CallbackChain, CallTags, LLMError, Message, Source

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)  # a no-op unless the backend installs a tracer provider

SYNTHESIS_PROMPT = (Path(__file__).resolve().parent / "prompts" / "synthesis.md").read_text(encoding="utf-8")
UNAVAILABLE = {"timeout": "timed out", "unavailable": "is unavailable", "error": "failed"}
MAX_CITATION_TEXT = 700
DRAFT_LABEL = "Draft reply (offline: assembled from the quoted sources; check before sending):"
DRAFT_INSTRUCTION = (
    "The support agent wants a reply to send to the customer: write it as a ready-to-send draft "
    "(greeting with the customer's first name, the facts from the key facts and sources with this "
    "order's specifics, the next step, sign-off with the support agent's first name), citing "
    "sources after the draft."
)
# The reply's language is decided before synthesis (drafting.reply_language), never left to the model.
REPLY_LANGUAGE_INSTRUCTION = "Write the draft in {language}{why}."
# The source groups' names in the thinking line (the sidebar's chips say the same).
SOURCE_GROUP_TITLES = {
    "help_center": "Help Center",
    "tickets": "Tickets",
    "macros": "Macros",
    "store": "Store systems",
}
_CITE_MARK = re.compile(r"\s*\[(\d{1,3})\]")
_PROBLEM_SENTENCES = 2


def ticket_problem(ticket: Mapping[str, Any]) -> str:
    """The customer's problem in a line: the subject and the description's first sentences."""
    subject = str(ticket.get("subject") or "").strip()
    description = re.sub(r"\s+", " ", str(ticket.get("description") or "")).strip()
    first = " ".join(re.split(r"(?<=[.!?])\s+", description)[:_PROBLEM_SENTENCES])[:400]
    return ". ".join(p for p in (subject.rstrip(".?!"), first) if p)


_SKU = re.compile(r"\b[A-Z]{2}-\d{3}\b")


def ticket_skus(ticket: Mapping[str, Any]) -> list[str]:
    """Product SKUs the ticket carries (custom fields in either shape, subject, description)."""
    return list(dict.fromkeys(_SKU.findall(ticket_text(ticket))))


def ticket_order_numbers(ticket: Mapping[str, Any]) -> list[str]:
    """Order numbers the ticket carries (custom fields in either shape, subject, description)."""
    return order_numbers(ticket_text(ticket))


# A reply states what was done and the policy; the ticket's own lines (the customer wrote them),
# catalogue prices and CRM details are context for the agent, not news for the customer.
_NOT_IN_REPLIES = frozenset({"ticket", "product", "customer"})
# Sources written in a language (a record's lines are data); the tenant "has sources in" a
# language when the ones found for a reply include it.
_TEXT_SOURCES = frozenset({"article", "macro", "ticket"})


def reply_paragraphs(answer: str, sources: Sequence[Source], language: str | None = None) -> list[str]:
    """The quoted paragraphs an offline answer is made of, fit for a customer reply: without the
    offline label, without citation marks, without the ticket's own lines (the customer wrote
    them) and without internal notes. With `language`, paragraphs quoted only from texts in
    another language (an English article in a German reply) are left out; records' lines stay."""
    kinds = {s.number: s for s in sources}
    out = []
    for para in answer.split("\n\n"):
        numbers = [int(n) for n in _CITE_MARK.findall(para)]
        if not numbers:
            continue  # the label, or a note
        if any(
            kinds.get(n) is not None and (kinds[n].kind in _NOT_IN_REPLIES or kinds[n].internal)
            for n in numbers
        ):
            continue
        if language and all(
            kinds.get(n) is not None
            and kinds[n].kind in _TEXT_SOURCES
            and text_language(kinds[n].text) != language
            for n in numbers
        ):
            continue
        text = _CITE_MARK.sub("", para).strip()
        if text:
            out.append(text)
    return out


@dataclass(frozen=True)
class OrchestratorConfig:
    max_sources: int = 8
    max_agent_timeout_s: float = 20.0
    prior_summary_chars: int = 1200
    history_turns: int = 8
    # Calls of one agent in flight at once on this instance. A tool that ignores cancellation can
    # hold at most this many threads; the pool is sized so the other agents always have theirs.
    max_inflight_per_agent: int = 8
    # Product-level routing (orchestrator/coverage.py): the agent that holds the policies, asked
    # for policy questions and when the routed agents found nothing; the agent that reads the
    # ticket itself. Either may be absent from a deployment; then its rule does nothing.
    knowledge_agent: str = "knowledge_base"
    ticket_agent: str = "ticket"
    # The agent holding this ticket's order: a policy question about this customer's case
    # ("can she still return it?") needs its facts next to the policy.
    order_agent: str = "order_lookup"
    # The agent holding the ticket's product: "what range does this one have?" on a ticket
    # that names a product (its SKU field) is a catalogue question.
    product_agent: str = "product_catalog"
    # Canned replies: a draft request reads them next to the policy.
    macros_agent: str = "macros"


@dataclass
class Assistant:
    """The backend's TurnHandler: what lives for the process, shared by every turn.

    Holds the enabled agents (`by_name`), the router and its fallback, the LLM, the knowledge
    index, the agent thread pool with a slot semaphore per agent, and the prompt-leak filter.
    Thread-safe: turns run concurrently on the backend's threads, each in its own
    `Orchestrator`; nothing here changes after construction except the pool and the slots,
    which are made for concurrent use.
    """

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
        """Answer one turn: a fresh `Orchestrator` for `request`, as a generator (see
        `Orchestrator.run` for what it yields and raises). Nothing runs until it is iterated."""
        return Orchestrator(self, request).run()

    def close(self) -> None:
        """Stop the agent pool (running agents are not waited for) and a shadow router's."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        if isinstance(self.router, ShadowRouter):
            self.router.close()


class Orchestrator:
    """One turn: route → run the agents stage by stage, in parallel within a stage → synthesise.

    Built per turn by `Assistant.handle` and used by one thread (the backend's turn thread);
    the agents of a stage run on the assistant's pool, and their `think` lines come back through
    a queue, so only `run`'s thread yields events. State lives for the turn only: `turn_id` (see
    `orchestrator.turn.new_turn_id`) tags the turn's model usage, log lines and shadow decision.
    """

    def __init__(self, assistant: Assistant, request: TurnRequest) -> None:
        self.assistant = assistant
        self.request = request
        self.turn_id = new_turn_id(request.message_id)
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.tags = CallTags(session_id=request.session_id, turn_id=self.turn_id, agent="orchestrator")

    def _mark(self, phase: str, since: float) -> None:
        self.timings[f"{phase}_s"] = round(time.perf_counter() - since, 4)

    # --- the turn -----------------------------------------------------------------------------
    def run(self) -> Iterator[TurnEvent]:
        """The turn as events (the `TurnHandler` contract, orchestrator/turn.py).

        Yields `Thinking` (where it looks, what each agent found), `Delta` (the answer as it is
        written) and finally one `Done` with the text, citations, routing summary, timings,
        cost, the bounded model history and any shadow decision. A respond/clarify decision
        yields its text and `Done` without running agents. Raises `TurnFailed` when no router
        can decide (`routing_failed`), the model blocks the answer (`blocked`) or the LLM is
        unavailable (`llm_unavailable`); an agent that fails, times out or is busy never raises:
        the answer notes it. Stops early, without `Done`, once `request.cancel` is set.
        """
        req = self.request
        injected = detect_injection(" ".join(str(req.ticket.get(k, "")) for k in ("subject", "description")))
        if injected:
            log.warning("ticket %s contains instruction-like text; treated as data", req.ticket.get("id"))
        follow = resolve_follow_up(req.text, req.thread)
        ref = resolve_reference(req.text, req.thread) if not follow.citations else Reference()
        switch = not follow.citations and not ref.found and is_task_switch(req.text, req.thread, self._embed)
        history = [] if switch else list(req.model_history)
        draft = is_draft_request(req.text)

        t = time.perf_counter()
        with _tracer.start_as_current_span("route") as span:
            # "and the pan?" cannot be routed alone: route what it asks again.
            decision = self._route(
                follow, history, ref, query=ref.apply(req.text) if ref.asked_again else None
            )
            if draft:
                decision = self._route_draft(decision, follow, history)
            decision = self._cover(decision, ref)
            decision = self._filter_sources(decision, ref, draft)
            span.set_attributes(
                {"router": decision.router, "action": decision.action, "confidence": decision.confidence}
            )
        self._mark("route", t)
        decision.meta.update(
            {"task_switch": switch, **({"follow_up": follow.reason} if follow.reason else {})}
        )
        if ref.found:
            decision.meta["reference"] = {"about": ref.about or ref.asked_again, "reason": ref.reason}
        if draft:
            decision.meta["draft"] = True
        if injected:
            decision.meta["ticket_injection_flagged"] = True

        if decision.action in ("respond", "clarify"):
            text = decision.response or ""
            yield from self._stream_text(text)
            yield self._done(text, [], decision, history, {})
            return

        names = ", ".join(self.assistant.by_name[r.agent].manifest.title for r in decision.routes)
        if req.sources:
            names += f" (filter: {', '.join(SOURCE_GROUP_TITLES.get(g, g) for g in req.sources)})"
        yield Thinking(f"Looking in: {names}")
        t = time.perf_counter()
        results: list[AgentResult] = []
        for i, stage in enumerate(decision.stages):
            if i:
                stage = self._with_prior(stage, results)
            results += yield from self._run_stage(stage, results)
            if self.request.cancel.is_set():
                return
        fallback = self._fallback_stage(decision, results, ref)
        if fallback:
            decision.meta["fallback"] = fallback[0].agent
            results += yield from self._run_stage(fallback, results)
            if self.request.cancel.is_set():
                return
        self._mark("agents", t)

        evidence = self._evidence(follow, results)
        sources = [e.as_source(n) for n, e in enumerate(evidence, 1)]
        question = self._synthesis_question(follow, ref, draft)
        language = self._reply_language(evidence) if draft else None
        if language is not None and language.wanted != "en":
            # The customer's words in another language rarely match the sources' sentences
            # offline; the ticket's tags name its topic in the team's words.
            topics = ticket_topics(self.request.ticket)
            if topics:
                # Offline, sentences are ranked against the question: the customer's own words in
                # another language match few (and the coverage check declines long ones); the
                # ticket's tags name the topic in the words the sources use.
                question = topics
        t = time.perf_counter()
        declined = False
        if sources:
            with _tracer.start_as_current_span("synthesis", attributes={"sources": len(sources)}):
                text, cited, declined = yield from self._synthesise(
                    sources, history, question=question, draft=draft, language=language
                )
        else:
            searched = ", ".join(self.assistant.by_name[r.agent].manifest.title for r in decision.routes)
            text, cited = f"I couldn't find anything relevant to this question in: {searched}.", set()
            declined = True
            yield from self._stream_text(text)
        if declined:
            decision.meta["declined"] = True
        if language is not None:
            decision.meta["reply_language"] = getattr(self, "reply_language", language).code
        note = self._unavailable_note(results)
        if note:
            yield Delta(("\n\n" if text else "") + note)
            text = f"{text}\n\n{note}" if text else note
        self._mark("synthesis", t)
        citations = [self._citation(n, e, n in cited) for n, e in enumerate(evidence, 1)]
        facts = {
            "order_numbers": [e.id.split(":", 1)[1] for e in evidence if e.kind == "order"],
            "skus": [e.id.split(":", 1)[1] for e in evidence if e.kind == "product"],
        }
        yield self._done(text, citations, decision, history, facts, results)

    # --- routing ------------------------------------------------------------------------------
    def _route(
        self,
        follow: FollowUp,
        history: list[dict[str, Any]],
        ref: Reference | None = None,
        query: str | None = None,
    ) -> RoutingDecision:
        hints: dict[str, Any] = {}
        orders = follow.order_numbers or (ref.order_numbers if ref else [])
        if orders:
            hints["order_numbers"] = orders
        ctx = RoutingContext(
            query=query or self.request.text,
            ticket=self.request.ticket,
            manifests=self.assistant.manifests,
            history=history,
            tenant=self.request.principal.tenant,
            session_id=self.request.session_id,
            turn_id=self.turn_id,
            hints=hints,
        )
        try:
            decision = timed(self.assistant.router, ctx)
        except RoutingError as exc:
            if self.assistant.fallback_router is None:
                raise TurnFailed("routing_failed", "The assistant could not decide how to answer.") from exc
            log.warning(
                "router %s failed (%s); falling back to %s",
                self.assistant.router.name,
                exc,
                self.assistant.fallback_router.name,
            )
            decision = timed(self.assistant.fallback_router, ctx)
            decision.meta["fallback_from"] = self.assistant.router.name
            decision.meta["fallback_reason"] = str(exc)[:300]
        # Whatever a router said, only enabled agents run.
        decision.stages = [[r for r in s if r.agent in self.assistant.by_name] for s in decision.stages]
        decision.stages = [s for s in decision.stages if s]
        if decision.action == "route" and not decision.stages:
            decision.action, decision.response = (
                "clarify",
                "Could you tell me a bit more about what you need?",
            )
        return decision

    def _new_route(self, agent: str, query: str, ref: Reference | None = None) -> Route:
        manifest = self.assistant.by_name[agent].manifest
        hints = {"order_numbers": ref.order_numbers} if ref and ref.order_numbers else {}
        return Route(agent=agent, enhanced_query=enhance(query, manifest, self.request.ticket, hints))

    def _route_draft(
        self, decision: RoutingDecision, follow: FollowUp, history: list[dict[str, Any]]
    ) -> RoutingDecision:
        """ "What should I tell the customer?": the facts a reply needs are those of the customer's
        problem, so route the ticket's own ask too, and read the ticket."""
        problem = ticket_problem(self.request.ticket)
        topics = ticket_topics(self.request.ticket) if ticket_language(self.request.ticket) != "en" else ""
        # A customer writing another language: the knowledge base searches their language first
        # (with the topic's words too), the other sources by the topic in the team's words
        # (the ticket's tags), with the customer's text as the ticket context.
        native = f"{problem} ({topics})" if problem and topics else problem
        topical = f"{topics} — ticket: {problem}" if problem and topics else problem
        agents = [self.assistant.config.ticket_agent]
        if problem:
            try:
                for_problem = self._route(follow, history, query=topical)
            except TurnFailed:
                for_problem = None
            if for_problem is not None and for_problem.action == "route":
                agents += for_problem.agents
            if ticket_order_numbers(self.request.ticket):
                agents.append(self.assistant.config.order_agent)  # a reply on an order states where it is
            # The team's canned replies for this kind of problem, filled from the ticket, and
            # the policy behind them.
            agents += [self.assistant.config.macros_agent, self.assistant.config.knowledge_agent]
        routes = []
        for name in dict.fromkeys(agents):
            if name not in self.assistant.by_name:
                continue
            if name == self.assistant.config.ticket_agent:
                query = self.request.text
            elif name == self.assistant.config.knowledge_agent:
                query = native or self.request.text
            else:
                query = topical or self.request.text
            routes.append(self._new_route(name, query))
        if not routes:
            return decision
        return decision.model_copy(
            update={"action": "route", "stages": [routes], "response": None, "reason": "draft reply"}
        )

    def _cover(self, decision: RoutingDecision, ref: Reference) -> RoutingDecision:
        """Add the sources a question must reach (coverage.py) and spell out what it points at.

        The knowledge base holds every policy, so it joins any turn that is not a pure lookup of
        records or of the ticket; a router's "could you say more?" on a real question becomes a
        search there (an agent with a ticket open asked something: answer it or say nothing was
        found). Only conversational turns (thanks, greetings) keep a direct response.
        """
        text = ref.apply(self.request.text) if ref.asked_again else self.request.text
        kb, ticket_agent = self.assistant.config.knowledge_agent, self.assistant.config.ticket_agent
        must = []
        if is_ticket_question(text):
            must.append(ticket_agent)
        if is_policy_question(text):
            must.append(kb)
            if is_about_this_case(text) and not ref.found and ticket_order_numbers(self.request.ticket):
                must.append(self.assistant.config.order_agent)
        if is_order_question(text) and (ticket_order_numbers(self.request.ticket) or ref.order_numbers):
            must.append(self.assistant.config.order_agent)
        # What the question points back at is looked up again where it lives.
        if ref.order_numbers:
            must.append(self.assistant.config.order_agent)
        if ref.skus:
            must.append(self.assistant.config.product_agent)
        if ticket_skus(self.request.ticket) and mentions_this_product(text) and not is_ticket_question(text):
            must.append(self.assistant.config.product_agent)
        lookups = {ticket_agent} | {n for n, a in self.assistant.by_name.items() if a.manifest.kind == "api"}
        if decision.action == "route" and not set(decision.agents) <= lookups:
            must.append(kb)  # similar tickets / macros alone rarely state the policy itself
        if decision.action == "clarify" or (decision.action == "respond" and not is_conversational(text)):
            must.append(kb)
        must = [m for m in dict.fromkeys(must) if m in self.assistant.by_name and m not in decision.agents]
        if must and decision.action in ("route", "clarify", "respond"):
            added = [self._new_route(m, text, ref) for m in must]
            stages = [list(s) for s in decision.stages] if decision.action == "route" else []
            stages = [stages[0] + added, *stages[1:]] if stages else [added]
            if decision.action != "route":
                decision.meta["instead_of"] = decision.action
            decision = decision.model_copy(update={"action": "route", "stages": stages, "response": None})
            decision.meta["covered"] = must
        if ref.about:  # (an elliptical question was routed with what it asks again already)
            decision.stages = [
                [r.model_copy(update={"enhanced_query": ref.apply(r.enhanced_query)}) for r in stage]
                for stage in decision.stages
            ]
        return decision

    def _in_filter(self, agent: str) -> bool:
        """Is the agent in one of the source groups the question is restricted to (or unrestricted)?"""
        groups = self.request.sources
        return not groups or self.assistant.by_name[agent].manifest.source_group in groups

    def _filter_sources(self, decision: RoutingDecision, ref: Reference, draft: bool) -> RoutingDecision:
        """The agent restricted the question to some sources (the ask box's chips): only agents of
        those groups run (`source_group` in their manifests). When the filter excludes everything
        the router picked, the filter's own agents are asked: the agent said where to look."""
        groups = self.request.sources
        if not groups:
            return decision
        decision.meta["source_filter"] = list(groups)
        chosen = [name for name in self.assistant.by_name if self._in_filter(name)]
        if not chosen:
            titles = ", ".join(SOURCE_GROUP_TITLES.get(g, g) for g in groups)
            return decision.model_copy(
                update={
                    "action": "respond",
                    "stages": [],
                    "response": f"None of the chosen sources is available here: {titles}.",
                }
            )
        if decision.action != "route":
            return decision  # thanks, greetings: nothing is searched anyway
        stages = [[r for r in stage if self._in_filter(r.agent)] for stage in decision.stages]
        stages = [stage for stage in stages if stage]
        if not stages:
            text = ref.apply(self.request.text) if ref.asked_again else self.request.text
            problem = ticket_problem(self.request.ticket) if draft else ""
            ticket_agent = self.assistant.config.ticket_agent
            stages = [
                [self._new_route(n, problem if problem and n != ticket_agent else text, ref) for n in chosen]
            ]
            decision.meta["source_filter_widened"] = True
        return decision.model_copy(update={"stages": stages})

    def _fallback_stage(
        self, decision: RoutingDecision, results: list[AgentResult], ref: Reference
    ) -> list[Route]:
        """The routed agents found nothing that answers: ask the knowledge base in the same turn.

        A record agent that found the order but states no fact for this question ("where does
        she start the return?") did not answer it either: its lines only say what the record
        holds, and the question was about a policy."""
        kb = self.assistant.config.knowledge_agent
        if kb not in self.assistant.by_name or kb in decision.agents or not self._in_filter(kb):
            return []
        if any(r.usable and any(e.facts for e in r.evidence) for r in results):
            return []
        return [self._new_route(kb, ref.apply(self.request.text))]

    def _synthesis_question(self, follow: FollowUp, ref: Reference, draft: bool) -> str:
        """What the sentences are ranked against offline: the customer's problem for a draft,
        the topic for a pointer at an earlier source, named entities for 'it'."""
        if draft:
            return ticket_problem(self.request.ticket) or self.request.text
        if follow.focus:
            return follow.focus
        if ref.asked_again or (ref.about and ref.reason != "refers to the previous question"):
            return ref.apply(self.request.text)
        # "is this covered?", "what should he try first?": a short question leans on the ticket
        # for its subject, as its retrieval queries do (routing/queries.py `enhance`).
        subject = str(self.request.ticket.get("subject") or "").strip()
        words = len(re.findall(r"[A-Za-z0-9']+", self.request.text))
        if subject and words < MIN_SELF_CONTAINED_WORDS and subject.lower() not in self.request.text.lower():
            return f"{self.request.text} — {subject}"
        return self.request.text

    def _reply_language(self, evidence: list[Evidence]) -> ReplyLanguage:
        """The draft's language: the ticket's, when the sources found include texts in it."""
        ticket_agent = self.assistant.config.ticket_agent
        found = {
            text_language(e.text) for e in evidence if e.kind in _TEXT_SOURCES and e.agent != ticket_agent
        }
        return reply_language(self.request.ticket, self.request.text, found)

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
        """Run one stage's agents at once on the pool, yielding their thinking lines while they
        work; returns their results in the stage's order. An agent past its deadline is told to
        cancel and recorded as `timeout` (or `cancelled` with the turn); an agent whose earlier
        calls still hold all its slots is `unavailable` without being called."""
        lines: queue.SimpleQueue[Thinking] = queue.SimpleQueue()
        running: dict[Future[AgentResult], _InFlight] = {}
        bounded_prior = _bounded(prior, self.assistant.config.prior_summary_chars)
        for route in stage:
            agent = self.assistant.by_name[route.agent]
            title = agent.manifest.title
            ctx = AgentContext(
                tenant=self.request.principal.tenant,
                ticket=self.request.ticket,
                knowledge=self.assistant.knowledge,
                llm=self.assistant.llm,
                think=lambda text, title=title: lines.put(Thinking(f"{title}: {text}", agent=title)),
                cancel=threading.Event(),
                session_id=self.request.session_id,
                turn_id=self.turn_id,
                user_name=self.request.principal.user_name,
                services=self.assistant.services,
                prior=bounded_prior,
                tool_callbacks=self.assistant.tool_callbacks,
            )
            deadline = time.monotonic() + min(
                agent.manifest.timeout_s, self.assistant.config.max_agent_timeout_s
            )
            yield Thinking(f"{title}: searching for “{route.enhanced_query[:120]}”", agent=title)
            # copy_context: agent threads log with the turn's correlation ids.
            if not self.assistant.slots[agent.name].acquire(blocking=False):
                # Its earlier calls are still stuck: don't queue behind them (nor make others wait).
                busy = AgentResult(
                    agent=agent.name, summary="", status="unavailable", error="too many calls still running"
                )
                future = Future()
                future.set_result(busy)
            else:
                future = self.assistant.executor.submit(
                    contextvars.copy_context().run, self._call_agent, agent, route.enhanced_query, ctx
                )
            running[future] = _InFlight(route, agent, ctx, deadline)

        results: dict[str, AgentResult] = {}
        pending = set(running)
        while pending:
            done, pending = wait(pending, timeout=0.05, return_when=FIRST_COMPLETED)
            while not lines.empty():
                yield lines.get()
            for fut in done:
                results[running[fut].route.agent] = fut.result()
            now = time.monotonic()
            for fut in list(pending):
                call = running[fut]
                if now >= call.deadline or self.request.cancel.is_set():
                    call.ctx.cancel.set()  # the agent stops at its next check; its late result is ignored
                    pending.discard(fut)
                    status = "cancelled" if self.request.cancel.is_set() else "timeout"
                    results[call.route.agent] = AgentResult(
                        agent=call.route.agent,
                        summary="",
                        status=status,
                        error=f"no answer within {call.agent.manifest.timeout_s:g}s",
                    )
        while not lines.empty():
            yield lines.get()
        ordered = [results[r.agent] for r in stage]
        for r in ordered:
            title = self.assistant.by_name[r.agent].manifest.title
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

    def _call_agent(self, agent: BaseAgent, query: str, ctx: AgentContext) -> AgentResult:
        """One agent call on a pool thread, in the agent's slot (acquired by `_run_stage`, released
        here), inside an `agent` span and the agent callbacks. Never raises: an agent failing never
        sinks the turn; it becomes an `error` result."""
        request = AgentRequest(agent.name, query)
        with _tracer.start_as_current_span("agent", attributes={"agent": agent.name}) as span:
            try:
                self.assistant.agent_callbacks.run_before(request)
                result = agent.run(query, ctx)
                self.assistant.agent_callbacks.run_after(request, result)
            except Exception as exc:
                log.exception("agent %s failed", agent.name)
                result = AgentResult(agent=agent.name, summary="", status="error", error=type(exc).__name__)
            finally:
                self.assistant.slots[agent.name].release()
            for e in result.evidence:
                if not e.agent:
                    object.__setattr__(e, "agent", agent.name)
            span.set_attributes({"status": result.status, "results": len(result.evidence)})
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
        while any(lists) and len(out) < self.assistant.config.max_sources:
            for lst in lists:
                while lst:
                    e = lst.pop(0)
                    if e.id not in seen and e.text.strip():
                        seen.add(e.id)
                        out.append(e)
                        break
        return out[: self.assistant.config.max_sources]

    def _synthesise(
        self,
        sources: list[Source],
        history: list[dict[str, Any]],
        *,
        question: str,
        draft: bool = False,
        language: ReplyLanguage | None = None,
    ) -> Iterator[TurnEvent]:
        """Stream the answer; returns (text, cited source numbers, declined)."""
        ask = f"Question: {self.request.text}"
        if question != self.request.text:
            ask += f"\n(Resolved: {question})"
        language = language or ReplyLanguage("en", "en")
        if draft:
            why = f" ({language.note})" if language.note else " (the ticket's language)"
            line = REPLY_LANGUAGE_INSTRUCTION.format(language=language.name, why=why)
            ask += f"\n{DRAFT_INSTRUCTION} {line}"
        contents = [
            *self._history_messages(history),
            Message("user", f"{render_ticket(self.request.ticket)}\n\n{ask}"),
        ]
        can = self.assistant.llm.capabilities
        if not can.follows_instructions:
            # It answers the last user message alone (the extractive responder ranks sentences
            # against it): send the question itself.
            contents = [Message("user", question)]
        tags = CallTags(session_id=self.request.session_id, turn_id=self.turn_id, agent="synthesis")
        text, cited, first, declined = "", set(), True, False
        # Quoted answers: a draft is composed from the quoted facts once they are known, then streamed.
        hold = draft and can.extractive
        try:
            for delta in self.assistant.llm.stream(
                contents, system=SYNTHESIS_PROMPT, sources=sources, tags=tags
            ):
                if delta.is_final:
                    assert delta.response is not None
                    text = delta.response.text
                    cited = set(delta.response.citations)
                    declined = delta.response.finish_reason == "NO_RELEVANT_SOURCES"
                    break
                if hold:
                    continue
                if first:
                    self.timings["first_token_s"] = round(time.perf_counter() - self.started, 4)
                    first = False
                    if draft and language.note:
                        # The agent's note goes on a label line, which Insert leaves out (markdown.js).
                        yield Delta(f"Draft reply ({language.note}):\n\n")
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
        if hold:
            paragraphs = reply_paragraphs(text, sources, language.code)
            quoted = [text_language(p, min_words=2) for p in reply_paragraphs(text, sources)]
            native, english = quoted.count(language.code), quoted.count("en")
            if language.code != "en" and (not native or native < english):
                # Less was quoted in the customer's language than in English (records' lines count
                # as English): a draft in English, saying so, rather than a mixed or a thin one.
                paragraphs = reply_paragraphs(text, sources, "en")
                name = language.name
                language = ReplyLanguage("en", language.wanted, f"no {name} sources; draft in English")
            if paragraphs or not declined:
                body = compose_draft(
                    self.request.ticket, self.request.principal.user_name, paragraphs, language.code
                )
                label = DRAFT_LABEL[:-2] + f"; {language.note}):" if language.note else DRAFT_LABEL
                text = f"{label}\n\n{body}" if body else text
                declined = False if body else declined
            yield from self._stream_text(text)
        self.reply_language = language
        if not hold and draft and language.note and text:
            text = f"Draft reply ({language.note}):\n\n{text}"
        if self.assistant.leak_filter.leaks(text):
            log.warning("synthesis output quoted a protected prompt; replaced")
            text = "I can't share that. Ask me about the ticket and I'll answer from the sources."
            yield Delta("\n\n" + text)
        return text, cited, declined

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
            f"{self.assistant.by_name[r.agent].manifest.title} {UNAVAILABLE[r.status]}"
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
            "internal": e.internal,
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
        shadow = None
        if isinstance(self.assistant.router, ShadowRouter):
            # Whatever the candidate has by now; the turn never waits for it.
            shadow = self.assistant.router.collect(self.turn_id)
        usage = self.assistant.llm.ledger.discard(session_id=self.request.session_id, turn_id=self.turn_id)
        return Done(
            text=text,
            citations=citations,
            routing=routing,
            timings=self.timings,
            cost=usage.as_dict(),
            model_history=bounded_history(
                history, self.request.text, text, max_turns=self.assistant.config.history_turns
            ),
            shadow=shadow or None,
        )

    def _embed(self, texts: list[str]):
        return self.assistant.llm.embed(texts, task_type="SEMANTIC_SIMILARITY", tags=self.tags)


@dataclass(frozen=True)
class _InFlight:
    """One agent call of a stage while it runs: what `_run_stage` needs to time it out."""

    route: Route
    agent: BaseAgent
    ctx: AgentContext
    deadline: float  # time.monotonic() after which its result is no longer waited for


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
