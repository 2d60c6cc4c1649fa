"""Conversation context: follow-up references, task switches and bounded model history."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "last": -1,
}  # fmt: skip
KIND_WORDS = {
    "article": "article", "articles": "article", "ticket": "ticket", "tickets": "ticket",
    "macro": "macro", "macros": "macro", "order": "order", "product": "product",
    "source": None, "link": None, "one": None, "result": None,
}  # fmt: skip
_ORDINAL_REF = re.compile(
    r"\b(?:the\s+)?(" + "|".join(ORDINALS) + r")\s+(" + "|".join(KIND_WORDS) + r")\b", re.IGNORECASE
)
_NUMBER_REF = re.compile(
    r"(?:\[(\d{1,2})\]|\b(?:source|article|result|link)\s*#?\s*(\d{1,2})\b)", re.IGNORECASE
)
_DEMONSTRATIVE = re.compile(
    r"\b(?:that|this|the same|the)\s+(order|product|article|ticket|macro)\b", re.IGNORECASE
)

MAX_HISTORY_TURNS = 8
TASK_SWITCH_SIMILARITY = 0.25


_FRAMING = re.compile(
    r"^\s*(?:what|how)\s+(?:does|do|did)\s+(?:.{0,40}?\s+)?(?:say|said|mention|tell us)\s+(?:about|on|regarding)?\s*"
    r"|^\s*(?:tell me more about|more on|summari[sz]e|explain|open|show me)\s*",
    re.IGNORECASE,
)


@dataclass
class FollowUp:
    """What an earlier answer contributed to this question."""

    citations: list[dict[str, Any]] = field(default_factory=list)  # referenced earlier sources
    order_numbers: list[str] = field(default_factory=list)
    reason: str = ""
    # The question without its pointer ("what does the second article say about X" → "X"),
    # so ranking and retrieval see the topic rather than the reference.
    focus: str | None = None


def last_answer(thread: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next(
        (m for m in reversed(thread) if m.get("role") == "assistant" and m.get("status") == "complete"), None
    )


def resolve_follow_up(query: str, thread: Sequence[Mapping[str, Any]]) -> FollowUp:
    """'the second article', '[2]', 'that order' → the earlier citations they point at."""
    answer = last_answer(thread)
    if answer is None:
        return FollowUp()
    cites: list[dict[str, Any]] = list(answer.get("citations") or [])
    out = FollowUp()
    for m in _ORDINAL_REF.finditer(query):
        pos, kind = ORDINALS[m.group(1).lower()], KIND_WORDS[m.group(2).lower()]
        pool = [c for c in cites if kind is None or c.get("kind") == kind]
        if pool and (pos == -1 or pos <= len(pool)):
            out.citations.append(pool[pos - 1] if pos > 0 else pool[-1])
            out.reason = f"refers to {m.group(0)!r}"
    for m in _NUMBER_REF.finditer(query):
        n = int(m.group(1) or m.group(2))
        match = next((c for c in cites if c.get("n") == n), None)
        if match and match not in out.citations:
            out.citations.append(match)
            out.reason = f"refers to source {n}"
    for m in _DEMONSTRATIVE.finditer(query):
        kind = m.group(1).lower()
        for c in cites:
            if c.get("kind") == kind and c not in out.citations:
                out.citations.append(c)
                out.reason = out.reason or f"refers to {m.group(0)!r}"
                break
    routing = (answer.get("meta") or {}).get("routing") or {}
    meta_orders = (routing.get("facts") or {}).get("order_numbers") or []
    for c in out.citations:
        if c.get("kind") == "order" and str(c.get("id", "")).startswith("order:"):
            out.order_numbers.append(str(c["id"]).split(":", 1)[1])
    if _DEMONSTRATIVE.search(query) and not out.order_numbers and "order" in query.lower():
        out.order_numbers = list(meta_orders)
    if out.citations:
        stripped = _DEMONSTRATIVE.sub(" ", _NUMBER_REF.sub(" ", _ORDINAL_REF.sub(" ", query)))
        stripped = _FRAMING.sub("", re.sub(r"\s+", " ", stripped)).strip(" ?.!,")
        out.focus = stripped if len(stripped) >= 3 else out.citations[0].get("title") or None
    return out


def previous_question(thread: Sequence[Mapping[str, Any]]) -> str | None:
    return next((m.get("text") for m in reversed(thread) if m.get("role") == "user"), None)


def is_task_switch(
    query: str, thread: Sequence[Mapping[str, Any]], embed: Callable[[list[str]], np.ndarray]
) -> bool:
    """A new topic: far from the previous question, with no reference to earlier results."""
    prev = previous_question(thread)
    if not prev:
        return False
    vecs = embed([query, prev])
    return float(vecs[0] @ vecs[1]) < TASK_SWITCH_SIMILARITY


def bounded_history(
    history: Sequence[Mapping[str, Any]], question: str, answer: str, *, max_turns: int = MAX_HISTORY_TURNS
) -> list[dict[str, Any]]:
    """Append the turn; fold everything older than `max_turns` turns into one summary entry.

    The summary is extractive (first sentence of each folded message), so it never invents.
    """
    entries = [dict(h) for h in history] + [
        {"role": "user", "text": question},
        {"role": "model", "text": answer},
    ]
    summary = [e for e in entries if e.get("role") == "summary"]
    turns = [e for e in entries if e.get("role") != "summary"]
    keep = max_turns * 2
    if len(turns) <= keep:
        return summary + turns
    folded, recent = turns[:-keep], turns[-keep:]
    lines = [summary[0]["text"]] if summary else []
    for e in folded:
        first = re.split(r"(?<=[.!?])\s", str(e.get("text", "")).strip(), maxsplit=1)[0][:200]
        lines.append(f"{e.get('role')}: {first}")
    return [{"role": "summary", "text": "\n".join(lines)[-4000:]}, *recent]


# --- references to earlier entities ("it", "that order", "her other order") ------------------------
# A question that points at something without naming it. "this order"/"this product" mean the
# ticket's own (the agents read those from the ticket), so only words that point back are here.
_POINTER = re.compile(
    r"\b(it|its|it's|them|they|those|that one|this one|the same one|the other one|the other order|"
    r"(?:her|his|their) other (?:order|one)|that (?:order|product|item|one|thing)|"
    r"the one (?:before|after)(?: that| it)?|the (?:previous|earlier|older|newer) one|"
    r"es|sie|ihn|ihm|dieses|diese|davon)\b",
    re.IGNORECASE,
)
# Words that name something on their own: a question holding one needs no earlier entity.
_NAMED = re.compile(r"\b[A-Z]{2}-\d{6}\b|\b[A-Z]{2}-\d{3}\b|@")
_MAX_ABOUT_CHARS = 200


# "and the pan?", "what about the UK?": the previous question asked again about something else.
_ELLIPSIS = re.compile(
    r"^\W*(?:and|what about|how about|same for|same with|und|und was ist mit)\b", re.IGNORECASE
)
_MAX_ELLIPSIS_WORDS = 6


@dataclass
class Reference:
    """What a pointing question is about, taken from the conversation before it."""

    about: str = ""  # text appended to the agents' queries: "(about: Lumo Smart Plug (LU-605))"
    # An elliptical follow-up ("and the pan?"): what the previous question asked, minus what
    # it asked it about ("how long is the warranty on").
    asked_again: str = ""
    order_numbers: list[str] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    reason: str = ""

    def apply(self, query: str) -> str:
        """The question with what it points at spelled out (for agents and sentence ranking)."""
        if self.asked_again:
            return f"{query} ({self.asked_again})"[:2000]
        return f"{query} (about: {self.about})"[:2000] if self.about else query

    @property
    def found(self) -> bool:
        return bool(self.about or self.asked_again)


def _entities_of(message: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(titles, order numbers, SKUs) an answer was about: its cited records first."""
    cites = [c for c in message.get("citations") or [] if isinstance(c, Mapping)]
    cites.sort(key=lambda c: not c.get("cited"))
    titles, orders, skus = [], [], []
    for c in cites:
        cid, kind = str(c.get("id") or ""), c.get("kind")
        if kind == "order" and cid.startswith("order:"):
            orders.append(cid.split(":", 1)[1])
            titles.append(str(c.get("title") or cid))
        elif kind == "product" and cid.startswith("product:"):
            skus.append(cid.split(":", 1)[1])
            titles.append(str(c.get("title") or cid))
    facts = ((message.get("meta") or {}).get("routing") or {}).get("facts") or {}
    for number in facts.get("order_numbers") or []:
        if number not in orders:
            orders.append(str(number))
    for sku in facts.get("skus") or []:
        if sku not in skus:
            skus.append(str(sku))
    return titles, orders, skus


