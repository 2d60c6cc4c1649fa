"""The offline responder's core: pick, order and cite the source sentences that answer a question.

It never writes prose of its own. Every sentence in an answer is a verbatim slice of one source,
followed by that source's citation; when no sentence is relevant enough it says so.

Relevance = ``w * cosine(MiniLM(question), MiniLM(sentence)) + (1 - w) * lexical overlap``, where the
lexical part is the share of the question's content words (crudely stemmed) found in the sentence.
MiniLM alone rates topical-but-useless sentences too high; word overlap alone misses paraphrases.
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

# Sentence ends: . ! ? (optionally followed by a closing quote/bracket) then whitespace.
_SENT_END = re.compile(r"(?<=[.!?])([\"'\u201d)\]]*)\s+")
_ABBREVIATION_WORDS = (
    "e.g i.e etc vs approx no mr mrs ms dr st inc ltd co jr sr fig min max hrs mon tue wed thu fri "
    "sat sun jan feb mar apr jun jul aug sep sept oct nov dec u.s"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORD_WORDS = (
    "a an and are as at be been being but by can could did do does doing for from had has have how i "
    "if in into is it its me my of on or our please so than that the their them then there these "
    "they this to was we were what when where which who why will with would you your yours can't "
    "don't i'm i've"
)
_STOPWORDS = frozenset(_STOPWORD_WORDS.split())


@dataclass(frozen=True)
class Span:
    source: Source
    text: str  # verbatim slice of source.text
    start: int  # offset in source.text, for document order


def split_sentences(source: Source) -> list[Span]:
    """Sentences (and list items / lines) of a source, as verbatim slices with their offsets.

    A sentence that introduces a list ("We deliver to 15 countries:") carries the list lines that
    follow it (up to the next blank line or full sentence), since it answers nothing without them.
    """
    spans: list[Span] = []
    text = source.text
    lines = [(m.start(), m.group(0)) for m in re.finditer(r"[^\n]+", text)]
    i = 0
    while i < len(lines):
        line_start, line = lines[i]
        i += 1
        bullet = _BULLET.match(line)
        offset = line_start + (bullet.end() if bullet else 0)
        body = line[bullet.end() :] if bullet else line
        if _is_heading(body, source):
            continue
        line_spans = [Span(source, t, offset + a) for a, t in _sentences_of(body)]
        if line_spans and line_spans[-1].text.endswith(":"):
            intro = line_spans[-1]
            end, i = _list_after(text, lines, i)
            if end is not None:
                line_spans[-1] = Span(source, text[intro.start : end], intro.start)
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


def content_terms(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


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
        q_vec = self._embed_query([question])[0]
        s_vecs = self._docs.get([s.text for s in spans])
        semantic = np.clip(s_vecs @ q_vec, 0.0, 1.0)
        q_terms = content_terms(question)
        lexical = np.array(
            [len(q_terms & content_terms(s.text)) / len(q_terms) if q_terms else 0.0 for s in spans],
            dtype=np.float32,
        )
        w = self.settings.semantic_weight
        return w * semantic + (1 - w) * lexical

    def answer(self, question: str, sources: Sequence[Source]) -> ExtractiveAnswer:
        # A question in an article ("Ordered as a guest?") introduces an answer; it never is one.
        spans = [
            span for source in sources for span in split_sentences(source) if not span.text.endswith("?")
        ]
        if not question.strip() or not spans:
            return ExtractiveAnswer(NOTHING_FOUND, (), False)
        scores = self.score(question, spans)
        best = float(scores.max())
        if best < self.settings.relevance_threshold:
            return ExtractiveAnswer(NOTHING_FOUND, (), False)
        floor = max(self.settings.relevance_threshold, best * self.settings.relative_cutoff)
        # Relevance is judged on the sentence alone; the order also weighs how well its source's
        # title matches the question ("When will I get my refund?" for a refund-timing question),
        # so a near-miss sentence from an off-topic article does not outrank the right article.
        ranked = scores + self.settings.title_weight * self._title_similarity(question, spans)
        picks: list[Pick] = []
        seen: set[str] = set()
        for i in np.argsort(-ranked, kind="stable"):
            if len(picks) >= self.settings.max_sentences:
                break
            if scores[i] < floor:
                continue
            key = " ".join(spans[i].text.lower().split())
            if key in seen:  # the same sentence in two articles: quote it once
                continue
            seen.add(key)
            picks.append(Pick(spans[i], float(scores[i])))
        return ExtractiveAnswer(self._render(picks), tuple(picks), True)

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

    @staticmethod
    def _render(picks: Sequence[Pick]) -> str:
        # Sources in order of their best sentence; sentences in document order so each paragraph reads
        # as the article does; one citation per paragraph since every sentence in it shares the source.
        by_source: dict[int, list[Pick]] = {}
        for p in picks:
            by_source.setdefault(p.span.source.number, []).append(p)
        paragraphs = [OFFLINE_LABEL]
        for number, group in by_source.items():
            group.sort(key=lambda p: p.span.start)
            paragraphs.append(" ".join(p.span.text for p in group) + f" [{number}]")
        return "\n\n".join(paragraphs)
