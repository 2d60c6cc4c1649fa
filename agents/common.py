"""Helpers the built-in agents share: ticket fields, query clean-up, knowledge search with a
relevance check, extractive summaries. Agent folders import from here; nothing here knows an
agent by name."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.base import AgentContext, BaseAgent, Evidence, ToolError, ToolUnavailable, current_viewer
from store.knowledge import KnowledgeIndex
from store.knowledge.types import RRF_K, Hit, KnowledgeError, SearchFilters, Viewer
from vertex_interface import LLMError

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
MAX_TOOL_QUERY_CHARS = 2000
# Highest fused score possible: rank 1 in both the full-text and the vector list.
_BEST_RRF = 2.0 / (RRF_K + 1)


# --- ticket fields ------------------------------------------------------------------------------
def _custom_fields(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """Custom fields as {id: value}, whether REST/ZAF gives a list of {id, value} or a mapping."""
    fields = ticket.get("custom_fields") or ticket.get("fields") or []
    if isinstance(fields, Mapping):
        return {str(k): v for k, v in fields.items()}
    if isinstance(fields, list):
        return {str(f.get("id")): f.get("value") for f in fields if isinstance(f, Mapping)}
    return {}


def ticket_field(ticket: Mapping[str, Any], field_id: int | str) -> Any:
    """A custom field's value (None when absent)."""
    return _custom_fields(ticket).get(str(field_id))


def custom_field_values(ticket: Mapping[str, Any]) -> list[str]:
    values = _custom_fields(ticket).values()
    return [str(v) for v in values if isinstance(v, str | int) and not isinstance(v, bool)]


def requester(ticket: Mapping[str, Any]) -> Mapping[str, Any]:
    value = ticket.get("requester")
    return value if isinstance(value, Mapping) else {}


def requester_email(ticket: Mapping[str, Any]) -> str | None:
    for candidate in (requester(ticket).get("email"), ticket.get("requester_email")):
        if isinstance(candidate, str) and EMAIL_RE.fullmatch(candidate.strip()):
            return candidate.strip()
    via = ticket.get("via")
    if isinstance(via, Mapping):
        sender = (
            ((via.get("source") or {}).get("from") or {}) if isinstance(via.get("source"), Mapping) else {}
        )
        address = sender.get("address") if isinstance(sender, Mapping) else None
        if isinstance(address, str) and EMAIL_RE.fullmatch(address):
            return address
    return None


def first_name(full_name: object) -> str | None:
    if not isinstance(full_name, str) or not full_name.strip():
        return None
    return full_name.strip().split()[0]


def ticket_text(ticket: Mapping[str, Any]) -> str:
    return "\n".join(str(ticket.get(k) or "") for k in ("subject", "description"))


# --- query clean-up -----------------------------------------------------------------------------
_LABEL_RE = re.compile(
    r"^\s*(ticket|subject|description|context|customer|requester|tags?|status|priority|order|ticket context)"
    r"\s*(#\s*\d+)?\s*:",
    re.IGNORECASE,
)
_BOILERPLATE_RE = re.compile(
    r"^\s*(hi|hello|hey|dear|good (morning|afternoon|evening)|thanks|thank you|cheers|regards|kind regards|"
    r"best|best regards|sent from my)\b[\s\w,!.]{0,40}$",
    re.IGNORECASE,
)


def question_only(query: str) -> str | None:
    """The request without ticket context and pleasantries, for the retry after an empty
    search. None when that changes nothing (retrying would only repeat the search)."""
    lines = [ln.strip() for ln in query.splitlines() if ln.strip()]
    kept = [ln for ln in lines if not _LABEL_RE.match(ln) and not _BOILERPLATE_RE.match(ln)]
    questions = [s for s in re.split(r"(?<=[?])\s+", " ".join(kept)) if s.strip().endswith("?")]
    core = " ".join(questions) if questions else " ".join(kept)
    core = re.sub(r"\s+", " ", core).strip()
    return core if core and core != re.sub(r"\s+", " ", query).strip() else None


def check_query(query: object) -> str:
    if not isinstance(query, str) or not query.strip():
        raise ToolError("query must be a non-empty string")
    return query.strip()[:MAX_TOOL_QUERY_CHARS]


# --- knowledge search -----------------------------------------------------------------------------
@dataclass
class DocumentMatch:
    """Hits of one document: the best chunk first, plus the other chunks the search returned."""

    doc_id: str
    title: str
    url: str
    kind: str
    chunks: list[str] = field(default_factory=list)
    score: float = 0.0  # best fused score, normalised to 0..1
    similarity: float = 0.0  # cosine between the query and the best chunk (relevance check)
    internal: bool = False  # an internal document (restricted article, internal notes, agent-only macro)

    @property
    def text(self) -> str:
        return self.chunks[0] if self.chunks else ""


