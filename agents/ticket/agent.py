"""The open ticket itself as a source: what the customer wrote, what support replied, what was
promised and what is still open, quoted from the ticket (extractive, never paraphrased).

The ticket arrives in the sidebar's shape (zendesk_app/src/ticket.js: comments as
{author, role, public, text}, custom_fields as {label: value}) or in Zendesk's REST/ZAF shapes
(comments with body/value/plain_body and author_id or an author object, custom_fields as a list).
Every line of the evidence text is one fact: a short label, then sentences of the ticket verbatim.
Which lines answer the question (`Evidence.facts`) depends on what was asked: a recap, the last
comment, the customer's ask, what we promised. Internal notes become a separate evidence item
marked `internal`, never mixed into the public lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.base import AgentContext, BaseAgent, Evidence, ToolCall

MAX_LINE_CHARS = 1200
OPENING_SENTENCES = 5
MAX_ASKS = 3
MAX_COMMITMENTS = 4
REPLY_SENTENCES = 2
NEXT_AS_SAID = "Open next step (as we said):"

# --- reading the ticket -----------------------------------------------------------------------------
_CUSTOMER_ROLES = {"end-user", "end_user", "enduser", "customer", "requester", "end user"}
_AGENT_ROLES = {"agent", "admin", "support", "staff", "light_agent", "light agent"}
_PLACEHOLDER_NAMES = {"", "requester", "customer", "unknown", "agent"}


@dataclass(frozen=True)
class Comment:
    author: str  # display name, "" when unknown
    customer: bool  # written by the requester
    public: bool
    sentences: tuple[str, ...]  # without greeting and sign-off


@dataclass
class TicketView:
    id: str
    subject: str = ""
    status: str = ""
    priority: str = ""
    requester_name: str = ""
    requester_email: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)

    @property
    def public(self) -> list[Comment]:
        return [c for c in self.comments if c.public]

    @property
    def internal(self) -> list[Comment]:
        return [c for c in self.comments if not c.public]


def _text_of(comment: Mapping[str, Any]) -> str:
    for key in ("text", "plain_body", "body", "value", "html_body"):
        value = comment.get(key)
        if isinstance(value, str) and value.strip():
            if key == "html_body" or (key == "value" and "<" in value and ">" in value):
                value = _strip_html(value)
            return value
    return ""


def _strip_html(value: str) -> str:
    value = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>", "\n", value)
    value = re.sub(r"<[^>]+>", "", value)
    return value.replace("&nbsp;", " ").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def _name(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _real_name(value: str) -> str:
    return "" if value.lower() in _PLACEHOLDER_NAMES else value


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def read_ticket(ticket: Mapping[str, Any]) -> TicketView:
    """The ticket in one shape, whatever shape it came in."""
    requester = ticket.get("requester")
    requester = requester if isinstance(requester, Mapping) else {}
    requester_id = requester.get("id", ticket.get("requester_id"))
    view = TicketView(
        id=str(ticket.get("id") or "").strip(),
        subject=_name(ticket.get("subject") or ticket.get("raw_subject")),
        status=_name(ticket.get("status")),
        priority=_name(ticket.get("priority")),
        requester_name=_real_name(_name(requester.get("name"))),
        requester_email=_name(requester.get("email") or ticket.get("requester_email")),
        fields=_fields(ticket.get("custom_fields")),
    )
    for raw in ticket.get("comments") or []:
        if not isinstance(raw, Mapping):
            continue
        text = _text_of(raw)
        if not text.strip():
            continue
        author = raw.get("author")
        role = raw.get("role")
        author_id = raw.get("author_id")
        if isinstance(author, Mapping):
            role = role or author.get("role")
            author_id = author.get("id", author_id)
            author = author.get("name")
        name = _real_name(_name(author))
        view.comments.append(
            Comment(
                author=name,
                customer=_is_customer(str(role or ""), name, author_id, requester_id, view.requester_name),
                public=raw.get("public", True) is not False,
                sentences=tuple(clean_message(text)),
            )
        )
    description = _name(ticket.get("description"))
    # Zendesk's description is the first comment; the sidebar may have dropped old comments to
    # stay under its size limit, so add the description only when no comment holds it.
    if description and not any(
        _normalised(" ".join(c.sentences))[:120]
        and _normalised(" ".join(clean_message(description))).startswith(
            _normalised(" ".join(c.sentences))[:120]
        )
        for c in view.comments
        if c.customer
    ):
        opening = Comment(view.requester_name, True, True, tuple(clean_message(description)))
        view.comments.insert(0, opening)
    view.comments = [c for c in view.comments if c.sentences]
    return view


def _is_customer(role: str, name: str, author_id: Any, requester_id: Any, requester_name: str) -> bool:
    role = role.strip().lower()
    if role in _CUSTOMER_ROLES:
        return True
    if role in _AGENT_ROLES:
        return False
    if author_id not in (None, "") and requester_id not in (None, ""):
        return str(author_id) == str(requester_id)
    return bool(name) and name == requester_name


def _fields(raw: Any) -> list[tuple[str, str]]:
    """Custom fields as (label, value): the sidebar sends {label: value}, REST a list of {id, value}."""
    if isinstance(raw, Mapping):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        items = [(str(f.get("title") or f.get("id")), f.get("value")) for f in raw if isinstance(f, Mapping)]
    else:
        items = []
    return [
        (label.strip(), str(value).strip())
        for label, value in items
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip()
    ]


# --- cleaning a message: greeting, sign-off, pleasantries ------------------------------------------------
_GREETING_WORDS = (
    r"hi|hello|hey|hiya|dear|hallo|hej|moin|servus|good (?:morning|afternoon|evening)|"
    r"guten (?:tag|morgen|abend)|liebe[rs]?|sehr geehrte[rs]?"
)
_GREETING_LINE = re.compile(rf"^(?:{_GREETING_WORDS})\b[^.?\n]{{0,40}}[,!:.]?$", re.IGNORECASE)
_GREETING_PREFIX = re.compile(rf"^(?:{_GREETING_WORDS})\b[^,!.?\n]{{0,40}}[,!]\s+(?=\S)", re.IGNORECASE)
_SIGN_OFF = re.compile(
    r"^(?:(?:kind|warm|best|warmest|many|with kind|warm|friendly)\s+regards|regards|best|cheers|thanks|"
    r"thank you|thanks so much|thanks a lot|thanks in advance|many thanks|all the best|"
    r"yours (?:faithfully|sincerely|truly)|sincerely|have a (?:great|lovely|nice|good) (?:day|weekend|one)|"
    r"take care|sent from my \w+|viele grüße|mit freundlichen grüßen|beste grüße|liebe grüße|"
    r"herzliche grüße|lg|gruß|grüße|danke(?: schön)?|vielen dank(?: im voraus)?)\b[^.?\n]{0,25}$",
    re.IGNORECASE,
)
_NAME_LINE = re.compile(r"^[-–—~]?\s*[A-ZÀ-Þ][\w'’.-]*(?:\s+[A-ZÀ-Þ&|–-][\w'’.&|-]*){0,5}(?:\s+x+)?$")
_FILLER = re.compile(
    r"^(?:(?:thanks|thank you)(?: so much| very much)? for (?:your (?:message|email|patience|request)|"
    r"reaching out|contacting us|getting in touch|writing (?:in|to us))|"
    r"i(?:'ve| have) had a look at this for you|i understand the worry|i understand|"
    r"sorry (?:about that|to hear that|for the (?:wait|delay|trouble|inconvenience))|"
    r"hope this helps|let (?:me|us) know if (?:anything is unclear|you have (?:any )?(?:other|more|further) "
    r"questions)|if you have any (?:other|more|further) questions,? just reply to this email|"
    r"have a (?:great|lovely|nice|good) day|good news|sorry for my english)[.!]*$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(“„‘]?[A-ZÀ-Þ0-9])")
_URL = re.compile(r"https?://\S+")


def split_sentences(line: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]


def clean_message(text: str) -> list[str]:
    """The message's sentences without the greeting, sign-off, signature and pleasantries."""
    lines = [ln.strip() for ln in text.replace("\r", "").split("\n") if ln.strip()]
    # Sign-off: the last sign-off line followed only by short lines (name, company) ends it.
    for i in range(len(lines) - 1, -1, -1):
        tail = lines[i + 1 :]
        if _SIGN_OFF.match(lines[i]) and all(len(t.split()) <= 6 for t in tail) and i > 0:
            lines = lines[:i]
            break
    while len(lines) > 1 and _NAME_LINE.match(lines[-1]) and len(lines[-1].split()) <= 4:
        lines.pop()  # a bare signature ("- Hugo", "Isla x")
    if lines and _GREETING_LINE.match(lines[0]) and len(lines[0].split()) <= 5:
        lines = lines[1:]
    if lines:
        lines[0] = _GREETING_PREFIX.sub("", lines[0], count=1)
    sentences = [s for line in lines for s in split_sentences(line)]
    return [s for s in sentences if not _FILLER.match(s) and not _SIGN_OFF.match(s)]


