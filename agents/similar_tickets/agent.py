"""Solved tickets like the open one, with how each was resolved."""

from __future__ import annotations

import re
from typing import Any

from agents.base import AgentContext, BaseAgent, Evidence, ToolCall
from agents.common import (
    find_section,
    lead,
    model_summary,
    question_only,
    search_documents,
    section,
    strip_heading,
)
from store.ingest.records import internal_notes_id

# "how did we handle this before?", "what worked last time?": then the best match's resolution is
# the answer. For any other question (a policy the router also sent here) it is only context:
# stating it first would bury the policy under another customer's reply.
_PAST_CASES = re.compile(
    r"\b(before|previous(ly)?|past|similar|last time|usually|normally|typically|other agents|"
    r"have we|did we|how was|how were|how did|what worked|precedent|cases?|seen this|dealt with|handled?)\b",
    re.IGNORECASE,
)
# Pleasantries around a resolution reply say nothing about what was done.
_PLEASANTRY = re.compile(
    r"^(?:(?:hi|hello|hey|dear)\s+[^,.!]{1,30}[,!]\s*)|"
    r"(?:\s*(?:kind regards|best regards|regards|best|cheers|thanks|thank you|all the best|have a (?:great|nice|lovely) day)"
    r"[,!.]?(?:\s+[A-Z][a-z]+)?[.!]?\s*)+$",
    re.IGNORECASE,
)


def asks_about_past_cases(query: str) -> bool:
    return bool(_PAST_CASES.search(query or ""))


def strip_pleasantries(text: str) -> str:
    out = _PLEASANTRY.sub("", text.strip())
    return _PLEASANTRY.sub("", out).strip() or text.strip()


class SimilarTicketsAgent(BaseAgent):
    max_evidence = 3

    def tools(self) -> dict[str, Any]:
        return {"search_tickets": self.search_tickets}

    def search_tickets(self, ctx: AgentContext, query: str) -> list[Evidence]:
        cfg = self.manifest.config
        current = ctx.ticket.get("id")
        exclude = [f"ticket:{current}"] if current not in (None, "") else []
        k = int(cfg.get("results", 3))
        found = search_documents(
            ctx.knowledge,
            ctx.tenant,
            query,
            kinds=("ticket",),
            # Room for each ticket's internal notes beside its public conversation.
            k=2 * k,
            exclude=[*exclude, *(internal_notes_id(e) for e in exclude)],
            min_similarity=float(cfg.get("min_similarity", 0.3)),
            chunk_k=40,
            viewer=ctx.viewer,
        )
        # Ranking as before over the public conversations; internal notes only for those tickets,
        # each its own internal evidence — their text never joins a public one.
        matches = [m for m in found if not m.internal][:k]
        notes = {m.doc_id: m for m in found if m.internal}
        evidence = []
        for rank, m in enumerate(matches):
            resolution = find_section(ctx.knowledge, ctx.tenant, m, "Resolution", ctx.viewer)
            # The best-ranked chunk may be conversation; the problem statement reads better.
            problem = lead(section(m.chunks, "Problem") or strip_heading(m.text, m.title), 400)
            resolved = (
                f"Resolved: {lead(strip_pleasantries(resolution), 600)}"
                if resolution
                else "Resolved: not recorded"
            )
            evidence.append(
                Evidence(
                    id=m.doc_id,
                    title=m.title,
                    text=f"Problem: {problem}\n{resolved}",
                    kind="ticket",
                    url=m.url or None,
                    score=round(m.score, 4),
                    agent=self.name,
                    # What was done is the answer; the problem only says why the ticket matched
                    # (quoting it back to the agent answers nothing). The best match only: three
                    # resolutions in a row bury the answer.
                    facts=(resolved,) if resolution and rank == 0 and asks_about_past_cases(query) else (),
                )
            )
            note = notes.get(internal_notes_id(m.doc_id))
            if note is not None:
                text = section(note.chunks, "Internal notes") or strip_heading(note.text, note.title)
                evidence.append(
                    Evidence(
                        id=note.doc_id,
                        title=note.title,
                        text=lead(text, 400),
                        kind="ticket",
                        url=m.url or None,
                        score=round(note.score, 4),
                        agent=self.name,
                        internal=True,
                    )
                )
        return evidence

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        if attempt == 1:
            return ToolCall("search_tickets", {"query": query}, "find solved tickets like this one")
        core = question_only(query)
        return ToolCall("search_tickets", {"query": core}, "retry with the question only") if core else None

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        def resolved(e: Evidence) -> str:
            part = e.text.split("Resolved:", 1)[-1].strip()
            return lead(part, 200)

        return model_summary(self, query, evidence, ctx) or "\n".join(
            f"- {e.title} ({e.id}): {resolved(e)}"
            for e in [e for e in evidence if not e.internal][: self.max_evidence]
        )
