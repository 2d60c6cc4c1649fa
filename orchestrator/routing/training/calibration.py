"""Calibrating the head router's decision thresholds, and the product head's training items (not
runtime: the serving path loads this module only when a head is fitted, at start-up or in
`warm_up()`; see `fit_router`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from agents.base import AgentManifest
from orchestrator.routing.decisions import (
    CLARIFY,
    OUT_OF_SCOPE,
    OUT_OF_SCOPE_EXAMPLES,
    PSEUDO_LABELS,
    RESPOND,
    RESPOND_EXAMPLES,
)
from orchestrator.routing.head_model import (
    DecisionThresholds,
    Embed,
    Head,
    HeadConfig,
    LinearHead,
    SemanticHeadRouterConfig,
    calibration_summary,
    decide,
    normalise,
    softmax,
    split_clauses,
)
from orchestrator.routing.training.heads import fit_head, fit_logreg, memo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationItem:
    """One labelled text for calibration: `gold` is a set of agents, or one pseudo-label."""

    text: str
    gold: tuple[str, ...]
    source: str  # the seed it was generated from: the fold unit (variants never straddle folds)


def _set_f1(action: str, chosen: Sequence[str], gold: tuple[str, ...]) -> float:
    if gold[0] == RESPOND:
        return float(action == "respond")
    if gold[0] in (CLARIFY, OUT_OF_SCOPE):
        return float(action in ("clarify", "decline"))
    if action != "route" or not chosen:
        return 0.0
    hit = len(set(chosen) & set(gold))
    return 2 * hit / (len(set(chosen)) + len(gold))


def _top_correct(action: str, chosen: Sequence[str], gold: tuple[str, ...]) -> bool:
    return action == "route" and bool(chosen) and chosen[0] in gold


# Share of held-out agent questions the novelty threshold must still let through.
NOVELTY_KEEP = 0.98
CLARIFY_GRID = tuple(round(0.05 * i, 2) for i in range(20))
MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
FLOORS = (0.05, 0.1, 0.2, 0.3)
CLAUSE_THRESHOLDS = (None, 0.4, 0.5, 0.6, 0.8)


def calibrate(
    embed: Embed,
    items: Sequence[CalibrationItem],
    routes: Sequence[str],
    config: HeadConfig,
    *,
    target_precision: float = 0.95,
    folds: int = 5,
    max_agents: int = 3,
    seed: int = 0,
    fixed: dict[str, float] | None = None,
    operating_point: Literal["exact", "precision"] = "exact",
) -> tuple[DecisionThresholds, dict[str, Any]]:
    """Decision thresholds from out-of-fold probabilities on `items` (cross-validation by source:
    each fold's head never saw a variant of the held-out seeds). Operating point:

    - clarify_threshold, `operating_point="exact"` (default): the threshold (0.05 grid) at which
      the whole decision is right most often on the folds: respond / clarify / decline for
      pseudo-labelled items, the top agent for the others. `"precision"`: the LOWEST threshold
      whose accepted routes (top agent at or above it) are right at least `target_precision` of
      the time; a pseudo-labelled item routed anywhere counts as wrong.
    - margin, min_probability, clause_threshold: with that threshold, the combination with the
      most exact agent sets, then the best mean set F1 over all items (an agent set vs the gold set; respond /
      clarify / decline vs the pseudo-label), ties broken towards fewer extra agents.

    `fixed` pins any of the three threshold fields to a configured value. Returns the thresholds
    and the calibration report (what was chosen, what it scores on the folds)."""
    fixed = fixed or {}
    started = time.perf_counter()
    single = [it for it in items if len(it.gold) == 1]
    sources = sorted({it.source for it in items})
    rng = np.random.default_rng(seed)
    fold_of = {s: int(f) for s, f in zip(sources, rng.permutation(len(sources)) % folds, strict=True)}
    texts = list(dict.fromkeys([it.text for it in items]))
    clauses = {t: split_clauses(t) for t in texts}
    extra = list(dict.fromkeys(c for t in texts for c in clauses[t] if c != t))
    all_texts = texts + extra
    x = normalise(np.asarray(embed(all_texts), dtype=np.float32))
    row = {t: i for i, t in enumerate(all_texts)}
    oof: dict[str, dict[str, float]] = {}  # (fold-held-out) text → probabilities
    near: dict[str, float] = {}  # (fold-held-out) text → best cosine to the fold's agent examples
    for f in range(folds):
        train = [it for it in single if fold_of[it.source] != f]
        held = [it for it in items if fold_of[it.source] == f]
        if not held or len({it.gold[0] for it in train}) < 2:
            continue
        coef, intercept = fit_logreg(
            x[[row[it.text] for it in train]], np.asarray([it.gold[0] for it in train]), config
        )
        labels = sorted({it.gold[0] for it in train})
        need = list(dict.fromkeys(c for it in held for c in [it.text, *clauses[it.text]]))
        z = x[[row[t] for t in need]] @ coef.T + intercept
        if z.shape[1] == 1:
            z = np.concatenate([np.zeros_like(z), z], axis=1)
        p = softmax(z)
        support = x[[row[it.text] for it in train if it.gold[0] in routes]]
        for it in held:
            near[it.text] = float((support @ x[row[it.text]]).max()) if len(support) else 1.0
        for t, pr in zip(need, p, strict=True):
            # Every label of the full head, absent ones at 0, so fold decisions see the same keys.
            oof[t] = {lab: float(v) for lab, v in zip(labels, pr, strict=True)}
    scored = [it for it in items if it.text in oof]

    def run(th: DecisionThresholds) -> list[tuple[str, list[str], tuple[str, ...], float]]:
        out = []
        for it in scored:
            parts = clauses[it.text]
            cp = [oof[c] for c in parts] if len(parts) > 1 else []
            action, chosen, _, _ = decide(oof[it.text], cp, routes, th, max_agents, near.get(it.text))
            top = max((p for n, p in oof[it.text].items() if n in routes), default=0.0)
            out.append((action, [n for n, _ in chosen], it.gold, top))
        return out

    # 1. The clarify threshold, on single-route decisions (margins do not move the top agent).
    sweep_rows = []
    for th in CLARIFY_GRID:
        res = run(DecisionThresholds(clarify_threshold=th, margin=0.0, min_probability=1.0))
        routed = [r for r in res if r[0] == "route"]
        sweep_rows.append(
            {
                "threshold": th,
                "accepted": round(len(routed) / max(1, len(res)), 4),
                "precision": round(float(np.mean([_top_correct(*r[:3]) for r in routed])), 4)
                if routed
                else None,
                "exact": round(float(np.mean([_set_f1(*r[:3]) == 1.0 for r in res])), 4) if res else 0.0,
            }
        )
    if "clarify_threshold" in fixed:
        clarify = float(fixed["clarify_threshold"])
    elif operating_point == "precision":
        # The lowest threshold whose accepted routes reach the target precision (and that still
        # routes a tenth of the turns); none does: the most accurate threshold instead.
        ok = [
            r
            for r in sweep_rows
            if r["precision"] is not None and r["precision"] >= target_precision and r["accepted"] >= 0.1
        ]
        clarify = ok[0]["threshold"] if ok else max(sweep_rows, key=lambda r: r["exact"])["threshold"]
    else:
        # "exact": the threshold at which the whole decision is right most often (a wrong agent
        # and a needless question cost the same); the lowest one on ties.
        clarify = max(sweep_rows, key=lambda r: (r["exact"], -r["threshold"]))["threshold"]
    # 2. Novelty: keep NOVELTY_KEEP of the held-out agent questions; what falls below is declined.
    in_scope = sorted(near[it.text] for it in scored if it.gold[0] in routes)
    novelty = None
    oos_recall = None
    if in_scope and any(it.gold[0] == OUT_OF_SCOPE for it in scored):
        novelty = round(float(np.quantile(in_scope, 1 - NOVELTY_KEEP)), 3)
        oos = [near[it.text] for it in scored if it.gold[0] == OUT_OF_SCOPE]
        oos_recall = round(float(np.mean([v < novelty for v in oos])), 4)
    # 3. Multi-route policy: the combination with the best exact-set F1 at that threshold.
    best: tuple[tuple[float, float, int], int, DecisionThresholds] | None = None
    grid_rows = []
    for margin in [fixed["margin"]] if "margin" in fixed else MARGINS:
        for floor in [fixed["min_probability"]] if "min_probability" in fixed else FLOORS:
            for ct in CLAUSE_THRESHOLDS:
                th = DecisionThresholds(
                    clarify_threshold=clarify,
                    margin=margin,
                    min_probability=floor,
                    clause_threshold=ct,
                    novelty_threshold=novelty,
                )
                res = run(th)
                # Exact set first (what the whole decision is scored on), then F1 (partial
                # credit), then fewer extra agents.
                f1s = [_set_f1(a, c, g) for a, c, g, _ in res]
                exact = float(np.mean([f == 1.0 for f in f1s])) if res else 0.0
                f1 = float(np.mean(f1s)) if res else 0.0
                n_extra = sum(max(0, len(c) - 1) for _, c, _, _ in res)
                grid_rows.append((round(f1, 4), margin, floor, ct))
                score = (round(exact, 4), round(f1, 4), -n_extra)
                if best is None or score > best[0]:
                    best = (score, n_extra, th)
    assert best is not None
    thresholds = best[2].model_copy(update={"source": "calibrated"})
    res = run(thresholds)
    routed = [r for r in res if r[0] == "route"]
    pseudo = [r for r in res if r[2][0] in PSEUDO_LABELS]
    multi = [r for r in res if len(r[2]) > 1]
    report = {
        "operating_point": (
            f"lowest clarify threshold with >= {target_precision:.0%} precision on accepted routes"
            if operating_point == "precision"
            else "clarify threshold with the most exact decisions"
        )
        + "; margin / min probability / clause threshold with the most exact sets (then set F1)",
        "sweep": sweep_rows,
        "novelty": {
            "threshold": novelty,
            "keeps_in_scope": NOVELTY_KEEP,
            "out_of_scope_recall_on_folds": oos_recall,
        },
        "target_precision": target_precision,
        "folds": folds,
        "n_items": len(items),
        "n_scored": len(res),
        "n_multi": len(multi),
        "thresholds": thresholds.model_dump(),
        "precision_on_accepted": round(float(np.mean([_top_correct(a, c, g) for a, c, g, _ in routed])), 4)
        if routed
        else None,
        "accepted": round(len(routed) / max(1, len(res)), 4),
        "exact_set_f1": best[0][1],
        "exact": round(float(np.mean([_set_f1(a, c, g) == 1.0 for a, c, g, _ in res])), 4),
        "multi_exact": round(float(np.mean([_set_f1(a, c, g) == 1.0 for a, c, g, _ in multi])), 4)
        if multi
        else None,
        "pseudo_exact": round(float(np.mean([_set_f1(a, c, g) == 1.0 for a, c, g, _ in pseudo])), 4)
        if pseudo
        else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return thresholds, report


def product_items(
    manifests: Sequence[AgentManifest],
    *,
    augment: bool = True,
    per_label: int = 80,
    multi: int = 60,
    seed: int = 0,
    exclude: Iterable[str] = (),
) -> list[CalibrationItem]:
    """Labelled items for the product agents, with the seed each came from: every `when_to_use`
    example, counter-examples under the agent they belong to, the conversational examples under
    RESPOND, off-domain requests under OUT_OF_SCOPE and (with `augment`) generate()'s variants,
    vague messages under CLARIFY and (`multi`) two-agent questions. Nothing whose normalised
    text is in `exclude` (an evaluation set) is kept."""
    from orchestrator.routing.functiongemma.data import DataConfig, counter_label, generate, normalise

    active = [m for m in manifests if m.enabled]
    banned = {normalise(t) for t in exclude}
    items: list[CalibrationItem] = []
    for m in active:
        items += [CalibrationItem(q, (m.name,), q) for q in m.when_to_use]
        for q in m.counter_examples:
            owner = counter_label(q, m.name, active)
            if owner:
                items.append(CalibrationItem(q, (owner,), q))
    items += [CalibrationItem(q, (RESPOND,), q) for q in RESPOND_EXAMPLES]
    items += [CalibrationItem(q, (OUT_OF_SCOPE,), q) for q in OUT_OF_SCOPE_EXAMPLES]
    if augment:
        data = DataConfig(seed=seed, per_label=per_label, multi=multi, val_fraction=0.0, test_fraction=0.0)
        for ex in generate(active, data, exclude=banned)["train"]:
            items.append(CalibrationItem(ex.text, ex.calls, ex.source))
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out = []
    for it in items:
        key = (it.text, it.gold)
        if key not in seen and normalise(it.text) not in banned:
            seen.add(key)
            out.append(it)
    return out


def product_examples(
    manifests: Sequence[AgentManifest],
    *,
    augment: bool = True,
    per_label: int = 80,
    seed: int = 0,
    exclude: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """(text, label) training pairs for the product head: `product_items`' one-label items (the
    head predicts one label; several agents come from the decision rule)."""
    items = product_items(
        manifests, augment=augment, per_label=per_label, multi=0, seed=seed, exclude=exclude
    )
    return list(dict.fromkeys((it.text, it.gold[0]) for it in items if len(it.gold) == 1))


class FitTarget(Protocol):
    """What fitting reads of a router (routing.head.SemanticHeadRouter is one): its examples,
    calibration items, routes and configuration. A protocol, so this training module never
    imports the runtime router back."""

    name: str
    embed: Embed
    config: SemanticHeadRouterConfig
    examples: list[tuple[str, str]]
    items: list[CalibrationItem]
    manifests: Mapping[str, AgentManifest]
    thresholds: DecisionThresholds


# --- fitting the head router at first use ----------------------------------------------------------
def fit_router(router: FitTarget) -> tuple[Head, np.ndarray, DecisionThresholds, dict[str, Any]]:
    """Fit `router`'s head on its examples and calibrate its thresholds: (head, the agent
    examples' vectors for the novelty check, thresholds, calibration report)."""
    texts = [t for t, _ in router.examples]
    labels = [lab for _, lab in router.examples]
    # The fit and the calibration folds embed the same texts: embed them once.
    embed = memo(router.embed)
    head = fit_head(texts, labels, router.config.head, embed=embed, cache_dir=router.config.cache_dir)
    if isinstance(head, LinearHead):
        head.embed = router.embed  # routing embeds new queries; keep no cache
    # Agent examples' vectors: the novelty check's nearest-example similarity.
    support = [t for t, lab in router.examples if lab in router.manifests]
    support_x = normalise(np.asarray(embed(support), dtype=np.float32))
    thresholds, calibration = _calibrate(router, embed)
    return head, support_x, thresholds, calibration