def _is_link_only(sentence: str) -> bool:
    """ "Details: https://…" carries no fact of its own."""
    return bool(_URL.search(sentence)) and len(_URL.sub("", sentence).split()) <= 3


# --- what the sentences say ------------------------------------------------------------------------
_ASK = re.compile(
    r"\b(?:please|pls|plz|i want|i'd like|i would like|i need|we need|can you|could you|would you|"
    r"will you|i'd appreciate|i request|i expect|bitte|ich möchte|ich hätte gerne?|ich will|"
    r"können sie|könnten sie|würden sie|ich brauche)\b"
    r"|^(?:need|refund|send|fix|explain|cancel|change|replace|help|tell|add|update|return|ship|"
    r"advise|call|contact|remove|resend|exchange)\b",
    re.IGNORECASE,
)
_NOT_ASK = re.compile(r"\b(?:don't|do not|doesn't|no longer|never) (?:want|need)\b", re.IGNORECASE)
_PAST_ACTION = (
    r"sent|shipped|refunded|attached|checked|reset|answered|captured|issued|cancell?ed|forwarded|"
    r"escalated|arranged|booked|created|added|updated|processed|looked into|replaced|credited|"
    r"reported|emailed|resent|re-sent|opened|filed|raised|contacted|asked|confirmed|verified|applied|"
    r"changed|corrected|fixed|removed|passed|ordered|reserved|extended|waived|approved|started|"
    r"requested|scheduled|organised|organized|informed|notified|submitted|generated|released"
)
# "reset", "put", "set" read as the present without an auxiliary ("we reset 2FA within a day").
_PAST_ONLY = "|".join(v for v in _PAST_ACTION.split("|") if v not in ("reset",))
_DONE = re.compile(
    rf"\b(?:i|we)(?:'ve| have| had)\s+(?:already\s+|just\s+|now\s+|also\s+)?(?:{_PAST_ACTION})\b"
    rf"|\b(?:i|we)\s+(?:already\s+|just\s+|also\s+)?(?:{_PAST_ONLY})\b"
    rf"|\b(?:was|were|has been|have been)\s+(?:already\s+|just\s+)?(?:{_PAST_ACTION})\b"
    r"|\b(?:ich|wir) (?:habe|haben)\b.*\b(?:gesendet|geschickt|erstattet|storniert|geprüft|versandt|"
    r"veranlasst|zurückgesetzt|angehängt)\b",
    re.IGNORECASE,
)
_PROMISE = re.compile(
    r"\b(?:i|we)(?:'ll| will| shall| are going to|'re going to)\b"
    r"|\byou(?:'ll| will) (?:receive|get|be|have|see)\b"
    r"|\bwithin (?:\d+|a|one|two|three|four|five|a few|24|48)\b[^.]{0,20}?\b(?:hours?|days?|weeks?)\b"
    r"|\b(?:should|will) (?:arrive|be back|reach you|be refunded|be delivered|ship|disappear|be sent)\b"
    r"|\bships? (?:today|tomorrow)\b|\bon (?:its|the) way\b"
    r"|\b(?:ich werde|wir werden|sie erhalten|innerhalb von \d+)\b",
    re.IGNORECASE,
)
_WAIT_STRONG = re.compile(
    r"\b(?:reply with|respond with|send (?:me|us)|just send|let (?:me|us) know|get back to (?:me|us)|"
    r"antworten sie|schicken sie (?:mir|uns)|senden sie (?:mir|uns))\b",
    re.IGNORECASE,
)
_WAIT_WEAK = re.compile(r"\b(?:please|if you|bitte|wenn sie)\b", re.IGNORECASE)


