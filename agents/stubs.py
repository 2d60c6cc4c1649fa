"""Stub agents: wire an agent into routing before the real one exists.

- `DumbAgent` acknowledges ("Billing is not connected yet") so the answer can say so;
- `DeterministicAgent` answers from the manifest's `rules` (first regex match wins);
- `IntelligentAgent` matches the request to the manifest's `intents` by embedding similarity.

A folder with `kind: dumb|deterministic|intelligent` needs no agent.py; one may still subclass
these to tweak them. Each answer is one evidence item of kind "note" so it can be cited.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from typing import Any

import numpy as np

from agents.base import AgentContext, AgentManifest, AgentResult, BaseAgent, Evidence
from vertex_interface import LLMError

DEFAULT_INTENT_THRESHOLD = 0.55


class _StubAgent(BaseAgent):
    """Shared run(): honour cancellation, time the call, build the one-note result."""

    def run(self, query: str, ctx: AgentContext) -> AgentResult:
        started = time.perf_counter()
        result = AgentResult(agent=self.name, summary="")
        if ctx.cancel.is_set():
            result.status = "cancelled"
        else:
            try:
                self.answer(query, ctx, result)
            except LLMError as exc:
                result.status, result.error = "unavailable", str(exc)
        result.latency_s = time.perf_counter() - started
        return result

    def answer(self, query: str, ctx: AgentContext, result: AgentResult) -> None:
        raise NotImplementedError

    def _note(self, result: AgentResult, key: str, text: str, confidence: float) -> None:
        result.summary = text
        result.confidence = confidence
        result.status = "ok"
        result.evidence = [
            Evidence(
                id=f"note:{self.name}:{key}",
                title=self.manifest.title,
                text=text,
                kind="note",
                score=confidence,
                agent=self.name,
            )
        ]

    def _nothing(self, result: AgentResult) -> None:
        result.status = "empty"
        result.summary = f"{self.manifest.title} has no answer for this request."


class DumbAgent(_StubAgent):
    """Always acknowledges: the source exists in routing but is not connected yet.

    `config.message` overrides the text."""

    def answer(self, query: str, ctx: AgentContext, result: AgentResult) -> None:
        message = str(self.manifest.config.get("message") or f"{self.manifest.title} is not connected yet.")
        self._note(result, "ack", message, float(self.manifest.config.get("confidence", 0.1)))


class DeterministicAgent(_StubAgent):
    """The first manifest rule whose regex matches the request answers (case-insensitive)."""

    def __init__(self, manifest: AgentManifest, folder=None) -> None:
        super().__init__(manifest, folder)
        self._rules = [(re.compile(r.pattern, re.IGNORECASE), r.response) for r in manifest.rules]

    def answer(self, query: str, ctx: AgentContext, result: AgentResult) -> None:
        for i, (pattern, response) in enumerate(self._rules):
            if pattern.search(query):
                self._note(result, f"rule{i}", response, 1.0)
                return
        self._nothing(result)


class IntelligentAgent(_StubAgent):
    """Nearest intent by cosine similarity between the request and each intent's examples.

    `config.threshold` (default 0.55, tuned on the local MiniLM model) is the least similarity
    that counts as a match; the similarity becomes the confidence."""

    def __init__(self, manifest: AgentManifest, folder=None) -> None:
        super().__init__(manifest, folder)
        self.threshold = float(manifest.config.get("threshold", DEFAULT_INTENT_THRESHOLD))
        self._examples = [(i, ex) for i, intent in enumerate(manifest.intents) for ex in intent.examples]
        # Example vectors depend on the embedding model: cache them per LLM object. Weak keys:
        # an id() could be reused by a new LLM after the old one is freed.
        self._cache: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _example_vectors(self, ctx: AgentContext) -> np.ndarray:
        assert ctx.llm is not None
        key = ctx.llm
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            texts = [ex for _, ex in self._examples]
            cached = _normalise(
                ctx.llm.embed(texts, task_type="SEMANTIC_SIMILARITY", tags=ctx.tags(self.name))
            )
            with self._lock:
                self._cache[key] = cached
        return cached

    def answer(self, query: str, ctx: AgentContext, result: AgentResult) -> None:
        if ctx.llm is None:
            result.status, result.error = "unavailable", "no embedding model configured"
            return
        examples = self._example_vectors(ctx)
        q = _normalise(ctx.llm.embed([query], task_type="SEMANTIC_SIMILARITY", tags=ctx.tags(self.name)))[0]
        sims = examples @ q
        best = int(np.argmax(sims))
        score = float(sims[best])
        intent = self.manifest.intents[self._examples[best][0]]
        result.data["intent"] = {"name": intent.name, "similarity": round(score, 4)}
        if score < self.threshold:
            self._nothing(result)
            return
        self._note(result, intent.name, intent.response, max(0.0, min(1.0, score)))


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


STUB_CLASSES: dict[str, type[BaseAgent]] = {
    "dumb": DumbAgent,
    "deterministic": DeterministicAgent,
    "intelligent": IntelligentAgent,
}
