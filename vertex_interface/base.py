"""What every backend shares: the public ``LLM`` protocol and ``BaseLLM``, its template.

``BaseLLM``'s public methods (``generate``, ``stream``, ``generate_json``, ``embed``) are final: they
validate and build the ``ModelRequest``, run the callbacks, record usage in the ledger, and do the
controlled-generation repair step. A backend implements only the calls:

- ``_generate_impl(request, schema)`` → ``Response``
- ``_stream_impl(request)`` → text deltas, then one final ``Delta(response=...)``
- ``_embed_impl(request)`` → ``Embeddings`` (rows need not be normalised)

and sets ``backend`` (a label), ``capabilities``, ``text_model``, ``embedding_model`` and
``embedding_dimensions``. Backend failures must be raised as ``LLMError`` subclasses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, final, runtime_checkable

import numpy as np
from pydantic import BaseModel

from .callbacks import CallbackChain
from .config import LLMConfig
from .cost import UsageLedger, UsageRecord, cost_usd
from .errors import Blocked, InvalidOutput, LLMError, Unavailable
from .json_output import JsonProblem, parse_and_validate, repair_prompt
from .types import (
    TASK_TYPES,
    CallKind,
    CallTags,
    Contents,
    Delta,
    Embeddings,
    GenerateConfig,
    LLMCapabilities,
    Message,
    ModelRequest,
    Response,
    Source,
    Usage,
    coerce_config,
    coerce_sources,
    normalize_contents,
)

log = logging.getLogger(__name__)

ModelCallbacks = CallbackChain[ModelRequest, Response | Embeddings]

MAX_EMBED_TEXT_CHARS = 100_000


@runtime_checkable
class LLM(Protocol):
    """The one way the rest of the system talks to a language model. Method names follow google-genai.

    Ask :attr:`capabilities` what the model can do; :attr:`backend` is only a label for reports and
    logs. Subclass :class:`BaseLLM` to add a backend (it implements everything below but the
    calls), or implement this protocol directly.

    **Errors.** Every failure of the model is an :class:`~vertex_interface.errors.LLMError` subclass
    (``RateLimited``, ``Timeout``, ``Unavailable``, ``Blocked``, ``InvalidOutput``, ``Vetoed``);
    ``err.retryable`` says whether the same call could succeed later (retries are already spent).
    Bad arguments raise ``TypeError`` / ``ValueError`` before anything is sent.

    **Cost.** Every call that reaches the model, failed or not, is recorded in :attr:`ledger` with its
    ``CallTags`` (a blocked prompt is billed for its input); nothing else needs to record it.

    **Threads.** One instance serves the whole process: every method may be called from several
    threads at once (the ledger and circuit breakers lock; the HTTP client and the local embedder are
    shared safely). Add callbacks at start-up: the callback lists are not locked.
    """

    #: a label for reports and logs ("local", "vertex"); never branch on it
    backend: str
    #: what this model can do: branch on these
    capabilities: LLMCapabilities
    config: LLMConfig
    #: before/after/error callbacks around every call (see ``callbacks.py``)
    callbacks: ModelCallbacks
    #: usage and cost of every call, tagged with session, turn and agent
    ledger: UsageLedger

    def generate(
        self,
        contents: Contents,
        *,
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> Response:
        """Answer ``contents`` in one piece.

        :param contents: a string, a ``Message``, a ``{"role", "text"}`` or google-genai
            ``{"role", "parts"}`` dict, or a list of these; at least one non-empty user message.
        :param system: the system instruction (ignored unless ``capabilities.follows_instructions``).
        :param config: sampling settings, a ``GenerateConfig`` or the same keys as a dict.
        :param sources: numbered context the answer may cite as ``[n]``.
        :param tags: session, turn and agent the cost is booked to.
        :return: the ``Response`` (text, finish reason, usage, safety ratings, cited numbers).
        :raises Vetoed: a before-callback refused the request (nothing was sent).
        :raises Blocked: the prompt or the answer was blocked by safety filters.
        :raises InvalidOutput: the model returned no candidate or an empty answer.
        :raises RateLimited, Timeout, Unavailable: the model could not be reached (after retries).
        """
        ...

    def stream(
        self,
        contents: Contents,
        *,
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> Iterator[Delta]:
        """Answer ``contents`` piece by piece; same arguments as :meth:`generate`.

        :return: an iterator of ``Delta``: text deltas (``delta.text``, joined they are the answer),
            then exactly one final ``Delta(text="", response=Response)`` (``delta.is_final``).
            Usage is recorded and after-callbacks run just before the final delta is yielded.
        :raises Vetoed: from the ``stream(...)`` call itself, before any iteration.
        :raises LLMError: the errors of :meth:`generate`, from ``next()``. Only the opening of a
            stream is retried: one that breaks off after text was yielded raises
            ``Unavailable`` (``Timeout`` when it stalled) with ``retryable=False``.

        Closing the iterator early closes the HTTP stream; nothing is recorded for it.
        """
        ...

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
        """Controlled generation: a JSON object valid against ``schema``.

        An invalid first reply gets exactly one repair call (the bad reply and the problem are
        sent back); both calls are recorded.

        :param schema: a pydantic model class; its JSON schema is sent as ``responseSchema``.
        :return: the parsed object (``dict``), already validated against ``schema``.
        :raises Unavailable: ``capabilities.controlled_generation`` is false (no call is made),
            or the model could not be reached.
        :raises InvalidOutput: the reply is still invalid after the repair (``raw``, ``detail``).
        :raises LLMError: the other errors of :meth:`generate`.
        """
        ...

    def embed(self, texts: Sequence[str], *, task_type: str, tags: CallTags | None = None) -> np.ndarray:
        """Embed ``texts`` (batched as the model allows).

        :param texts: non-empty strings of at most 100,000 characters each.
        :param task_type: one of Vertex's (``RETRIEVAL_QUERY``, ``RETRIEVAL_DOCUMENT``,
            ``SEMANTIC_SIMILARITY``, ...).
        :return: a float32 array of shape ``(len(texts), dimensions)``, rows L2-normalised;
            ``(0, dimensions)`` for no texts (no call, nothing recorded).
        :raises LLMError: as :meth:`generate` (``Unavailable`` also for a reply of the wrong width).
        """
        ...

    def close(self) -> None:
        """Release the HTTP client. Also called on leaving a ``with`` block."""
        ...


class BaseLLM:
    """The template every backend fills in: see the module docstring for the split.

    The public methods are final (do not override them): they are where requests are checked,
    callbacks run and usage is recorded, so every backend behaves the same at the seam.
    """

    backend: str
    capabilities: LLMCapabilities = LLMCapabilities()

    def __init__(
        self,
        config: LLMConfig,
        *,
        callbacks: ModelCallbacks | None = None,
        ledger: UsageLedger | None = None,
    ) -> None:
        if not isinstance(config, LLMConfig):
            raise TypeError("config must be an LLMConfig")
        self.config = config
        self.callbacks: ModelCallbacks = callbacks if callbacks is not None else CallbackChain()
        self.ledger = ledger if ledger is not None else UsageLedger()

    # --- what a backend provides ------------------------------------------------------------------
    #: the model id ``generate``/``stream``/``generate_json`` calls are made and billed under
    text_model: str
    #: the model id ``embed`` calls are made and billed under
    embedding_model: str
    #: the width of ``embed``'s rows
    embedding_dimensions: int

    def _generate_impl(self, request: ModelRequest, schema: type[BaseModel] | None) -> Response:
        """One answer. ``schema`` is set for ``generate_json`` (only with controlled generation); an
        empty answer must then be returned, not raised: the repair step handles it."""
        raise NotImplementedError

    def _stream_impl(self, request: ModelRequest) -> Iterator[Delta]:
        """Text deltas, then one final ``Delta(response=...)``; release resources in ``finally``."""
        raise NotImplementedError

    def _embed_impl(self, request: ModelRequest) -> Embeddings:
        """One row per ``request.texts`` (normalised by the caller) and the call's usage."""
        raise NotImplementedError

    # --- the public surface (final) ---------------------------------------------------------------
    @final
    def generate(
        self,
        contents: Contents,
        *,
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> Response:
        """See :meth:`LLM.generate`."""
        request = self._request(
            "generate", contents, system=system, config=config, sources=sources, tags=tags
        )
        return self._call(request, None)

    @final
    def stream(
        self,
        contents: Contents,
        *,
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> Iterator[Delta]:
        """See :meth:`LLM.stream`."""
        request = self._request("stream", contents, system=system, config=config, sources=sources, tags=tags)
        # Vetoes surface here, at the call, not at the first next().
        self.callbacks.run_before(request)
        return self._streamed(request)

    @final
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
        """See :meth:`LLM.generate_json`."""
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise TypeError("schema must be a pydantic BaseModel subclass")
        request = self._request(
            "generate_json", contents, system=system, config=config, sources=sources, tags=tags, schema=schema
        )
        if not self.capabilities.controlled_generation:
            # Faking a decision here would hide that there is no model: callers decide without one.
            raise Unavailable(
                f"generate_json needs controlled generation and the {self.backend} backend has none "
                f"(LLM_BACKEND={self.backend}); decisions are made without a model: by the local "
                "router and deterministic agent logic",
                model=request.model,
            )
        first = self._call(request, schema)
        try:
            return parse_and_validate(first.text, schema)
        except JsonProblem as problem:
            log.info("controlled generation for %s needs a repair: %s", schema.__name__, problem)
            repair = replace(
                request,
                contents=(
                    *request.contents,
                    Message("model", first.text or "(empty reply)"),
                    Message("user", repair_prompt(str(problem))),
                ),
                attempt=2,
            )
        second = self._call(repair, schema)
        try:
            return parse_and_validate(second.text, schema)
        except JsonProblem as problem:
            raise InvalidOutput(
                f"model output does not match {schema.__name__} after one repair: {problem}",
                model=request.model,
                raw=second.text,
                detail=str(problem),
            ) from problem

    @final
    def embed(
        self, texts: Sequence[str], *, task_type: str = "RETRIEVAL_DOCUMENT", tags: CallTags | None = None
    ) -> np.ndarray:
        """See :meth:`LLM.embed`."""
        request = self._embed_request(texts, task_type, tags)
        if not request.texts:
            return np.zeros((0, self.embedding_dimensions), dtype=np.float32)
        self.callbacks.run_before(request)
        try:
            result = self._embed_impl(request)
        except LLMError as exc:
            self._failed(request, exc)
            raise
        vectors = np.asarray(result.vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)
        self._succeeded(request, Embeddings(vectors, result.usage))
        return vectors

    # --- around the calls -------------------------------------------------------------------------
    def _call(self, request: ModelRequest, schema: type[BaseModel] | None) -> Response:
        self.callbacks.run_before(request)
        try:
            response = self._generate_impl(request, schema)
        except LLMError as exc:
            self._failed(request, exc)
            raise
        self._succeeded(request, response)
        return response

    def _streamed(self, request: ModelRequest) -> Iterator[Delta]:
        deltas = self._stream_impl(request)
        try:
            while True:
                try:
                    delta = next(deltas)
                except StopIteration:
                    return
                except LLMError as exc:
                    self._failed(request, exc)
                    raise
                if delta.response is not None:
                    self._succeeded(request, delta.response)
                yield delta
        finally:
            # An early close by the caller reaches the backend's finally (the HTTP stream closes).
            deltas.close()

    # --- request building -------------------------------------------------------------------------
    def _request(
        self,
        kind: CallKind,
        contents: Contents,
        *,
        system: str | None,
        config: GenerateConfig | Mapping[str, Any] | None,
        sources: Sequence[Source] | None,
        tags: CallTags | None,
        schema: type[BaseModel] | None = None,
    ) -> ModelRequest:
        if system is not None and not isinstance(system, str):
            raise TypeError("system must be a string")
        if tags is not None and not isinstance(tags, CallTags):
            raise TypeError("tags must be a CallTags")
        return ModelRequest(
            kind=kind,
            model=self.text_model,
            backend=self.backend,
            contents=normalize_contents(contents),
            system=system,
            config=coerce_config(config),
            sources=coerce_sources(sources),
            schema=schema.__name__ if schema is not None else None,
            tags=tags or CallTags(),
        )

    def _embed_request(self, texts: Sequence[str], task_type: str, tags: CallTags | None) -> ModelRequest:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError("texts must be a list of strings")
        for t in texts:
            if not isinstance(t, str):
                raise TypeError("texts must be a list of strings")
            if not t.strip():
                raise ValueError("cannot embed an empty text")
            if len(t) > MAX_EMBED_TEXT_CHARS:
                raise ValueError(f"text of {len(t)} characters is over the {MAX_EMBED_TEXT_CHARS} limit")
        if task_type not in TASK_TYPES:
            raise ValueError(f"unknown task_type {task_type!r}; expected one of {sorted(TASK_TYPES)}")
        return ModelRequest(
            kind="embed",
            model=self.embedding_model,
            backend=self.backend,
            texts=tuple(texts),
            task_type=task_type,
            tags=tags or CallTags(),
        )

    # --- accounting -------------------------------------------------------------------------------
    def _usage(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        context_tokens: int = 0,
        *,
        estimated: bool = False,
    ) -> Usage:
        price = self.config.price(model)
        return Usage(
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            context_tokens=min(context_tokens, input_tokens),
            cost_usd=cost_usd(price, input_tokens, output_tokens),
            priced=price is not None,
            estimated=estimated,
        )

    def _record(self, request: ModelRequest, usage: Usage) -> None:
        self.ledger.record(
            UsageRecord(kind=request.kind, backend=self.backend, usage=usage, tags=request.tags)
        )

    def _succeeded(self, request: ModelRequest, result: Response | Embeddings) -> None:
        self._record(request, result.usage)
        self.callbacks.run_after(request, result)

    def _failed(self, request: ModelRequest, error: BaseException) -> None:
        # A blocked prompt is still billed for its input tokens.
        if isinstance(error, Blocked) and isinstance(error.usage, Usage):
            self._record(request, error.usage)
        self.callbacks.run_error(request, error)

    # --- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """See :meth:`LLM.close`; a backend with a client overrides it."""

    def __enter__(self) -> BaseLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LLM", "BaseLLM", "LLMCapabilities", "LLMError", "ModelCallbacks"]