def asks(sentences: Sequence[str]) -> list[str]:
    """The customer's requests, then their questions, in the order written."""
    keep = [
        s
        for s in sentences
        if not _is_link_only(s) and ((_ASK.search(s) and not _NOT_ASK.search(s)) or s.rstrip().endswith("?"))
    ]
    return keep


def commitments(sentences: Sequence[str]) -> tuple[list[str], list[str]]:
    """(done, promised) sentences of a support reply."""
    done, promised = [], []
    for s in sentences:
        if _is_link_only(s):
            continue
        if _DONE.search(s):
            done.append(s)
        elif _PROMISE.search(s):
            promised.append(s)
    return done, promised


# --- the evidence lines --------------------------------------------------------------------------------
def _join(sentences: Sequence[str], limit: int = MAX_LINE_CHARS) -> str:
    out: list[str] = []
    for s in sentences:
        if out and len(" ".join([*out, s])) > limit:
            break
        out.append(s)
    return " ".join(out)[: limit + 200]


def _who(c: Comment) -> str:
    role = "customer" if c.customer else "agent"
    return f"{c.author} ({role})" if c.author else f"the {role}"


@dataclass
class TicketLines:
    """The public lines of the ticket's evidence, by what they answer."""

    fields: list[str] = field(default_factory=list)
    opening: str = ""
    conversation: list[str] = field(default_factory=list)
    last: str = ""  # the last public comment's line
    last_customer: str = ""  # the customer's latest public comment's line
    last_agent: str = ""  # the latest public support reply's line
    no_reply: str = ""  # said when support has not replied publicly
    ask: str = ""
    done: str = ""
    promised: str = ""
    next_step: str = ""
    next_quote: str = ""  # the sentences the next-step line quotes
    status: str = ""
    requester: str = ""
    internal: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            *self.fields,
            *self.conversation,
            self.no_reply,
            self.ask,
            self.done,
            self.promised,
            self.next_step,
        ]
        return "\n".join(ln for ln in lines if ln)


