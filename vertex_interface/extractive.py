"""The offline responder's core: pick, order and cite the source sentences that answer a question.

It never writes prose of its own. Every sentence in an answer is a verbatim slice of one source,
followed by that source's citation; when no sentence is relevant enough it says so.

Relevance = ``w * cosine(MiniLM(question), MiniLM(sentence)) + (1 - w) * lexical overlap``, where the
lexical part is the share of the question's content words (crudely stemmed) found in the sentence.
MiniLM alone rates topical-but-useless sentences too high; word overlap alone misses paraphrases.

Around that score:

- Facts first: a source that carries ``facts`` (lines its agent picked because they answer this
  question: an order's status, a product's stock) is stated first, verbatim, whatever its score;
  sentences from the other sources follow only when they are relevant on their own.
- Value types: "how long / how much / when / how many" questions rank sentences that hold that kind
  of value (a duration, an amount, a time, a number) above neighbours that only talk about it.
- Context: a sentence that leans on the one before ("It…", "These…", or a few words only) is quoted
  with it, and a list item with the line that introduces its list, so no quote reads out of context.
- Internal content (``Source.internal``, a ticket's internal notes) is always marked as such.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .config import LocalResponderConfig
from .types import Source

OFFLINE_LABEL = "Offline mode: quoted from the sources below, no AI-written text."
NOTHING_FOUND = "Offline mode: I found nothing relevant to this question in the available sources."
INTERNAL_MARK = "(internal note)"

# Sentence ends: . ! ? (optionally followed by a closing quote/bracket) then whitespace.
_SENT_END = re.compile(r"(?<=[.!?])([\"'\u201d)\]]*)\s+")
_ABBREVIATION_WORDS = (
    "e.g i.e etc vs approx no mr mrs ms dr st inc ltd co jr sr fig min max hrs mon tue wed thu fri "
    "sat sun jan feb mar apr jun jul aug sep sept oct nov dec u.s z.b bzw ca ggf inkl usw"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"[a-z0-9\u00df-\u00ff]+(?:'[a-z]+)?")
_STOPWORD_WORDS = (
    "a an and are as at be been being but by can could did do does doing for from had has have how i "
    "if in into is it its me my of on or our please so than that the their them then there these "
    "they this to was we were what when where which who why will with would you your yours can't "
    "don't i'm i've "
    # German, for the German articles and tickets
    "der die das den dem des ein eine einen einem einer und oder ist sind wie was wann wo wer ich "
    "sie es er wir mein meine ihr ihre zu im in am an auf für mit von bei nach aus bis nicht"
)
_STOPWORDS = frozenset(_STOPWORD_WORDS.split())
# Words of how agents ask, not of what they ask about: left out when checking that the sources
# speak about the question's subject at all.
_FILLER_WORDS = (
    "long much many soon often cust customer customers client kd kunde kunden she he her his him "
    "want wants wanted need needs get gets got still also any anything something possible ok okay "
    "pls plz thanks yes no not just only really actually way guy lady ppl people someone somebody "
    "tell say says said ask asks asked know let make made give take do does did normal "
    # the situation's when and what-happened, not the subject: "bought 2 weeks ago"
    "bought buy ordered order purchased paid ago yesterday today tomorrow week weeks day days month "
    "months year years hour hours minute minutes last next "
    # degree and attempt words: they qualify the subject, they are not it ("max time", "try first")
    "about worth going time max maximum min minimum basic first try should oldest newest latest "
    "kann man muss soll will wir uns noch schon mal bitte"
)
_FILLER = frozenset(_FILLER_WORDS.split())

# A sentence opening with one of these leans on the sentence before it.
_REFERRING = re.compile(
    r"^(?:it|its|this|that|these|those|they|them|their|then|otherwise|if not|if so|also|both|"
    r"such|there|here|he|she|however|instead|in that case|dies|diese|dieser|dieses|das|dann|"
    r"sonst|andernfalls|er|es|sie sind|damit|dafür|dabei)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Span:
    source: Source
    text: str  # verbatim slice of source.text
    start: int  # offset in source.text, for document order
    # What a reader needs before this span when it is quoted alone: the previous sentence of its
    # paragraph, or (for a list item) the line that introduces the list. Never itself quoted as an
    # answer unless picked on its own merits.
    prev: Span | None = None
    lead: Span | None = None
    item: bool = False  # a list line ("- …", "1. …")


def split_sentences(source: Source) -> list[Span]:
    """Sentences (and list items / lines) of a source, as verbatim slices with their offsets.

    A sentence that introduces a list ("We deliver to 15 countries:") carries the list lines that
    follow it (up to the next blank line or full sentence), since it answers nothing without them.
    Each span knows the sentence before it in its line (``prev``) and, for a list item, the line
    that introduced its list (``lead``), so a quote can bring its context.
    """
    spans: list[Span] = []
    text = source.text
    lines = [(m.start(), m.group(0)) for m in re.finditer(r"[^\n]+", text)]
    lead: Span | None = None  # the last sentence (or heading) of the last non-list line
    i = 0
    while i < len(lines):
        line_start, line = lines[i]
        i += 1
        bullet = _BULLET.match(line)
        offset = line_start + (bullet.end() if bullet else 0)
        body = line[bullet.end() :] if bullet else line
        if _is_heading(body, source):
            # Not quotable, but it introduces what follows ("What isn't covered" + its items).
            stripped = body.strip()
            if not bullet and stripped.rstrip(".:").lower() != source.title.strip().lower():
                lead = Span(source, stripped, offset + body.index(stripped))
            elif not bullet:
                lead = None
            continue
        line_spans: list[Span] = []
        prev: Span | None = None
        for a, t in _sentences_of(body):
            span = Span(source, t, offset + a, prev=prev, lead=lead if bullet else None, item=bool(bullet))
            line_spans.append(span)
            prev = span
        if line_spans and line_spans[-1].text.endswith(":"):
            intro = line_spans[-1]
            end, i = _list_after(text, lines, i)
            if end is not None:
                line_spans[-1] = Span(
                    source, text[intro.start : end], intro.start, intro.prev, intro.lead, intro.item
                )
        if not bullet and line_spans:
            lead = line_spans[-1]
        elif not bullet and not line_spans:
            lead = None
        spans.extend(line_spans)
    return spans


_MAX_LIST_LINES = 8


def _list_after(text: str, lines: list[tuple[int, str]], i: int) -> tuple[int | None, int]:
    """End offset of the list lines starting at ``lines[i]``, and the index after them."""
    end: int | None = None
    prev_end = lines[i - 1][0] + len(lines[i - 1][1])
    j = i
    while j < len(lines) and j - i < _MAX_LIST_LINES:
        start, line = lines[j]
        if text[prev_end:start].count("\n") > 1:
            break  # a blank line ends the list
        stripped = line.strip()
        is_item = bool(_BULLET.match(line)) or not re.search(r"[.!?]\W*$", stripped)
        if not is_item or not stripped:
            break
        end = start + len(line.rstrip())
        prev_end = start + len(line)
        j += 1
    return end, j


def _sentences_of(body: str) -> list[tuple[int, str]]:
    """(offset, sentence) pairs of one line; fragments under three words are dropped."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for end_match in _SENT_END.finditer(body):
        end = end_match.start() + len(end_match.group(1))  # closing quotes stay with their sentence
        candidate = body[start:end]
        last_word = candidate.rsplit(None, 1)[-1].lower() if candidate.split() else ""
        following = body[end_match.end() : end_match.end() + 1]
        if _is_abbreviation(last_word) or following.islower():
            continue  # "e.g. ", "2 p.m. Eastern", '"Forgot password?" on': not a sentence end
        pieces.append((start, end))
        start = end_match.end()
    pieces.append((start, len(body)))
    out: list[tuple[int, str]] = []
    for a, b in pieces:
        raw = body[a:b]
        stripped = raw.strip()
        if len(_WORD.findall(stripped.lower())) < 3:
            continue
        out.append((a + len(raw) - len(raw.lstrip()), stripped))
    return out


