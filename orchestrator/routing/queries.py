"""Reading the question and the ticket: order numbers, the ticket's text, and the enhanced query
(the user's question plus the ticket context a given agent needs).

Used by the offline routers' decisions (orchestrator.routing.decisions; the Gemini controller
writes its own) and by the orchestrator. Ticket text is only ever appended as context for
retrieval, never interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.base import AgentManifest

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
