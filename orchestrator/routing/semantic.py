"""Offline router: nearest manifest examples by embedding, with a confidence from the scores.

Each agent is represented by its manifest's `when_to_use` examples (counter-examples push it
down); a small set of conversational examples stands for "respond directly". No model call:
one embedding of the question per turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from agents.base import AgentManifest
from orchestrator.routing.base import MAX_ROUTES, RoutingContext, RoutingDecision
from orchestrator.routing.decisions import (
    RESPOND,
    RESPOND_EXAMPLES,
    clarify_decision,
    clarify_question,
    enabled_manifests,
    respond_decision,
    route_decision,
)

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class SemanticRouterConfig:
    route_threshold: float = 0.30  # below this for every agent: ask a clarifying question
    respond_threshold: float = 0.45  # conversational turns answered directly…
    respond_margin: float = 0.15  # …when they beat every agent by this much
    margin: float = 0.06  # agents within this of the best also run (in parallel)
    temperature: float = 0.05  # softmax temperature turning similarities into a confidence
    max_agents: int = 3


class SemanticRouter:
    name = "semantic"

    def __init__(
        self, embed: Embed, manifests: Sequence[AgentManifest], config: SemanticRouterConfig | None = None
    ) -> None:
        self.config = config or SemanticRouterConfig()
        self.embed = embed
        self.manifests = enabled_manifests(manifests, self.name)
        texts, labels, counter_texts, counter_labels = [], [], [], []
        for m in self.manifests.values():
            texts += m.when_to_use
            labels += [m.name] * len(m.when_to_use)
            counter_texts += m.counter_examples
            counter_labels += [m.name] * len(m.counter_examples)
        texts += RESPOND_EXAMPLES
        labels += [RESPOND] * len(RESPOND_EXAMPLES)
        self._labels = np.array(labels)
        self._vectors = embed(texts)
        self._counter_labels = np.array(counter_labels)
        self._counter_vectors = (
            embed(counter_texts) if counter_texts else np.zeros((0, self._vectors.shape[1]), np.float32)
        )
        self._names = [*self.manifests, RESPOND]

    def scores(self, query: str) -> dict[str, float]:
        """Per-route similarity: best example, minus how much a counter-example matches better."""
        q = self.embed([query])[0]
        sims = self._vectors @ q
        counter = self._counter_vectors @ q if len(self._counter_vectors) else np.zeros(0)
        out: dict[str, float] = {}
        for name in self._names:
            mask = self._labels == name
            top = np.sort(sims[mask])[-2:]
            # Mean of the two best examples is steadier than the single best.
            score = float(top.mean()) if len(top) else 0.0
            cmask = self._counter_labels == name
            if cmask.any():
                c = float(counter[cmask].max())
                if c > score:
                    score -= c - score
            out[name] = score
        return out

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        cfg = self.config
        scores = self.scores(ctx.query)
        names = list(scores)
        raw = np.array([scores[n] for n in names])
        probs = np.exp((raw - raw.max()) / cfg.temperature)
        probs /= probs.sum()
        order = np.argsort(-raw)
        best = names[order[0]]
        confidence = float(probs[order[0]])
        meta = {"scores": {n: round(scores[n], 4) for n in names}}
        best_agent = max(v for k, v in scores.items() if k != RESPOND)
        if (
            best == RESPOND
            and scores[RESPOND] >= cfg.respond_threshold
            and scores[RESPOND] - best_agent >= cfg.respond_margin
        ):
            return respond_decision(ctx, self.manifests, confidence=confidence, router=self.name, meta=meta)
        agent_names = [n for n in (names[i] for i in order) if n != RESPOND]
        top = agent_names[0]
        if scores[top] < cfg.route_threshold:
            return clarify_decision(
                clarify_question(self.manifests, agent_names),
                confidence=confidence,
                router=self.name,
                reason=f"best match {top} at {scores[top]:.2f}",
                meta=meta,
            )
        chosen = [n for n in agent_names if scores[n] >= max(cfg.route_threshold, scores[top] - cfg.margin)]
        chosen = chosen[: min(cfg.max_agents, MAX_ROUTES)]
        return route_decision(
            ctx,
            self.manifests,
            [(n, scores[n]) for n in chosen],
            confidence=confidence,
            router=self.name,
            reason=f"nearest examples: {', '.join(chosen)}",
            meta=meta,
        )