def _is_abbreviation(word: str) -> bool:
    word = word.strip("\"'()[]\u201c\u201d")
    if not word.endswith("."):
        return False
    core = word.rstrip(".")
    # "p.m.", "e.g.", "U.S." (inner dots), single initials ("J."), or a known short form ("approx.").
    return "." in core or len(core) == 1 or core in _ABBREVIATIONS


def _is_heading(line: str, source: Source) -> bool:
    stripped = line.strip()
    if stripped.rstrip(".:").lower() == source.title.strip().lower():
        return True
    # A short line without sentence punctuation is a heading, not something to quote as an answer.
    return not re.search(r"[.!?:;]\W*$", stripped) and len(stripped.split()) < 8


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


# How agents write vs. how articles do: folded to one word (or phrase) on both sides before words
# are compared, so "pw" meets "password" and "send it back" meets "return".
_SYNONYMS: tuple[tuple[str, str], ...] = (
    (r"pw|pwd|passwd", "password"),
    (r"cust|custs|kd", "customer"),
    (r"dnr", "delivered not received"),
    (r"std", "standard"),
    (r"acct", "account"),
    (r"addr", "address"),
    (r"qty", "quantity"),
    (r"(?:send|sent|post|posted|ship|mail)(?: it| them| this| that| the \w+)? back", "return"),
    (r"money back|reimburse\w*|pay (?:that|it|this|them) back|refunded", "refund"),
    (r"postage|delivery costs?|shipping costs?|carriage", "shipping"),
    (r"vouchers?|discount codes?|coupons?", "promo code"),
    (r"the states|the us|usa|america", "united states"),
    (r"uk|britain|great britain|england", "united kingdom"),
    (r"guarantee[ds]?", "warranty"),
    (r"wire transfers?|bank wires?", "bank transfer"),
    (r"swap(?:ped|s)?", "exchange"),
    (r"present", "gift"),
    (r"put (?:it |the \w+ )?on hold|hold", "pause"),
    (r"iphones?|ipads?", "ios"),
    (r"wipe|factory defaults?|back to defaults", "factory reset"),
    (r"courier", "carrier"),
    (r"import charges?|import fees?|customs fees?|customs charges?", "duties"),
)
_SYNONYM_RE = re.compile(r"\b(?:" + "|".join(f"(?:{a})" for a, _ in _SYNONYMS) + r")\b")
_SYNONYM_PARTS = [(re.compile(rf"^(?:{a})$"), b) for a, b in _SYNONYMS]


