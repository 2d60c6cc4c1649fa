"""Which macro fits the ticket, with its reply filled in from the ticket's fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.base import AgentContext, BaseAgent, Evidence, ToolCall
from agents.common import (
    find_section,
    first_name,
    lead,
    question_only,
    requester,
    requester_email,
    search_documents,
    ticket_field,
)

PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_][a-z0-9_.]*)\s*\}\}", re.IGNORECASE)
_REPLY_RE = re.compile(r"(?:^|\n)\s*(?:#+\s*)?Reply\s*\n", re.IGNORECASE)
_ACTIONS_RE = re.compile(r"\n\s*(?:#+\s*)?Actions\s*\n", re.IGNORECASE)


def macro_reply(chunk: str) -> str:
    """The reply part of an indexed macro ("description / Reply / Actions" sections)."""
    m = _REPLY_RE.search(chunk)
    text = chunk[m.end() :] if m else chunk
    end = _ACTIONS_RE.search(text)
    return (text[: end.start()] if end else text).strip()


def placeholder_values(ctx: AgentContext) -> dict[str, str]:
    """Zendesk placeholder → value, from the ticket (and the order system for the requester's
    name when the ticket only carries a requester id)."""
    t = ctx.ticket
    values: dict[str, str] = {}
    if t.get("id") not in (None, ""):
        values["ticket.id"] = str(t["id"])
    if t.get("subject"):
        values["ticket.title"] = values["ticket.subject"] = str(t["subject"])
    req = requester(t)
    name = req.get("name") or t.get("requester_name")
    first = req.get("first_name") or first_name(name)
    email = requester_email(t)
    commerce = ctx.services.get("commerce")
    if not first and commerce is not None:
        key = email or t.get("requester_id")
        customer = _lookup_customer(commerce, key) if key not in (None, "") else None
        if customer:
            first = customer.get("first_name")
            name = name or " ".join(x for x in (customer.get("first_name"), customer.get("last_name")) if x)
            email = email or customer.get("email")
    for key, value in (("first_name", first), ("name", name), ("email", email)):
        if value:
            values[f"ticket.requester.{key}"] = str(value)
    user = ctx.user_name or _name_of(t.get("current_user")) or _name_of(t.get("assignee"))
    if user:
        values["current_user.name"] = user
        values["current_user.first_name"] = first_name(user) or user
    return values


def _name_of(value: object) -> str | None:
    return str(value["name"]) if isinstance(value, Mapping) and value.get("name") else None


def _lookup_customer(commerce: Any, key: object) -> Mapping[str, Any] | None:
    from agents.base import ToolError

    try:
        return commerce.get_customer(key)
    except ToolError:  # the name is a nicety; an unreachable order system must not lose the macro
        return None


def fill_placeholders(
    text: str,
    ctx: AgentContext,
    values: dict[str, str] | None = None,
    field_labels: Mapping[str, str] | None = None,
) -> tuple[str, list[str]]:
    """Replace known placeholders; unknown ones stay visible and are returned for the agent."""
    values = values if values is not None else placeholder_values(ctx)
    unfilled: list[str] = []

    def sub(m: re.Match[str]) -> str:
        key = m.group(1).lower()
        field = re.fullmatch(r"ticket\.ticket_field_(\d+)", key)
        value = values.get(key)
        if value is None and field:
            raw = _field_value(ctx.ticket, field.group(1), (field_labels or {}).get(field.group(1)))
            value = str(raw) if raw not in (None, "") else None
        if value is None:
            unfilled.append(m.group(0))
            return m.group(0)
        return value

    return PLACEHOLDER_RE.sub(sub, text), sorted(set(unfilled))


def _field_value(ticket: Mapping[str, Any], field_id: str, label: str | None) -> Any:
    """A custom field's value however it was sent: by id (REST), as ``custom_field_<id>`` (ZAF
    without a label), or by its label ({"Order number": …}, the sidebar), any letter case."""
    for key in (field_id, f"custom_field_{field_id}", label):
        if key:
            raw = ticket_field(ticket, key)
            if raw not in (None, ""):
                return raw
    fields = ticket.get("custom_fields") or ticket.get("fields")
    if label and isinstance(fields, Mapping):
        wanted = " ".join(label.lower().split())
        for key, raw in fields.items():
            if " ".join(str(key).lower().split()) == wanted and raw not in (None, ""):
                return raw
    return None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def quotable_text(text: str) -> str:
    """The filled macro without any sentence that still holds a placeholder.

    Answers quote evidence verbatim: "order {{ticket.ticket_field_…}} is cancelled" must never reach
    an agent or a customer. The whole macro (placeholders and all) stays in the agent's data for
    insertion, where Zendesk fills what we could not.
    """
    lines = []
    for line in text.splitlines():
        kept = [s for s in _SENTENCE_END.split(line) if not PLACEHOLDER_RE.search(s)]
        if any(k.strip() for k in kept) or not line.strip():
            lines.append(" ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class MacrosAgent(BaseAgent):
    max_evidence = 3

    def tools(self) -> dict[str, Any]:
        return {"search_macros": self.search_macros}

    def search_macros(self, ctx: AgentContext, query: str) -> dict[str, Any]:
        cfg = self.manifest.config
        matches = search_documents(
            ctx.knowledge,
            ctx.tenant,
            query,
            kinds=("macro",),
            k=int(cfg.get("results", 3)),
            min_similarity=float(cfg.get("min_similarity", 0.3)),
            viewer=ctx.viewer,
        )
        values = placeholder_values(ctx) if matches else {}
        labels = {str(k): str(v) for k, v in (cfg.get("ticket_field_labels") or {}).items()}
        evidence, filled = [], []
        for m in matches:
            reply = find_section(ctx.knowledge, ctx.tenant, m, "Reply", ctx.viewer) or macro_reply(m.text)
            text, unfilled = fill_placeholders(reply, ctx, values, labels)
            filled.append(
                {"id": m.doc_id, "title": m.title, "text": text, "unfilled": unfilled, "url": m.url,
                 "internal": m.internal}
            )  # fmt: skip
            quoted = quotable_text(text) if unfilled else text
            if not quoted:
                continue  # nothing left to quote; the macro is still offered in data
            evidence.append(
                Evidence(
                    id=m.doc_id, title=m.title, text=quoted, kind="macro", url=m.url or None,
                    score=round(m.score, 4), agent=self.name,
                    # Agent-only: restricted to groups/agents, or its reply is an internal note.
                    internal=m.internal,
                )
            )  # fmt: skip
        data = {"macro": filled[0], "alternatives": filled[1:]} if filled else {}
        return {"evidence": evidence, "data": data}

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        if attempt == 1:
            return ToolCall("search_macros", {"query": query}, "find the macro that fits")
        core = question_only(query)
        return ToolCall("search_macros", {"query": core}, "retry with the question only") if core else None

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        best = evidence[0]
        others = ", ".join(e.title for e in evidence[1:])
        return f"Best fit: macro “{best.title}”. {lead(best.text, 300)}" + (
            f"\nAlso close: {others}." if others else ""
        )
