"""What every backend shares: the public ``LLM`` protocol, request building, callbacks and accounting."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel

from .callbacks import CallbackChain
from .config import LLMConfig
from .cost import UsageLedger, UsageRecord, cost_usd
from .errors import Blocked, LLMError
from .types import (
    TASK_TYPES,
    CallKind,
    CallTags,
    Contents,
    Delta,
    Embeddings,
    GenerateConfig,
    ModelRequest,
    Response,
    Source,
    Usage,
    coerce_config,
    coerce_sources,
    normalize_contents,
)

ModelCallbacks = CallbackChain[ModelRequest, Response | Embeddings]

MAX_EMBED_TEXT_CHARS = 100_000


@runtime_checkable
class LLM(Protocol):
    """The one way the rest of the system talks to a language model. Method names follow google-genai."""

    backend: Literal["local", "vertex"]
    config: LLMConfig
    callbacks: ModelCallbacks
    ledger: UsageLedger

    def generate(
        self,
        contents: Contents,
        *,
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> Response: ...

    def stream(
        self,
        contents: Contents,
        *,
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> Iterator[Delta]: ...

    def generate_json(
        self,
        contents: Contents,
        *,
        schema: type[BaseModel],
        system: str | None = None,
        config: GenerateConfig | Mapping[str, Any] | None = None,
        sources: Sequence[Source] | None = None,
        tags: CallTags | None = None,
    ) -> dict[str, Any]: ...

    def embed(self, texts: Sequence[str], *, task_type: str, tags: CallTags | None = None) -> np.ndarray: ...

    def close(self) -> None: ...


class BaseLLM:
    backend: Literal["local", "vertex"]

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

    # --- request building ---------------------------------------------------------------------
    def _request(
        self,
        kind: CallKind,
        model: str,
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
            model=model,
            backend=self.backend,
            contents=normalize_contents(contents),
            system=system,
            config=coerce_config(config),
            sources=coerce_sources(sources),
            schema=schema.__name__ if schema is not None else None,
            tags=tags or CallTags(),
        )

    def _embed_request(
        self, model: str, texts: Sequence[str], task_type: str, tags: CallTags | None
    ) -> ModelRequest:
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
            model=model,
            backend=self.backend,
            texts=tuple(texts),
            task_type=task_type,
            tags=tags or CallTags(),
        )

    # --- accounting ---------------------------------------------------------------------------
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

    # --- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        pass

    def __enter__(self) -> BaseLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LLM", "BaseLLM", "LLMError", "ModelCallbacks"]