def _calibration_items(router: FitTarget) -> list[CalibrationItem]:
    items = router.items
    cap = router.config.max_calibration_items
    if len(items) <= cap:
        return items
    # Stratified by label: every label keeps its share (and at least its first items).
    by: dict[tuple[str, ...], list[CalibrationItem]] = {}
    for it in items:
        by.setdefault(it.gold, []).append(it)
    rng = np.random.default_rng(router.config.augment_seed)
    out = []
    for group in by.values():
        k = max(2, round(len(group) * cap / len(items)))
        out += [group[i] for i in sorted(rng.choice(len(group), min(k, len(group)), replace=False))]
    return out


def _calibrate(router: FitTarget, embed: Embed) -> tuple[DecisionThresholds, dict[str, Any]]:
    cfg = router.config
    pinned = cfg.pinned()
    if not cfg.calibrate or len(pinned) == 3:
        return router.thresholds, {"thresholds": router.thresholds.model_dump(), "calibrated": False}
    items = _calibration_items(router)
    per_label: dict[str, set[str]] = {}
    for it in items:
        if len(it.gold) == 1:
            per_label.setdefault(it.gold[0], set()).add(it.source)
    thin = sorted(lab for lab, s in per_label.items() if len(s) < 2)
    if len(items) < cfg.min_calibration_items or thin:
        why = f"{len(items)} items" + (f"; labels with one seed: {thin[:5]}" if thin else "")
        log.warning(
            "%s: calibration data too small (%s): fixed fallback thresholds %s",
            router.name,
            why,
            router.thresholds.model_dump(exclude={"source"}),
        )
        return router.thresholds, {
            "thresholds": router.thresholds.model_dump(),
            "calibrated": False,
            "why": why,
        }
    folds = min(cfg.calibration_folds, min(len(s) for s in per_label.values()))
    thresholds, report = calibrate(
        embed,
        items,
        list(router.manifests),
        cfg.head,
        target_precision=cfg.target_precision,
        operating_point=cfg.operating_point,
        folds=max(2, folds),
        max_agents=cfg.max_agents,
        seed=cfg.augment_seed,
        fixed=pinned,
    )
    calibration = {**report, "calibrated": True, "routes": sorted(router.manifests)}
    log.info("%s calibrated: %s", router.name, json.dumps(calibration_summary(calibration, thresholds)))
    return thresholds, calibration
