"""Scoring of the answer benchmark: pure functions over a case's turns and what the assistant said.

A scored *fact* turn is right when every ``expect`` regex matches the answer (case-insensitive), no
``forbid`` regex matches, the answer is not a decline, and at least one *cited* source id matches
the turn's ``sources`` (exact id, or a prefix ending in ":" or "*"). A *decline* turn is right when
the assistant declined and stated no forbidden fact. Turns with neither are context (not scored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.common import percentiles

from .cases import CATEGORIES, Turn

# How the product says it has no answer, in one place. The offline responder, the orchestrator
# (no source at all) and Gemini (told to say so plainly) word it differently; German for the
# German tenant content. Kept narrow: a quoted source sentence must not read as a decline.
DECLINE_PATTERNS: tuple[str, ...] = (
    r"\bfound nothing relevant\b",
    r"\bcould(?:n'?t|n’t| not) find anything relevant\b",
    r"\b(?:found|find) no relevant\b",
    r"\bno relevant (?:information|sources?|results?|articles?)\b",
    r"\bnothing relevant (?:to|for|in|was found)\b",
    r"\bthe (?:available )?sources (?:do not|don'?t|don’t) (?:answer|cover|mention|say|contain)\b",
    r"\bI (?:can ?not|can'?t|can’t|am unable to|'m unable to|’m unable to) answer\b",
    r"\bI (?:do not|don'?t|don’t) have (?:any |enough )?(?:information|an answer|data|details)\b",
    r"\bnichts Relevantes\b",
    r"\bkeine (?:relevanten|passenden) (?:Informationen|Quellen|Ergebnisse|Artikel)\b",
    r"\bkann (?:diese|die) Frage nicht beantworten\b",
)
_DECLINE = re.compile("|".join(f"(?:{p})" for p in DECLINE_PATTERNS), re.IGNORECASE)
# A router that asks the user to say more has not answered: for an unanswerable question that is
# a decline (it states nothing), for an answerable one it is a miss.
DECLINE_ACTIONS = frozenset({"clarify"})


def decline_reason(text: str, routing: Mapping[str, Any] | None = None) -> str | None:
    """Why this answer counts as a decline (``None``: it does not)."""
    routing = routing or {}
    meta = routing.get("meta") or {}
    if isinstance(meta, Mapping) and meta.get("declined"):
        return "routing meta: declined"
    if routing.get("action") in DECLINE_ACTIONS:
        return f"router action: {routing.get('action')}"
    m = _DECLINE.search(text or "")
    return f"says {m.group(0)!r}" if m else None


def is_decline(text: str, routing: Mapping[str, Any] | None = None) -> bool:
    return decline_reason(text, routing) is not None


def source_matches(source_id: str, pattern: str) -> bool:
    """An id ending in ":" or "*" is a prefix (``order:``, ``article:*``); any other is exact, or
    a part of that source (``ticket:41316:internal`` — the ticket's internal notes — is the ticket)."""
    if pattern.endswith("*"):
        return source_id.startswith(pattern[:-1])
    if pattern.endswith(":"):
        return source_id.startswith(pattern)
    return source_id == pattern or source_id.startswith(pattern + ":")


def holds_fact(source_id: str, patterns: Iterable[str]) -> bool:
    return any(source_matches(source_id, p) for p in patterns)


def cited_ids(citations: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of the sources the answer actually cites (not merely retrieved), in order, unique."""
    return list(dict.fromkeys(str(c.get("id")) for c in citations or [] if c.get("cited")))


@dataclass
class Verdict:
    kind: str  # "fact" | "decline" | "context"
    right: bool | None  # None for context turns
    declined: bool
    wrong_fact: bool  # a forbid regex matched
    reasons: list[str] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)
    cited_holding: int = 0  # cited ids that match the turn's sources

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_turn(
    turn: Turn,
    text: str,
    citations: Sequence[Mapping[str, Any]] = (),
    routing: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> Verdict:
    """The verdict on one turn; ``error`` is set when no chat:done came (error event, timeout)."""
    kind = "decline" if turn.decline else "fact" if turn.expect else "context"
    cited = cited_ids(citations)
    holding = sum(holds_fact(c, turn.sources) for c in cited) if turn.sources else 0
    if error is not None:
        return Verdict(
            kind, None if kind == "context" else False, False, False, [f"no answer: {error}"], cited
        )
    why_declined = decline_reason(text, routing)
    declined = why_declined is not None
    forbidden = [p for p in turn.forbid if re.search(p, text or "", re.IGNORECASE)]
    reasons = [f"states a forbidden fact /{p}/" for p in forbidden]
    if kind == "context":
        return Verdict(kind, None, declined, bool(forbidden), reasons, cited, holding)
    if kind == "decline":
        if not declined:
            reasons.append("should have declined, answered instead")
        return Verdict(kind, declined and not forbidden, declined, bool(forbidden), reasons, cited, holding)
    missing = [p for p in turn.expect if not re.search(p, text or "", re.IGNORECASE)]
    reasons += [f"expected fact missing /{p}/" for p in missing]
    if declined:
        reasons.append(f"declined ({why_declined})")
    if not cited:
        reasons.append("cites no source")
    elif not holding:
        reasons.append(f"cites none of {turn.sources} (cited {cited})")
    right = not missing and not forbidden and not declined and holding > 0
    return Verdict(kind, right, declined, bool(forbidden), reasons, cited, holding)


# --- metrics ----------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def metrics(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics over case results (``run.CaseResult.as_dict()``: ``turns`` with ``verdict`` and
    ``first_token_s`` / ``total_s``). Ratios are ``None`` when their denominator is empty."""
    turns = [t for r in results for t in r["turns"]]
    scored = [t for t in turns if t["verdict"]["kind"] != "context"]
    facts = [t for t in scored if t["verdict"]["kind"] == "fact"]
    should_decline = [t for t in scored if t["verdict"]["kind"] == "decline"]
    declined = [t for t in scored if t["verdict"]["declined"]]
    citing = [t for t in facts if t["verdict"]["cited"]]
    precisions = [t["verdict"]["cited_holding"] / len(t["verdict"]["cited"]) for t in citing]
    first = [t["first_token_s"] for t in turns if t.get("first_token_s") is not None]
    total = [t["total_s"] for t in turns if t.get("total_s") is not None and not t.get("error")]
    return {
        "cases": len(results),
        "turns": len(turns),
        "scored_turns": len(scored),
        "fact_turns": len(facts),
        "decline_turns": len(should_decline),
        "errors": sum(1 for t in turns if t.get("error")),
        "case_accuracy": _ratio(sum(case_right(r) for r in results), len(results)),
        "fact_accuracy": _ratio(sum(1 for t in facts if t["verdict"]["right"]), len(facts)),
        "wrong_fact_turns": sum(1 for t in scored if t["verdict"]["wrong_fact"]),
        "wrong_fact_rate": _ratio(sum(1 for t in scored if t["verdict"]["wrong_fact"]), len(scored)),
        "citation_precision": round(sum(precisions) / len(precisions), 4) if precisions else None,
        "decline_precision": _ratio(
            sum(1 for t in declined if t["verdict"]["kind"] == "decline"), len(declined)
        ),
        "decline_recall": _ratio(
            sum(1 for t in should_decline if t["verdict"]["declined"]), len(should_decline)
        ),
        "first_token_ms": percentiles(first, (50, 95)),
        "total_ms": percentiles(total, (50, 95)),
    }


# The targets, on the test split. p95 is of a whole turn (client-side, send → chat:done).
TARGETS: dict[str, tuple[str, float]] = {
    "fact_accuracy": (">=", 0.90),
    "wrong_fact_rate": ("<=", 0.0),
    "decline_recall": (">=", 0.90),
    "p95_total_ms": ("<=", 1000.0),
}


def target_status(m: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target: the measured value and met (``None`` when nothing was measured)."""
    values = {
        "fact_accuracy": m.get("fact_accuracy"),
        "wrong_fact_rate": m.get("wrong_fact_rate"),
        "decline_recall": m.get("decline_recall"),
        "p95_total_ms": (m.get("total_ms") or {}).get("p95"),
    }
    out = {}
    for name, (op, bound) in TARGETS.items():
        v = values[name]
        measured = v is not None and v == v  # NaN: nothing measured
        met = (v >= bound if op == ">=" else v <= bound) if measured else None
        out[name] = {"value": v, "target": f"{op} {bound:g}", "met": met}
    return out


NOT_IN_HEADLINE = frozenset({"brief"})


def summarise(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics per split (plus ``all``) and per category × split."""
    by_split: dict[str, Any] = {}
    # The headline is about answers: the brief's cases (no question asked) have their own row.
    answers = [r for r in results if r["category"] not in NOT_IN_HEADLINE] or list(results)
    for split in ("dev", "test"):
        chosen = [r for r in answers if r["split"] == split]
        if chosen:
            by_split[split] = metrics(chosen)
    by_split["all"] = metrics(answers)
    by_category: dict[str, dict[str, Any]] = {}
    for cat in CATEGORIES:
        for split in ("dev", "test"):
            chosen = [r for r in results if r["category"] == cat and r["split"] == split]
            if chosen:
                by_category.setdefault(cat, {})[split] = metrics(chosen)
    return {"by_split": by_split, "by_category": by_category}


def case_right(result: Mapping[str, Any]) -> bool:
    return all(t["verdict"]["right"] for t in result["turns"] if t["verdict"]["kind"] != "context")