def build_lines(view: TicketView) -> TicketLines:
    out = TicketLines()
    if view.subject:
        out.fields.append(f"Subject: {view.subject}")
    if view.status and view.priority:
        out.status = f"Ticket status: {view.status}; priority: {view.priority}"
    elif view.status or view.priority:
        out.status = f"Ticket status: {view.status}" if view.status else f"Ticket priority: {view.priority}"
    if out.status:
        out.fields.append(out.status)
    if view.requester_name or view.requester_email:
        who = view.requester_name or view.requester_email
        if view.requester_name and view.requester_email:
            who += f" ({view.requester_email})"
        out.requester = f"Requester: {who}"
        out.fields.append(out.requester)
    out.fields += [f"{label}: {value}" for label, value in view.fields]

    public = view.public
    customer_name = f" ({view.requester_name})" if view.requester_name else ""
    for i, c in enumerate(public):
        last = i == len(public) - 1
        body = _join(c.sentences)
        if i == 0 and c.customer:
            line = f"Customer{customer_name} wrote on open: {_join(c.sentences[:OPENING_SENTENCES])}"
            rest = c.sentences[OPENING_SENTENCES:]
            out.opening = line
            out.conversation.append(line)
            if rest:
                out.conversation.append(f"Customer{customer_name} also wrote: {_join(rest)}")
        elif last:
            line = f"Last comment, by {_who(c)}: {body}"
            out.conversation.append(line)
        elif c.customer:
            line = f"Customer{customer_name} replied: {body}"
            out.conversation.append(line)
        else:
            line = f"Reply by {_who(c)}: {body}"
            out.conversation.append(line)
        if last:
            out.last = line
        if c.customer:
            out.last_customer = line
        else:
            out.last_agent = line
    if public and not any(not c.customer for c in public):
        out.no_reply = "Public replies from support: none yet"

    customer_asks = [s for c in public if c.customer for s in asks(c.sentences)][-MAX_ASKS:]
    if customer_asks:
        out.ask = f"Customer asks: {' '.join(customer_asks)}"
    done, promised = [], []
    for c in public:
        if not c.customer:
            d, p = commitments(c.sentences)
            done += d
            promised += p
    replies = [c for c in public if not c.customer]
    if done:
        out.done = f"Done so far: {_join(done[-MAX_COMMITMENTS:])}"
    elif replies:
        # No action sentence: what support told the customer is what has been done.
        said = [s for s in replies[-1].sentences if not _is_link_only(s)][:REPLY_SENTENCES]
        if said:
            out.done = f"Done so far: {_who(replies[-1])} replied: {' '.join(said)}"
    if promised:
        out.promised = f"We promised: {_join(promised[-MAX_COMMITMENTS:])}"
    out.next_step, out.next_quote = _next_step(public)
    out.internal = [
        f"Internal note{f' by {c.author}' if c.author else ''}: {_join(c.sentences)}" for c in view.internal
    ]
    return out


