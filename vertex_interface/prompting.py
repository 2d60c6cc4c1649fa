"""How retrieved sources are shown to Gemini: a numbered block it can cite as [n]."""

from __future__ import annotations

from collections.abc import Sequence

from .types import Source

SOURCES_HEADER = "Sources (cite them inline by number, like [1]; use nothing else as fact):"


def render_sources(sources: Sequence[Source]) -> str:
    blocks = [SOURCES_HEADER]
    for s in sources:
        head = f"[{s.number}] {s.title.strip() or '(untitled)'}"
        if s.kind:
            head += f" ({s.kind})"
        if s.url:
            head += f" <{s.url}>"
        blocks.append(f"{head}\n{s.text.strip()}")
    return "\n\n".join(blocks)
