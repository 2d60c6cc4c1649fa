"""Typed, validated, serialisable configuration for the LLM layer.

The backend builds one ``LLMConfig`` from its Settings (``llm_backend``, ``google_cloud_project``,
``google_cloud_location``, ``gemini_model``, ``embedding_model``); everything else has defaults that
suit an interactive sidebar (short timeouts, a few quick retries).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@/-]{0,127}$")

LOCAL_MODEL = "local-extractive"
LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter for 429 / 5xx / timeouts (tenacity does the looping)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(4, ge=1, le=10, description="Attempts per call, the first included.")
    initial_backoff_s: float = Field(0.5, ge=0, le=60, description="Wait before the first retry.")
    max_backoff_s: float = Field(8.0, ge=0, le=300, description="Cap on one computed wait.")
    multiplier: float = Field(2.0, ge=1, le=10, description="Growth of the wait per attempt.")
    jitter_s: float = Field(0.5, ge=0, le=60, description="Uniform random extra wait, 0..jitter_s.")
    max_retry_after_s: float = Field(
        30.0, ge=0, le=600, description="A server Retry-After longer than this is not waited for."
    )
    total_deadline_s: float | None = Field(
        60.0, gt=0, le=3600, description="No retry starts whose wait would end past this many seconds."
    )


class BreakerPolicy(BaseModel):
    """Per-model circuit breaker: open after N consecutive failures, probe again after a cool-down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_threshold: int = Field(5, ge=1, le=1000, description="Consecutive failed attempts that open it.")
    reset_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Time open before one probe is let through."
    )


class ModelPrice(BaseModel):
    """USD per one million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(0.0, ge=0)


def default_prices() -> dict[str, ModelPrice]:
    # Vertex AI list prices (standard tier, <=200k context) when this was written; override in config.
    return {
        "gemini-2.5-flash": ModelPrice(input_per_million=0.30, output_per_million=2.50),
        "gemini-2.5-flash-lite": ModelPrice(input_per_million=0.10, output_per_million=0.40),
        "gemini-2.5-pro": ModelPrice(input_per_million=1.25, output_per_million=10.00),
        "gemini-2.0-flash": ModelPrice(input_per_million=0.15, output_per_million=0.60),
        # Text embeddings are billed per character (~$0.025 / 1M chars); ~4 chars per token.
        "text-embedding-005": ModelPrice(input_per_million=0.10),
        "gemini-embedding-001": ModelPrice(input_per_million=0.15),
        LOCAL_MODEL: ModelPrice(input_per_million=0.0),
        LOCAL_EMBEDDING_MODEL: ModelPrice(input_per_million=0.0),
    }


class LocalResponderConfig(BaseModel):
    """Knobs of the offline extractive responder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relevance_threshold: float = Field(
        0.33, ge=0, le=1, description="Minimum combined score for a sentence to count as relevant."
    )
    max_sentences: int = Field(4, ge=1, le=20, description="Most sentences quoted in one answer.")
    relative_cutoff: float = Field(
        0.75, ge=0, le=1, description="Sentences scoring below this fraction of the best one are dropped."
    )
    title_weight: float = Field(
        0.15, ge=0, le=1, description="Bonus (× title-question similarity) when ranking a source's sentences."
    )
    semantic_weight: float = Field(
        0.7, ge=0, le=1, description="Weight of MiniLM cosine vs. lexical overlap in the score."
    )


class LLMConfig(BaseModel):
    """Everything ``create_llm`` needs. Round-trips through ``model_dump_json``/``model_validate_json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["local", "vertex"] = "local"
    project: str | None = Field(None, description="Google Cloud project (required for vertex).")
    location: str = Field("us-central1", description="Vertex AI region.")
    gemini_model: str = "gemini-2.5-flash"
    embedding_model: str = "text-embedding-005"
    api_endpoint: str | None = Field(
        None, description="Override of the Vertex base URL (private endpoints; the fake server in tests)."
    )
    timeout_s: float = Field(
        30.0, gt=0, le=600, description="Per HTTP attempt; for streams, the longest wait for the next chunk."
    )
    embed_batch_size: int = Field(
        64, ge=1, le=250, description="Texts per embedding request (Vertex max 250)."
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    prices: dict[str, ModelPrice] = Field(default_factory=default_prices)
    local: LocalResponderConfig = Field(default_factory=LocalResponderConfig)

    @field_validator("gemini_model", "embedding_model")
    @classmethod
    def _model_name(cls, v: str) -> str:
        if not _MODEL_NAME.match(v):
            raise ValueError(f"invalid model name {v!r}")
        return v

    @field_validator("project")
    @classmethod
    def _project(cls, v: str | None) -> str | None:
        # It becomes part of the request URL: allow only what project ids can contain
        # (lowercase, digits, hyphens; legacy domain-scoped ids add '.' and ':').
        if v is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.:-]{0,99}", v):
            raise ValueError(f"invalid Google Cloud project id {v!r}")
        return v

    @field_validator("location")
    @classmethod
    def _location(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9-]{2,40}", v):
            raise ValueError(f"invalid Vertex AI location {v!r}")
        return v

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", v):
            raise ValueError("api_endpoint must be an http(s) URL")
        return v

    @model_validator(mode="after")
    def _vertex_needs_project(self) -> LLMConfig:
        if self.backend == "vertex" and not (self.project and self.project.strip()):
            raise ValueError("backend 'vertex' needs a Google Cloud project (GOOGLE_CLOUD_PROJECT)")
        return self

    def price(self, model: str) -> ModelPrice | None:
        """Price of a model; a versioned name (``gemini-2.5-flash-001``) falls back to its family."""
        if model in self.prices:
            return self.prices[model]
        family = re.sub(r"-\d{3}$", "", model)
        return self.prices.get(family)
