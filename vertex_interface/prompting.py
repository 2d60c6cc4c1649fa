"""How retrieved sources are shown to Gemini: a numbered block it can cite as [n].

Sources whose agent picked the lines that answer the question (`Source.facts`: an order's
status, a product's stock, the ticket's last comment) get those lines first, under a "key facts"
heading, so the model leads with the same facts the offline responder would quote. Internal-only
sources are labelled, so the model never puts them into a customer reply unmarked.
"""

from __future__ import annotations

from collections.abc import Sequence

from .types import Source

SOURCES_HEADER = "Sources (cite them inline by number, like [1]; use nothing else as fact):"
KEY_FACTS_HEADER = "Key facts for this question (state these first, with their citations):"
INTERNAL_TAG = "INTERNAL — for the support agent only, never for the customer"


def render_key_facts(sources: Sequence[Source]) -> str:
    """The facts the agents picked, one per line with the source's number ('' when none)."""
    lines = [f"- {fact.strip()} [{s.number}]" for s in sources for fact in s.facts if fact.strip()]
    return "\n".join([KEY_FACTS_HEADER, *lines]) if lines else ""


def render_sources(sources: Sequence[Source]) -> str:
    blocks = [SOURCES_HEADER]
    facts = render_key_facts(sources)
    if facts:
        blocks.insert(0, facts)
    for s in sources:
        head = f"[{s.number}] {s.title.strip() or '(untitled)'}"
        if s.kind:
            head += f" ({s.kind})"
        if s.internal:
            head += f" [{INTERNAL_TAG}]"
        if s.url:
            head += f" <{s.url}>"
        blocks.append(f"{head}\n{s.text.strip()}")
    return "\n\n".join(blocks)
