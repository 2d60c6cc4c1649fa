"""The classic trigger-word baseline: words that are typical of one agent's examples and rare in
the others' vote for that agent. No embeddings, no model — the floor the other routers must beat."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from agents.base import AgentManifest
from orchestrator.routing.base import RoutingContext, RoutingDecision
from orchestrator.routing.decisions import clarify_decision, clarify_question, route_decision

_TOKEN = re.compile(r"[a-z0-9]+")
STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "about",
        "into",
        "over",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "do",
        "does",
        "did",
        "i",
        "you",
        "he",
        "she",
        "it",
        "we",
        "they",
        "me",
        "my",
        "your",
        "our",
        "their",
        "this",
        "that",
        "these",
        "those",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "when",
        "where",
        "why",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "not",
        "no",
        "yes",
        "please",
        "thanks",
        "hi",
        "hello",
        "there",
        "just",
        "so",
        "as",
        "than",
        "then",
        "too",
        "very",
        "get",
        "got",
    ]
)


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOP and len(t) > 1]


class KeywordRouter:
    name = "keyword"

    def __init__(self, manifests: Sequence[AgentManifest], *, min_score: float = 1.0) -> None:
        self.manifests = {m.name: m for m in manifests if m.enabled}
        self.min_score = min_score
        counts = {
            name: Counter(t for ex in m.when_to_use for t in set(tokens(ex)))
            for name, m in self.manifests.items()
        }
        n_routes = len(counts)
        doc_freq = Counter(t for c in counts.values() for t in c)
        # Weight = how often the word appears in this route's examples × how few routes use it.
        self.weights = {
            name: {
                t: (c[t] / len(self.manifests[name].when_to_use)) * math.log(1 + n_routes / doc_freq[t])
                for t in c
            }
            for name, c in counts.items()
        }

    def scores(self, query: str) -> dict[str, float]:
        q = set(tokens(query))
        return {name: sum(w.get(t, 0.0) for t in q) for name, w in self.weights.items()}

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        scores = self.scores(ctx.query)
        best = max(scores, key=scores.get) if scores else None
        total = sum(scores.values())
        if best is None or scores[best] < self.min_score * 0.1 or total == 0:
            return clarify_decision(
                clarify_question(self.manifests), confidence=0.0, router=self.name, reason="no trigger words"
            )
        return route_decision(
            ctx,
            self.manifests,
            [(best, scores[best])],
            confidence=scores[best] / total,
            router=self.name,
            meta={"scores": {k: round(v, 4) for k, v in scores.items()}},
        )
