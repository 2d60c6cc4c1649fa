"""Typed, validated, serialisable configuration for the LLM layer.

The backend builds one ``LLMConfig`` from its Settings (``llm_backend``, ``google_cloud_project``,
``google_cloud_location``, ``gemini_model``, ``embedding_model``, ``gemini_thinking_level``,
``gemini_thinking_budget``); everything else has defaults that suit an interactive sidebar (short
timeouts, a few quick retries, as little model "thinking" as the model allows).
"""

from __future__ import annotations

import re
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@/-]{0,127}$")

LOCAL_MODEL = "local-extractive"
LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

# Checked 2026-12-05 against "Model versions and lifecycle"
# (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/model-versions, formerly
# cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions): gemini-2.5-flash was retired
# on 2026-10-16 (a later revision of the page says 2026-10-20), replacement "Gemini 3.5 Flash-Lite or
# Gemini 3.1 Flash-Lite"; gemini-3.5-flash-lite is GA since 2026-07-21, available until "July 21,
# 2027 or later". Its model page calls it "a suitable replacement model for Gemini 2.5 Flash" and it
# thinks minimally by default, which suits the sidebar's latency.
DEFAULT_GEMINI_MODEL = "gemini-3.5-flash-lite"
# Same page: text-embedding-005 has no retirement date announced.
DEFAULT_EMBEDDING_MODEL = "text-embedding-005"
# Retired models (same page) that a deployment may still name: the vertex backend warns at start-up,
# since "API requests referencing a retired model ID typically return a 404 error".
RETIRED_GEMINI_MODELS: dict[str, str] = {
    "gemini-2.5-flash": "2026-10-16",
    "gemini-2.5-pro": "2026-10-16",
    "gemini-2.5-flash-lite": "2026-10-16",
    "gemini-2.0-flash-001": "2026-02-05",
    "gemini-2.0-flash-lite-001": "2026-02-25",
}

ThinkingLevel = Literal["minimal", "low", "medium", "high"]

# "Thinking" (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/thinking):
# Gemini 3 and later take thinking_level, "the supported thinking_level values ... by each model".
THINKING_LEVELS: dict[str, tuple[ThinkingLevel, ...]] = {
    "gemini-3.8-flash": ("low", "medium", "high"),
    "gemini-3.7-flash": ("low", "medium", "high"),
    "gemini-3.6-flash": ("minimal", "low", "medium", "high"),
    "gemini-3.5-flash-lite": ("minimal", "low", "medium", "high"),
    "gemini-3.1-flash-lite": ("minimal", "low", "medium", "high"),
}


class BudgetRange(NamedTuple):
    """A Gemini 2.5 model's documented thinking_budget range (tokens); -1 (dynamic) is always allowed."""

    low: int  # least budget with thinking on
    high: int
    can_turn_off: bool  # whether 0 (no thinking) is accepted


# Same page, Gemini 2.5 models: thinking_budget, "-1" for dynamic thinking; 2.5 Pro cannot turn
# thinking off (128..32,768), 2.5 Flash 1..24,576 or 0, 2.5 Flash-Lite 512..24,576 or 0.
THINKING_BUDGETS: dict[str, BudgetRange] = {
    "gemini-2.5-pro": BudgetRange(128, 32_768, False),
    "gemini-2.5-flash": BudgetRange(1, 24_576, True),
    "gemini-2.5-flash-lite": BudgetRange(512, 24_576, True),
}

_GEMINI_VERSION = re.compile(r"^gemini-(\d+)(?:\.(\d+))?-")
_VERSION_SUFFIX = re.compile(r"-\d{3}$")


def model_family(model: str) -> str:
    """A model id without its stable-version suffix (``gemini-2.5-flash-001`` -> ``gemini-2.5-flash``)."""
    return _VERSION_SUFFIX.sub("", model)


def thinking_control(model: str) -> Literal["level", "budget", "none"]:
    """Which thinking parameter a model takes: Gemini 3+ ``thinking_level``, Gemini 2.5
    ``thinking_budget``; older Gemini models (and non-Gemini ids) do not think."""
    m = _GEMINI_VERSION.match(model)
    if m is None:
        return "none"
    major, minor = int(m.group(1)), int(m.group(2) or 0)
    if major >= 3:
        return "level"
    if (major, minor) >= (2, 5):
        return "budget"
    return "none"


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
    """USD list prices (standard tier, online, <=200k context), checked 2026-12-05 against Vertex AI
    pricing (https://cloud.google.com/vertex-ai/generative-ai/pricing) and, for the Gemini 3.x rows,
    Google's "What's new in Gemini 3.6 Flash and 3.5 Flash-Lite"
    (https://ai.google.dev/gemini-api/docs/whats-new-gemini-3.6). Thinking tokens bill as output.
    Override in config; a model missing here is logged and counted, never silently $0."""
    return {
        DEFAULT_GEMINI_MODEL: ModelPrice(input_per_million=0.30, output_per_million=2.50),
        "gemini-3.6-flash": ModelPrice(input_per_million=1.50, output_per_million=7.50),
        "gemini-2.5-flash": ModelPrice(input_per_million=0.30, output_per_million=2.50),
        "gemini-2.5-flash-lite": ModelPrice(input_per_million=0.10, output_per_million=0.40),
        "gemini-2.5-pro": ModelPrice(input_per_million=1.25, output_per_million=10.00),
        "gemini-2.0-flash": ModelPrice(input_per_million=0.15, output_per_million=0.60),
        # text-embedding-005 is billed per character ($0.000025 / 1,000 characters); at ~4
        # characters per token that is ~$0.10 per 1M tokens (the ledger counts tokens).
        DEFAULT_EMBEDDING_MODEL: ModelPrice(input_per_million=0.10),
        "gemini-embedding-001": ModelPrice(input_per_million=0.15),
        LOCAL_MODEL: ModelPrice(input_per_million=0.0),
        LOCAL_EMBEDDING_MODEL: ModelPrice(input_per_million=0.0),
    }