def _fold(match: re.Match[str]) -> str:
    found = match.group(0)
    for pattern, canonical in _SYNONYM_PARTS:
        if pattern.match(found):
            return canonical
    return found


def fold_synonyms(text: str) -> str:
    """Lower-cased text with agents' shorthand and paraphrases folded to the articles' words."""
    return _SYNONYM_RE.sub(_fold, text.lower())


def content_terms(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(fold_synonyms(text)) if w not in _STOPWORDS and len(w) > 1}


_PUBLISHED_KINDS = frozenset({"article", "macro"})
_GERMAN_HINT = re.compile(
    r"\b(?:der|die|das|und|ist|sind|wie|wann|was|wer|ich|nicht|für|mit|bei|nach|muss|kann|zahlen|"
    r"kunde|kunden|erstattung|rücksendung|versand|lieferung)\b|[äöüß]",
    re.IGNORECASE,
)


def subject_terms(question: str) -> set[str]:
    """The question's content words minus how-agents-ask filler ("cust wants", "how long")."""
    filler = {_stem(w) for w in _FILLER}
    return {t for t in content_terms(question) if t not in filler and not t.isdigit()}


def term_coverage(question: str, sources: Sequence[Source]) -> float:
    """Share of the question's subject words that some source (text or title) mentions.

    An unanswerable question ("a student discount?") retrieves sources about its neighbours
    (discounts) whose sentences score well, but its subject word is in none of them.
    """
    wanted = subject_terms(question)
    if not wanted or _GERMAN_HINT.search(question):
        # Words cannot be compared across languages (a German question, English sources).
        return 1.0
    have: set[str] = set()
    for source in sources:
        have |= content_terms(f"{source.title}\n{source.text}")
    return len(wanted & have) / len(wanted)