def _next_step(public: Sequence[Comment]) -> tuple[str, str]:
    """What is open: an answer we owe, what we wait for from the customer, or what we said comes.
    Returns (the line, the sentences it quotes)."""
    if not public:
        return "", ""
    last = public[-1]
    if last.customer:
        pending = " ".join((asks(last.sentences) or list(last.sentences[-1:]))[-2:])
        return f"Open next step (our reply is due): {pending}", pending
    sentences = [s for s in last.sentences if not _is_link_only(s)]
    for pattern in (_WAIT_STRONG, _WAIT_WEAK):
        waiting = [s for s in sentences if pattern.search(s)]
        if waiting:
            return f"Open next step (waiting on the customer): {waiting[0]}", waiting[0]
    _, promised = commitments(sentences)
    if promised:
        return f"{NEXT_AS_SAID} {promised[-1]}", promised[-1]
    return "", ""


# --- what was asked ------------------------------------------------------------------------------------
_I = re.IGNORECASE
INTENTS: dict[str, re.Pattern[str]] = {
    "draft": re.compile(
        r"\bwhat (?:should|shall|do|can|could|would) (?:i|we) (?:tell|say|write|reply|respond|answer|send)\b"
        r"|\b(?:draft|compose|write|prepare|suggest|formulate)\b.{0,25}\b(?:reply|response|answer|email|message)\b"
        r"|\b(?:reply|response|answer) (?:suggestion|draft|template)\b|\bsuggested (?:reply|response)\b"
        r"|\bwas soll(?:te)? ich\b.{0,25}\b(?:schreiben|sagen|antworten)\b|\bantwort(?:entwurf|vorschlag)\b"
        r"|\b(?:entw[iu]rf|schreib|formulier|verfass)\w*\b.{0,30}\bantwort\b",
        _I,
    ),
    "summary": re.compile(
        r"\b(?:summar(?:y|ise|ize|ising|izing)|recap|tl;?dr|sum (?:it |this )?up|overview|catch me up|"
        r"what(?:'s| is) (?:this|the) (?:ticket|case|thread) about|what happened|gist|"
        r"zusammenfass\w*|worum geht|überblick)\b",
        _I,
    ),
    "last_customer": re.compile(
        r"\b(?:customer|cust|client|requester|she|he|they)\b.{0,30}\b(?:last|latest|most recent|newest|recent)\b"
        r"|\b(?:last|latest|most recent|newest|recent)\b.{0,30}\b(?:from|by) (?:the )?(?:customer|client|requester|her|him|them)\b"
        r"|\b(?:customer's|client's|requester's|their|her|his) (?:last|latest|most recent|newest|recent)\b"
        r"|\b(?:what|anything) (?:did|has) (?:the )?(?:customer|client|requester|she|he|they) (?:say|said|write|wrote|reply|replied|answer)"
        r"|\bletzte\w* (?:nachricht|antwort|kommentar)\w* (?:des kunden|der kundin)\b",
        _I,
    ),
    "last_agent": re.compile(
        r"\b(?:anyone|somebody|someone|we|support|an agent) (?:already )?(?:replied|answered|responded|got back)\b"
        r"|\b(?:replied|answered|responded) (?:to (?:the )?(?:customer|them|her|him) )?(?:yet|already)\b"
        r"|\bwhat did (?:my colleague|the (?:previous |other )?agent|our team|support|we|i) (?:tell|say|write|reply)\b"
        r"|\b(?:our|my colleague's|the agent's) (?:last|latest|previous) (?:reply|answer|response|message|comment)\b",
        _I,
    ),
    "last": re.compile(
        r"\b(?:last|latest|most recent|newest|previous) (?:comment|reply|message|response|email|note|update|answer|"
        r"thing (?:said|written|posted)|word|post|entry)\b|\bsaid (?:on|in) (?:here|this ticket|the thread)\b"
        r"|\bletzte\w* (?:nachricht|antwort|kommentar)\b|\bzuletzt\b",
        _I,
    ),
    "promise": re.compile(
        r"\bpromis\w*|\bcommit\w*|\bguarantee\w*|\bagreed\b|\boffered\b"
        r"|\bwhat (?:did|have|has) (?:we|i|you|my colleague|the agent|support|our team|"
        r"(?!(?:the )?(?:customer|cust|client|requester|she|he|they|it)\b)[a-z]+) (?:already )?"
        r"(?:tell|told|say|said|offer|offered|agree|agreed)\b"
        r"|\b(?:told|tell) (?:them|the customer|her|him) (?:so far|already|before|earlier)\b"
        r"|\bversproch\w*|\bzugesagt\b",
        _I,
    ),
    "ask": re.compile(
        r"\bwhat (?:does|do|did) (?:the )?(?:customer|cust|client|requester|she|he|they) "
        r"(?:actually |really )?(?:want|need|ask|expect|request|asking)\b"
        r"|\bwhat(?: is| are|'s|'re) (?:the )?(?:customer|cust|client|requester|she|he|they) "
        r"(?:asking|after|requesting|looking for|wanting)\b"
        r"|\bhow (?:does|do) (?:the )?(?:customer|cust|she|he|they) want\b"
        r"|\b(?:customer's|their|her|his) (?:request|ask|question|demand)\b"
        r"|\bwas (?:möchte|will|braucht|verlangt) (?:der kunde|die kundin|er|sie)\b|\banliegen\b",
        _I,
    ),
    "done": re.compile(
        r"\bwhat (?:has been|have we|was|did we) (?:already )?done\b|\balready done\b|\bdone so far\b"
        r"|\bwhat (?:did|have|has) (?:we|i|support|the team|my colleague|anyone) (?:already |so far )?"
        r"(?:do|done|try|tried|sort|sorted|arrange|arranged)\b"
        r"|\bsteps? (?:taken|so far)\b|\bwhat have we (?:already )?(?:tried|done)\b"
        r"|\bwas wurde (?:bereits |schon )?(?:gemacht|getan)\b",
        _I,
    ),
    "next": re.compile(
        r"\bnext steps?\b|\bwhat(?:'s| is)? (?:now|next|pending|open|outstanding)\b|\bwaiting (?:on|for)\b"
        r"|\bwho (?:has|owns) the ball\b|\bnächste\w* schritt\w*\b",
        _I,
    ),
    "internal": re.compile(r"\binternal\b|\bprivate notes?\b|\bnotes?\b|\binterne?\w* notiz\w*\b", _I),
    "status": re.compile(
        r"\b(?:status|priority|state) of (?:the|this) (?:ticket|case)\b|\bticket (?:status|priority)\b", _I
    ),
    "requester": re.compile(
        r"\bwho (?:is|'s) (?:the )?(?:customer|requester|client)\b|\b(?:customer|requester|client)(?:'s)? "
        r"(?:name|e-?mail|email address)\b|\bwho (?:opened|raised|filed|submitted) (?:this|the) ticket\b",
        _I,
    ),
}
# Internal notes are answered only when the question is about the state of the work (never for a draft).
_INTERNAL_INTENTS = {"summary", "done", "next", "internal"}