class LocalResponderConfig(BaseModel):
    """Knobs of the offline extractive responder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relevance_threshold: float = Field(
        0.30, ge=0, le=1, description="Minimum combined score for a sentence to count as relevant."
    )
    max_sentences: int = Field(4, ge=1, le=20, description="Most sentences quoted in one answer.")
    relative_cutoff: float = Field(
        0.75, ge=0, le=1, description="Sentences scoring below this fraction of the best one are dropped."
    )
    title_weight: float = Field(
        0.15, ge=0, le=1, description="Bonus (× title-question similarity) when ranking a source's sentences."
    )
    semantic_weight: float = Field(
        0.8, ge=0, le=1, description="Weight of MiniLM cosine vs. lexical overlap in the score."
    )
    value_type_penalty: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Ranking penalty for a sentence without the kind of value the question asks for "
        "(a duration for 'how long', an amount for 'how much', a time for 'when', a number for 'how many').",
    )
    min_term_coverage: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the question's subject words the sources must mention for an answer "
        "scoring below relevance_threshold + coverage_bypass_margin (else: nothing relevant found).",
    )
    coverage_bypass_margin: float = Field(
        0.15, ge=0, le=1, description="Above relevance_threshold + this, term coverage is not checked."
    )
    short_sentence_words: int = Field(
        6, ge=0, le=30, description="A picked sentence shorter than this is quoted with the one before it."
    )
    max_sentences_with_facts: int = Field(
        3, ge=0, le=20, description="Most sentences quoted from other sources after an agent's facts."
    )
    facts_extra_margin: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Added to relevance_threshold for sentences quoted after facts (they must add something).",
    )
    idf_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of IDF (over the candidate sentences) in each question word's lexical weight; "
        "0 counts every word alike.",
    )


class LLMConfig(BaseModel):
    """Everything ``create_llm`` needs. Round-trips through ``model_dump_json``/``model_validate_json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["local", "vertex"] = "local"
    project: str | None = Field(None, description="Google Cloud project (required for vertex).")
    location: str = Field("us-central1", description="Vertex AI region.")
    gemini_model: str = DEFAULT_GEMINI_MODEL
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    thinking_level: ThinkingLevel | None = Field(
        "minimal",
        description="Sent as thinkingConfig.thinkingLevel to Gemini 3+ models (None: the model's default).",
    )
    thinking_budget: int | None = Field(
        None,
        ge=-1,
        le=32_768,
        description="Sent as thinkingConfig.thinkingBudget to Gemini 2.5 models (-1: dynamic; None: the "
        "least the model allows), and to Gemini 3+ models when thinking_level is None.",
    )
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

    @model_validator(mode="after")
    def _thinking_fits_the_model(self) -> LLMConfig:
        # A value the model's documentation does not accept fails every call (400): refuse it here.
        if self.backend != "vertex":
            return self
        family = model_family(self.gemini_model)
        control = thinking_control(family)
        levels = THINKING_LEVELS.get(family)
        if control == "level" and self.thinking_level and levels and self.thinking_level not in levels:
            raise ValueError(
                f"GEMINI_THINKING_LEVEL={self.thinking_level}: {family} accepts {', '.join(levels)}"
            )
        budget = THINKING_BUDGETS.get(family)
        if control == "budget" and budget and self.thinking_budget not in (None, -1):
            b = self.thinking_budget
            if not (budget.low <= b <= budget.high or (b == 0 and budget.can_turn_off)):
                off = " or 0 (off)" if budget.can_turn_off else " (thinking cannot be turned off)"
                raise ValueError(
                    f"GEMINI_THINKING_BUDGET={b}: {family} accepts -1 (dynamic), "
                    f"{budget.low}..{budget.high}{off}"
                )
        return self

    def thinking_config(self, model: str) -> dict[str, Any] | None:
        """The ``thinking_config`` for a call to ``model`` (None: send none). Never both a level and a
        budget: the thinking documentation says a request may carry only one of them."""
        family = model_family(model)
        control = thinking_control(family)
        if control == "level":
            if self.thinking_level is not None:
                return {"thinking_level": self.thinking_level.upper()}
            if self.thinking_budget is not None:
                return {"thinking_budget": self.thinking_budget}
            return None
        if control == "budget":
            if self.thinking_budget is not None:
                return {"thinking_budget": self.thinking_budget}
            budget = THINKING_BUDGETS.get(family)
            if budget is None:
                return None
            # Unset: the least thinking the model allows (sidebar latency).
            return {"thinking_budget": 0 if budget.can_turn_off else budget.low}
        return None

    def price(self, model: str) -> ModelPrice | None:
        """Price of a model; a versioned name (``gemini-2.5-flash-001``) falls back to its family."""
        if model in self.prices:
            return self.prices[model]
        return self.prices.get(model_family(model))
