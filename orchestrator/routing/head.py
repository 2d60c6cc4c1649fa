"""The semantic-head router (runtime): routes with a trained head's probabilities.

The heads, their configuration and the decision rule live in routing/head_model.py. Fitting the
head and calibrating the router's thresholds is training code (routing/training/heads.py and
calibration.py). The router runs it once, on first use or in `warm_up()` (at start-up in the
app), and imports it only then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.base import AgentManifest
from orchestrator.routing.base import RoutingContext, RoutingDecision
from orchestrator.routing.decisions import (
    OUT_OF_SCOPE,
    PSEUDO_LABELS,
    clarify_decision,
    clarify_question,
    decline_text,
    enabled_manifests,
    respond_decision,
    route_decision,
)

if TYPE_CHECKING:
    from orchestrator.routing.training.evaluation import Example

from orchestrator.routing.head_model import (
    DecisionThresholds,
    Embed,
    Head,
    LinearHead,
    SemanticHeadRouterConfig,
    calibration_summary,
    decide,
    normalise,
    softmax,
    split_clauses,
)


class SemanticHeadRouter:
    """Routes with a trained head's probabilities (respond / route / clarify).

    Product construction trains on the manifests (see `training.calibration.product_items`);
    `from_examples` trains on any labelled data (one route per label, e.g. BANKING77). The head
    is fitted, and its decision thresholds calibrated, on first use or in `warm_up()`
    (`training.calibration.fit_router`), so building the router is quick.
    """

    def __init__(
        self,
        embed: Embed,
        manifests: Sequence[AgentManifest],
        config: SemanticHeadRouterConfig | None = None,
        *,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.config = config or SemanticHeadRouterConfig()
        self.name = "semantic-ft" if self.config.head.kind == "finetune" else "semantic-head"
        self.embed = embed
        self.manifests = enabled_manifests(manifests, self.name)
        # Training data (and the generator behind it) is loaded only to build a router.
        from orchestrator.routing.training.calibration import CalibrationItem, product_items

        if examples is None:
            self.items = product_items(
                list(self.manifests.values()),
                augment=self.config.augment,
                per_label=self.config.augment_per_label,
                multi=self.config.augment_multi,
                seed=self.config.augment_seed,
            )
            examples = list(dict.fromkeys((it.text, it.gold[0]) for it in self.items if len(it.gold) == 1))
        else:
            self.items = [CalibrationItem(t, (lab,), t) for t, lab in examples]
        known = set(self.manifests) | set(PSEUDO_LABELS)
        unknown = sorted({lab for _, lab in examples} - known)
        if unknown:
            raise ValueError(f"training labels that are not routes: {unknown[:5]}")
        self.examples = list(examples)
        self._head: Head | None = None
        self._support = np.zeros((0, 0), np.float32)
        self._lock = threading.Lock()
        self.train_s: float | None = None
        self.thresholds = DecisionThresholds(
            clarify_threshold=self.config.clarify_threshold,
            margin=self.config.margin,
            min_probability=self.config.min_probability,
            source="configured" if len(self.config.pinned()) == 3 else "fallback",
        )
        self.calibration: dict[str, Any] = {}

    @classmethod
    def from_examples(
        cls,
        embed: Embed,
        examples: Sequence[Example] | Sequence[tuple[str, str]],
        config: SemanticHeadRouterConfig | None = None,
        *,
        manifests: Sequence[AgentManifest] | None = None,
    ) -> SemanticHeadRouter:
        """One route per label of `examples` (labels become route names as in the evaluation's
        `manifests_from_examples`); every example trains the head."""
        from orchestrator.routing.training.evaluation import Example, manifests_from_examples, route_name

        pairs = [(e.text, e.label) if isinstance(e, Example) else (e[0], e[1]) for e in examples]
        if manifests is None:
            manifests, _ = manifests_from_examples([Example(t, lab) for t, lab in pairs])
        return cls(embed, manifests, config, examples=[(t, route_name(lab)) for t, lab in pairs])

    @property
    def head(self) -> Head:
        """The fitted head. Fitted, and the thresholds calibrated, on first use (once, under a lock)."""
        if self._head is None:
            with self._lock:
                if self._head is None:
                    from orchestrator.routing.training.calibration import fit_router

                    started = time.perf_counter()
                    head, self._support, self.thresholds, self.calibration = fit_router(self)
                    self.train_s = time.perf_counter() - started
                    self._head = head
        return self._head

    def calibration_summary(self) -> dict[str, Any]:
        """The chosen thresholds and what they score on the folds (decision meta, logs, reports)."""
        return calibration_summary(self.calibration, self.thresholds)

    def stats(self) -> dict[str, Any]:
        """What `eval-router` records beside the scores: the calibration report."""
        _ = self.head
        return {"calibration": self.calibration}

    def warm_up(self) -> None:
        _ = self.head

    def probabilities(self, query: str) -> dict[str, float]:
        return self._probabilities([query])[0][0]

    def _probabilities(self, texts: list[str]) -> tuple[list[dict[str, float]], float | None]:
        """Probabilities per text, and the first text's best cosine to an agent example (None
        when no novelty threshold is in use or the head cannot give its vectors)."""
        head = self.head
        if (
            isinstance(head, LinearHead)
            and self.thresholds.novelty_threshold is not None
            and len(self._support)
        ):
            x = normalise(np.asarray(self.embed(list(texts)), dtype=np.float32))
            z = x @ head.coef.T + head.intercept
            if z.shape[1] == 1:
                z = np.concatenate([np.zeros_like(z), z], axis=1)
            p, nearest = softmax(z), float((self._support @ x[0]).max())
        else:
            p, nearest = head.predict_proba(texts), None
        return [{lab: float(x) for lab, x in zip(head.labels, row, strict=True)} for row in p], nearest

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        cfg = self.config
        _ = self.head  # fitted and calibrated
        t = self.thresholds
        parts = split_clauses(ctx.query) if t.clause_threshold is not None else [ctx.query]
        all_probs, nearest = self._probabilities([ctx.query, *parts] if len(parts) > 1 else [ctx.query])
        probs, clause_probs = all_probs[0], all_probs[1:]
        action, chosen, best, p_best = decide(probs, clause_probs, self.manifests, t, cfg.max_agents, nearest)
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        meta: dict[str, Any] = {
            "probabilities": {k: round(v, 4) for k, v in ranked[:5]},
            "thresholds": {
                k: v for k, v in t.model_dump().items() if k != "clause_threshold" or v is not None
            },
        }
        if clause_probs:
            meta["parts"] = len(clause_probs)
        if nearest is not None:
            meta["nearest_similarity"] = round(nearest, 4)
        agents = [n for n, _ in ranked if n in self.manifests]
        if action == "respond":
            return respond_decision(ctx, self.manifests, confidence=p_best, router=self.name, meta=meta)
        if action in ("clarify", "decline"):
            if action == "decline":
                response = decline_text(self.manifests)
                reason = (
                    f"out of scope (p={p_best:.2f})"
                    if best == OUT_OF_SCOPE
                    else f"out of scope: nearest agent example at {nearest:.2f} < {t.novelty_threshold:.2f}"
                )
            else:
                response = clarify_question(self.manifests, agents)
                reason = f"best {best} at p={p_best:.2f} (clarify below {t.clarify_threshold:.2f})"
            return clarify_decision(response, confidence=p_best, router=self.name, reason=reason, meta=meta)
        return route_decision(
            ctx,
            self.manifests,
            chosen,
            confidence=chosen[0][1],
            router=self.name,
            reason=f"head: {', '.join(f'{n} {p:.2f}' for n, p in chosen)}",
            meta=meta,
        )
