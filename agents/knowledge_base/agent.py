"""Help Center articles: the tenant's published answers (policies, how-tos, troubleshooting)."""

from __future__ import annotations

import re
from typing import Any

from agents.base import AgentContext, BaseAgent, Evidence, ToolCall
from agents.common import lead, model_summary, question_only, search_documents, strip_heading
from agents.language import detect_language
from vertex_interface.extractive import fold_synonyms

# The offline embedder is English-only: a German question scores ~0.15–0.3 against the right
# German article, so within that language the floor is lower (hybrid rank still orders them).
MIN_SIMILARITY_OTHER_LANGUAGE = 0.08


def article_text(chunks: list[str], title: str, limit: int) -> str:
    """The article's best-matching chunks (best first, up to `limit`), headings dropped.

    The answer sentence is often not in the chunk that ranked best (a table row two sections
    down, the sentence after a heading the question echoed), so synthesis gets a few."""
    parts = [strip_heading(c, title) for c in chunks[: max(1, limit)]]
    return "\n\n".join(dict.fromkeys(p for p in parts if p))


def with_article_words(query: str) -> str:
    """The query plus the articles' words for the agent's shorthand ("send it back" → return,
    "pw" → password, "import fees" → duties): full-text search only matches words it sees."""
    words = set(re.findall(r"[a-z0-9]+", query.lower()))
    extra = [w for w in dict.fromkeys(re.findall(r"[a-z0-9]+", fold_synonyms(query))) if w not in words]
    return f"{query} ({' '.join(extra)})" if extra else query


def _asked(query: str) -> str:
    """The support agent's own words: what routing appended (ticket subject, references) dropped."""
    return query.split(" — ticket:", 1)[0].split(" (about:", 1)[0]


class KnowledgeBaseAgent(BaseAgent):
    max_evidence = 4

    def tools(self) -> dict[str, Any]:
        return {"search_articles": self.search_articles}

    def search_articles(self, ctx: AgentContext, query: str, locale: str | None = None) -> list[Evidence]:
        cfg = self.manifest.config
        floor = float(cfg.get("min_similarity", 0.3))
        if locale and not locale.lower().startswith("en"):
            floor = float(cfg.get("min_similarity_other_language", MIN_SIMILARITY_OTHER_LANGUAGE))
        matches = search_documents(
            ctx.knowledge,
            ctx.tenant,
            with_article_words(query),
            kinds=("article",),
            k=int(cfg.get("results", 4)),
            locale=locale,
            min_similarity=floor,
            viewer=ctx.viewer,
        )
        return [
            Evidence(
                id=m.doc_id,
                title=m.title,
                text=article_text(m.chunks, m.title, int(cfg.get("chunks_per_article", 3))),
                kind="article",
                url=m.url or None,
                score=round(m.score, 4),
                agent=self.name,
                # Restricted to a user segment: internal, whoever may see it.
                internal=m.internal,
            )
            for m in matches
        ]

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        # The language of the support agent's question decides which articles are searched first,
        # not the requester's locale: an English question on a German customer's ticket wants the
        # English article (drafting in the customer's language is a separate step).
        locale = "de" if detect_language(_asked(query)) == "de" else None
        if attempt == 1:
            args: dict[str, Any] = {"query": query}
            if locale:
                args["locale"] = locale
            return ToolCall("search_articles", args, "search the Help Center with the request")
        # Retry: ticket boilerplate may have drowned the question; search with the question
        # alone, in every locale.
        core = question_only(query)
        if core:
            return ToolCall("search_articles", {"query": core}, "retry with the question only")
        # The ticket's language may have no article on this: try every language once.
        return ToolCall("search_articles", {"query": query}, "retry in every language") if locale else None

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        return model_summary(self, query, evidence, ctx) or "\n".join(
            f"- {e.title}: {lead(e.text)}" for e in evidence[:3]
        )
