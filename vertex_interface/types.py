"""Plain data passed in and out of the LLM layer (no SDK objects leak past this package)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "model"]
CallKind = Literal["generate", "stream", "generate_json", "embed"]
TaskType = Literal[
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
]
TASK_TYPES: frozenset[str] = frozenset(TaskType.__args__)  # type: ignore[attr-defined]

_CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class LLMCapabilities:
    """What an LLM can do. Callers ask this, never which backend it is (``LLM.backend`` is a label).

    Each flag names what a caller decides on it; the two built-in backends:

    ==========================  ========  ========
    flag                        vertex    local
    ==========================  ========  ========
    ``follows_instructions``    yes       no
    ``controlled_generation``   yes       no
    ``extractive``              no        yes
    ==========================  ========  ========
    """

    #: ``generate``/``stream`` read the system instruction, the history and instructions in the
    #: prompt, and write their own text. False: the answer addresses only the last user message,
    #: so send the question alone and do the instructed work (a draft, a summary) without it.
    follows_instructions: bool = False
    #: ``generate_json`` returns schema-valid JSON. False: it raises ``Unavailable`` before any
    #: call, and decisions are made without a model (deterministic router, agent logic).
    controlled_generation: bool = False
    #: Answers are verbatim sentences of the ``sources`` with their ``[n]`` citations, so a
    #: caller may recompose them (e.g. into a draft reply) without changing what they say.
    extractive: bool = False


@dataclass(frozen=True)
class Message:
    role: Role
    text: str

    def __post_init__(self) -> None:
        if self.role not in ("user", "model"):
            raise ValueError(f"message role must be 'user' or 'model', not {self.role!r}")
        if not isinstance(self.text, str):
            raise TypeError("message text must be a string")


@dataclass(frozen=True)
class Source:
    """One numbered piece of retrieved context; answers cite it as ``[number]``."""

    number: int
    title: str
    text: str
    url: str | None = None
    kind: str = "article"
    id: str | None = None
    # Lines of `text` that answer the question directly, picked by the agent that found them
    # (e.g. an order's status and tracking for "has it shipped?"). Synthesis states them first:
    # offline they are quoted as they are, a model is told they are the key facts.
    facts: tuple[str, ...] = ()
    # Internal-only content (a ticket's internal notes): never put into a customer reply unmarked.
    internal: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.number, int) or self.number < 1:
            raise ValueError("source number must be a positive integer")
        if not self.text or not self.text.strip():
            raise ValueError(f"source [{self.number}] has no text")


class GenerateConfig(BaseModel):
    """Sampling knobs, named as in google-genai's GenerateContentConfig."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=1, le=100)
    max_output_tokens: int | None = Field(None, ge=1, le=65536)
    stop_sequences: list[str] | None = Field(None, max_length=5)
    seed: int | None = None


@dataclass(frozen=True)
class CallTags:
    """Who a call is for, so its cost rolls up per session, per turn and per agent."""

    session_id: str | None = None
    turn_id: str | None = None
    agent: str | None = None


@dataclass(frozen=True)
class SafetyRating:
    category: str
    probability: str | None = None
    score: float | None = None
    blocked: bool = False


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one model call. ``context_tokens`` is the part of ``input_tokens`` that came
    from sources (estimated by character share); ``estimated`` marks counts not reported by a model."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    context_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True
    estimated: bool = False

    @property
    def prompt_tokens(self) -> int:
        """The constant part of the input: system instruction, history, question."""
        return max(0, self.input_tokens - self.context_tokens)


@dataclass(frozen=True)
class Response:
    text: str
    finish_reason: str
    usage: Usage
    model: str
    backend: str  # a label for reports and logs ("local", "vertex"); never branch on it
    safety: tuple[SafetyRating, ...] = ()
    citations: tuple[int, ...] = ()
    offline: bool = False
    label: str | None = None


@dataclass(frozen=True)
class Delta:
    """A piece of streamed text. The last Delta of a stream has ``text == ""`` and carries the whole
    ``response`` (full text, finish reason, usage)."""

    text: str
    response: Response | None = None

    @property
    def is_final(self) -> bool:
        return self.response is not None


@dataclass(frozen=True)
class Embeddings:
    """What after-callbacks of an ``embed`` call receive."""

    vectors: Any  # np.ndarray, (n, dims) float32, rows L2-normalised
    usage: Usage


@dataclass(frozen=True)
class ModelRequest:
    """What before/after callbacks see: one call as the layer is about to make it."""

    kind: CallKind
    model: str
    backend: str  # a label for reports and logs; never branch on it
    contents: tuple[Message, ...] = ()
    system: str | None = None
    config: GenerateConfig | None = None
    sources: tuple[Source, ...] = ()
    schema: str | None = None
    texts: tuple[str, ...] = ()
    task_type: str | None = None
    tags: CallTags = field(default_factory=CallTags)
    attempt: int = 1


Contents = str | Message | Mapping[str, Any] | Sequence[str | Message | Mapping[str, Any]]


def normalize_contents(contents: Contents) -> tuple[Message, ...]:
    """Accept a string, Messages, or dicts (``{"role", "text"}`` or google-genai's ``{"role", "parts"}``)."""
    if isinstance(contents, str | Message | Mapping):
        contents = [contents]
    if not isinstance(contents, Sequence):
        raise TypeError("contents must be a string, a message, or a sequence of them")
    out: list[Message] = []
    for item in contents:
        if isinstance(item, str):
            out.append(Message("user", item))
        elif isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping):
            role = item.get("role", "user")
            if "text" in item:
                text = item["text"]
            elif "parts" in item:
                parts = item["parts"]
                if not isinstance(parts, Sequence) or isinstance(parts, str):
                    raise TypeError("message parts must be a list of {'text': ...}")
                text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))
            else:
                raise ValueError("a message dict needs 'text' or 'parts'")
            out.append(Message(role, text))
        else:
            raise TypeError(f"unsupported content item of type {type(item).__name__}")
    if not out:
        raise ValueError("contents is empty")
    if not any(m.role == "user" and m.text.strip() for m in out):
        raise ValueError("contents has no non-empty user message")
    return tuple(out)


def coerce_config(config: GenerateConfig | Mapping[str, Any] | None) -> GenerateConfig | None:
    if config is None or isinstance(config, GenerateConfig):
        return config
    if isinstance(config, Mapping):
        return GenerateConfig.model_validate(dict(config))
    raise TypeError("config must be a GenerateConfig or a dict")


def coerce_sources(sources: Sequence[Source] | None) -> tuple[Source, ...]:
    if not sources:
        return ()
    out = tuple(sources)
    for s in out:
        if not isinstance(s, Source):
            raise TypeError("sources must be Source objects")
    numbers = [s.number for s in out]
    if len(set(numbers)) != len(numbers):
        raise ValueError("source numbers must be unique")
    return out


def cited_numbers(text: str, sources: Sequence[Source]) -> tuple[int, ...]:
    """Source numbers cited as ``[n]`` in ``text``, in first-cited order, limited to known sources."""
    known = {s.number for s in sources}
    seen: list[int] = []
    for m in _CITATION.finditer(text):
        n = int(m.group(1))
        if n in known and n not in seen:
            seen.append(n)
    return tuple(seen)
