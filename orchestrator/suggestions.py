"""Suggestions without asking: the Help Center articles, similar solved tickets and macros that
fit the open ticket, each with why it matched and the text one click inserts into the reply.

The sidebar's version of auto assist. The agents that answer questions do the searching (their
own tools, queries and relevance floors: agents/knowledge_base, similar_tickets, macros), run in
parallel on the assistant's pool with the query the ticket itself asks: its subject and the
customer's ask. Retrieval only: no model call is spent on choosing a tool (the context carries no
LLM), so suggestions cost nothing per ticket on either backend. Macros come with their
placeholders filled from the ticket (the macros agent's `fill_placeholders`); internal content
(restricted articles and macros, another ticket's internal notes) is marked `internal` and the
sidebar asks before inserting it, as it does for answers.
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any

from agents.base import AgentContext, AgentResult, BaseAgent, Evidence
from agents.common import lead
from agents.facts import content_words, fold

KINDS = {"knowledge_base": "article", "similar_tickets": "ticket", "macros": "macro"}
PER_KIND = 3
MAX_QUERY_CHARS = 400
MAX_INSERT_CHARS = 4000
_IDS = re.compile(r"\b[A-Z]{2}-\d{3,6}\b")  # order numbers and SKUs: the ticket's own, not a topic
# Pleasantries a resolution opens with ("Thanks for checking with us."): not what was done.
_PLEASANTRY = re.compile(r"^(?:thanks|thank you|sorry|apologies|good news)\b[^.!?]*[.!?]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class SuggestionConfig:
    per_kind: int = PER_KIND
    # The agents' own timeouts are 6 s; the first search of a process also loads the embedder.
    timeout_s: float = 15.0


def suggestion_query(ticket: Mapping[str, Any], recap: Mapping[str, Any]) -> str:
    """What the ticket asks, as the agents' query: the subject and the customer's ask (the
    problem's opening when the customer asked nothing explicit)."""
    problem = str(recap.get("problem") or "").strip() or str(ticket.get("subject") or "").strip()
    ask = str(recap.get("ask") or "").strip()
    query = problem if not ask or ask.lower() in problem.lower() else f"{problem} {ask}"
    return query[:MAX_QUERY_CHARS]


def why_matched(query: str, e: Evidence, extra: Sequence[str] = ()) -> str:
    """Which of the ticket's words the suggestion shares, and how close the search found it."""
    common = content_words(_IDS.sub(" ", query)) & content_words(f"{e.title} {e.text}")
    # One word per stem ("day"/"days"), longest first: the words an agent recognises.
    stems: dict[str, str] = {}
    for w in sorted(common, key=len):
        if len(w) > 2:
            stems[fold(w.rstrip("s"))] = w
    shared = sorted(set(stems.values()), key=lambda w: (-len(w), w))[:4]
    parts = []
    if shared:
        parts.append("shares “" + "”, “".join(shared) + "” with the ticket")
    if e.score:
        parts.append(f"search score {e.score:.2f}")
    parts += list(extra)
    return "; ".join(parts) or "closest match in the search"


def _article(e: Evidence, query: str) -> dict[str, Any]:
    text = lead(e.text.split("\n", 1)[-1] if e.text.startswith(e.title) else e.text, 300)
    insert = f"{text}\n\n[{e.title}]({e.url})" if e.url and not e.internal else text
    return {"preview": lead(text, 160), "insert": insert[:MAX_INSERT_CHARS], "why": why_matched(query, e)}


def _ticket(e: Evidence, query: str) -> dict[str, Any]:
    resolved = e.text.split("Resolved:", 1)[-1].strip() if "Resolved:" in e.text else ""
    if resolved == "not recorded":
        resolved = ""
    while _PLEASANTRY.match(resolved):
        resolved = _PLEASANTRY.sub("", resolved, count=1)
    problem = e.text.split("\n", 1)[0].removeprefix("Problem:").strip()
    return {
        "preview": lead(resolved or problem, 160),
        # What was done there is what might be said here; the other customer's problem is not.
        "insert": resolved[:MAX_INSERT_CHARS],
        "why": why_matched(query, e, [f"solved: {lead(resolved, 90)}"] if resolved else []),
    }


def _macro(e: Evidence, query: str, filled: Mapping[str, Any] | None) -> dict[str, Any]:
    text = str((filled or {}).get("text") or e.text)
    unfilled = list((filled or {}).get("unfilled") or [])
    extra = (
        [f"left for Zendesk to fill: {', '.join(unfilled)}"]
        if unfilled
        else ["placeholders filled from the ticket"]
    )
    return {
        "preview": lead(text, 160),
        "insert": text[:MAX_INSERT_CHARS],
        "unfilled": unfilled,
        "why": why_matched(query, e, extra),
    }


class Suggester:
    """Runs the retrieval agents of an Assistant for a ticket (thread-safe; one per process)."""

    def __init__(self, assistant: Any, config: SuggestionConfig | None = None) -> None:
        self.a = assistant
        self.config = config or SuggestionConfig()
        self._warm = threading.Lock()
        self._warmed = False

    def warm_up(self) -> None:
        """Load the embedder once, before the three searches race to load it each (seconds)."""
        with self._warm:
            if self._warmed or self.a.knowledge is None:
                return
            self.a.knowledge.embedder.embed(["warm up"], task_type="RETRIEVAL_QUERY")
            self._warmed = True

    def agents(self) -> list[BaseAgent]:
        return [self.a.by_name[name] for name in KINDS if name in self.a.by_name]

    def __call__(
        self,
        ticket: Mapping[str, Any],
        recap: Mapping[str, Any],
        *,
        tenant: str,
        session_id: str | None = None,
        user_name: str | None = None,
    ) -> dict[str, Any]:
        query = suggestion_query(ticket, recap)
        if not query:
            return {"query": "", "items": [], "notes": ["the ticket says too little to search with"]}
        self.warm_up()
        running: dict[Future, tuple[BaseAgent, AgentContext]] = {}
        for agent in self.agents():
            ctx = AgentContext(
                tenant=tenant,
                ticket=ticket,
                knowledge=self.a.knowledge,
                llm=None,  # retrieval only: the agents' deterministic tool choice, no model call
                cancel=threading.Event(),
                session_id=session_id,
                turn_id="suggestions",
                user_name=user_name,
                services=self.a.services,
                tool_callbacks=self.a.tool_callbacks,
            )
            # copy_context: the viewer (restricted content) and log correlation reach the thread.
            fut = self.a.executor.submit(contextvars.copy_context().run, agent.run, query, ctx)
            running[fut] = (agent, ctx)
        deadline = time.monotonic() + self.config.timeout_s
        done, pending = wait(list(running), timeout=max(0.0, deadline - time.monotonic()))
        items: list[dict[str, Any]] = []
        notes: list[str] = []
        for fut in pending:
            agent, ctx = running[fut]
            ctx.cancel.set()
            notes.append(f"{agent.manifest.title} timed out")
        for fut, (agent, _) in running.items():
            if fut not in done:
                continue
            result: AgentResult = fut.result()
            if result.status in ("error", "unavailable"):
                notes.append(f"{agent.manifest.title} is unavailable")
                continue
            items += self._items(agent, result, query)
        order = {"article": 0, "ticket": 1, "macro": 2}
        items.sort(key=lambda s: (order[s["kind"]], -s["score"]))
        return {"query": query, "items": items, "notes": notes}

    def _items(self, agent: BaseAgent, result: AgentResult, query: str) -> list[dict[str, Any]]:
        kind = KINDS[agent.name]
        filled = {}
        if kind == "macro":
            data = result.data or {}
            filled = {m["id"]: m for m in [data.get("macro"), *(data.get("alternatives") or [])] if m}
        out = []
        for e in result.evidence:
            if kind == "ticket" and e.internal:
                continue  # another ticket's internal notes: context for answers, never a suggestion
            if kind == "article":
                body = _article(e, query)
            elif kind == "ticket":
                body = _ticket(e, query)
            else:
                body = _macro(e, query, filled.get(e.id))
            out.append(
                {
                    "kind": kind,
                    "id": e.id,
                    "title": e.title,
                    "url": e.url,
                    "score": round(float(e.score), 4),
                    "internal": bool(e.internal),
                    "agent": agent.name,
                    **body,
                }
            )
            if len(out) >= self.config.per_kind:
                break
        return out