# --- value types -----------------------------------------------------------------------------------
# What kind of value a question asks for, and whether a sentence holds one. A "how long" question
# answered with a sentence that has no duration in it is answered wrong however topical it is.
_NUM = r"(?:\d+(?:[.,]\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|a|an|ein|eine|einem|zwei|drei|vier|fünf|sechs|sieben|zehn)"
_UNIT = (
    r"(?:business |working |calendar )?(?:days?|weeks?|months?|years?|hours?|hrs?|minutes?|mins?|seconds?)"
    r"|(?:werk|arbeits|kalender)?tag(?:e|en)?|wochen?|monat(?:e|en)?|jahr(?:e|en)?|stunden?|minuten?|sekunden?"
)
_VALUE_PATTERNS = {
    "duration": re.compile(
        rf"\b{_NUM}(?:\s*[–-]\s*\d+)?[\s-]*(?:{_UNIT})\b|\b(?:next|same|following) (?:business |working )?day\b"
        r"|\b(?:immediately|instantly|straight away|right away|lifetime|sofort\w*|umgehend)\b|\b\d+\s*h\b",
        re.IGNORECASE,
    ),
    "money": re.compile(
        r"[€$£]\s?\d|\b\d+(?:[.,]\d+)?\s?(?:€|eur|euros?|usd|gbp|dollars?|pounds?)(?!\w)"
        r"|\b(?:free|no charge|kostenlos|kostenfrei|gratis)\b",
        re.IGNORECASE,
    ),
    "time": re.compile(
        r"\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\s?(?:a\.m\.|p\.m\.|am\b|pm\b|uhr\b)|\b(?:midnight|noon|mittag)\b"
        r"|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|\b(?:mon|diens|donners|frei|sams|sonn)tag\b|\bmittwoch\b"
        r"|\b\d{1,2}\.? (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mär|mai|okt|dez)\w*",
        re.IGNORECASE,
    ),
    # "When is the card charged?" — "when the order ships" answers it as well as a date does.
    "event": re.compile(
        r"\b(?:when|once|as soon as|after|before|until|upon|at dispatch|on delivery|sobald|nachdem|bei)\s+\w+",
        re.IGNORECASE,
    ),
    "percent": re.compile(r"\d\s?%|\bper ?cent\b|\bprozent\b", re.IGNORECASE),
    "count": re.compile(rf"\b\d+\b|\b{_NUM}\b(?! (?:of|der|die|das)\b)", re.IGNORECASE),
}
_WHEN_AUX = r"(?:will|would|does|do|did|is|are|was|can|could|should|must|has|have)"
# (question pattern, value types that answer it); a question may ask for several kinds.
_QUESTION_TYPES: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (
        re.compile(
            r"\bhow (?:long|soon|quickly|fast|late|early)\b|\bhow many (?:business |working )?"
            r"(?:days|weeks|months|years|hours|minutes)\b|\bhow much time\b|\bwithin how\b|"
            r"\bwie (?:lange|schnell|bald|viele (?:tage|werktage|wochen|monate|jahre|stunden|minuten))\b|"
            r"\bwie viel zeit\b|\bbis wann\b|\bab wann\b|"
            # "can he still…", "too late to…", "last day…": asks whether a window is still open
            r"\b(?:can|could|is|are) \w+ still\b|\bstill (?:within|in time)\b|\btoo late\b|\blast day\b|"
            r"\bnoch (?:rechtzeitig|möglich)\b|\bzu spät\b",
            re.IGNORECASE,
        ),
        frozenset({"duration", "time"}),
    ),
    (
        re.compile(
            rf"(?:^|[,;:]\s*|\band\s+)(?:so\s+)?when\b|\bwhen {_WHEN_AUX}\b|\bwhat time\b|\bby what time\b|"
            r"\buntil when\b|\bwhat day\b|\bdeadline\b|\bcut-?off\b|\bwann\b|\bum wie viel uhr\b",
            re.IGNORECASE,
        ),
        frozenset({"duration", "time", "event"}),
    ),
    (
        re.compile(
            r"\bhow much\b|\bwhat (?:does|do|will|would)\b.{0,60}\bcost\b|\bcost(?:s|ing)?\b|\bprice\b|"
            r"\bfees?\b|\bcharge[ds]?\b|\bwie ?viel\b|\bwas kostet\b|\bkosten\b|\bpreis\b|\bgebühr\w*\b",
            re.IGNORECASE,
        ),
        frozenset({"money", "percent"}),
    ),
    (
        re.compile(
            r"\bhow many\b|\bhow (?:big|large|far|heavy|high|steep|old)\b|\bwhat(?:'s| is) the (?:max|min)\w*|"
            r"\bup to how\b|\bwie viele\b|\bwie (?:groß|weit|schwer|hoch|alt)\b",
            re.IGNORECASE,
        ),
        frozenset({"count", "percent", "duration", "money"}),
    ),
    (
        re.compile(r"\bpercent\w*\b|\bdiscount\b|\bhow much off\b|\bprozent\w*\b|\brabatt\b", re.IGNORECASE),
        frozenset({"percent"}),
    ),
)


