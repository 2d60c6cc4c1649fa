"""Confidence thresholds from evaluation data: how much a router's confidence is worth.

Given one (confidence, correct) pair per evaluated turn, the sweep answers, for each threshold t:
"if we accept the router's decision only when its confidence ≥ t (and escalate the rest), what
share of turns is accepted, how accurate are the accepted ones, and what share is escalated?"

`choose_threshold` turns that into a setting with one documented rule: the LOWEST threshold on
the grid whose accepted accuracy reaches the target (and that accepts at least `min_accepted`
turns). Lowest, because accepting more turns locally is the point of a cascade: every turn not
accepted costs a remote call. Accuracy on the accepted turns is not monotonic in t, so the
rule scans the whole grid rather than bisecting. None when no threshold reaches the target:
the router's confidence cannot buy that accuracy on this data (escalate everything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Pair = tuple[float, bool]

DEFAULT_TARGETS = (0.90, 0.95, 0.98)


def grid(step: float = 0.01) -> list[float]:
    """Thresholds 0, step, 2·step, …, 1 (rounded, so they read well as settings)."""
    if not 0 < step <= 0.5:
        raise ValueError("step must be in (0, 0.5]")
    n = round(1 / step)
    return [round(i * step, 6) for i in range(n + 1)]


@dataclass(frozen=True)
class SweepPoint:
    threshold: float
    accepted: float  # share of turns whose confidence ≥ threshold
    accuracy_on_accepted: float | None  # None when nothing is accepted
    escalated: float  # 1 - accepted: the share that would go to the remote router
    n_accepted: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _arrays(pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    if not pairs:
        raise ValueError("no (confidence, correct) pairs to sweep")
    conf = np.array([float(c) for c, _ in pairs], dtype=float)
    ok = np.array([bool(k) for _, k in pairs], dtype=bool)
    if not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1:
        raise ValueError("confidences must be finite and in [0, 1]")
    return conf, ok


def sweep(pairs: Sequence[Pair], thresholds: Sequence[float] | None = None) -> list[SweepPoint]:
    """Coverage and accuracy at every threshold (default: the 0.01 grid)."""
    conf, ok = _arrays(pairs)
    n = len(conf)
    out = []
    for t in thresholds if thresholds is not None else grid():
        mask = conf >= t
        k = int(mask.sum())
        out.append(
            SweepPoint(
                threshold=float(t),
                accepted=round(k / n, 4),
                accuracy_on_accepted=round(float(ok[mask].mean()), 4) if k else None,
                escalated=round(1 - k / n, 4),
                n_accepted=k,
            )
        )
    return out


def choose_threshold(
    pairs: Sequence[Pair],
    target_accuracy: float,
    *,
    thresholds: Sequence[float] | None = None,
    min_accepted: int = 1,
) -> float | None:
    """The lowest threshold whose accepted accuracy ≥ `target_accuracy` (see the module doc)."""
    if not 0 < target_accuracy <= 1:
        raise ValueError("target_accuracy must be in (0, 1]")
    if min_accepted < 1:
        raise ValueError("min_accepted must be >= 1")
    for p in sweep(pairs, sorted(thresholds) if thresholds is not None else None):
        if (
            p.n_accepted >= min_accepted
            and p.accuracy_on_accepted is not None
            # Rounded like the report, so a threshold the report shows at the target qualifies.
            and p.accuracy_on_accepted >= round(target_accuracy, 4)
        ):
            return p.threshold
    return None


def coverage_report(
    pairs: Sequence[Pair],
    *,
    targets: Sequence[float] = DEFAULT_TARGETS,
    table_step: float = 0.05,
    min_accepted: int = 1,
) -> dict[str, Any]:
    """What an evaluation report keeps: a readable sweep table, the fine sweep for the plot,
    and the threshold `choose_threshold` picks for each target accuracy."""
    conf, ok = _arrays(pairs)
    recommended = []
    fine = sweep(pairs)
    for target in targets:
        t = choose_threshold(pairs, target, min_accepted=min_accepted)
        point = next((p for p in fine if p.threshold == t), None)
        recommended.append(
            {
                "target_accuracy": target,
                "threshold": t,
                "accepted": point.accepted if point else 0.0,
                "accuracy_on_accepted": point.accuracy_on_accepted if point else None,
                "escalated": point.escalated if point else 1.0,
            }
        )
    return {
        "rule": "lowest threshold t on the 0.01 grid whose accuracy on turns with confidence >= t "
        f"reaches the target (at least {min_accepted} turn(s) accepted); null = none does",
        "n": len(conf),
        "overall_accuracy": round(float(ok.mean()), 4),
        "table": [p.as_dict() for p in sweep(pairs, grid(table_step))],
        "fine": [p.as_dict() for p in fine],
        "recommended": recommended,
    }


def plot_coverage(coverage: dict[str, Any], path: Any, title: str) -> None:
    """Accuracy on accepted turns and escalation share against the threshold (PNG, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = coverage["fine"]
    ts = [p["threshold"] for p in pts]
    acc = [np.nan if p["accuracy_on_accepted"] is None else p["accuracy_on_accepted"] for p in pts]
    esc = [p["escalated"] for p in pts]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(ts, acc, label="accuracy on accepted", color="tab:blue")
    ax.plot(ts, esc, label="escalated share", color="tab:orange")
    for rec in coverage["recommended"]:
        if rec["threshold"] is not None:
            ax.axvline(rec["threshold"], color="grey", linestyle=":", linewidth=0.8)
            ax.text(rec["threshold"], 0.02, f" {rec['target_accuracy']:.0%}", fontsize=7, color="grey")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence threshold (accept local decision when confidence ≥ t)")
    ax.set_ylabel("share")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
