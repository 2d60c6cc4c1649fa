"""Draft replies: "what should I tell the customer?" answered as a reply the agent can insert.

`is_draft_request` recognises the request (English and German). `compose_draft` assembles the
reply from facts that were already chosen and quoted: template words only for the greeting, the
sign-off and nothing else, so a draft never claims anything the sources do not say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_I = re.IGNORECASE
_DRAFT = [
    re.compile(p, _I)
    for p in (
        # "what should I tell / say to / write to the customer", "what do we answer her"
        r"\bwhat (?:should|shall|do|can|could|would|to) (?:i|we)? ?(?:tell|say|write|reply|respond|answer|send)\b",
        r"\bhow (?:should|shall|do|can|would) (?:i|we) (?:reply|respond|answer|word|phrase)\b",
        r"\b(?:draft|compose|write|prepare|suggest|formulate|propose)\b.{0,30}"
        r"\b(?:reply|response|answer|email|e-mail|message|mail)\b",
        r"\b(?:reply|response|answer|email) (?:suggestion|draft|template|proposal)\b",
        r"\bsuggested (?:reply|response|answer)\b",
        r"\bhelp me (?:reply|respond|answer|write back)\b",
        # "draft something for her", "can you draft it": in the sidebar, drafting means a reply
        r"\bdraft (?:something|sth|one|it|a few lines|a quick one|a note)\b|^\W*draft\b",
        r"\b(?:reply|respond|write back) to (?:her|him|them|the customer|the cust|this)\b",
        # German: "was soll ich (ihr) schreiben/sagen/antworten", "Antwortentwurf", "entwirf eine Antwort"
        r"\bwas (?:soll(?:te)?|kann|könnte) ich\b.{0,30}\b(?:schreiben|sagen|antworten|mitteilen)\b",
        r"\bwas antworte ich\b|\bwie (?:soll|kann) ich\b.{0,20}\bantworten\b",
        r"\bantwort(?:entwurf|vorschlag|text)\b",
        r"\b(?:entw[iu]rf|schreib|formulier|verfass|erstell|vorschlag)\w*\b.{0,30}\b(?:antwort|mail|e-mail|nachricht)\b",
        r"\bantwort\b.{0,30}\b(?:an|für) (?:den kunden|die kundin|ihn|sie)\b",
    )
]
# A question about what was already said is not a request for a new reply.
_PAST = re.compile(r"\bwhat (?:did|have|has) (?:we|i|you|my colleague|the agent)\b|\bwas haben wir\b", _I)


def is_draft_request(text: str) -> bool:
    """Does the support agent want a reply to send (rather than an answer for themselves)?"""
    text = text or ""
    if _PAST.search(text):
        return False
    return any(p.search(text) for p in _DRAFT)


# --- composing ---------------------------------------------------------------------------------
_GERMAN_WORDS = frozenset(
    [
        "ich",
        "und",
        "nicht",
        "bitte",
        "die",
        "der",
        "das",
        "ist",
        "mein",
        "meine",
        "meinen",
        "habe",
        "hat",
        "wurde",
        "ein",
        "eine",
        "einen",
        "mit",
        "für",
        "noch",
        "auf",
        "wir",
        "sie",
        "es",
        "bei",
        "mir",
        "mich",
        "kann",
        "können",
        "keine",
        "kein",
        "wie",
        "warum",
        "wann",
        "bestellung",
        "paket",
        "danke",
        "hallo",
        "guten",
        "sehr",
        "geehrte",
        "grüße",
    ]
)
_ENGLISH_WORDS = frozenset(
    [
        "i",
        "and",
        "not",
        "please",
        "the",
        "is",
        "my",
        "have",
        "has",
        "was",
        "a",
        "an",
        "with",
        "for",
        "still",
        "on",
        "we",
        "you",
        "it",
        "at",
        "me",
        "can",
        "how",
        "why",
        "when",
        "order",
        "package",
        "thanks",
        "hello",
        "dear",
        "regards",
    ]
)
_WORD = re.compile(r"[a-zäöüß]+", _I)
_CITATION = re.compile(r"\s*\[\d{1,3}(?:\s*[,–-]\s*\d{1,3})*\]")
_OFFLINE_LABEL = re.compile(r"^\s*offline mode\b[^\n]*$", _I | re.MULTILINE)
# Lines the ticket agent labels (agents/ticket): the customer's own words and our notes, which a
# reply to the customer never repeats back.
_TICKET_LINE = re.compile(
    r"^(?:customer(?: \([^)]*\))? (?:wrote on open|also wrote|replied|asks)|last comment, by|reply by|"
    r"done so far|we promised|open next step|internal note|public replies from support)\b[^:]*:",
    _I,
)
# A sentence that says what happens next: our action, what the customer receives, a time frame.
_NEXT_STEP = re.compile(
    r"\b(?:we|i)(?:'ll| will| shall|'re going to| are going to)\b"
    r"|\byou(?:'ll| will) (?:receive|get|be|see|have)\b"
    r"|\b(?:will|should) (?:arrive|be (?:refunded|sent|shipped|delivered|back|credited)|ship|reach you)\b"
    r"|\bwithin (?:\d+|a|one|two|three|a few)\b[^.]{0,20}?\b(?:hours?|days?|weeks?)\b"
    r"|\b(?:wir werden|ich werde|sie erhalten|innerhalb von \d+)\b",
    _I,
)
_PLACEHOLDER_NAMES = {"requester", "customer", "unknown", "user", "agent", "kunde", "kundin"}


def ticket_language(ticket: Mapping[str, Any]) -> str:
    """ "de" when the customer writes German (description and their public comments), else "en"."""
    parts = [str(ticket.get("description") or ""), str(ticket.get("subject") or "")]
    for c in ticket.get("comments") or []:
        if isinstance(c, Mapping) and c.get("public", True) is not False:
            author = c.get("author")
            role = c.get("role") or (author.get("role") if isinstance(author, Mapping) else None)
            if str(role or "end-user").lower() in ("end-user", "end_user", "customer", "requester"):
                parts.append(str(c.get("text") or c.get("body") or c.get("value") or ""))
    words = [w.lower() for w in _WORD.findall(" ".join(parts))]
    german = sum(w in _GERMAN_WORDS for w in words)
    english = sum(w in _ENGLISH_WORDS for w in words)
    # A "Hallo" in an English message is not German: it takes several German function words.
    return "de" if german >= 3 and german > english else "en"


def _first_name(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    name = name.strip()
    if not name or "@" in name or name.lower() in _PLACEHOLDER_NAMES:
        return None
    return name.split()[0]


def _clean_paragraph(text: str) -> str:
    text = _OFFLINE_LABEL.sub("", str(text or ""))
    text = _CITATION.sub("", text)
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", ln).strip() for ln in text.splitlines()]
    return "\n".join(ln for ln in lines if ln and not _TICKET_LINE.match(ln)).strip()


def compose_draft(ticket: Mapping[str, Any], agent_name: str | None, paragraphs: Iterable[str]) -> str:
    """A reply to the customer, ready to insert into the ticket; "" when there is nothing to say.

    What the orchestrator passes:

    - `ticket`: the sidebar's ticket payload (the requester's name gives the greeting, the
      customer's own words decide German or English);
    - `agent_name`: the support agent's name (`principal.user_name`), or None (the sign-off then
      has no name);
    - `paragraphs`: the facts the reply states, already chosen and in order: the answer's fact
      lines from the order, product and knowledge sources and their best policy sentences, each
      a paragraph. Not the ticket's own lines (the customer wrote them) and never internal notes.
      Citation marks ``[n]`` and the "Offline mode" label are removed here anyway, and so are
      lines the ticket agent labels ("Customer asks: …"), but the caller should not rely on it.

    The draft is: greeting ("Hi Felix," / "Hallo Felix," / "Hi there,"), the facts, then one
    next-step paragraph only when one of the given sentences states it (a promise, what the
    customer will receive, a time frame): it is moved to the end, never written. Then the
    sign-off with the agent's first name ("Kind regards,\\nLukas").
    """
    german = ticket_language(ticket) == "de"
    facts: list[str] = []
    for p in paragraphs:
        cleaned = _clean_paragraph(p)
        if cleaned and cleaned not in facts:
            facts.append(cleaned)
    if not facts:
        return ""
    # The next step closes the reply; it is one of the facts, moved, not a sentence of our own.
    next_index = next((i for i, f in enumerate(facts) if _NEXT_STEP.search(f)), None)
    if next_index is not None and len(facts) > 1:
        facts.append(facts.pop(next_index))
    requester = ticket.get("requester")
    name = _first_name(requester.get("name") if isinstance(requester, Mapping) else None)
    hello, nobody = ("Hallo", "Hallo,") if german else ("Hi", "Hi there,")
    greeting = f"{hello} {name}," if name else nobody
    signer = _first_name(agent_name)
    sign_off = "Viele Grüße," if german else "Kind regards,"
    closing = f"{sign_off}\n{signer}" if signer else sign_off
    return "\n\n".join([greeting, *facts, closing])