def asked_value_types(question: str) -> frozenset[str]:
    """Kinds of value the question asks for ("how long" → duration or time), empty when none."""
    wanted: set[str] = set()
    for pattern, kinds in _QUESTION_TYPES:
        if pattern.search(question):
            wanted |= kinds
    return frozenset(wanted)


def value_types(text: str) -> frozenset[str]:
    """Kinds of value a sentence holds."""
    return frozenset(kind for kind, pattern in _VALUE_PATTERNS.items() if pattern.search(text))


class _VectorCache:
    """LRU of sentence -> embedding: the same help-center sentences come back turn after turn."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], capacity: int = 20_000) -> None:
        self._embed = embed
        self._capacity = capacity
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._items]
        if missing:
            fresh = self._embed(missing)
            with self._lock:
                for t, v in zip(missing, fresh, strict=True):
                    self._items[t] = v
                while len(self._items) > self._capacity:
                    self._items.popitem(last=False)
        with self._lock:
            rows: list[np.ndarray | None] = []
            for t in texts:
                vec = self._items.get(t)
                if vec is not None:
                    self._items.move_to_end(t)
                rows.append(vec)
        # Evicted meanwhile by another thread (rare): embed those again, outside the lock.
        for i, t in enumerate(texts):
            if rows[i] is None:
                rows[i] = self._embed([t])[0]
        return np.stack(rows)


@dataclass(frozen=True)
class Pick:
    span: Span
    score: float
    fact: bool = False  # one of the source's agent-chosen facts, stated whatever its score


@dataclass(frozen=True)
class ExtractiveAnswer:
    text: str
    picks: tuple[Pick, ...]
    found: bool

    @property
    def citations(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(p.span.source.number for p in self.picks))


class ExtractiveResponder:
    def __init__(
        self,
        settings: LocalResponderConfig,
        embed_documents: Callable[[list[str]], np.ndarray],
        embed_query: Callable[[list[str]], np.ndarray],
    ) -> None:
        self.settings = settings
        self._docs = _VectorCache(embed_documents)
        self._embed_query = embed_query

    def score(self, question: str, spans: Sequence[Span]) -> np.ndarray:
        if not spans:
            return np.zeros(0, dtype=np.float32)
        # A sentence that is quoted with its context is judged with it: "It costs €14.95." means
        # nothing alone, and everything after "Express delivery is our fastest option."
        texts = [" ".join([*(c.text for c in self._context(s)), s.text]) for s in spans]
        q_vec = self._embed_query([question])[0]
        s_vecs = self._docs.get(texts)
        semantic = np.clip(s_vecs @ q_vec, 0.0, 1.0)
        q_terms = content_terms(question)
        s_terms = [content_terms(t) for t in texts]
        weights = self._term_weights(q_terms, s_terms)
        total = sum(weights.values())
        lexical = np.array(
            [sum(weights[t] for t in q_terms & terms) / total if total else 0.0 for terms in s_terms],
            dtype=np.float32,
        )
        w = self.settings.semantic_weight
        return w * semantic + (1 - w) * lexical

    def _term_weights(self, q_terms: set[str], s_terms: Sequence[set[str]]) -> dict[str, float]:
        """Each question word's weight: its IDF over the candidate sentences, blended with 1.

        "order" is in half the sentences, "pickup point" in one: matching the rare word says more.
        A word in no sentence weighs as one in a single sentence (it is missing either way).
        """
        alpha = self.settings.idf_weight
        n = len(s_terms)
        if alpha == 0 or n == 0:
            return dict.fromkeys(q_terms, 1.0)
        top = np.log(1 + n)
        weights = {}
        for t in q_terms:
            df = max(sum(1 for terms in s_terms if t in terms), 1)
            weights[t] = (1 - alpha) + alpha * float(np.log(1 + n / df) / top)
        return weights

    def value_penalty(self, question: str, spans: Sequence[Span]) -> np.ndarray:
        """``value_type_penalty`` for each span lacking the kind of value the question asks for."""
        wanted = asked_value_types(question)
        if not wanted or self.settings.value_type_penalty == 0:
            return np.zeros(len(spans), dtype=np.float32)
        return np.array(
            [0.0 if wanted & value_types(s.text) else self.settings.value_type_penalty for s in spans],
            dtype=np.float32,
        )

    def answer(self, question: str, sources: Sequence[Source]) -> ExtractiveAnswer:
        fact_sources = [s for s in sources if s.facts]
        if fact_sources:
            return self._answer_with_facts(question, sources, fact_sources)
        picks = self._pick(question, sources, self.settings.max_sentences, self.settings.relevance_threshold)
        if not picks:
            return ExtractiveAnswer(NOTHING_FOUND, (), False)
        return ExtractiveAnswer(self._render([], picks), tuple(picks), True)

    def _answer_with_facts(
        self, question: str, sources: Sequence[Source], fact_sources: Sequence[Source]
    ) -> ExtractiveAnswer:
        # The agent already chose these lines for this question: they are never filtered by score.
        facts = [
            Pick(Span(s, f, max(s.text.find(f), 0)), 1.0, fact=True)
            for s in fact_sources
            for f in dict.fromkeys(s.facts)
            if f.strip()
        ]
        others = [s for s in sources if not s.facts]
        # What the other sources add (the policy next to the order's dates) has to be relevant on its
        # own, and a little more so than a plain answer: it comes after facts that already answer.
        extra = self._pick(
            question,
            others,
            self.settings.max_sentences_with_facts,
            self.settings.relevance_threshold + self.settings.facts_extra_margin,
        )
        picks = facts + extra
        return ExtractiveAnswer(self._render(facts, extra), tuple(picks), True)

    def _pick(self, question: str, sources: Sequence[Source], limit: int, threshold: float) -> list[Pick]:
        # A question in an article ("Ordered as a guest?") introduces an answer; it never is one.
        spans = [
            span for source in sources for span in split_sentences(source) if not span.text.endswith("?")
        ]
        if not question.strip() or not spans or limit == 0:
            return []
        scores = self.score(question, spans)
        # Relevance (answer or decline) is judged on the sentence alone; the value type only orders
        # relevant sentences, so a question whose sources never hold the number is still answered.
        best = float(scores.max())
        if best < threshold:
            return []
        # Topical sentences about the question's neighbours are not an answer: below a clearly
        # relevant score, the sources must also mention most of what the question is about.
        # Only for published text (articles, macros): a record the agent fetched for this ticket
        # (an order, a customer) is about the question even when it shares no word with it.
        if (
            best < threshold + self.settings.coverage_bypass_margin
            and all(s.kind in _PUBLISHED_KINDS for s in sources)
            and term_coverage(question, sources) < self.settings.min_term_coverage
        ):
            return []
        adjusted = scores - self.value_penalty(question, spans)
        # Relative to the best: a sentence lacking the asked value falls behind one that holds it.
        floor = float(adjusted.max()) * self.settings.relative_cutoff
        # The order also weighs how well its source's title matches the question ("When will I get my
        # refund?" for a refund-timing question), so a near-miss sentence from an off-topic article
        # does not outrank the right article.
        ranked = adjusted + self.settings.title_weight * self._title_similarity(question, spans)
        picks: list[Pick] = []
        seen: set[str] = set()
        for i in np.argsort(-ranked, kind="stable"):
            if len(picks) >= limit:
                break
            if scores[i] < threshold or adjusted[i] < floor:
                continue
            key = " ".join(spans[i].text.lower().split())
            if key in seen:  # the same sentence in two articles: quote it once
                continue
            seen.add(key)
            picks.append(Pick(spans[i], float(scores[i])))
        return picks

    def _title_similarity(self, question: str, spans: Sequence[Span]) -> np.ndarray:
        if self.settings.title_weight == 0:
            return np.zeros(len(spans), dtype=np.float32)
        titles = sorted({s.source.title for s in spans})
        sims = dict(
            zip(
                titles,
                np.clip(self._docs.get(titles) @ self._embed_query([question])[0], 0.0, 1.0),
                strict=True,
            )
        )
        return np.array([sims[s.source.title] for s in spans], dtype=np.float32)

    def _context(self, span: Span) -> list[Span]:
        """The spans quoted before ``span`` so it reads on its own (empty when it already does)."""
        out: list[Span] = []
        if span.item and span.lead is not None:
            out.append(span.lead)  # "Not returnable:" before "- gift cards"
        elif span.prev is not None and (
            _REFERRING.match(span.text) or len(span.text.split()) < self.settings.short_sentence_words
        ):
            out.append(span.prev)
            # The previous sentence may lean on its own predecessor too ("This…" after "It…").
            if span.prev.prev is not None and _REFERRING.match(span.prev.text):
                out.insert(0, span.prev.prev)
        return out

    def _render(self, facts: Sequence[Pick], picks: Sequence[Pick]) -> str:
        paragraphs = [OFFLINE_LABEL]
        # Facts first, each source's facts as one paragraph, in source order.
        fact_groups: dict[int, list[Pick]] = {}
        for p in facts:
            fact_groups.setdefault(p.span.source.number, []).append(p)
        for group in fact_groups.values():
            body = ""
            for p in group:
                text = p.span.text.strip()
                # Facts are lines; ones without closing punctuation go on their own line.
                sep = " " if not body or re.search(r"[.!?:;]\W*$", body) else "\n"
                body = f"{body}{sep}{text}" if body else text
            paragraphs.append(self._paragraph(group[0].span.source, body))
        # Then the other sources, in order of their best sentence; sentences in document order so
        # each paragraph reads as the article does, with the context some of them need.
        by_source: dict[int, list[Pick]] = {}
        for p in picks:
            by_source.setdefault(p.span.source.number, []).append(p)
        for group in by_source.values():
            shown: dict[int, Span] = {}
            for p in group:
                for span in [*self._context(p.span), p.span]:
                    shown.setdefault(span.start, span)
            ordered = sorted(shown.values(), key=lambda s: s.start)
            # A span fully inside another shown one (an item inside its carried list) says nothing new.
            ordered = [
                s
                for s in ordered
                if not any(
                    o is not s and o.start <= s.start and s.start + len(s.text) <= o.start + len(o.text)
                    for o in ordered
                )
            ]
            body = ""
            previous: Span | None = None
            for span in ordered:
                if not body:
                    body = span.text
                elif span.item:
                    body += f"\n- {span.text}"  # list items stay list lines, never run together
                elif previous is not None and previous.item:
                    body += f"\n{span.text}"  # the text after a list starts its own line
                else:
                    body += f" {span.text}"
                previous = span
            paragraphs.append(self._paragraph(group[0].span.source, body))
        return "\n\n".join(paragraphs)

    @staticmethod
    def _paragraph(source: Source, body: str) -> str:
        # Internal notes never reach a customer unmarked, whoever copies the answer.
        prefix = f"{INTERNAL_MARK} " if source.internal else ""
        return f"{prefix}{body} [{source.number}]"
