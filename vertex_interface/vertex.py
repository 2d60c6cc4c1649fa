"""The vertex backend: Gemini and text embeddings on Vertex AI through the google-genai client.

google-genai does the wire protocol; this module implements ``BaseLLM``'s calls and adds what each
would otherwise repeat: typed errors, retries with backoff (its own retry is left off so there is one
policy), a per-model circuit breaker and safety handling. Request building, callbacks, cost records
and the controlled-generation repair step are ``BaseLLM``'s (base.py).
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from .base import BaseLLM, ModelCallbacks
from .breaker import BreakerBoard
from .config import RETIRED_GEMINI_MODELS, LLMConfig, model_family
from .cost import UsageLedger, warn_unpriced
from .errors import Blocked, InvalidOutput, LLMError, RateLimited, Timeout, Unavailable
from .prompting import render_sources
from .retry import retrying
from .types import (
    Delta,
    Embeddings,
    LLMCapabilities,
    ModelRequest,
    Response,
    SafetyRating,
    Usage,
    cited_numbers,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Finish reasons that mean the answer was withheld, not completed.
BLOCKING_FINISH_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "MODEL_ARMOR"}
)
DEFAULT_EMBEDDING_DIMENSIONS = 768


@dataclass(frozen=True)
class EmbeddingModelLimits:
    """What one embedding request to a model may carry, from Vertex AI's "Get text embeddings"
    page (https://cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings)."""

    max_dimensions: int  # full output width; output_dimensionality may ask for fewer
    max_texts: int  # input texts per request
    max_tokens: int | None  # input tokens per request, all texts together (None: per-text only)


# gemini-embedding-001: up to 3072 dimensions, "supports one instance per request".
# text-embedding-005 / text-multilingual-embedding-002: up to 768 dimensions, "limited to 250
# input texts" and "a maximum input token limit of 20,000" per request (over it: a 400 error).
EMBEDDING_MODEL_LIMITS: dict[str, EmbeddingModelLimits] = {
    "gemini-embedding-001": EmbeddingModelLimits(3072, 1, None),
    "text-embedding-005": EmbeddingModelLimits(768, 250, 20_000),
    "text-multilingual-embedding-002": EmbeddingModelLimits(768, 250, 20_000),
}


def embedding_limits(model: str) -> EmbeddingModelLimits:
    """A model's limits; an unknown model gets the cautious text-embedding ones."""
    return EMBEDDING_MODEL_LIMITS.get(model, EmbeddingModelLimits(DEFAULT_EMBEDDING_DIMENSIONS, 250, 20_000))


def token_upper_bound(text: str) -> int:
    """No tokenizer here, so a bound that cannot undercount: every token covers at least one
    UTF-8 byte (byte-fallback tokens exactly one), plus start/end markers."""
    return len(text.encode("utf-8")) + 2


def embedding_batches(texts: Sequence[str], limits: EmbeddingModelLimits, batch_size: int) -> list[list[str]]:
    """Consecutive batches within the model's per-request text count and token budget."""
    most = max(1, min(batch_size, limits.max_texts))
    batches: list[list[str]] = []
    current: list[str] = []
    tokens = 0
    for text in texts:
        cost = token_upper_bound(text)
        over_budget = limits.max_tokens is not None and tokens + cost > limits.max_tokens
        if current and (len(current) >= most or over_budget):
            batches.append(current)
            current, tokens = [], 0
        # A single text over the budget still goes alone: Vertex truncates each input to 2048
        # tokens, and the bound above overcounts.
        current.append(text)
        tokens += cost
    if current:
        batches.append(current)
    return batches


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout, other transport) exception classes of whichever httpx flavour google-genai uses."""
    timeouts: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(mod.TimeoutException)
        transport.append(mod.TransportError)
    return tuple(timeouts), tuple(transport)


_TIMEOUTS, _TRANSPORT = _transport_errors()


def _enum_name(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None)
    raw = headers.get("retry-after") if headers is not None else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        # The HTTP-date form: seconds until then.
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def translate_error(exc: BaseException, model: str) -> LLMError | None:
    """Map an SDK / transport / auth exception to our typed errors (None: not ours to map)."""
    from google.auth import exceptions as auth_exceptions
    from google.genai import errors as genai_errors

    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        code = exc.code or 0
        detail = exc.message or exc.status or ""
        if code == 429:
            return RateLimited(
                f"rate limited by Vertex AI: {detail}", model=model, retry_after=_retry_after(exc.response)
            )
        if code in (408, 504):
            return Timeout(f"Vertex AI deadline exceeded ({code}): {detail}", model=model)
        if code >= 500:
            return Unavailable(f"Vertex AI error {code}: {detail}", model=model, retryable=True)
        if code in (401, 403):
            return Unavailable(f"Vertex AI refused the credentials ({code}): {detail}", model=model)
        if code == 404:
            return Unavailable(f"model {model!r} not found in this project/location: {detail}", model=model)
        return LLMError(f"Vertex AI rejected the request ({code}): {detail}", model=model)
    if _TIMEOUTS and isinstance(exc, _TIMEOUTS):
        return Timeout(f"no reply from Vertex AI within the timeout ({type(exc).__name__})", model=model)
    if _TRANSPORT and isinstance(exc, _TRANSPORT):
        return Unavailable(
            f"connection to Vertex AI failed: {type(exc).__name__}: {exc}", model=model, retryable=True
        )
    if isinstance(exc, json.JSONDecodeError | genai_errors.UnknownApiResponseError):
        return Unavailable(f"malformed reply from Vertex AI: {exc}", model=model, retryable=True)
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        # Never echo the exception's details: they can carry token fragments.
        return Unavailable(f"could not obtain Google credentials ({type(exc).__name__})", model=model)
    return None


def _is_outage(err: LLMError) -> bool:
    """Failures that say Vertex (not our request) is in trouble: these trip the breaker."""
    return isinstance(err, Timeout) or (isinstance(err, Unavailable) and err.retryable)


class VertexLLM(BaseLLM):
    """Gemini on Vertex AI: the calls, with retries, the circuit breaker and safety handling."""

    backend = "vertex"
    capabilities = LLMCapabilities(follows_instructions=True, controlled_generation=True, extractive=False)

    def __init__(
        self,
        config: LLMConfig,
        *,
        callbacks: ModelCallbacks | None = None,
        ledger: UsageLedger | None = None,
        credentials: Any = None,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        embedding_dimensions: int | None = None,
    ) -> None:
        super().__init__(config, callbacks=callbacks, ledger=ledger)
        if config.backend != "vertex":
            raise ValueError("VertexLLM needs a config with backend='vertex'")
        # Sent as output_dimensionality on every embedding request: without it
        # gemini-embedding-001 answers 3072-wide vectors, whatever the Spanner column holds.
        limits = embedding_limits(config.embedding_model)
        dims = limits.max_dimensions if embedding_dimensions is None else int(embedding_dimensions)
        if not 1 <= dims <= limits.max_dimensions:
            raise ValueError(
                f"EMBEDDING_DIMENSIONS={dims}: {config.embedding_model} returns at most "
                f"{limits.max_dimensions} dimensions"
            )
        self.embedding_dimensions = dims
        self.text_model, self.embedding_model = config.gemini_model, config.embedding_model
        retired = RETIRED_GEMINI_MODELS.get(model_family(config.gemini_model))
        if retired:
            log.warning(
                "GEMINI_MODEL=%s was retired on %s (Vertex AI 'Model versions and lifecycle'): "
                "calls will fail with 404; move to a current model",
                config.gemini_model,
                retired,
            )
        # Said at start-up, not first at the first answer: a default without a price is a bug.
        for model in (config.gemini_model, config.embedding_model):
            if config.price(model) is None:
                warn_unpriced(model)
        self._client = client if client is not None else self._make_client(config, credentials)
        self._sleep = sleep
        self.breakers = BreakerBoard(config.breaker, clock=clock)

    @staticmethod
    def _make_client(config: LLMConfig, credentials: Any) -> Any:
        from google import genai
        from google.genai import types as gt

        http_options = gt.HttpOptions(
            timeout=int(config.timeout_s * 1000),  # milliseconds
            base_url=config.api_endpoint,
            # retry_options left unset: the SDK makes one attempt and our policy owns retries.
        )
        return genai.Client(
            vertexai=True,
            project=config.project,
            location=config.location,
            credentials=credentials,
            http_options=http_options,
        )

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()

    # --- resilience ---------------------------------------------------------------------------
    def _attempt(self, model: str, fn: Callable[[], T]) -> T:
        breaker = self.breakers.for_model(model)
        if not breaker.try_acquire():
            raise Unavailable(
                f"Vertex AI circuit for {model} is open after repeated failures; "
                f"next probe in {breaker.retry_in():.1f}s",
                model=model,
            )
        try:
            result = fn()
        except BaseException as exc:
            err = translate_error(exc, model)
            if err is None:
                breaker.release()
                raise
            if _is_outage(err):
                breaker.record_failure()
            elif isinstance(err, RateLimited | Blocked | InvalidOutput):
                breaker.record_success()  # Vertex answered: it is up
            else:
                breaker.release()
            if err is exc:
                raise
            raise err from exc
        breaker.record_success()
        return result

    def _with_retries(self, model: str, fn: Callable[[], T]) -> T:
        for attempt in retrying(self.config.retry, sleep=self._sleep):
            with attempt:
                return self._attempt(model, fn)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    # --- request translation ------------------------------------------------------------------
    def _sdk_contents(self, request: ModelRequest) -> list[dict[str, Any]]:
        last_user = max(i for i, m in enumerate(request.contents) if m.role == "user")
        out: list[dict[str, Any]] = []
        for i, m in enumerate(request.contents):
            parts: list[dict[str, str]] = []
            if i == last_user and request.sources:
                # Context goes right before the question it serves, as its own part.
                parts.append({"text": render_sources(request.sources)})
            parts.append({"text": m.text or " "})
            out.append({"role": m.role, "parts": parts})
        return out

    def _sdk_config(self, request: ModelRequest, schema: type[BaseModel] | None = None) -> Any:
        from google.genai import types as gt

        cfg: dict[str, Any] = {
            "automatic_function_calling": gt.AutomaticFunctionCallingConfig(disable=True),
        }
        if "automatic_continuation" in gt.GenerateContentConfig.model_fields:
            # One request per call: continuation hops would hide retries and cost from us.
            cfg["automatic_continuation"] = False
        if request.system:
            cfg["system_instruction"] = request.system
        if request.config is not None:
            cfg.update(request.config.model_dump(exclude_none=True))
        thinking = self.config.thinking_config(request.model)
        if thinking is not None:
            # Every call: left unset, a model thinks as much as its default allows (latency, cost).
            cfg["thinking_config"] = gt.ThinkingConfig(**thinking)
        if schema is not None:
            cfg["response_mime_type"] = "application/json"
            cfg["response_schema"] = schema
        return gt.GenerateContentConfig(**cfg)

    def _context_tokens(self, request: ModelRequest, input_tokens: int) -> int:
        if not request.sources or not input_tokens:
            return 0
        context = len(render_sources(request.sources))
        total = context + sum(len(m.text) for m in request.contents) + len(request.system or "")
        return round(input_tokens * context / max(total, 1))

    def _usage_from(self, request: ModelRequest, meta: Any, model: str) -> Usage:
        prompt = int(getattr(meta, "prompt_token_count", 0) or 0) if meta is not None else 0
        # Thinking tokens are billed at the output rate.
        output = 0
        if meta is not None:
            output = int(meta.candidates_token_count or 0) + int(
                getattr(meta, "thoughts_token_count", 0) or 0
            )
        return self._usage(model, prompt, output, self._context_tokens(request, prompt))

    @staticmethod
    def _safety(ratings: Any) -> tuple[SafetyRating, ...]:
        return tuple(
            SafetyRating(
                category=_enum_name(r.category),
                probability=_enum_name(r.probability) or None,
                score=r.probability_score,
                blocked=bool(r.blocked),
            )
            for r in ratings or ()
        )

    @staticmethod
    def _candidate_text(candidate: Any) -> str:
        content = getattr(candidate, "content", None)
        if content is None or not content.parts:
            return ""
        return "".join(p.text for p in content.parts if p.text and not p.thought)

    def _check_prompt_feedback(self, sdk: Any, request: ModelRequest, usage: Usage) -> None:
        feedback = getattr(sdk, "prompt_feedback", None)
        if feedback is not None and feedback.block_reason:
            reason = _enum_name(feedback.block_reason)
            raise Blocked(
                f"the prompt was blocked by Vertex AI safety filters ({reason})",
                model=request.model,
                reason=reason,
                safety=self._safety(feedback.safety_ratings),
                usage=usage,
            )

    def _to_response(self, sdk: Any, request: ModelRequest, *, allow_empty: bool = False) -> Response:
        usage = self._usage_from(request, sdk.usage_metadata, request.model)
        self._check_prompt_feedback(sdk, request, usage)
        if not sdk.candidates:
            raise InvalidOutput("Vertex AI returned no candidates", model=request.model)
        cand = sdk.candidates[0]
        finish = _enum_name(cand.finish_reason)
        safety = self._safety(cand.safety_ratings)
        if finish in BLOCKING_FINISH_REASONS:
            raise Blocked(
                f"the answer was withheld by Vertex AI ({finish})",
                model=request.model,
                reason=finish,
                safety=safety,
                usage=usage,
            )
        text = self._candidate_text(cand)
        if not text.strip() and not allow_empty:
            # E.g. MAX_TOKENS spent on thinking: nothing to show, so let the caller degrade.
            raise InvalidOutput(
                f"Vertex AI returned an empty answer (finish reason {finish})", model=request.model
            )
        return Response(
            text=text,
            finish_reason=finish,
            usage=usage,
            model=request.model,
            backend=self.backend,
            safety=safety,
            citations=cited_numbers(text, request.sources),
        )

    # --- the calls (BaseLLM does request building, callbacks, the ledger and JSON repair) -------
    def _generate_impl(self, request: ModelRequest, schema: type[BaseModel] | None) -> Response:
        contents = self._sdk_contents(request)
        sdk_config = self._sdk_config(request, schema)
        return self._with_retries(
            request.model,
            lambda: self._to_response(
                self._client.models.generate_content(
                    model=request.model, contents=contents, config=sdk_config
                ),
                request,
                allow_empty=schema is not None,  # the JSON repair step handles an empty reply
            ),
        )

    def _stream_impl(self, request: ModelRequest) -> Iterator[Delta]:
        model = request.model
        contents = self._sdk_contents(request)
        sdk_config = self._sdk_config(request)
        iterator: Any = None

        def open_stream() -> tuple[Any, Any]:
            it = self._client.models.generate_content_stream(
                model=model, contents=contents, config=sdk_config
            )
            try:
                # The HTTP request goes out on the first next(): retries cover it, not later chunks.
                first = next(it, None)
            except BaseException:
                it.close()
                raise
            return it, first

        pieces: list[str] = []
        finish = ""
        safety: tuple[SafetyRating, ...] = ()
        meta: Any = None
        try:
            iterator, chunk = self._with_retries(model, open_stream)
            while chunk is not None:
                if chunk.usage_metadata is not None:
                    meta = chunk.usage_metadata
                self._check_prompt_feedback(chunk, request, self._usage_from(request, meta, model))
                if chunk.candidates:
                    cand = chunk.candidates[0]
                    if cand.finish_reason:
                        finish = _enum_name(cand.finish_reason)
                    if cand.safety_ratings:
                        safety = self._safety(cand.safety_ratings)
                    text = self._candidate_text(cand)
                    if text:
                        pieces.append(text)
                        yield Delta(text)
                try:
                    chunk = next(iterator, None)
                except BaseException as exc:
                    err = translate_error(exc, model)
                    if err is None:
                        raise
                    if _is_outage(err):
                        self.breakers.for_model(model).record_failure()
                    # Text already went to the caller: a retry would repeat it, so fail plainly
                    # (same error type, but not retryable).
                    kind = Timeout if isinstance(err, Timeout) else Unavailable
                    raise kind(
                        f"the stream from Vertex AI broke off after {len(pieces)} chunks: {err.message}",
                        model=model,
                        retryable=False,
                    ) from exc
            usage = self._usage_from(request, meta, model)
            if finish in BLOCKING_FINISH_REASONS:
                raise Blocked(
                    f"the answer was withheld by Vertex AI ({finish})",
                    model=model,
                    reason=finish,
                    safety=safety,
                    usage=usage,
                )
            if not finish:
                raise Unavailable(
                    "the stream from Vertex AI ended without a finish reason", model=model, retryable=False
                )
        finally:
            if iterator is not None:
                iterator.close()
        text = "".join(pieces)
        if not text.strip():
            raise InvalidOutput(f"Vertex AI streamed an empty answer (finish reason {finish})", model=model)
        yield Delta(
            "",
            response=Response(
                text=text,
                finish_reason=finish,
                usage=usage,
                model=model,
                backend=self.backend,
                safety=safety,
                citations=cited_numbers(text, request.sources),
            ),
        )

    def _embed_impl(self, request: ModelRequest) -> Embeddings:
        from google.genai import types as gt

        model, dims = request.model, self.embedding_dimensions
        rows: list[list[float]] = []
        tokens = 0
        embed_config = gt.EmbedContentConfig(task_type=request.task_type, output_dimensionality=dims)
        for batch in embedding_batches(request.texts, embedding_limits(model), self.config.embed_batch_size):

            def call(batch: list[str] = batch) -> Any:
                result = self._client.models.embed_content(model=model, contents=batch, config=embed_config)
                if not result.embeddings or len(result.embeddings) != len(batch):
                    raise Unavailable(
                        f"Vertex AI returned {len(result.embeddings or [])} embeddings for {len(batch)} texts",
                        model=model,
                        retryable=True,
                    )
                return result

            result = self._with_retries(model, call)
            for emb in result.embeddings:
                rows.append(list(emb.values or []))
                stats = emb.statistics
                tokens += int(stats.token_count or 0) if stats is not None else 0
        if any(len(row) != dims for row in rows):
            widths = sorted({len(row) for row in rows})
            raise Unavailable(f"Vertex AI returned {widths}-dimensional embeddings, not {dims}", model=model)
        return Embeddings(np.asarray(rows, dtype=np.float32), self._usage(model, tokens, 0))