class _VectorCache:
    """LRU of document-text embeddings for the relevance check: popular chunks come back turn
    after turn, and re-embedding them is most of a search's cost on CPU."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()

    def embed(self, embedder: Any, texts: list[str]) -> np.ndarray:
        key = id(embedder)
        with self._lock:
            found = {t: self._items.get((key, t)) for t in texts}
            for t, v in found.items():
                if v is not None:
                    self._items.move_to_end((key, t))
        missing = [t for t, v in found.items() if v is None]
        if missing:
            fresh = _normalise(embedder.embed(missing, task_type="RETRIEVAL_DOCUMENT"))
            with self._lock:
                for t, v in zip(missing, fresh, strict=True):
                    found[t] = self._items[(key, t)] = v
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return np.stack([found[t] for t in texts])


_DOC_VECTORS = _VectorCache()


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1.0, n)


def search_documents(
    index: KnowledgeIndex | None,
    tenant: str,
    query: str,
    *,
    kinds: Sequence[str],
    k: int = 5,
    locale: str | None = None,
    exclude: Sequence[str] = (),
    min_similarity: float = 0.0,
    chunk_k: int = 20,
    viewer: Viewer | None = None,
) -> list[DocumentMatch]:
    """Hybrid search grouped per document, best first; documents whose best chunk is less
    similar to the query than `min_similarity` are dropped (RRF always returns *something*,
    so relevance needs its own test). Only documents `viewer` may see are searched (the index
    filters them out, so a restricted article never even ranks); None: the current turn's viewer."""
    if index is None:
        raise ToolUnavailable("the knowledge index is not configured")
    query = check_query(query)
    audience = (viewer or current_viewer()).audience()
    try:
        filters = SearchFilters(tenant, kinds=tuple(kinds), locale=locale or None, audience=audience)
        qvec = _normalise(index.embedder.embed([query], task_type="RETRIEVAL_QUERY"))[0]
        hits: list[Hit] = index.hybrid_search(query, qvec, max(chunk_k, k), filters)
    except KnowledgeError as exc:
        raise ToolUnavailable(f"the knowledge index is unavailable: {exc}") from None
    skip = set(exclude)
    docs: dict[str, DocumentMatch] = {}
    for hit in hits:
        d = hit.document
        if d.id in skip:
            continue
        match = docs.get(d.id)
        if match is None:
            match = docs[d.id] = DocumentMatch(
                d.id, d.title, d.url, d.kind, score=min(1.0, hit.score / _BEST_RRF), internal=d.internal
            )
        match.chunks.append(hit.chunk.text)
    ranked = list(docs.values())[: k + 2]  # two spare in case some fail the relevance test
    if not ranked:
        return []
    texts = [m.text if m.text.startswith(m.title) else f"{m.title}\n{m.text}" for m in ranked]
    dvecs = _DOC_VECTORS.embed(index.embedder, texts)
    for m, sim in zip(ranked, dvecs @ qvec, strict=True):
        m.similarity = float(sim)
    return [m for m in ranked if m.similarity >= min_similarity][:k]


def section(chunks: Sequence[str], heading: str) -> str | None:
    """The text under `heading` in the first chunk that has it (chunks start with their
    heading path, e.g. "Resolution\n..."), up to the next known section heading."""
    start = re.compile(rf"^\s*(?:#+\s*)?{re.escape(heading)}\s*$", re.IGNORECASE | re.MULTILINE)
    for chunk in chunks:
        m = start.search(chunk)
        if m:
            rest = chunk[m.end() :]
            stop = re.search(
                r"^\s*(?:#+\s*)?(Problem|Conversation|Resolution|Reply|Actions)\s*$", rest, re.MULTILINE
            )
            text = (rest[: stop.start()] if stop else rest).strip()
            if text:
                return text
    return None


def find_section(
    index: KnowledgeIndex | None,
    tenant: str,
    match: DocumentMatch,
    heading: str,
    viewer: Viewer | None = None,
) -> str | None:
    """`section()` of a matched document; when its chunk did not rank, one full-text search on
    the title plus the heading fetches it (no embedding)."""
    found = section(match.chunks, heading)
    if found is not None or index is None:
        return found
    try:
        filters = SearchFilters(tenant, kinds=(match.kind,), audience=(viewer or current_viewer()).audience())
        hits = index.hybrid_search(f"{match.title} {heading}", None, 25, filters)
    except KnowledgeError:
        return None
    return section([h.chunk.text for h in hits if h.document.id == match.doc_id], heading)


# --- extractive text ------------------------------------------------------------------------------
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


def strip_heading(text: str, title: str = "") -> str:
    """Chunks start with their heading path; drop a first line that only repeats headings."""
    lines = text.strip().splitlines()
    if len(lines) > 1 and (
        lines[0].strip() == title.strip()
        or (len(lines[0]) < 80 and not lines[0].rstrip().endswith((".", "?", "!", ":")))
    ):
        return "\n".join(lines[1:]).strip()
    return text.strip()


def lead(text: str, max_chars: int = 240) -> str:
    """The first sentences of `text` up to `max_chars` (verbatim, cut at a sentence end)."""
    flat = re.sub(r"\s+", " ", text).strip()
    out = ""
    for sentence in _SENTENCE_RE.split(flat):
        if out and len(out) + 1 + len(sentence) > max_chars:
            break
        out = f"{out} {sentence}".strip()
        if len(out) >= max_chars:
            return out[: max_chars - 1].rstrip() + "…"
    return out


def model_summary(agent: BaseAgent, query: str, evidence: list[Evidence], ctx: AgentContext) -> str | None:
    """With a model that follows instructions: one short grounded summary of the evidence
    (summary.md). None without one or when the model fails, so the caller falls back to its
    extractive summary."""
    writes = ctx.llm is not None and ctx.llm.capabilities.follows_instructions
    if not writes or not evidence or ctx.cancel.is_set():
        return None
    assert ctx.llm is not None
    prompt = agent.prompts.get("summary") or "Summarise the sources for the request in two sentences."
    sources = [e.as_source(i + 1) for i, e in enumerate(evidence[: agent.max_evidence])]
    try:
        response = ctx.llm.generate(
            f"{prompt}\n\nRequest: {query}",
            sources=sources,
            config={"temperature": 0.1, "max_output_tokens": 256},
            tags=ctx.tags(agent.name),
        )
    except LLMError:
        return None
    return response.text.strip() or None


def money(amount: object, currency: str = "EUR") -> str:
    if not isinstance(amount, int | float):
        return "?"
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get(currency, f"{currency} ")
    return f"{symbol}{amount:,.2f}"


def day(iso_time: object) -> str | None:
    return str(iso_time)[:10] if isinstance(iso_time, str) and iso_time else None
