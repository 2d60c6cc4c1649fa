"""Draft replies: "what should I tell the customer?" answered as a reply the agent can insert.

`is_draft_request` recognises the request (English and German). `compose_draft` assembles the
reply from facts that were already chosen and quoted: template words only for the greeting, the
sign-off and nothing else, so a draft never claims anything the sources do not say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agents.language import LANGUAGE_NAMES, detect_language, text_language

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


def customer_text(ticket: Mapping[str, Any]) -> str:
    """What the customer wrote: subject, description and their public comments (never our notes)."""
    parts = [str(ticket.get("subject") or ""), str(ticket.get("description") or "")]
    for c in ticket.get("comments") or []:
        if isinstance(c, Mapping) and c.get("public", True) is not False:
            author = c.get("author")
            role = c.get("role") or (author.get("role") if isinstance(author, Mapping) else None)
            if str(role or "end-user").lower() in ("end-user", "end_user", "customer", "requester"):
                parts.append(str(c.get("text") or c.get("body") or c.get("value") or ""))
    return " ".join(p for p in parts if p.strip())


def ticket_language(ticket: Mapping[str, Any]) -> str:
    """The language the customer writes in ("de", "fr", …), "en" when unclear.

    The text decides, not the requester's locale: a customer whose Zendesk profile says German but
    who writes English gets an English reply. A "Hallo" in an English message is not German: it
    takes several function words of a language, and more than the message's English ones."""
    return text_language(customer_text(ticket))


# Tags that say how or from where a ticket came, not what it is about.
_META_TAG = re.compile(r"^(?:country_\w+|email|web|chat|api|phone|voice|sms|mobile|web_form|closed_by_merge)$")


def ticket_topics(ticket: Mapping[str, Any]) -> str:
    """The ticket's topic in the team's words: its tags ("split_shipment" → "split shipment"),
    without channel and country tags. Triggers and agents tag in the team's language, so a
    French or German ticket still names its topic in the words of the (English) sources."""
    tags = [str(t) for t in ticket.get("tags") or [] if isinstance(t, str)]
    words = [t.replace("_", " ") for t in tags if not _META_TAG.match(t.lower())]
    return ", ".join(dict.fromkeys(words))[:300]


@dataclass(frozen=True)
class ReplyLanguage:
    """The language a draft is written in, and why.

    `wanted`: the customer's language; `code`: the draft's (the wanted one when the tenant's sources
    for this reply include it, else English); `note`: for the support agent when they differ."""

    code: str
    wanted: str
    note: str = ""

    @property
    def name(self) -> str:
        return LANGUAGE_NAMES.get(self.code, self.code)


def reply_language(
    ticket: Mapping[str, Any], question: str, source_languages: Iterable[str]
) -> ReplyLanguage:
    """The draft follows the ticket's language when the sources found for it include that language
    (a German ticket on returns: the German returns article); otherwise the draft is in English
    with a note ("no French sources; draft in English"), because offline the draft quotes its
    sources and a model should not translate policy text no one has checked. A ticket without
    customer text (a bare ticket, none at all) takes the language of the agent's question."""
    wanted = ticket_language(ticket) if customer_text(ticket).strip() else detect_language(question)
    if wanted == "en" or wanted in set(source_languages):
        return ReplyLanguage(wanted, wanted)
    name = LANGUAGE_NAMES.get(wanted, wanted)
    return ReplyLanguage("en", wanted, f"no {name} sources; draft in English")


# Each language's fixed phrases: the only words of a draft not quoted from a source.
PHRASES: dict[str, dict[str, str]] = {
    "en": {"hello": "Hi {name},", "hello_nobody": "Hi there,", "sign_off": "Kind regards,"},
    "de": {"hello": "Hallo {name},", "hello_nobody": "Hallo,", "sign_off": "Viele Grüße,"},
    "fr": {"hello": "Bonjour {name},", "hello_nobody": "Bonjour,", "sign_off": "Cordialement,"},
    "nl": {"hello": "Hallo {name},", "hello_nobody": "Hallo,", "sign_off": "Met vriendelijke groet,"},
    "es": {"hello": "Hola {name}:", "hello_nobody": "Hola:", "sign_off": "Saludos cordiales,"},
    "it": {"hello": "Ciao {name},", "hello_nobody": "Buongiorno,", "sign_off": "Cordiali saluti,"},
}


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


def compose_draft(
    ticket: Mapping[str, Any],
    agent_name: str | None,
    paragraphs: Iterable[str],
    language: str | None = None,
) -> str:
    """A reply to the customer, ready to insert into the ticket; "" when there is nothing to say.

    What the orchestrator passes:

    - `ticket`: the sidebar's ticket payload (the requester's name gives the greeting);
    - `agent_name`: the support agent's name (`principal.user_name`), or None (the sign-off then
      has no name);
    - `paragraphs`: the facts the reply states, already chosen and in order: the answer's fact
      lines from the order, product and knowledge sources and their best policy sentences, each
      a paragraph. Not the ticket's own lines (the customer wrote them) and never internal notes.
      Citation marks ``[n]`` and the "Offline mode" label are removed here anyway, and so are
      lines the ticket agent labels ("Customer asks: …"), but the caller should not rely on it.
    - `language`: the reply's language (`reply_language(...).code`); None: the ticket's.

    The draft is: greeting ("Hi Felix," / "Hallo Felix," / "Hi there,"), the facts, then one
    next-step paragraph only when one of the given sentences states it (a promise, what the
    customer will receive, a time frame): it is moved to the end, never written. Then the
    sign-off with the agent's first name ("Kind regards,\\nLukas" / "Viele Grüße,\\nLukas").
    """
    phrases = PHRASES.get(language or ticket_language(ticket), PHRASES["en"])
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
    greeting = phrases["hello"].format(name=name) if name else phrases["hello_nobody"]
    signer = _first_name(agent_name)
    closing = f"{phrases['sign_off']}\n{signer}" if signer else phrases["sign_off"]
    return "\n\n".join([greeting, *facts, closing])
