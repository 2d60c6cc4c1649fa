"""vertex_interface: the one way the system calls a language model.

``create_llm(LLMConfig(...))`` returns an ``LLM`` whose methods mirror google-genai's names:
``generate``, ``stream``, ``generate_json`` (controlled generation) and ``embed``. Two backends:
``vertex`` (Gemini + text embeddings on Vertex AI) and ``local`` (offline: MiniLM embeddings and a
grounded extractive responder). Ask ``llm.capabilities`` (``LLMCapabilities``) what a model can do;
``llm.backend`` is only a label. Failures are typed (``LLMError`` and subclasses); every call is
recorded with tokens and cost in a ``UsageLedger``; before/after callbacks see every request.
See docs/vertex_interface.md.
"""

from __future__ import annotations

from typing import Any

from .base import LLM, BaseLLM, ModelCallbacks
from .breaker import BreakerState, CircuitBreaker
from .callbacks import CallbackChain, Veto
from .config import BreakerPolicy, LLMConfig, LocalResponderConfig, ModelPrice, RetryPolicy
from .cost import UsageLedger, UsageRecord, UsageTotals
from .errors import Blocked, InvalidOutput, LLMError, RateLimited, Timeout, Unavailable, Vetoed
from .types import (
    CallTags,
    Delta,
    Embeddings,
    GenerateConfig,
    LLMCapabilities,
    Message,
    ModelRequest,
    Response,
    SafetyRating,
    Source,
    Usage,
)


def create_llm(
    config: LLMConfig,
    *,
    callbacks: ModelCallbacks | None = None,
    ledger: UsageLedger | None = None,
    **backend_options: Any,
) -> LLM:
    """Build the backend ``config.backend`` names.

    ``backend_options`` go to the backend class: for vertex ``credentials`` (google-auth credentials;
    default: Application Default Credentials), ``sleep`` and ``clock`` (tests); for local ``embedder``
    (share one LocalEmbedder with the store).
    """
    if not isinstance(config, LLMConfig):
        raise TypeError("create_llm needs an LLMConfig")
    if config.backend == "vertex":
        from .vertex import VertexLLM

        return VertexLLM(config, callbacks=callbacks, ledger=ledger, **backend_options)
    from .local import LocalLLM

    return LocalLLM(config, callbacks=callbacks, ledger=ledger, **backend_options)


__all__ = [
    "LLM",
    "BaseLLM",
    "Blocked",
    "BreakerPolicy",
    "BreakerState",
    "CallTags",
    "CallbackChain",
    "CircuitBreaker",
    "Delta",
    "Embeddings",
    "GenerateConfig",
    "InvalidOutput",
    "LLMCapabilities",
    "LLMConfig",
    "LLMError",
    "LocalResponderConfig",
    "Message",
    "ModelCallbacks",
    "ModelPrice",
    "ModelRequest",
    "RateLimited",
    "Response",
    "RetryPolicy",
    "SafetyRating",
    "Source",
    "Timeout",
    "Unavailable",
    "Usage",
    "UsageLedger",
    "UsageRecord",
    "UsageTotals",
    "Veto",
    "Vetoed",
    "create_llm",
]