def question_intents(query: str) -> list[str]:
    found = [name for name, pattern in INTENTS.items() if pattern.search(query)]
    if "last_agent" in found:  # "what did my colleague tell them last": support is the subject
        found = [f for f in found if f != "last_customer"]
    if "last_customer" in found or "last_agent" in found:
        found = [f for f in found if f != "last"]
    return found


def choose_facts(intents: Sequence[str], lines: TicketLines) -> list[str]:
    """The lines of the ticket that answer the question, in the order an answer states them."""
    reply_status = lines.last_agent or lines.no_reply
    # A recap states a sentence once: "as we said" adds nothing when it repeats a promise above it
    # (the other next steps still say who has the ball).
    repeated = lines.next_step.startswith(NEXT_AS_SAID) and any(
        lines.next_quote in line for line in (lines.done, lines.promised)
    )
    by_intent: dict[str, list[str]] = {
        "summary": [
            lines.opening or lines.last_customer,
            lines.ask,
            lines.done,
            lines.promised,
            "" if repeated else lines.next_step,
        ],
        "last": [lines.last],
        "last_customer": [lines.last_customer],
        "last_agent": [reply_status],
        "promise": [lines.done, lines.promised] if (lines.done or lines.promised) else [reply_status],
        "ask": [lines.ask or lines.last_customer],
        "done": [lines.done, lines.promised] if (lines.done or lines.promised) else [reply_status],
        # Nothing open in the last reply: what was done and said is where the ticket stands.
        "next": [lines.next_step] if lines.next_step else [lines.promised or lines.done or reply_status],
        "draft": [lines.ask, lines.next_step],
        "status": [lines.status],
        "requester": [lines.requester],
        "internal": [],
    }
    out: list[str] = []
    for intent in intents:
        for line in by_intent.get(intent, []):
            # A recap of a reply already quoted whole would state it twice (the customer's ask
            # stays: its label says what the opening sentence is for).
            if (
                line
                and line not in out
                and not any(
                    chosen.startswith(("Last comment", "Reply by")) and _quote(line) in chosen
                    for chosen in out
                )
            ):
                out.append(line)
    return out