def resolve_reference(query: str, thread: Sequence[Mapping[str, Any]]) -> Reference:
    """'and how long is the warranty on it?' → about what the previous turn was about.

    The previous answer's cited orders and products win (the agent found them); when it cited
    none, the previous question itself is the context ("customer's lumo plug won't connect" makes
    "it" the plug). A question that names its own order, product or email needs nothing.
    """
    answer = last_answer(thread)
    if _ELLIPSIS.search(query) and len(query.split()) <= _MAX_ELLIPSIS_WORDS and not _POINTER.search(query):
        return _asked_again(query, thread, answer)
    if not _POINTER.search(query) or _NAMED.search(query):
        return Reference()
    prev_q = previous_question(thread)
    if answer is None or not prev_q:
        return Reference()
    titles, orders, skus = _entities_of(answer)
    pointer = _POINTER.search(query).group(0).lower()  # type: ignore[union-attr]
    if "other" in pointer and len(orders) > 1:
        # "her other order": the one the previous answer did not lead with.
        orders = orders[1:]
        titles = [t for t in titles if orders[0] in t] or titles
    if titles:
        about = "; ".join(dict.fromkeys(titles[:2]))
        return Reference(
            about=about[:_MAX_ABOUT_CHARS],
            order_numbers=orders[:1],
            skus=skus[:1],
            reason=f"refers to {about[:80]!r}",
        )
    about = re.sub(r"\s+", " ", str(prev_q)).strip()[:_MAX_ABOUT_CHARS]
    return Reference(
        about=about, order_numbers=orders[:1], skus=skus[:1], reason="refers to the previous question"
    )


def _asked_again(
    query: str, thread: Sequence[Mapping[str, Any]], answer: Mapping[str, Any] | None
) -> Reference:
    """'and the pan?' after 'warranty on the bird camera?' → 'warranty on the' asked of the pan:
    the previous question without the words naming what the previous answer was about."""
    prev_q = previous_question(thread)
    if answer is None or not prev_q:
        return Reference()
    titles, _, _ = _entities_of(answer)
    named = {w for t in titles for w in re.findall(r"[a-z0-9]+", t.lower())}
    own = set(re.findall(r"[a-z0-9]+", query.lower()))
    words = [w for w in re.findall(r"[A-Za-z0-9'€.-]+", str(prev_q)) if w.lower() not in named | own]
    intent = " ".join(words).strip(" ?.!,")
    if len(intent) < 3:
        return Reference()
    return Reference(asked_again=intent[:_MAX_ABOUT_CHARS], reason="asks the previous question again")
