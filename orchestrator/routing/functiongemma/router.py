"""`FunctionGemmaRouter`: the Router protocol over constrained FunctionGemma decoding.

The declarations prefix is computed once (base weights) into a KV cache; each turn computes
only the query and the few decision tokens. Agent calls become parallel routes (planned into
stages like the other routers), `respond_directly` / `ask_clarifying_question` become those
actions, and the confidence is the model's probability of the chosen call among the declared
ones. Thread-safe: the model is only read, each turn decodes on its own copy of the cache, and
lazy loading is guarded by a lock.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.base import AgentManifest
from orchestrator.routing.base import MAX_ROUTES, RoutingContext, RoutingDecision, RoutingError
from orchestrator.routing.decisions import (
    CLARIFY,
    RESPOND,
    clarify_decision,
    clarify_question,
    enabled_manifests,
    respond_decision,
    route_decision,
)
from orchestrator.routing.functiongemma.engine import Decoded, Engine
from orchestrator.routing.functiongemma.format import FormatError, declarations_from_manifests
from orchestrator.routing.functiongemma.model import BaseModelConfig, LoadedModel, get_base

log = logging.getLogger(__name__)


class FunctionGemmaConfig(BaseModel):
    """Router settings (typed, validated, serialisable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    base: BaseModelConfig = BaseModelConfig()
    adapter_path: str | None = None  # a peft LoRA adapter directory (see train.py)
    quantize_int8: bool = False  # torch dynamic int8 quantisation of the Linear layers
    max_calls: int = Field(3, ge=1, le=MAX_ROUTES)  # most agents run in parallel
    description_examples: int = Field(0, ge=0, le=10)  # when_to_use examples per declaration
    pseudo_functions: bool = True  # must match the adapter's training (benchmarks train without)
    cached_prefix: bool = True  # False recomputes the declarations every turn (benchmarks)
    full_vocab: bool = False  # also report raw (whole-vocabulary) call probabilities; slower


def prepare_model(loaded: LoadedModel, config: FunctionGemmaConfig) -> Any:
    """The model used for query tokens: the base, or a copy with the adapter merged and/or
    int8-quantised. The shared base instance is never modified (other routers use it)."""
    model = loaded.model
    if config.adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(copy.deepcopy(model), config.adapter_path).merge_and_unload()
        model.eval()
    if config.quantize_int8:
        import torch

        # Dynamic int8 on the decoder's Linear layers only: the float output head stays, so
        # decisions still evaluate just the allowed rows of it. The prefix cache stays the
        # float base's, as in training.
        model = model if config.adapter_path else copy.deepcopy(model)
        model.model = torch.ao.quantization.quantize_dynamic(
            model.model, {torch.nn.Linear}, dtype=torch.qint8
        )
    return model


def adapter_consistent(config: FunctionGemmaConfig) -> FunctionGemmaConfig:
    """The declarations must be rendered as in training (the adapter learnt that prefix): take
    `pseudo_functions` and `description_examples` from the adapter's saved training config."""
    if not config.adapter_path:
        return config
    path = Path(config.adapter_path)
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{path}: not a LoRA adapter directory (no adapter_config.json)")
    saved = path / "train_config.json"
    if not saved.is_file():
        return config
    trained = json.loads(saved.read_text(encoding="utf-8"))
    keys = ("pseudo_functions", "description_examples")
    return config.model_copy(update={k: trained[k] for k in keys if k in trained})


def untrained_functions(config: FunctionGemmaConfig, names: Sequence[str]) -> list[str]:
    """Declared functions the adapter never saw in training (an agent folder dropped in since)."""
    if not config.adapter_path:
        return []
    metrics = Path(config.adapter_path) / "metrics.json"
    if not metrics.is_file():
        return []
    trained = json.loads(metrics.read_text(encoding="utf-8")).get("functions")
    return [n for n in names if trained is not None and n not in trained]


class FunctionGemmaRouter:
    name = "functiongemma"

    def __init__(
        self,
        manifests: Sequence[AgentManifest],
        config: FunctionGemmaConfig | None = None,
        *,
        loaded: LoadedModel | None = None,
    ) -> None:
        self.config = adapter_consistent(config or FunctionGemmaConfig())
        self.manifests = enabled_manifests(manifests, self.name)
        self.decls = declarations_from_manifests(
            self.manifests.values(),
            pseudo=self.config.pseudo_functions,
            examples=self.config.description_examples,
        )
        self.untrained_functions = untrained_functions(self.config, [d.name for d in self.decls])
        if self.untrained_functions:
            log.warning(
                "FunctionGemma adapter %s was not trained on %s; routing to them relies on their "
                "descriptions alone: retrain (make train-router)",
                self.config.adapter_path,
                ", ".join(self.untrained_functions),
            )
        self._loaded = loaded
        self._engine: Engine | None = None
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """Loads the model and computes the prefix cache on first use (once, under a lock)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    loaded = self._loaded or get_base(self.config.base)
                    engine = Engine(loaded.model, loaded.tokenizer, self.decls)
                    engine.prefix_cache  # noqa: B018 - computed now, not on the first turn
                    self._model = prepare_model(loaded, self.config)
                    self._engine = engine
        return self._engine

    def warm_up(self) -> None:
        _ = self.engine

    def decode(self, query: str) -> Decoded:
        engine = self.engine
        return engine.decode(
            query,
            max_calls=self.config.max_calls,
            cached=self.config.cached_prefix,
            model=self._model,
            full_vocab=self.config.full_vocab,
        )

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        try:
            d = self.decode(ctx.query)
        except FormatError as exc:
            raise RoutingError(f"functiongemma: {exc}") from exc
        first = d.calls[0]
        confidence = max(min(first.probability, 1.0), 1e-9)
        meta = {
            "calls": [
                {"name": c.name, "p": round(c.probability, 4)}
                | ({"raw_p": round(c.raw_probability, 6)} if c.raw_probability is not None else {})
                for c in d.calls
            ],
            "p_more": [round(p, 4) for p in d.more_probability],
            "query_tokens": d.query_tokens,
            "prefix_tokens": len(self.engine.prefix_ids),
            "forward_passes": d.forward_passes,
        }
        if first.name == RESPOND:
            return respond_decision(
                ctx,
                self.manifests,
                confidence=confidence,
                router=self.name,
                reason=f"model called {RESPOND}",
                meta=meta,
            )
        if first.name == CLARIFY:
            return clarify_decision(
                self._clarify_text(first.step_probs),
                confidence=confidence,
                router=self.name,
                reason=f"model called {CLARIFY}",
                meta=meta,
            )
        agents = [c for c in d.calls if c.name in self.manifests]
        return route_decision(
            ctx,
            self.manifests,
            [(c.name, c.probability) for c in agents],
            confidence=confidence,
            router=self.name,
            reason=f"model called {', '.join(c.name for c in agents)}",
            meta=meta,
        )

    def _clarify_text(self, steps: list[dict[str, float]]) -> str:
        # The agents the model found most likely at its first choice are the options offered.
        ranked: list[str] = []
        for group, _ in sorted((steps[0] if steps else {}).items(), key=lambda kv: -kv[1]):
            ranked += [n for n in group.split("/") if n in self.manifests and n not in ranked]
        return clarify_question(self.manifests, ranked or list(self.manifests))
