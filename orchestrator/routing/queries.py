"""What every router produces the same way: enhanced queries (the user's question plus the
ticket context a given agent needs), staged routes, and the direct-response text.

Used by the offline routers (the Gemini controller writes its own). Ticket text is only ever
appended as context for retrieval, never interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.base import AgentManifest
from orchestrator.routing.base import Route, RoutingContext, RoutingDecision

ORDER_NUMBER = re.compile(r"\b[A-Z]{2}-\d{6}\b")
_WORD = re.compile(r"[A-Za-z0-9']+")
# A question this short leans on the ticket for its subject ("what's our policy here?").
MIN_SELF_CONTAINED_WORDS = 6


def order_numbers(*texts: str) -> list[str]:
    seen: list[str] = []
    for text in texts:
        for m in ORDER_NUMBER.findall(text or ""):
            if m not in seen:
                seen.append(m)
    return seen


def ticket_text(ticket: Mapping[str, Any]) -> str:
    parts = [str(ticket.get("subject") or ""), str(ticket.get("description") or "")]
    fields = ticket.get("custom_fields") or []
    if isinstance(fields, Mapping):  # the sidebar sends {label: value}; the REST API a list
        parts.extend(str(v) for v in fields.values() if v not in (None, ""))
    else:
        for f in fields:
            if isinstance(f, Mapping) and f.get("value"):
                parts.append(str(f["value"]))
    return "\n".join(p for p in parts if p)


def enhance(
    query: str, manifest: AgentManifest, ticket: Mapping[str, Any], hints: Mapping[str, Any] | None = None
) -> str:
    hints = hints or {}
    query = query.strip()
    subject = str(ticket.get("subject") or "").strip()
    if manifest.kind == "api":
        numbers = (
            order_numbers(query)
            or list(hints.get("order_numbers") or [])
            or order_numbers(ticket_text(ticket))
        )
        extra = f" (order {', '.join(numbers[:3])})" if numbers and not order_numbers(query) else ""
        return (query + extra)[:2000]
    words = len(_WORD.findall(query))
    if subject and words < MIN_SELF_CONTAINED_WORDS and subject.lower() not in query.lower():
        return f"{query} — ticket: {subject}"[:2000]
    if hints.get("product_category"):
        return f"{query} ({hints['product_category']})"[:2000]
    return query[:2000]


RESPOND_TEXT = {
    "thanks": "You're welcome — ask me anything else about this ticket.",
    "default": (
        "I can look things up for this ticket: {agents}. Ask a question about the customer's issue and "
        "I'll answer with sources."
    ),
}


def respond_text(query: str, manifests: Mapping[str, AgentManifest]) -> str:
    """The direct answer to a conversational turn (thanks, greetings, "what can you do?")."""
    if any(w in query.lower() for w in ("thank", "great", "got it", "that's all")):
        return RESPOND_TEXT["thanks"]
    return RESPOND_TEXT["default"].format(agents=", ".join(m.title.lower() for m in manifests.values()))


def plan_stages(routes: list[Route], manifests: Mapping[str, AgentManifest]) -> list[list[Route]]:
    """Facts first, then policy: API agents (orders, products) run before retrieval agents when
    both are chosen, so the retrieval agents can use what was looked up."""
    facts = [r for r in routes if manifests[r.agent].kind == "api"]
    rest = [r for r in routes if manifests[r.agent].kind != "api"]
    if facts and rest:
        return [facts, rest]
    return [routes]


def route_decision(
    ctx: RoutingContext,
    manifests: Mapping[str, AgentManifest],
    scored: list[tuple[str, float]],
    *,
    confidence: float,
    router: str,
    reason: str = "",
    meta: dict[str, Any] | None = None,
) -> RoutingDecision:
    """A `route` decision from (agent, score) pairs: each agent's enhanced query, staged."""
    routes = [
        Route(
            agent=name,
            enhanced_query=enhance(ctx.query, manifests[name], ctx.ticket, ctx.hints),
            score=round(score, 4),
        )
        for name, score in scored
    ]
    return RoutingDecision(
        action="route",
        stages=plan_stages(routes, manifests),
        confidence=confidence,
        router=router,
        reason=reason,
        meta=meta or {},
    )