def _quote(line: str) -> str:
    """The ticket's words in one of our lines (after "Label: " and "<who> replied: ")."""
    return re.sub(r"^[^:]*: (?:[^:]* replied: )?", "", line, count=1)


# --- the agent -----------------------------------------------------------------------------------------
class TicketAgent(BaseAgent):
    """Reads ctx.ticket; one retrieval tool, chosen without a model (there is nothing to decide)."""

    def tools(self) -> dict[str, Any]:
        return {"read_ticket": self.read_ticket}

    def read_ticket(self, ctx: AgentContext, question: str = "") -> dict[str, Any]:
        view = read_ticket(ctx.ticket)
        if not view.id or not view.comments:
            return {"evidence": [], "data": {}}
        lines = build_lines(view)
        intents = question_intents(question)
        facts = choose_facts(intents, lines)
        score = 0.9 if facts else 0.5
        title = f"Ticket #{view.id}: {view.subject}" if view.subject else f"Ticket #{view.id}"
        evidence = [
            Evidence(
                id=f"ticket:{view.id}",
                title=title,
                text=lines.text(),
                kind="ticket",
                score=score,
                agent=self.name,
                facts=tuple(facts),
            )
        ]
        if lines.internal and (set(intents) & _INTERNAL_INTENTS) and "draft" not in intents:
            evidence.append(
                Evidence(
                    id=f"ticket:{view.id}:internal",
                    title=f"Ticket #{view.id}: internal notes",
                    text="\n".join(lines.internal),
                    kind="ticket",
                    score=score,
                    agent=self.name,
                    facts=tuple(lines.internal),
                    internal=True,
                )
            )
        data = {
            "ticket": {
                "id": view.id,
                "requester_name": view.requester_name or None,
                "intents": intents,
                "last_comment_by": ("customer" if view.public[-1].customer else "agent")
                if view.public
                else None,
            }
        }
        return {"evidence": evidence, "data": data}

    def choose_tool(
        self, query: str, ctx: AgentContext, attempt: int, previous: list[ToolCall]
    ) -> ToolCall | None:
        # Reading the open ticket needs no decision, so no model call is spent on one.
        return self.offline_tool_call(query, ctx, attempt)

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        return ToolCall("read_ticket", {"question": query}, "read the open ticket") if attempt == 1 else None

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        public = [e for e in evidence if not e.internal]
        if not public:
            return ""
        return "\n".join(public[0].facts) or public[0].title
